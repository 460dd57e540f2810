"""The train step's draws and table updates: seeded, resumable, NaN-proof."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras

from official.core import task_factory
from official_td.tasks import token_drop_masked_lm
from tests import real_data
from tests import task_configs


def _build(strategy='dynamic', seed=0):
  config = task_configs.tiny_experiment()
  config.task.strategy = strategy
  config.task.token_drop.seed = seed
  task = task_factory.get_task(config.task)
  model = task.build_model()
  model(dict(real_data.batch()), training=False)
  model.set_weights([np.random.default_rng(0).normal(
      scale=0.05, size=w.shape).astype(w.dtype) for w in model.get_weights()])
  return task, model, tf_keras.optimizers.Adam(1e-3)


def _batches(count):
  return [real_data.batch(index=i) for i in range(count)]


class SeededDrawsTest(tf.test.TestCase, parameterized.TestCase):

  def _run(self, task, model, optimizer, batches):
    """Trains on `batches`; returns the kept positions of each step."""
    metrics = task.build_metrics(training=True)
    step = tf.function(lambda x: task.train_step(x, model, optimizer,
                                                 metrics))
    kept = []
    for features in batches:
      kept.append(task.kept_positions(model, features,
                                      optimizer.iterations)[1].numpy())
      step(dict(features))
    return kept

  @parameterized.parameters('random', 'dynamic')
  def test_same_seed_same_kept_positions(self, strategy):
    batches = _batches(3)
    first = self._run(*_build(strategy, seed=1), batches)
    again = self._run(*_build(strategy, seed=1), batches)
    other = self._run(*_build(strategy, seed=2), batches)
    self.assertAllEqual(first, again)
    self.assertNotAllEqual(first, other)

  @parameterized.parameters('random', 'dynamic')
  def test_resumed_run_draws_what_the_uninterrupted_run_drew(self, strategy):
    batches = _batches(4)
    task, model, optimizer = _build(strategy, seed=1)
    self._run(task, model, optimizer, batches[:2])
    path = tf.train.Checkpoint(model=model, optimizer=optimizer).write(
        self.create_tempdir().full_path + '/ckpt')
    uninterrupted = self._run(task, model, optimizer, batches[2:])

    task, resumed, resumed_optimizer = _build(strategy, seed=1)
    # As the Model Garden trainer does: restore before the first step (the
    # optimizer's slots are restored when the first step creates them).
    tf.train.Checkpoint(model=resumed, optimizer=resumed_optimizer).read(
        path).expect_partial()
    self.assertEqual(int(resumed_optimizer.iterations), 2)
    after_resume = self._run(task, resumed, resumed_optimizer, batches[2:])
    self.assertAllEqual(after_resume, uninterrupted)
    self.assertAllEqual(resumed.importance_recorder.importance,
                        model.importance_recorder.importance)


class NonFiniteLossTest(tf.test.TestCase):

  def test_nonfinite_losses_are_counted_and_kept_out_of_the_table(self):
    task, model, _ = _build('dynamic')
    bias = [v for v in model.variables if 'output_bias' in v.name]
    self.assertLen(bias, 1)
    poisoned = bias[0].numpy()
    poisoned[7] = np.nan  # every MLM loss becomes NaN
    bias[0].assign(poisoned)
    before = model.importance_recorder.importance.numpy()
    metrics = task.build_metrics(training=True)
    features = real_data.batch()
    task.train_step(dict(features), model, tf_keras.optimizers.SGD(0.0),
                    metrics)
    by_name = {m.name: m.result().numpy() for m in metrics}
    self.assertEqual(by_name[token_drop_masked_lm.NONFINITE_TARGETS],
                     features['masked_lm_weights'].sum())
    self.assertAllEqual(model.importance_recorder.importance, before)


if __name__ == '__main__':
  tf.test.main()
