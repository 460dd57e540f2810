"""Tests for pooling and comparing downstream-suite results."""

import json
import os

import tensorflow as tf

from official_td.benchmarks import compare_finetune


def _write_results(result_dir, seeds, per_seed):
  """A results.json laid out as `finetune_suite.run_suite` writes it."""
  os.makedirs(result_dir)
  with open(os.path.join(result_dir, 'results.json'), 'w') as f:
    json.dump({'pretrained': 'ckpt', 'seeds': seeds, 'accuracy': {},
               'per_seed': per_seed}, f)
  return result_dir


def _score(dev, test):
  return {'dev': dev, 'test': test}


class CompareFinetuneTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    root = self.get_temp_dir()
    self.base_dirs = [
        _write_results(os.path.join(root, 'base1'), [1],
                       {'a': [_score(0.60, 0.50)], 'b': [_score(0.70, 0.80)]}),
        _write_results(os.path.join(root, 'base2'), [2],
                       {'a': [_score(0.64, 0.54)], 'b': [_score(0.72, 0.78)]})]
    self.cand_dir = _write_results(
        os.path.join(root, 'cand'), [1, 2],
        {'a': [_score(0.61, 0.52), _score(0.63, 0.50)],
         'b': [_score(0.69, 0.80), _score(0.75, 0.76)]})

  def test_pools_seeds_across_runs(self):
    pooled = compare_finetune.pool(self.base_dirs)
    self.assertEqual(sorted(pooled['a']), [1, 2])
    self.assertAllClose(pooled['b'][2]['test'], 0.78)

  def test_means_and_differences_in_points(self):
    rows = compare_finetune.compare(compare_finetune.pool(self.base_dirs),
                                    compare_finetune.pool([self.cand_dir]))
    self.assertAllClose(rows['a']['dev'], [62.0, 62.0, 0.0])
    self.assertAllClose(rows['a']['test'], [52.0, 51.0, -1.0])
    # average of the task means: baseline (71 + 79) / 2, candidate (72 + 78) / 2
    self.assertAllClose(rows['average']['dev'], [66.5, 67.0, 0.5])
    self.assertAllClose(rows['average']['test'], [65.5, 64.5, -1.0])

  def test_paired_difference_per_seed(self):
    diffs = compare_finetune.paired_average_differences(
        compare_finetune.pool(self.base_dirs),
        compare_finetune.pool([self.cand_dir]))
    # seed 1: (0.61 + 0.69 - 0.60 - 0.70) / 2 -> 0.0 dev;
    # seed 2: (0.63 + 0.75 - 0.64 - 0.72) / 2 -> +1.0 dev
    self.assertAllClose(diffs[1], [0.0, 1.0])
    self.assertAllClose(diffs[2], [1.0, -3.0])
    table = compare_finetune.format_table(
        compare_finetune.pool(self.base_dirs),
        compare_finetune.pool([self.cand_dir]), names=('base', 'cand'))
    self.assertIn('| average | 66.5 / 65.5 | 67.0 / 64.5 | +0.5 / -1.0 |',
                  table)
    self.assertIn('| average, seed 2 only | | | +1.0 / -3.0 |', table)

  def test_a_seed_listed_twice_is_refused(self):
    with self.assertRaisesRegex(ValueError, 'Seed 1 of a appears twice'):
      compare_finetune.pool([self.base_dirs[0], self.base_dirs[0]])

  def test_an_unfinished_run_is_named(self):
    missing = os.path.join(self.get_temp_dir(), 'unfinished')
    with self.assertRaisesRegex(FileNotFoundError, 'unfinished.*finished'):
      compare_finetune.pool([missing])

  def test_different_tasks_are_refused(self):
    other = _write_results(os.path.join(self.get_temp_dir(), 'other'), [3],
                           {'a': [_score(0.5, 0.5)]})
    with self.assertRaisesRegex(ValueError, 'same suite'):
      compare_finetune.pool([self.base_dirs[0], other])

  def test_mean_and_spread_over_seeds(self):
    stats = compare_finetune.mean_and_spread(
        compare_finetune.pool([self.cand_dir]))
    self.assertAllClose(stats['a']['dev'], [62.0, 1.4142136])
    # Average per seed: seed 1 (0.61+0.69)/2 = 0.65, seed 2 0.69.
    self.assertAllClose(stats['average']['dev'], [67.0, 2.8284271])
    table = compare_finetune.spread_table(compare_finetune.parse_models(
        [f'base={self.base_dirs[0]}+{self.base_dirs[1]}',
         f'cand={self.cand_dir}']))
    # Baseline averages: dev 0.65, 0.68; test 0.65, 0.66.
    self.assertIn('| average | 66.5 +- 2.1 / 65.5 +- 0.7 | '
                  '67.0 +- 2.8 / 64.5 +- 2.1 |', table)

  def test_new_models_are_added_to_an_earlier_pooled_json(self):
    path = os.path.join(self.get_temp_dir(), 'pooled.json')
    with open(path, 'w') as f:
      json.dump({'base': {task: {str(seed): score
                                 for seed, score in by_seed.items()}
                          for task, by_seed in
                          compare_finetune.pool(self.base_dirs).items()}}, f)
    earlier = compare_finetune.read_pooled(path)
    self.assertEqual(sorted(earlier['base']['a']), [1, 2])
    models = compare_finetune.add_models(
        earlier, compare_finetune.parse_models([f'cand={self.cand_dir}']))
    self.assertEqual(list(models), ['base', 'cand'])
    self.assertIn('| average | 66.5 +- 2.1 / 65.5 +- 0.7 | '
                  '67.0 +- 2.8 / 64.5 +- 2.1 |',
                  compare_finetune.spread_table(models))

  def test_a_name_already_pooled_is_refused(self):
    earlier = compare_finetune.parse_models([f'cand={self.cand_dir}'])
    with self.assertRaisesRegex(ValueError, "'cand' is already.*another name"):
      compare_finetune.add_models(earlier, earlier)
    other = _write_results(os.path.join(self.get_temp_dir(), 'other'), [3],
                           {'a': [_score(0.5, 0.5)]})
    with self.assertRaisesRegex(ValueError, 'same suite'):
      compare_finetune.add_models(
          earlier, compare_finetune.parse_models([f'other={other}']))

  def test_extend_adds_seeds_to_a_pooled_model(self):
    earlier = compare_finetune.parse_models([f'base={self.base_dirs[0]}'])
    more = compare_finetune.parse_models([f'base={self.base_dirs[1]}'])
    models = compare_finetune.add_models(earlier, more, extend=True)
    self.assertEqual(sorted(models['base']['a']), [1, 2])
    self.assertEqual(sorted(earlier['base']['a']), [1])  # not modified
    self.assertEqual(models, compare_finetune.parse_models(
        [f'base={self.base_dirs[0]}+{self.base_dirs[1]}']))

  def test_extend_refuses_a_seed_already_pooled(self):
    earlier = compare_finetune.parse_models([f'cand={self.cand_dir}'])
    again = compare_finetune.parse_models([f'cand={self.base_dirs[1]}'])
    with self.assertRaisesRegex(ValueError, r"Seeds \[2\] of a are already "
                                "pooled for 'cand'"):
      compare_finetune.add_models(earlier, again, extend=True)


if __name__ == '__main__':
  tf.test.main()
