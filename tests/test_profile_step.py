"""The step profiler attributes op time to the parts of the step."""

import tensorflow as tf

from official_td.benchmarks import profile_step
from tests import real_data

_DROPPING_PARTS = ('token dropping: importance lookup and update',
                   'token dropping: top-k selection, gathers, merge')


class PartOfTest(tf.test.TestCase):

  def test_names_from_a_real_profile(self):
    self.assertEqual(
        profile_step.part_of('gradient_tape/bert/token_drop_encoder_1/'
                             'transformer/layer_3/self_attention/einsum'),
        'Transformer layers')
    self.assertEqual(
        profile_step.part_of('bert/token_drop_encoder_1/kept_tokens/TopKV2'),
        _DROPPING_PARTS[1])
    self.assertEqual(
        profile_step.part_of('token_importance_update/UnsortedSegmentSum'),
        _DROPPING_PARTS[0])
    self.assertEqual(profile_step.part_of('AddN_3'),
                     'other (gradient sums, metrics)')


class ProfileTest(tf.test.TestCase):

  def test_dropping_ops_show_only_in_the_dropping_variant(self):
    by_part = {}
    for variant in ('baseline', 'dynamic'):
      _, by_part[variant] = profile_step.profile(
          variant, 'L4_H32_A2_I64', real_data.tfrecord_dir(), batch_size=4,
          num_steps=2)
    for part in _DROPPING_PARTS:
      self.assertGreater(by_part['dynamic'].get(part, 0.0), 0.0)
      self.assertEqual(by_part['baseline'].get(part, 0.0), 0.0)
    self.assertGreater(by_part['baseline']['Transformer layers'], 0.0)


if __name__ == '__main__':
  tf.test.main()
