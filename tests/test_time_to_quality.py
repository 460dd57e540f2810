"""The time-to-quality experiment, on a tiny model and a few seconds."""

import json
import os
import tempfile

import tensorflow as tf

from official_td.benchmarks import bench_configs
from official_td.benchmarks import time_to_quality
from tests import real_data


class StepBudgetTest(tf.test.TestCase):

  def test_schedule_ends_on_the_step_budget(self):
    config = bench_configs.experiment(
        'dynamic', bench_configs.model_size('L2_H32'),
        real_data.tfrecord_dir(), batch_size=4)
    config = time_to_quality.with_step_budget(config, 250, learning_rate=5e-4)
    optimizer = config.trainer.optimizer_config
    self.assertEqual(config.trainer.train_steps, 250)
    self.assertEqual(optimizer.learning_rate.polynomial.decay_steps, 250)
    self.assertEqual(optimizer.warmup.polynomial.warmup_steps, 25)
    self.assertEqual(config.trainer.steps_per_loop, 100)
    self.assertEqual(optimizer.learning_rate.polynomial.initial_learning_rate,
                     5e-4)


class TimeToQualityTest(tf.test.TestCase):

  def test_runs_both_variants_within_the_budget(self):
    output_dir = tempfile.mkdtemp(prefix='ttq_')
    budget = 20.0
    curves = time_to_quality.run(
        ['baseline', 'dynamic'], 'L2_H32_A2_I64', real_data.tfrecord_dir(),
        output_dir, batch_size=4, budget_seconds=budget, num_evals=2,
        eval_batches=2, calibration_steps=2)

    with open(os.path.join(output_dir, 'curves.json')) as f:
      saved = json.load(f)
    self.assertEqual(list(saved), ['baseline', 'dynamic'])
    for variant, points in curves.items():
      steps = [p.step for p in points]
      self.assertEqual(steps[0], 0)
      self.assertGreater(len(points), 1)
      self.assertAllGreater(tf.constant(steps[1:]) - steps[:-1], 0)
      self.assertLessEqual(steps[-1], saved[variant]['step_budget'])
      # Training stops at the first evaluation past the time budget.
      self.assertLess(points[-2].train_seconds, budget)
      for point in points:
        self.assertAllInRange([point.val_mlm_accuracy], 0.0, 1.0)
        self.assertTrue(0.0 < point.val_mlm_loss < 20.0)
      model_dir = os.path.join(output_dir, variant)
      self.assertEqual(
          tf.train.load_variable(tf.train.latest_checkpoint(model_dir),
                                 'global_step/.ATTRIBUTES/VARIABLE_VALUE'),
          steps[-1])
      self.assertTrue(os.path.exists(os.path.join(model_dir, 'params.yaml')))
    for name in ('val_mlm_loss_vs_train_seconds.png',
                 'val_mlm_loss_vs_step.png'):
      with open(os.path.join(output_dir, name), 'rb') as f:
        self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')


if __name__ == '__main__':
  tf.test.main()
