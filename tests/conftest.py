"""Shared test setup: Keras 2, and real pretraining data from the embedded corpus."""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# See official_td/__init__.py: needed for SavedModel export with TF 2.20.
os.environ.setdefault('WRAPT_DISABLE_EXTENSIONS', '1')

from absl import flags  # pylint: disable=g-import-not-at-top

# tf.test.TestCase reads absl flags (e.g. --test_tmpdir); pytest never parses
# them.
flags.FLAGS.mark_as_parsed()

import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

# Two logical CPUs, so MirroredStrategy tests have 2 replicas. Must happen
# before TensorFlow initializes its devices, i.e. before any test module runs.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices('CPU')[0],
    [tf.config.LogicalDeviceConfiguration()] * 2)


def pytest_collection_modifyitems(items):
  # tf.test.TestCase.test_session is a context manager, not a test; pytest
  # would collect and skip it in every class.
  items[:] = [item for item in items if item.name != 'test_session']
