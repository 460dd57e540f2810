"""Every strategy under mixed_bfloat16 and mixed_float16, on real TFRecords.

The scores and the top-K choice stay float32 whatever the policy; float16
uses the Model Garden's loss scaling.
"""

import contextlib

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras

from official.core import task_factory
from official_td.modeling import token_drop_encoder as tde
from tests import real_data
from tests import task_configs

POLICIES = ('mixed_bfloat16', 'mixed_float16')
VARIANTS = ('dynamic', 'static', 'random', 'none', 'sctd')


@contextlib.contextmanager
def _policy(name):
  previous = tf_keras.mixed_precision.global_policy()
  tf_keras.mixed_precision.set_global_policy(name)
  try:
    yield
  finally:
    tf_keras.mixed_precision.set_global_policy(previous)


def _experiment(variant, policy=None, **token_drop):
  config = task_configs.tiny_experiment()
  config.task.strategy = 'dynamic' if variant == 'sctd' else variant
  config.task.sctd.enabled = variant == 'sctd'
  config.task.sctd.every_n_steps = 2
  config.task.token_drop.override(token_drop)
  if policy:
    config.runtime.mixed_precision_dtype = policy.replace('mixed_', '')
  return config


def _build(config):
  """Task, built model and the optimizer the Model Garden trainer makes."""
  task = task_factory.get_task(config.task)
  model = task.build_model()
  model(dict(real_data.batch()), training=False)
  optimizer = task.create_optimizer(config.trainer.optimizer_config,
                                    config.runtime)
  return task, model, optimizer


def _train(task, model, optimizer, steps=3):
  metrics = task.build_metrics(training=True)
  step = tf.function(lambda x: task.train_step(x, model, optimizer, metrics))
  dataset = task.build_inputs(task.task_config.train_data)
  losses = [float(step(x)[task.loss]) for x in dataset.take(steps)]
  return losses, {m.name: m for m in metrics}


def _tie_free_table(vocab_size):
  """Distinct float32 scores that bfloat16 merges and float16 overflows.

  Spaced 7 apart between -60,000 and -116,000: bfloat16 has a spacing of
  256 or 512 there, and float16 turns everything below -65,504 into -inf.
  """
  rng = np.random.default_rng(5)
  return -(60000.0 + 7.0 * rng.permutation(vocab_size)).astype(np.float32)


class MixedPrecisionTrainingTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(variant=VARIANTS, policy=POLICIES)
  def test_trains_with_a_float32_table(self, variant, policy):
    with _policy(policy):
      task, model, optimizer = _build(_experiment(variant, policy))
      self.assertEqual(
          isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer),
          policy == 'mixed_float16')
      losses, _ = _train(task, model, optimizer)
      scores = model.importance_recorder(real_data.batch()['input_word_ids'])
    self.assertTrue(np.all(np.isfinite(losses)), losses)
    self.assertEqual(scores.dtype, tf.float32)
    path = tf.train.Checkpoint(model=model).write(
        self.create_tempdir().full_path + '/ckpt')
    dtypes = tf.train.load_checkpoint(path).get_variable_to_dtype_map()
    table_keys = [k for k in dtypes if 'importance_recorder/importance' in k]
    self.assertLen(table_keys, 1)
    self.assertEqual(dtypes[table_keys[0]], tf.float32)

  @parameterized.product(
      split=((0, 0), (0, 2), (1, 1), (1, 2), (2, 2)), policy=POLICIES)
  def test_every_layer_split(self, split, policy):
    with _policy(policy):
      task, model, optimizer = _build(_experiment(
          'dynamic', policy, drop_start_layer=split[0],
          drop_end_layer=split[1]))
      self.assertEqual(model.encoder_network.layer_split, split)
      losses, _ = _train(task, model, optimizer, steps=2)
    self.assertTrue(np.all(np.isfinite(losses)), losses)

  @parameterized.product(strategy=('dynamic', 'static', 'random'),
                         policy=POLICIES)
  def test_kept_positions_equal_those_under_float32(self, strategy, policy):
    features = real_data.batch()
    kept = {}
    for name in ('float32', policy):
      with _policy(name):
        task, model, _ = _build(_experiment(strategy))
        model.importance_recorder.importance.assign(
            _tie_free_table(real_data.vocab().size))
        step = tf.constant(7, tf.int64)
        _, kept[name] = task.kept_positions(model, features, step)
        # The encoder drops exactly what it is given.
        outputs = model(dict(features, kept_positions=kept[name]),
                        training=True)
        self.assertAllEqual(outputs[tde.KEPT_POSITIONS_KEY], kept[name])
        self.assertEqual(model.encoder_network.compute_dtype,
                         name.replace('mixed_', ''))
    self.assertAllEqual(kept[policy], kept['float32'])


class LossScalingTest(tf.test.TestCase):

  def test_float16_gradients_are_scaled_and_unscaled(self):
    # One SGD step through a LossScaleOptimizer with a fixed scale of 1024
    # must move the weights as the same step without loss scaling does; a
    # missing unscale would move them 1024 times as far, a missing scale
    # would lose small gradients to float16 underflow.
    features = real_data.batch()
    updates = {}
    for scaled in (True, False):
      with _policy('mixed_float16'):
        config = _experiment('dynamic', 'mixed_float16')
        task = task_factory.get_task(config.task)
        model = task.build_model()
        model(dict(features), training=False)
        model.set_weights([np.random.default_rng(0).normal(
            scale=0.02, size=w.shape).astype(w.dtype)
                           for w in model.get_weights()])
        before = [v.numpy() for v in model.trainable_variables]
        optimizer = tf_keras.optimizers.SGD(0.1)
        if scaled:
          optimizer = tf_keras.mixed_precision.LossScaleOptimizer(
              optimizer, dynamic=False, initial_scale=1024.0)
        metrics = task.build_metrics(training=True)
        task.train_step(dict(features), model, optimizer, metrics)
        updates[scaled] = np.concatenate([
            (v.numpy() - b).ravel()
            for v, b in zip(model.trainable_variables, before)])
    self.assertGreater(np.abs(updates[False]).max(), 1e-4)
    ratio = np.linalg.norm(updates[True]) / np.linalg.norm(updates[False])
    self.assertAllClose(ratio, 1.0, atol=0.05)


if __name__ == '__main__':
  tf.test.main()
