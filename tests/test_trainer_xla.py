"""The trainer compiles the task's step with XLA when runtime.enable_xla is set."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from official.common import distribute_utils
from official.core import task_factory
from official.core import train_utils
from official_td.tasks import trainer as token_drop_trainer
from tests import task_configs


def _trainer(strategy: str, enable_xla: bool,
             distribution=None):
  """A trainer of the tiny experiment; `distribution` as train.py's."""
  config = task_configs.tiny_experiment()
  config.task.strategy = strategy
  config.runtime.enable_xla = enable_xla
  config.task.train_data.seed = 1
  tf.keras.utils.set_random_seed(1)
  with (distribution or tf.distribute.get_strategy()).scope():
    task = task_factory.get_task(config.task)
    return train_utils.create_trainer(
        config, task, train=True, evaluate=False,
        trainer_cls=token_drop_trainer.TokenDropTrainer)


def _train(trainer, steps: int):
  trainer.train(tf.constant(steps))
  return float(trainer.train_loss.result())


class TrainerXlaTest(tf.test.TestCase, parameterized.TestCase):

  def test_baseline_step_compiled_matches_uncompiled(self):
    # Each trainer trains right after it is built: the MLM head is built at
    # its first call, so both must draw its initial weights from the same
    # point of the seeded stream.
    plain = _trainer('none', enable_xla=False)
    plain_loss = _train(plain, 3)
    compiled = _trainer('none', enable_xla=True)
    compiled_loss = _train(compiled, 3)
    self.assertFalse(plain.compiles_task_step)
    self.assertTrue(compiled.compiles_task_step)
    self.assertAllClose(plain_loss, compiled_loss, rtol=1e-4)
    self.assertGreaterEqual(
        compiled._compiled_step.experimental_get_tracing_count(), 1)
    for a, b in zip(plain.model.trainable_weights,
                    compiled.model.trainable_weights):
      self.assertAllClose(a, b, atol=1e-4, msg=a.name)

  @parameterized.parameters(
      ('dynamic', 'default'), ('static', 'default'), ('random', 'default'),
      ('dynamic', 'mirrored'), ('static', 'one_device'))
  def test_dropping_step_compiles_and_learns(self, strategy, distribution):
    # train.py's CPU default is a one-replica MirroredStrategy.
    distribution = (
        None if distribution == 'default' else
        distribute_utils.get_distribution_strategy(distribution, num_gpus=0))
    trainer = _trainer(strategy, enable_xla=True, distribution=distribution)
    self.assertTrue(trainer.compiles_task_step)
    initial = [w.numpy() for w in trainer.model.trainable_weights]
    table = trainer.model.importance_recorder.importance.numpy()
    loss = _train(trainer, 3)
    self.assertTrue(np.isfinite(loss))
    self.assertEqual(int(trainer.global_step.numpy()), 3)
    self.assertGreaterEqual(
        trainer._compiled_step.experimental_get_tracing_count(), 1)
    changed = [not np.allclose(w.numpy(), w0)
               for w, w0 in zip(trainer.model.trainable_weights, initial)]
    self.assertGreater(np.mean(changed), 0.9)
    updated = trainer.model.importance_recorder.importance.numpy()
    # Only the dynamic table learns from the losses; the others stay put.
    self.assertEqual(strategy == 'dynamic', not np.array_equal(table, updated))


if __name__ == '__main__':
  tf.test.main()
