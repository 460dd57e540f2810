"""Shared test setup: Keras 2, and real pretraining data from the embedded corpus."""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import flags  # pylint: disable=g-import-not-at-top

# tf.test.TestCase reads absl flags (e.g. --test_tmpdir); pytest never parses
# them.
flags.FLAGS.mark_as_parsed()
