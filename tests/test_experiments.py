"""The registered experiments and the YAML files under experiments/."""

import glob
import os

from absl.testing import parameterized
import tensorflow as tf

from official.core import exp_factory
from official.modeling import hyperparams
from official_td import registry_imports  # pylint: disable=unused-import
from official_td.modeling import token_drop_encoder
from tests import real_data

_YAMLS = sorted(glob.glob(os.path.join(real_data.REPO, 'experiments',
                                       '*.yaml')))


class ExperimentsTest(tf.test.TestCase, parameterized.TestCase):

  def test_baseline_differs_only_in_strategy(self):
    token_drop = exp_factory.get_exp_config('bert/token_drop').as_dict()
    baseline = exp_factory.get_exp_config('bert/token_drop_baseline').as_dict()
    self.assertEqual(token_drop['task'].pop('strategy'), 'dynamic')
    self.assertEqual(baseline['task'].pop('strategy'), 'none')
    self.assertEqual(token_drop, baseline)

  def test_default_vocab_size_matches_the_embedded_vocabulary(self):
    config = exp_factory.get_exp_config('bert/token_drop')
    self.assertEqual(config.task.model.encoder.bert.vocab_size,
                     real_data.vocab().size)

  @parameterized.parameters(*_YAMLS)
  def test_yaml_overrides_the_experiment_strictly(self, path):
    config = exp_factory.get_exp_config('bert/token_drop')
    config = hyperparams.override_params_dict(config, path, is_strict=True)
    config.validate()
    bert = config.task.model.encoder.bert
    drop = config.task.token_drop
    token_drop_encoder.resolve_layer_split(bert.num_layers,
                                           drop.drop_start_layer,
                                           drop.drop_end_layer)

  def test_paper_setup_keeps_256_of_512_in_layers_5_to_10(self):
    path = os.path.join(real_data.REPO, 'experiments', 'bert_base_seq512.yaml')
    config = hyperparams.override_params_dict(
        exp_factory.get_exp_config('bert/token_drop'), path, is_strict=True)
    drop = config.task.token_drop
    self.assertEqual(token_drop_encoder.resolve_layer_split(
        config.task.model.encoder.bert.num_layers, drop.drop_start_layer,
        drop.drop_end_layer), (5, 10))
    self.assertEqual(token_drop_encoder.num_kept_tokens(
        config.task.train_data.seq_length, drop.keep_ratio), 256)

  def test_cpu_recipe_phases_keep_tokens_per_step_and_one_schedule(self):
    path = os.path.join(real_data.REPO, 'experiments', 'cpu_recipe.yaml')
    config = hyperparams.override_params_dict(
        exp_factory.get_exp_config('bert/token_drop_baseline'), path,
        is_strict=True)
    phase, full = config.task.short_sequence_phase, config.task.train_data
    self.assertEqual(phase.data.seq_length * phase.data.global_batch_size,
                     full.seq_length * full.global_batch_size)
    self.assertBetween(phase.steps, 1, config.trainer.train_steps - 1)
    self.assertEqual(config.task.validation_data.seq_length, full.seq_length)
    self.assertEqual(config.trainer.optimizer_config.learning_rate.polynomial
                     .decay_steps, config.trainer.train_steps)
    self.assertEqual(config.task.strategy, 'none')
    self.assertTrue(config.runtime.enable_xla)


if __name__ == '__main__':
  tf.test.main()
