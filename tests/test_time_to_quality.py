"""The time-to-quality experiment, on a tiny model and a few seconds."""

import json
import os
import tempfile
from unittest import mock

import tensorflow as tf
import yaml

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


def _with_short_phase(config, steps):
  config.task.short_sequence_phase.steps = steps
  config.task.short_sequence_phase.data = real_data.short_data_config(4)
  return config


def _seconds_per_step(config, num_steps):
  """A stand-in calibration: short-phase steps 0.5 s, full-length 2 s."""
  del num_steps
  return 0.5 if config.task.short_sequence_phase.steps else 2.0


class ShortPhaseBudgetTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.config = bench_configs.experiment(
        'dynamic', bench_configs.model_size('L2_H32'),
        real_data.tfrecord_dir(), batch_size=4)

  @mock.patch.object(time_to_quality, 'calibrate', _seconds_per_step)
  def test_each_phase_is_counted_at_its_own_rate(self):
    # 40 short steps take 20 s; the other 80 s hold 40 full-length steps.
    steps, seconds = time_to_quality.step_budget(
        _with_short_phase(self.config, 40), 100.0, calibration_steps=2)
    self.assertEqual((steps, seconds), (80, 2.0))
    steps, _ = time_to_quality.step_budget(
        _with_short_phase(self.config, 0), 100.0, calibration_steps=2)
    self.assertEqual(steps, 50)

  @mock.patch.object(time_to_quality, 'calibrate', _seconds_per_step)
  def test_a_budget_shorter_than_the_phase_is_refused(self):
    with self.assertRaisesRegex(ValueError, 'budget_minutes'):
      time_to_quality.step_budget(_with_short_phase(self.config, 300), 100.0,
                                  calibration_steps=2)


class TimeToQualityTest(tf.test.TestCase):

  def test_two_variants_interleaved_within_the_budget(self):
    output_dir = tempfile.mkdtemp(prefix='ttq_')
    results_file = os.path.join(output_dir, 'results.json')
    # Two phases, as experiments/cpu_recipe.yaml: 3 steps of 16 tokens first.
    phase_file = os.path.join(output_dir, 'short_phase.yaml')
    short = real_data.short_data_config(4)
    with open(phase_file, 'w') as f:
      yaml.safe_dump({'task': {'short_sequence_phase': {'steps': 3, 'data': {
          'input_path': short.input_path, 'seq_length': short.seq_length,
          'max_predictions_per_seq': short.max_predictions_per_seq,
          'global_batch_size': short.global_batch_size}}}}, f)
    budget = 15.0
    arms = time_to_quality.run(
        ['baseline', 'dynamic'], 3, real_data.tfrecord_dir(), output_dir,
        results_file, batch_size=4, budget_seconds=budget, num_evals=3,
        eval_batches=2, calibration_steps=2, model='L2_H32_A2_I64',
        config_files=[phase_file])

    with open(results_file) as f:
      runs = json.load(f)
    self.assertEqual([(r['variant'], r['seed']) for r in runs],
                     [('baseline', 3), ('dynamic', 3)])
    baseline, dynamic = [[time_to_quality.CurvePoint(**p) for p in r['evals']]
                         for r in runs]
    # Blocks alternate: baseline trains block 1, dynamic block 2, ...
    self.assertEqual((baseline[1].block, dynamic[1].block), (1, 2))
    # One seed, one initialisation: the untrained models score the same.
    self.assertAllClose(baseline[0].val_mlm_loss, dynamic[0].val_mlm_loss)
    for run, points, arm in zip(runs, (baseline, dynamic), arms):
      steps = [p.step for p in points]
      self.assertEqual(steps[0], 0)
      self.assertAllGreater(tf.constant(steps[1:]) - steps[:-1], 0)
      self.assertLessEqual(steps[-1], run['step_budget'])
      self.assertGreater(steps[-1], 3)  # past the short phase
      self.assertEqual(arm.trainer.task.task_config.short_sequence_phase.steps,
                       3)
      if steps[-1] < run['step_budget']:  # stopped by the clock
        self.assertLess(points[-2].train_seconds, budget)
        self.assertGreaterEqual(points[-1].train_seconds, budget)
      for point in points:
        self.assertAllInRange([point.val_mlm_accuracy], 0.0, 1.0)
        self.assertTrue(0.0 < point.val_mlm_loss < 20.0)
      self.assertEqual(
          tf.train.load_variable(tf.train.latest_checkpoint(arm.model_dir),
                                 'global_step/.ATTRIBUTES/VARIABLE_VALUE'),
          steps[-1])
      self.assertTrue(os.path.exists(os.path.join(arm.model_dir,
                                                  'params.yaml')))
    for path in time_to_quality.plot(runs, output_dir):
      with open(path, 'rb') as f:
        self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')

  def test_a_rerun_replaces_the_same_variant_and_seed(self):
    results_file = os.path.join(tempfile.mkdtemp(), 'results.json')
    run = lambda variant, seed, loss: {'variant': variant, 'seed': seed,
                                       'evals': [{'val_mlm_loss': loss}]}
    time_to_quality.write_results(results_file, [run('baseline', 1, 6.0),
                                                 run('dynamic', 1, 5.0)])
    time_to_quality.write_results(results_file, [run('baseline', 2, 6.5),
                                                 run('dynamic', 1, 4.0)])
    saved = time_to_quality.read_results(results_file)
    self.assertEqual(
        [(r['variant'], r['seed'], r['evals'][0]['val_mlm_loss'])
         for r in saved],
        [('baseline', 1, 6.0), ('baseline', 2, 6.5), ('dynamic', 1, 4.0)])


class TimeFractionTest(tf.test.TestCase):

  def test_time_to_the_baseline_final_loss_is_interpolated(self):
    def evals(*points):
      return [dict(step=i, train_seconds=t, val_mlm_loss=loss,
                   val_mlm_accuracy=accuracy)
              for i, (t, loss, accuracy) in enumerate(points)]
    runs = [
        {'variant': 'baseline', 'seed': 1,
         'evals': evals((0, 10.0, 0.0), (100, 6.0, 0.2))},
        {'variant': 'dynamic', 'seed': 1,
         'evals': evals((0, 10.0, 0.0), (50, 7.0, 0.1), (80, 5.0, 0.3))},
        {'variant': 'random', 'seed': 1,
         'evals': evals((0, 10.0, 0.0), (100, 6.5, 0.1))},
    ]
    fractions = time_to_quality.time_fractions(runs)
    self.assertAllClose(fractions['baseline']['loss'], [1.0])
    # 6.0 lies halfway between 7.0 (50 s) and 5.0 (80 s): 65 s of 100 s.
    self.assertAllClose(fractions['dynamic']['loss'], [0.65])
    self.assertAllClose(fractions['dynamic']['accuracy'], [0.65])
    self.assertEqual(fractions['random']['loss'], [None])


if __name__ == '__main__':
  tf.test.main()
