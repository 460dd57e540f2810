"""Tests of TokenDropEncoder on real token ids, against BertEncoderV2."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from official.nlp.configs import encoders
from official.nlp.modeling import networks
from official_td.modeling import token_drop_encoder as tde
from tests import real_data


def _encoder_kwargs(num_layers=4, dropout=0.0):
  return dict(vocab_size=real_data.vocab().size, hidden_size=16,
              num_layers=num_layers, num_attention_heads=2, inner_dim=32,
              max_sequence_length=real_data.SEQ_LENGTH,
              output_dropout=dropout, attention_dropout=dropout)


def _inputs(features):
  return {k: features[k]
          for k in ('input_word_ids', 'input_mask', 'input_type_ids')}


def _dropping(encoder, features, scores):
  """Inputs that make `encoder` drop tokens by `scores`."""
  return dict(_inputs(features),
              kept_positions=encoder.select_kept_positions(scores))


def _twins(keep_ratio=0.5, **kwargs):
  """A TokenDropEncoder and a BertEncoderV2 with the same weights."""
  features = real_data.batch()
  encoder = tde.TokenDropEncoder(keep_ratio=keep_ratio,
                                 **_encoder_kwargs(**kwargs))
  reference = networks.BertEncoderV2(**_encoder_kwargs(**kwargs))
  encoder(_inputs(features))
  reference(_inputs(features))
  reference.set_weights(encoder.get_weights())
  return encoder, reference, features


class TokenDropEncoderTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(2, 4, 6)
  def test_outputs_are_full_length(self, num_layers):
    encoder, _, features = _twins(num_layers=num_layers)
    outputs = encoder(_dropping(encoder, features, real_data.importance_like(
        features['input_word_ids'])), training=True)
    batch, seq_length = features['input_word_ids'].shape
    self.assertEqual(outputs['sequence_output'].shape, (batch, seq_length, 16))
    self.assertEqual(outputs['pooled_output'].shape, (batch, 16))
    self.assertLen(outputs['encoder_outputs'], num_layers)
    for layer_output in outputs['encoder_outputs']:
      self.assertEqual(layer_output.shape, (batch, seq_length, 16))
    self.assertEqual(outputs[tde.KEPT_POSITIONS_KEY].shape,
                     (batch, seq_length // 2))

  def test_kept_positions_are_the_top_k_by_score(self):
    encoder, _, features = _twins(keep_ratio=0.25)
    scores = real_data.importance_like(features['input_word_ids'], seed=3)
    outputs = encoder(_dropping(encoder, features, scores),
                      training=True)
    k = tde.num_kept_tokens(real_data.SEQ_LENGTH, 0.25)
    expected = np.sort(np.argsort(-scores.numpy(), axis=1)[:, :k], axis=1)
    self.assertAllEqual(outputs[tde.KEPT_POSITIONS_KEY], expected)

  def test_dropped_tokens_skip_the_middle_layers(self):
    encoder, _, features = _twins(num_layers=6)
    scores = real_data.importance_like(features['input_word_ids'], seed=4)
    outputs = encoder(_dropping(encoder, features, scores),
                      training=True)
    start, end = encoder.layer_split
    self.assertEqual((start, end), (2, 4))
    kept = outputs[tde.KEPT_POSITIONS_KEY].numpy()
    layer_outputs = [o.numpy() for o in outputs['encoder_outputs']]
    for row in range(kept.shape[0]):
      dropped = np.setdiff1d(np.arange(real_data.SEQ_LENGTH), kept[row])
      before = layer_outputs[start - 1][row, dropped]
      for layer in range(start, end + 1):  # unchanged through the middle
        self.assertAllEqual(layer_outputs[layer][row, dropped], before)
      # ...and processed again by the last layer.
      self.assertNotAllClose(layer_outputs[-1][row, dropped], before)
      kept_before = layer_outputs[start - 1][row, kept[row]]
      self.assertNotAllClose(layer_outputs[start][row, kept[row]],
                             kept_before)

  def test_keep_ratio_one_equals_bert_encoder_v2(self):
    encoder, reference, features = _twins(keep_ratio=1.0)
    scores = real_data.importance_like(features['input_word_ids'])
    outputs = encoder(_dropping(encoder, features, scores),
                      training=True)
    self.assertIn(tde.KEPT_POSITIONS_KEY, outputs)  # the dropping path ran
    expected = reference(_inputs(features), training=True)
    self.assertAllClose(outputs['sequence_output'], expected['sequence_output'],
                        atol=1e-5)
    self.assertAllClose(outputs['pooled_output'], expected['pooled_output'],
                        atol=1e-5)

  @parameterized.parameters(0.0, 0.1)
  def test_not_training_is_the_full_encoder(self, dropout):
    encoder, reference, features = _twins(keep_ratio=0.5, dropout=dropout)
    scores = real_data.importance_like(features['input_word_ids'])
    outputs = encoder(_dropping(encoder, features, scores),
                      training=False)
    self.assertNotIn(tde.KEPT_POSITIONS_KEY, outputs)
    expected = reference(_inputs(features), training=False)
    self.assertAllClose(outputs['sequence_output'],
                        expected['sequence_output'])
    for got, want in zip(outputs['encoder_outputs'],
                         expected['encoder_outputs']):
      self.assertAllClose(got, want)

  def test_dropping_changes_the_output(self):
    encoder, reference, features = _twins(keep_ratio=0.5)
    scores = real_data.importance_like(features['input_word_ids'])
    outputs = encoder(_dropping(encoder, features, scores),
                      training=True)
    expected = reference(_inputs(features), training=True)
    self.assertNotAllClose(outputs['sequence_output'],
                           expected['sequence_output'])

  def test_checkpoint_restores_into_bert_encoder_v2(self):
    encoder, _, features = _twins()
    path = tf.train.Checkpoint(encoder=encoder).write(
        self.create_tempdir().full_path + '/ckpt')
    restored = networks.BertEncoderV2(**_encoder_kwargs())
    status = tf.train.Checkpoint(encoder=restored).read(path)
    restored(_inputs(features))
    status.assert_consumed()  # every saved variable found its place, and back
    self.assertAllClose(restored(_inputs(features))['sequence_output'],
                        encoder(_inputs(features))['sequence_output'])

  def test_gradients_reach_every_layer(self):
    encoder, _, features = _twins(num_layers=4)
    scores = real_data.importance_like(features['input_word_ids'])
    with tf.GradientTape() as tape:
      outputs = encoder(_dropping(encoder, features, scores),
                        training=True)
      loss = (tf.reduce_sum(outputs['sequence_output'] ** 2)
              + tf.reduce_sum(outputs['pooled_output']))
    grads = tape.gradient(loss, encoder.trainable_variables)
    for variable, grad in zip(encoder.trainable_variables, grads):
      self.assertIsNotNone(grad, variable.name)
      self.assertGreater(float(tf.reduce_max(tf.abs(grad))), 0.0,
                         variable.name)

  @parameterized.named_parameters(
      ('keep_zero', dict(keep_ratio=0.0), 'keep_ratio'),
      ('keep_above_one', dict(keep_ratio=1.5), 'keep_ratio'),
      ('one_layer', dict(num_layers=1), 'at least 2'),
      ('start_after_end', dict(drop_start_layer=2, drop_end_layer=1),
       'layer split'),
      ('end_is_last', dict(drop_end_layer=3), 'layer split'))
  def test_rejects_impossible_settings(self, overrides, message):
    kwargs = _encoder_kwargs(num_layers=overrides.pop('num_layers', 4))
    with self.assertRaisesRegex(ValueError, message):
      tde.TokenDropEncoder(**overrides, **kwargs)

  def test_built_from_every_field_as_build_encoder_builds(self):
    # Every BertEncoderConfig field off its default: the token-dropping
    # encoder must be configured as the Model Garden's own builder makes it.
    bert = encoders.BertEncoderConfig(
        vocab_size=100, hidden_size=16, num_layers=2, num_attention_heads=2,
        intermediate_size=24, hidden_activation='relu', dropout_rate=0.2,
        attention_dropout_rate=0.3, max_position_embeddings=64,
        type_vocab_size=3, initializer_range=0.05, embedding_size=8,
        output_range=1, return_all_encoder_outputs=True, norm_first=True)
    expected = encoders.build_encoder(
        encoders.EncoderConfig(type='bert', bert=bert)).get_config()
    got = tde.TokenDropEncoder(**tde.encoder_kwargs(bert)).get_config()
    expected.pop('dict_outputs')  # BertEncoderV2 always returns a dict
    self.assertNotEmpty(expected)
    for key, value in expected.items():
      self.assertEqual(str(got[key]).replace('DictWrapper(', '').replace(
          ')', ''), str(value).replace(')', ''), key)

  @parameterized.parameters('return_attention_scores',
                            'return_word_embeddings')
  def test_unsupported_options_are_refused(self, option):
    bert = encoders.BertEncoderConfig(vocab_size=100, num_layers=2,
                                      **{option: True})
    with self.assertRaisesRegex(ValueError, option):
      tde.TokenDropEncoder(**tde.encoder_kwargs(bert))

  @parameterized.parameters((128, 0.5, 64), (512, 0.5, 256), (33, 0.5, 17),
                            (10, 0.01, 1), (10, 1.0, 10))
  def test_num_kept_tokens(self, seq_length, keep_ratio, expected):
    self.assertEqual(tde.num_kept_tokens(seq_length, keep_ratio), expected)


if __name__ == '__main__':
  tf.test.main()
