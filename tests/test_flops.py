"""The FLOP model of a training step."""

from absl.testing import parameterized
import tensorflow as tf

from official_td.benchmarks import bench_configs
from official_td.benchmarks import flops
from official_td.benchmarks import step_time

_L12_H256 = flops.ModelSize(num_layers=12, hidden_size=256,
                            intermediate_size=1024, vocab_size=8009,
                            seq_length=128, max_predictions_per_seq=20)


class FlopsTest(tf.test.TestCase, parameterized.TestCase):

  def test_layer_flops_by_hand(self):
    # H=2, I=3, 4 queries over 5 keys: 2*4*(8+10) + 4*4*5*2 + 4*4*2*3.
    self.assertEqual(flops.layer_flops(4, 5, 2, 3), 144 + 160 + 96)

  def test_split_by_hand(self):
    size = flops.ModelSize(num_layers=4, hidden_size=2, intermediate_size=3,
                           vocab_size=10, seq_length=8,
                           max_predictions_per_seq=1)
    full, boundary, kept = (flops.layer_flops(8, 8, 2, 3),
                            flops.layer_flops(4, 8, 2, 3),
                            flops.layer_flops(4, 4, 2, 3))
    mlm = 2 * 4 + 2 * 2 * 10
    embeddings = 9 * 2 * 8  # 9 H per token, all 8 tokens
    step = flops.training_step_flops(size, batch_size=5, keep_ratio=0.5)
    self.assertEqual(step['encoder'], 3 * 5 * (2 * full + boundary + kept))
    self.assertEqual(step['embeddings'], 3 * 5 * embeddings)
    self.assertEqual(step['total'],
                     3 * 5 * (2 * full + boundary + kept + mlm + embeddings))

  def test_keep_all_costs_as_much_as_the_baseline(self):
    self.assertAlmostEqual(flops.theoretical_ratio(_L12_H256, 1.0), 1.0)

  def test_l12_h256_ratio(self):
    ratio = flops.theoretical_ratio(_L12_H256, 0.5)
    self.assertBetween(ratio, 0.70, 0.80)
    self.assertLess(flops.theoretical_ratio(_L12_H256, 0.25), ratio)

  @parameterized.parameters(('L12_H256', 12, 256, 4, 1024),
                            ('bert_base', 12, 768, 12, 3072),
                            ('L6_H512', 6, 512, 8, 2048),
                            ('L2_H64_A1_I100', 2, 64, 1, 100))
  def test_model_sizes(self, name, layers, hidden, heads, inner):
    self.assertEqual(bench_configs.model_size(name), dict(
        num_layers=layers, hidden_size=hidden, num_attention_heads=heads,
        intermediate_size=inner))



class PairedRatioTest(tf.test.TestCase):

  def test_quartiles_of_round_ratios(self):
    # Round ratios 1, 2, 3, 4 whatever the drift of the absolute times.
    low, mid, high = step_time.paired_ratio([2, 8, 18, 32], [2, 4, 6, 8])
    self.assertAllClose([low, mid, high], [1.25, 2.5, 3.75])


class StepTimeBenchmarkSmokeTest(tf.test.TestCase, parameterized.TestCase):
  """The benchmark script runs end to end (it times nothing here)."""

  @parameterized.named_parameters(
      ('bare_step', False, list(bench_configs.VARIANTS)),
      ('through_trainer', True, ['baseline', 'dynamic']),
      ('bfloat16', False, ['baseline', 'dynamic'], 'bfloat16'),
      ('float16', False, ['baseline', 'dynamic'], 'float16'))
  def test_runs_every_variant_on_real_batches(self, through_trainer,
                                              variant_names,
                                              precision='float32'):
    import collections  # pylint: disable=g-import-not-at-top
    import contextlib  # pylint: disable=g-import-not-at-top
    import io  # pylint: disable=g-import-not-at-top
    from tests import real_data  # pylint: disable=g-import-not-at-top
    options = collections.namedtuple('Options', [
        'data_dir', 'batch_size', 'sctd_every', 'variants', 'num_batches',
        'jit_compile', 'warmup', 'steps', 'block', 'through_trainer'])(
            real_data.tfrecord_dir(), 4, 2, variant_names, 2,
            False, 1, 5, 2, through_trainer)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
      variants = step_time.run_model('L2_H32_A2_I64', options, precision)
    self.assertEqual([v.name for v in variants], list(options.variants))
    for variant in variants:
      self.assertLen(variant.times_ms, 5)  # 3 rounds of 2, 2 and 1
      if through_trainer:  # warm-up 1 + timed 5 steps, all in the trainer
        self.assertEqual(int(variant.trainer.global_step.numpy()), 6)
    table = printed.getvalue()
    self.assertIn(f'L2_H32_A2_I64 {{', table)
    self.assertRegex(table, rf'\}}, {precision}, seq_length')
    for name in options.variants:
      self.assertRegex(table, rf'\| {name} \| [\d.]+ \| [\d,]+ \|')
    self.assertRegex(table, r'\| dynamic \|.*\| [\d.]+ \[[\d.]+, [\d.]+\] \|')
    self.assertIn('theoretical', table)
    if 'sctd' in variant_names:
      self.assertIn('ScTD:', table)


if __name__ == '__main__':
  tf.test.main()
