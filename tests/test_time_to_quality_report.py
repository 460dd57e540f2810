"""The tables and plots read from a time-to-quality results file."""

import contextlib
import io
import os
import tempfile

import tensorflow as tf

from official_td.benchmarks import time_to_quality_report as report


def _evals(*points):
  """(step, seconds, loss, accuracy) tuples as the results file holds them."""
  return [dict(step=step, train_seconds=seconds, val_mlm_loss=loss,
               val_mlm_accuracy=accuracy)
          for step, seconds, loss, accuracy in points]


def _runs():
  return [
      {'variant': 'baseline', 'seed': 1, 'calibrated_ms_per_step': 1000.0,
       'config_files': ['experiments/cpu_recipe.yaml'],
       'evals': _evals((0, 0, 10.0, 0.0), (40, 20, 8.0, 0.1),
                       (3040, 3020, 7.0, 0.15), (3140, 3120, 6.0, 0.2))},
      {'variant': 'dynamic', 'seed': 1, 'calibrated_ms_per_step': 800.0,
       'config_files': ['experiments/cpu_recipe.yaml'],
       'evals': _evals((0, 0, 10.0, 0.0), (50, 20, 7.0, 0.1),
                       (3050, 2420, 6.5, 0.15), (3250, 3020, 5.0, 0.3))},
      {'variant': 'random', 'seed': 1,
       'evals': _evals((0, 0, 10.0, 0.0), (100, 100, 6.5, 0.1))},
  ]


class CurveTest(tf.test.TestCase):

  def test_time_to_the_baseline_final_loss_is_interpolated(self):
    fractions = report.fractions_of_baseline(_runs())
    self.assertNotIn('baseline', fractions)
    # 6.0 lies 1/3 of the way from 6.5 (2420 s) to 5.0 (3020 s): 2620 s.
    self.assertAllClose(fractions['dynamic']['loss'], [2620 / 3120])
    # 0.2 lies 1/3 of the way from 0.15 to 0.3: the same 2620 s.
    self.assertAllClose(fractions['dynamic']['accuracy'], [2620 / 3120])
    self.assertEqual(fractions['random']['loss'], [None])

  def test_steps_to_the_baseline_final_loss_are_interpolated(self):
    fractions = report.fractions_of_baseline(_runs(), along='step')
    self.assertNotIn('baseline', fractions)
    # 6.0 lies 1/3 of the way from 6.5 (step 3050) to 5.0 (step 3250):
    # step 3116.7, against the baseline's final step 3140.
    self.assertAllClose(fractions['dynamic']['loss'], [(3050 + 200 / 3) / 3140])
    self.assertAllClose(fractions['dynamic']['accuracy'],
                        [(3050 + 200 / 3) / 3140])
    self.assertEqual(fractions['random']['loss'], [None])

  def test_value_at_a_time_is_interpolated_and_none_past_the_run(self):
    points = report.points_of(_runs()[0])
    self.assertAllClose(report.value_at(points, 'val_mlm_loss', 3070), 6.5)
    self.assertAllClose(report.value_at(points, 'val_mlm_accuracy', 10), 0.05)
    self.assertIsNone(report.value_at(points, 'val_mlm_loss', 3121))

  def test_a_run_that_stopped_short_of_its_budget_holds_its_final_value(self):
    # The last evaluation at 3120 s of a 3125-s budget: the model the budget
    # bought is the final one, up to the budget's end and not past it.
    points = report.points_of(_runs()[0])
    self.assertAllClose(
        report.value_at(points, 'val_mlm_loss', 3125, held_until=3125), 6.0)
    self.assertIsNone(
        report.value_at(points, 'val_mlm_loss', 3126, held_until=3125))
    self.assertIsNone(report.value_at(points, 'val_mlm_loss', -1,
                                      held_until=3125))

  def test_blocks_are_split_by_sequence_phase(self):
    points = report.points_of(_runs()[0])
    # Steps 0-40 are short; 40-3040 crosses step 3000; 3040-3140 is full.
    self.assertEqual(report.block_ms_per_step(points, 3000),
                     {'short': [500.0], 'full': [1000.0]})
    # Without a short phase, every block is full-length.
    self.assertLen(report.block_ms_per_step(points, 0)['full'], 3)

  def test_short_phase_steps_come_from_the_run_config_files(self):
    run = {'config_files': ['experiments/cpu_recipe.yaml']}
    self.assertEqual(report.short_phase_steps(run), 3000)
    run['params_override'] = 'task.short_sequence_phase.steps=500'
    self.assertEqual(report.short_phase_steps(run), 500)
    self.assertEqual(report.short_phase_steps({}), 0)

  def test_gaps_are_taken_against_the_same_seed_baseline_at_equal_time(self):
    runs = _runs() + [{'variant': 'static', 'seed': 2,
                       'evals': _evals((0, 0, 10.0, 0.0), (9, 9, 9.0, 0.1))}]
    gaps = {g['variant']: g for g in report.gaps_to_baseline(runs)}
    # No baseline of seed 2: static has no gap; the baseline none to itself.
    self.assertCountEqual(gaps, ['dynamic', 'random'])
    self.assertAllClose(gaps['dynamic']['minutes'],
                        [20 / 60, 2420 / 60, 3020 / 60])
    # The baseline at 2420 s: 8.0 + (2400 / 3000) * (7.0 - 8.0) = 7.2.
    self.assertAllClose(gaps['dynamic']['gaps'], [-1.0, 6.5 - 7.2, -2.0])
    accuracy = report.gaps_to_baseline(runs, key='val_mlm_accuracy')
    # The baseline at 2420 s: 0.1 + (2400 / 3000) * (0.15 - 0.1) = 0.14.
    self.assertAllClose(accuracy[0]['gaps'], [0.0, 0.15 - 0.14, 0.15])
    self.assertAllClose(gaps['random']['gaps'], [6.5 - (8.0 - 80 / 3000)])

  def test_final_gaps_are_taken_against_the_same_seed_baseline(self):
    runs = _runs() + [{'variant': 'static', 'seed': 2,
                       'evals': _evals((0, 0, 10.0, 0.0), (9, 9, 9.0, 0.1))}]
    gaps = report.final_gaps(runs)
    # Static has no seed-2 baseline; the baseline is not its own gap.
    self.assertCountEqual(gaps, ['dynamic', 'random'])
    self.assertEqual(gaps['dynamic']['seeds'], [1])
    # The last evaluations: dynamic 5.0 / 0.3, the baseline 6.0 / 0.2.
    self.assertAllClose(gaps['dynamic']['loss'], [-1.0])
    self.assertAllClose(gaps['dynamic']['accuracy'], [0.1])
    self.assertAllClose(gaps['random']['loss'], [0.5])

  def test_signed_spread_keeps_the_direction(self):
    self.assertEqual(report.signed_spread([-0.1, 0.3]),
                     '+0.100 +- 0.283 (-0.100 to +0.300)')
    self.assertEqual(report.signed_spread([-0.25]), '-0.250')

  def test_spread_counts_the_runs_that_missed(self):
    self.assertEqual(report.spread([0.8, 0.9, None]),
                     '0.850 +- 0.071 (n=2), not reached in 1')
    self.assertEqual(report.spread([None]), 'not reached')


class SummaryTest(tf.test.TestCase):

  def test_tables_and_plots(self):
    output = io.StringIO()
    plot_dir = tempfile.mkdtemp()
    with contextlib.redirect_stdout(output):
      report.summarize(_runs(), minutes=[0.5, 60], plot_dir=plot_dir)
    text = output.getvalue()
    self.assertIn('| dynamic | 1 | 1 of 1 | -1.000 | +0.100 | 0.840 (n=1) | '
                  '0.840 (n=1) | 0.993 (n=1) |', text)
    self.assertIn('| random | 1 | 0 of 1 | +0.500 | -0.100 | not reached | '
                  'not reached | not reached |', text)
    # At 30 s dynamic is 10 s into its 2400-s block from 7.0 / 0.1 to
    # 6.5 / 0.15; at 60 min it has stopped.
    self.assertIn('| dynamic | 1 | 6.998 / 0.100 | - |', text)
    # dynamic's full-length block: 600 s / 200 steps = 3000 ms against the
    # baseline's 1000 ms; its short block 400 ms against 500 ms.
    self.assertIn('| dynamic | 1 | 800.0 | 400 (400-400) | 3000 (3000-3000) '
                  '| 0.80 | 3.00 |', text)
    # No config files, no short phase: random's one block is full-length.
    self.assertIn('| random | 1 | - | - | 1000 (1000-1000) | - | 1.00 |', text)
    for name in ('val_mlm_loss_vs_time.png', 'val_mlm_accuracy_vs_time.png',
                 'val_mlm_loss_gap_vs_time.png'):
      with open(os.path.join(plot_dir, name), 'rb') as f:
        self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')

  def test_equal_time_table_reads_the_final_value_at_the_budget_minute(self):
    runs = _runs()
    runs[1]['budget_seconds'] = 3030.0  # dynamic's last point: 3020 s.
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
      report.print_equal_time(runs, minutes=[50.5, 51])
    text = output.getvalue()
    self.assertIn('| dynamic | 1 | 5.000 / 0.300 | - |', text)
    # Without a budget in the record, past the last point stays empty.
    self.assertIn('| random | 1 | - | - |', text)

  def test_each_seed_has_a_style_of_its_own(self):
    seeds = range(1, report.SEEDS_WITH_OWN_STYLE + 1)
    styles = {tuple(sorted(report.seed_style(s).items())) for s in seeds}
    self.assertLen(styles, report.SEEDS_WITH_OWN_STYLE)


if __name__ == '__main__':
  tf.test.main()
