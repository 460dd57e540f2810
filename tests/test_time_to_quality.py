"""The time-to-quality experiment, on a tiny model and a few seconds."""

import dataclasses
import json
import os
import tempfile
from unittest import mock

from absl.testing import parameterized
import tensorflow as tf
import tf_keras
import yaml

from official.modeling import optimization
from official_td.benchmarks import bench_configs
from official_td.benchmarks import time_to_quality
from official_td.benchmarks import time_to_quality_report as report
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


class DataVocabularyTest(tf.test.TestCase, parameterized.TestCase):
  """A data folder whose recorded vocabulary path is gone (moved data)."""

  def _moved_data(self, vocab_sha256=None, vocab_beside=False):
    directory = self.create_tempdir().full_path
    metadata = bench_configs.read_metadata(real_data.tfrecord_dir())
    metadata['vocab_file'] = '/gone/checkout/data_prep/default/vocab.txt'
    if vocab_sha256:
      metadata['vocab_sha256'] = vocab_sha256
    with open(os.path.join(directory, 'metadata.json'), 'w') as f:
      json.dump(metadata, f)
    if vocab_beside:
      tf.io.gfile.copy(real_data.VOCAB, os.path.join(directory, 'vocab.txt'))
    return directory

  @parameterized.named_parameters(('default_vocabulary', False),
                                  ('vocab_txt_in_the_data_dir', True))
  def test_a_vocabulary_with_the_recorded_sha256_is_used(self, beside):
    directory = self._moved_data(vocab_beside=beside)
    vocab_file = bench_configs.data_vocab_file(
        bench_configs.read_metadata(directory), directory)
    expected = (os.path.join(directory, 'vocab.txt') if beside
                else real_data.VOCAB)
    self.assertEqual(os.path.realpath(vocab_file), os.path.realpath(expected))

  def test_no_vocabulary_with_the_recorded_sha256_is_named(self):
    directory = self._moved_data(vocab_sha256='0' * 64)
    with self.assertRaisesRegex(
        FileNotFoundError, r'tokenized with /gone/checkout/.*vocab.txt, which '
        r'does not exist.*\(0{64}\)\. Copy that vocabulary to '):
      bench_configs.experiment('baseline', None, directory, batch_size=4)


class SettableDecayStepsTest(tf.test.TestCase, parameterized.TestCase):

  def _optimizer(self, learning_rate_type='polynomial'):
    config = bench_configs.experiment(
        'baseline', bench_configs.model_size('L2_H32'),
        real_data.tfrecord_dir(), batch_size=4)
    config = time_to_quality.with_step_budget(config, 100, learning_rate=1e-3)
    config.trainer.optimizer_config.learning_rate.type = learning_rate_type
    factory = optimization.OptimizerFactory(config.trainer.optimizer_config)
    return factory.build_optimizer(factory.build_learning_rate())

  @parameterized.named_parameters(('float32', False), ('loss_scaled', True))
  def test_the_decay_end_moves_without_tracing_again(self, loss_scaled):
    optimizer = self._optimizer()
    if loss_scaled:  # as under a mixed_float16 policy
      optimizer = tf_keras.mixed_precision.LossScaleOptimizer(optimizer)
    decay_steps = time_to_quality.settable_decay_steps(optimizer)
    schedule = optimizer.learning_rate
    learning_rate = tf.function(schedule.__call__)
    # Past the 10-step warm-up, linear decay from 1e-3 to 0 at decay_steps.
    self.assertAllClose(learning_rate(tf.constant(50)), 0.5e-3)
    decay_steps.assign(200)
    self.assertAllClose(learning_rate(tf.constant(50)), 0.75e-3)
    self.assertAllClose(learning_rate(tf.constant(200)), 0.0)
    self.assertEqual(learning_rate.experimental_get_tracing_count(), 1)
    # A second call finds the variable already in place.
    self.assertIs(time_to_quality.settable_decay_steps(optimizer), decay_steps)

  def test_a_schedule_without_a_polynomial_decay_is_refused(self):
    with self.assertRaisesRegex(ValueError, 'learning_rate.type to polynomial'):
      time_to_quality.settable_decay_steps(self._optimizer('constant'))


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
  def test_a_budget_that_holds_fewer_than_min_steps_is_refused(self):
    config = _with_short_phase(self.config, 40)
    # 100 s hold 80 steps (above); 81 need 20 s + 41 * 2 s = 102 s.
    steps, _ = time_to_quality.step_budget(config, 100.0, calibration_steps=2,
                                           min_steps=80)
    self.assertEqual(steps, 80)
    with self.assertRaisesRegex(
        ValueError, r'holds 80 steps.*min_steps=81.*at least 2 min'):
      time_to_quality.step_budget(config, 100.0, calibration_steps=2,
                                  min_steps=81)

  @mock.patch.object(time_to_quality, 'calibrate', _seconds_per_step)
  def test_a_budget_shorter_than_the_phase_is_refused(self):
    with self.assertRaisesRegex(ValueError, 'budget_minutes'):
      time_to_quality.step_budget(_with_short_phase(self.config, 300), 100.0,
                                  calibration_steps=2)


class TimeToQualityTest(tf.test.TestCase):

  # A stand-in calibration (5 s a short-phase step, 20 s a full-length one)
  # sizes the step budget the same on any machine, however loaded: 3 short
  # steps and (600 - 15) // 20 = 29 full-length ones. The real steps are
  # far faster, so the step budget, not the clock, ends each variant.
  @mock.patch.object(time_to_quality, 'calibrate',
                     lambda *args: 10 * _seconds_per_step(*args))
  def test_two_variants_interleaved_on_their_step_budgets(self):
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
    budget = 600.0
    arms = time_to_quality.run(
        ['baseline', 'dynamic'], 3, real_data.tfrecord_dir(), output_dir,
        results_file, batch_size=4, budget_seconds=budget, num_evals=3,
        eval_batches=2, calibration_steps=2, model='L2_H32_A2_I64',
        config_files=[phase_file])

    with open(results_file) as f:
      runs = json.load(f)
    self.assertEqual([(r['variant'], r['seed']) for r in runs],
                     [('baseline', 3), ('dynamic', 3)])
    with open(os.path.join(real_data.tfrecord_dir(), 'metadata.json')) as f:
      corpus_sha256 = json.load(f)['corpus_sha256']
    for run in runs:  # where it was measured, on what corpus build
      self.assertEqual(run['corpus_sha256'], corpus_sha256)
      self.assertRegex(run['machine'], r'.+, \d+ cores$')
    baseline, dynamic = [report.points_of(r) for r in runs]
    # Blocks alternate: baseline trains block 1, dynamic block 2, ...
    self.assertEqual((baseline[1].block, dynamic[1].block), (1, 2))
    # One seed, one initialisation: the untrained models score the same.
    self.assertAllClose(baseline[0].val_mlm_loss, dynamic[0].val_mlm_loss)
    for run, points, arm in zip(runs, (baseline, dynamic), arms):
      steps = [p.step for p in points]
      self.assertEqual(run['step_budget'], 32)
      # Blocks of ceil(32 / 3) = 11 steps, the last one cut to the budget.
      self.assertEqual(steps, [0, 11, 22, 32])
      self.assertLess(points[-1].train_seconds, budget)
      self.assertEqual(arm.trainer.task.task_config.short_sequence_phase.steps,
                       3)
      for point in points:
        self.assertAllInRange([point.val_mlm_accuracy], 0.0, 1.0)
        self.assertTrue(0.0 < point.val_mlm_loss < 20.0)
      self.assertEqual(
          tf.train.load_variable(tf.train.latest_checkpoint(arm.model_dir),
                                 'global_step/.ATTRIBUTES/VARIABLE_VALUE'),
          steps[-1])
      self.assertTrue(os.path.exists(os.path.join(arm.model_dir,
                                                  'params.yaml')))

  @mock.patch.object(time_to_quality, 'calibrate', lambda *args: 2.0)
  def test_on_time_the_arm_holds_its_optimizer_decay_steps(self):
    config = time_to_quality.variant_config(
        'dynamic', 1, real_data.tfrecord_dir(), 4, model='L2_H32_A2_I64')
    arm = time_to_quality.build_arm(
        'dynamic', 1, config, tempfile.mkdtemp(prefix='ttq_'), 100.0,
        calibration_steps=2, learning_rate=None, lr_schedule_on='time')
    self.assertEqual(arm.step_budget, 50)
    self.assertIs(arm.decay_steps,
                  time_to_quality.settable_decay_steps(arm.trainer.optimizer))
    self.assertEqual(int(arm.decay_steps.numpy()), 50)

  def test_an_unknown_schedule_basis_fails_before_training(self):
    with self.assertRaisesRegex(ValueError, 'wallclock.*use one of'):
      time_to_quality.run(['baseline'], 1, real_data.tfrecord_dir(), '', '',
                          4, 60.0, 2, 1, 2, lr_schedule_on='wallclock')

  def test_a_budget_fraction_for_a_variant_not_run_fails_before_training(
      self):
    with self.assertRaisesRegex(ValueError, "'random'.*not in --variants"):
      time_to_quality.run(['baseline', 'dynamic'], 1, real_data.tfrecord_dir(),
                          '', '', 4, 60.0, 2, 1, 2,
                          budget_fractions={'random': 0.8})

  def test_budget_fractions_scale_only_the_variants_they_name(self):
    self.assertEqual(
        time_to_quality.variant_budgets(
            ['baseline', 'dynamic'], 3000.0,
            time_to_quality.parse_fractions(['dynamic=0.8'])),
        {'baseline': 3000.0, 'dynamic': 2400.0})
    with self.assertRaisesRegex(ValueError, 'must be positive'):
      time_to_quality.variant_budgets(['dynamic'], 60.0, {'dynamic': 0.0})
    with self.assertRaisesRegex(ValueError, 'VARIANT=FRACTION'):
      time_to_quality.parse_fractions(['dynamic:0.8'])

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


class _FakeClock:
  """`time.perf_counter` that advances only when a fake trainer trains."""

  def __init__(self):
    self.now = 0.0

  def perf_counter(self):
    return self.now


class _FakeTrainer:
  """Trains at `seconds_per_step` of the fake clock; evaluates to constants."""

  def __init__(self, clock, seconds_per_step):
    self.clock = clock
    self.seconds_per_step = seconds_per_step
    self.global_step = tf.Variable(0, dtype=tf.int64)
    self.blocks = []

  def train(self, num_steps):
    self.blocks.append(int(num_steps))
    self.global_step.assign_add(int(num_steps))
    self.clock.now += self.seconds_per_step * int(num_steps)

  def evaluate(self, num_batches):
    del num_batches
    return {'lm_example_loss': 5.0, 'masked_lm_accuracy': 0.2}


class ClockStopTest(tf.test.TestCase):
  """How blocks are sized and when a variant stops, on a fake clock."""

  def _arm(self, clock, variant, seconds_per_step, calibrated_ms, budget,
           **kwargs):
    return time_to_quality.Arm(
        variant=variant, seed=1, model_dir='', trainer=_FakeTrainer(
            clock, seconds_per_step), checkpoints=mock.Mock(),
        step_budget=int(budget * 1000 / calibrated_ms),
        ms_per_step=calibrated_ms, budget_seconds=budget, **kwargs)

  def test_a_slower_variant_than_calibrated_stops_on_the_clock(self):
    clock = _FakeClock()
    budget = 100.0
    # Calibrated right: 100 steps in 100 s, blocks of 20 steps.
    baseline = self._arm(clock, 'baseline', 1.0, 1000.0, budget)
    # Calibrated at 400 ms but runs at 600 ms: 250 steps planned, blocks of
    # 50 (30 s each); after three blocks 10 s are left, 17 steps at 0.6 s.
    dynamic = self._arm(clock, 'dynamic', 0.6, 400.0, budget)
    with mock.patch.object(time_to_quality, 'time', clock):
      time_to_quality.train_interleaved([baseline, dynamic], num_evals=5,
                                        eval_batches=1)

    self.assertEqual(baseline.trainer.blocks, [20] * 5)
    self.assertEqual(baseline.step, baseline.step_budget)
    self.assertAllClose(baseline.train_seconds, 100.0)
    self.assertEqual(dynamic.trainer.blocks, [50, 50, 50, 17])
    self.assertLess(dynamic.step, dynamic.step_budget)
    self.assertAllClose(dynamic.train_seconds, 100.2)
    self.assertTrue(dynamic.done())
    # An evaluation before training and after every block, in turns.
    self.assertEqual([p.block for p in baseline.evals], [0, 1, 3, 5, 7, 9])
    self.assertEqual([p.block for p in dynamic.evals], [0, 2, 4, 6, 8])
    self.assertEqual([p.step for p in dynamic.evals], [0, 50, 100, 150, 167])

  def test_an_arm_with_its_own_budget_stops_on_it(self):
    clock = _FakeClock()
    # Both at 1 s a step; dynamic has 80 of the run's 100 s, so it plans
    # 80 steps in blocks of 16: the two still alternate to the end.
    baseline = self._arm(clock, 'baseline', 1.0, 1000.0, 100.0)
    dynamic = self._arm(clock, 'dynamic', 1.0, 1000.0, 80.0)
    with mock.patch.object(time_to_quality, 'time', clock):
      time_to_quality.train_interleaved([baseline, dynamic], num_evals=5,
                                        eval_batches=1)

    self.assertEqual(dynamic.trainer.blocks, [16] * 5)
    self.assertAllClose(dynamic.train_seconds, 80.0)
    self.assertAllClose(baseline.train_seconds, 100.0)
    self.assertEqual([p.block for p in dynamic.evals], [0, 2, 4, 6, 8, 10])
    self.assertEqual([p.block for p in baseline.evals], [0, 1, 3, 5, 7, 9])
    self.assertEqual(dynamic.as_json({'budget_seconds': 100.0})
                     ['budget_seconds'], 80.0)

  def test_on_time_the_decay_ends_on_the_time_budget(self):
    clock = _FakeClock()
    budget = 100.0
    # As in the test above, calibrated at 400 ms, runs at 600 ms: 250 steps
    # planned; after the first block (50 steps, 30 s) 70 s hold 116 more.
    arm = self._arm(clock, 'dynamic', 0.6, 400.0, budget,
                    decay_steps=tf.Variable(250, dtype=tf.int64))
    with mock.patch.object(time_to_quality, 'time', clock):
      time_to_quality.train_interleaved([arm], num_evals=5, eval_batches=1)

    self.assertEqual(arm.trainer.blocks, [50, 34, 34, 34, 14])
    self.assertEqual(arm.step, 166)
    # The decay ends where training did, not 84 steps after it.
    self.assertEqual(int(arm.decay_steps.numpy()), 166)
    self.assertEqual(arm.step_budget, 166)
    self.assertAllClose(arm.train_seconds, 99.6)
    self.assertTrue(arm.done())

  def test_replan_counts_the_short_phase_at_its_own_rate(self):
    # Budget 100 s: a 40-step short phase at 0.5 s a step, then full-length
    # steps calibrated at 2 s.
    arm = self._arm(_FakeClock(), 'dynamic', 0.5, 2000.0, 100.0,
                    decay_steps=tf.Variable(80, dtype=tf.int64),
                    short_phase_steps=40)
    plans = []
    for steps, seconds in [(20, 10.0), (20, 10.0), (8, 20.0)]:
      arm.trainer.train(steps)
      arm.end_block(steps, seconds)
      plans.append((arm.step_budget, int(arm.decay_steps.numpy())))
    self.assertEqual(plans, [
        # 20 short steps left take 10 s; 80 s hold 40 at the calibrated 2 s.
        (80, 80),
        # The block that ends the phase measured short steps: still 2 s.
        (80, 80),
        # The first full-length block measured 2.5 s: 60 s hold 24 more.
        (72, 72)])

  def test_on_steps_replan_keeps_the_calibrated_budget(self):
    arm = self._arm(_FakeClock(), 'dynamic', 0.6, 400.0, 100.0)
    arm.train_seconds, arm.last_block_seconds_per_step = 30.0, 0.6
    arm.replan()
    self.assertEqual(arm.step_budget, 250)

  def test_steps_left_uses_the_last_block_rate(self):
    clock = _FakeClock()
    arm = self._arm(clock, 'dynamic', 0.5, 250.0, 100.0)
    self.assertEqual(arm.steps_left(), 400)  # at the calibrated rate
    arm.train_seconds, arm.last_block_seconds_per_step = 90.0, 0.4
    self.assertEqual(arm.steps_left(), 25)
    arm.train_seconds = 100.0
    self.assertEqual(arm.steps_left(), 1)  # never a block of 0 steps
    self.assertTrue(arm.done())

  def test_steps_left_counts_the_short_phase_at_its_own_rate(self):
    # A 40-step short phase, full-length steps calibrated at 2 s.
    arm = self._arm(_FakeClock(), 'dynamic', 0.5, 2000.0, 100.0,
                    short_phase_steps=40)
    arm.trainer.train(20)
    arm.end_block(20, 10.0)
    # 20 short steps left at 0.5 s (10 s), then 80 s at the calibrated 2 s.
    self.assertEqual(arm.steps_left(), 60)
    # With a 12 s budget, 2 s left end inside the phase: 4 short steps.
    self.assertEqual(
        dataclasses.replace(arm, budget_seconds=12.0).steps_left(), 4)
    arm.trainer.train(20)
    arm.end_block(20, 10.0)
    # The block that ended the phase ran short steps: not the full-length
    # rate, so 80 s hold 40 steps, not 160.
    self.assertEqual(arm.steps_left(), 40)


if __name__ == '__main__':
  tf.test.main()
