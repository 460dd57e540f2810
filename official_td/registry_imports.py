"""Imports that register token-dropping tasks and experiments."""

# pylint: disable=unused-import
from official_td.configs import experiments
from official_td.tasks import token_drop_masked_lm
from official_td.configs import finetuning
