"""One global importance table on several replicas; the step under XLA.

`tests/conftest.py` splits the CPU into 2 logical devices, so
`MirroredStrategy` has 2 replicas here.
"""

import os

import numpy as np
import tensorflow as tf
import tf_keras

from official.core import task_factory
from official_td.data import token_frequencies
from tests import real_data
from tests import task_configs

_STEPS = 4
_GLOBAL_BATCH = 8


def _config(keep_ratio=1.0, strategy='dynamic', frequency_file=None):
  config = task_configs.tiny_experiment(batch_size=_GLOBAL_BATCH)
  config.task.strategy = strategy
  config.task.token_drop.keep_ratio = keep_ratio
  # Replica losses are means over local batches: scale them so that the
  # summed gradients equal the one-device gradient.
  config.task.scale_loss = True
  if frequency_file:
    config.task.token_drop.frequency_file = frequency_file
  return config


def _global_batches():
  config = real_data.data_config('train', _GLOBAL_BATCH, is_training=False)
  from official.nlp.data import pretrain_dataloader  # pylint: disable=g-import-not-at-top
  dataset = pretrain_dataloader.BertPretrainDataLoader(config).load()
  return dataset.take(_STEPS)


def _train(strategy, config, initial_weights=None):
  """Runs _STEPS steps on the same global batches; returns (model, losses).

  The model starts from `initial_weights` if given.
  """
  with strategy.scope():
    task = task_factory.get_task(config.task)
    model = task.build_model()
    model(next(iter(_global_batches())), training=False)  # creates variables
    if initial_weights is not None:
      model.set_weights(initial_weights)
    optimizer = tf_keras.optimizers.SGD(0.5)
    metrics = task.build_metrics(training=True)

  @tf.function
  def step(features):
    per_replica = strategy.run(
        lambda x: task.train_step(x, model, optimizer, metrics),
        args=(features,))
    return strategy.reduce(tf.distribute.ReduceOp.MEAN,
                           per_replica[task.loss], axis=None)

  dataset = strategy.experimental_distribute_dataset(_global_batches())
  losses = [float(step(features)) for features in dataset]
  return model, losses


def _mirrored():
  devices = tf.config.list_logical_devices('CPU')
  assert len(devices) >= 2, devices
  return tf.distribute.MirroredStrategy([d.name for d in devices[:2]])


def _distinct_frequency_file(directory):
  """A valid frequency file whose counts are all distinct: no ties."""
  vocab = real_data.vocab()
  counts = token_frequencies.read_frequency_file(
      os.path.join(real_data.tfrecord_dir(), token_frequencies.FILENAME),
      vocab)
  distinct = counts * vocab.size + np.arange(vocab.size)
  path = os.path.join(directory, 'distinct.json')
  token_frequencies.write_frequency_file(path, distinct, vocab)
  return path


class MirroredTableTest(tf.test.TestCase):

  def test_two_replicas_update_the_table_like_one_device(self):
    with tf.distribute.get_strategy().scope():
      task = task_factory.get_task(_config().task)
      initial = task.build_model()
      initial(next(iter(_global_batches())), training=False)
    weights = initial.get_weights()
    one_model, one_losses = _train(tf.distribute.get_strategy(), _config(),
                                   weights)
    two_model, two_losses = _train(_mirrored(), _config(), weights)
    self.assertAllClose(two_losses, one_losses, atol=1e-4)
    one_table = one_model.importance_recorder.importance.numpy()
    copies = [c.numpy() for c in _mirrored().experimental_local_results(
        two_model.importance_recorder.importance)]
    self.assertLen(copies, 2)
    self.assertAllEqual(copies[0], copies[1])
    self.assertAllClose(copies[0], one_table, atol=1e-5)
    self.assertLess(one_table.min(), 9.99)  # it did move

  def test_replica_copies_stay_identical_while_dropping(self):
    model, losses = _train(_mirrored(), _config(keep_ratio=0.5))
    self.assertTrue(np.all(np.isfinite(losses)))
    copies = model.importance_recorder.importance.values
    self.assertLen(copies, 2)
    self.assertAllEqual(copies[0].numpy(), copies[1].numpy())
    path = tf.train.Checkpoint(model=model).write(
        os.path.join(self.create_tempdir().full_path, 'ckpt'))
    reader = tf.train.load_checkpoint(path)
    key = [k for k in reader.get_variable_to_shape_map()
           if 'importance_recorder' in k][0]
    self.assertAllEqual(reader.get_tensor(key), copies[0].numpy())


class XlaTest(tf.test.TestCase):

  def test_train_step_compiles_and_matches(self):
    frequency_file = _distinct_frequency_file(self.create_tempdir().full_path)
    results = []
    for jit_compile in (False, True):
      config = _config(keep_ratio=0.5, strategy='static',
                       frequency_file=frequency_file)
      task = task_factory.get_task(config.task)
      model = task.build_model()
      optimizer = tf_keras.optimizers.SGD(0.5)
      metrics = task.build_metrics(training=True)
      step = tf.function(
          lambda x: task.train_step(x, model, optimizer, metrics),  # pylint: disable=cell-var-from-loop
          jit_compile=jit_compile)
      batches = list(_global_batches())
      tf_keras.utils.set_random_seed(0)
      model(batches[0], training=False)  # build, then same initial weights
      if results:
        model.set_weights(results[0][1])
      weights = [w.copy() for w in model.get_weights()]
      losses = [float(step(b)[task.loss]) for b in batches]
      results.append((losses, weights))
    self.assertAllClose(results[1][0], results[0][0], rtol=1e-4)

  def test_dynamic_step_compiles_under_xla(self):
    config = _config(keep_ratio=0.5)
    task = task_factory.get_task(config.task)
    model = task.build_model()
    optimizer = tf_keras.optimizers.SGD(0.1)
    metrics = task.build_metrics(training=True)
    step = tf.function(lambda x: task.train_step(x, model, optimizer, metrics),
                       jit_compile=True)
    losses = [float(step(b)[task.loss]) for b in _global_batches()]
    self.assertTrue(np.all(np.isfinite(losses)))
    self.assertLess(model.importance_recorder.importance.numpy().min(), 10.0)


if __name__ == '__main__':
  tf.test.main()
