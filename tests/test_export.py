"""Exported SavedModels: the TF Hub BERT interface, equal to the Keras model."""

import filecmp
import os

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
import yaml

from data_prep import create_finetuning_data
from official.core import task_factory
from official_td.serving import export_tfhub
from tests import pretrained
from tests import real_data
from tests import task_configs

def _export_dir():
  return pretrained.tfhub_export_dir()


def _keras_encoder():
  """BertEncoderV2 restored from the same checkpoint."""
  encoder = task_configs.plain_encoder()
  tf.train.Checkpoint(encoder=encoder).read(
      tf.train.latest_checkpoint(pretrained.model_dir())).expect_partial()
  return encoder


def _inputs(features):
  return {k: tf.constant(features[k])
          for k in ('input_word_ids', 'input_mask', 'input_type_ids')}


class ExportTest(tf.test.TestCase):

  def test_encoder_outputs_equal_the_keras_encoder(self):
    features = real_data.batch(batch_size=4)
    loaded = tf.saved_model.load(os.path.join(_export_dir(), 'encoder'))
    got = loaded(_inputs(features), training=False)
    expected = _keras_encoder()(_inputs(features), training=False)
    self.assertEqual(got['sequence_output'].shape, (4, real_data.SEQ_LENGTH,
                                                    32))
    self.assertEqual(got['pooled_output'].shape, (4, 32))
    self.assertAllClose(got['sequence_output'], expected['sequence_output'],
                        atol=1e-5)
    self.assertAllClose(got['pooled_output'], expected['pooled_output'],
                        atol=1e-5)
    self.assertLen(got['encoder_outputs'], 4)
    for a, b in zip(got['encoder_outputs'], expected['encoder_outputs']):
      self.assertAllClose(a, b, atol=1e-5)

  def test_mlm_submodel_equals_the_pretrainer(self):
    features = real_data.batch(batch_size=4)
    loaded = tf.saved_model.load(os.path.join(_export_dir(), 'encoder'))
    inputs = dict(_inputs(features),
                  masked_lm_positions=tf.constant(
                      features['masked_lm_positions']))
    got = loaded.mlm(inputs, training=False)['mlm_logits']
    task = task_factory.get_task(task_configs.tiny_experiment().task)
    model = task.build_model()
    model(inputs, training=False)
    tf.train.Checkpoint(model=model).read(
        tf.train.latest_checkpoint(pretrained.model_dir())).expect_partial()
    expected = model(inputs, training=False)['mlm_logits']
    self.assertEqual(got.shape, (4, real_data.MAX_PREDICTIONS,
                                 real_data.vocab().size))
    self.assertAllClose(got, expected, atol=1e-4)

  def test_vocabulary_is_an_asset(self):
    asset = os.path.join(_export_dir(), 'encoder', 'assets', 'vocab.txt')
    self.assertTrue(filecmp.cmp(asset, real_data.VOCAB, shallow=False))

  def test_raw_text_through_preprocessing_equals_python_tokenization(self):
    sentences = ['The act of making something more beautiful.',
                 'Python uses the usual flow control statements known from '
                 'other languages, with some twists.']
    preprocess = hub.KerasLayer(os.path.join(_export_dir(), 'preprocessing'))
    encoder = hub.KerasLayer(os.path.join(_export_dir(), 'encoder'))
    packed = preprocess(tf.constant(sentences))
    python_packed = create_finetuning_data.Encoder(
        real_data.vocab(), real_data.SEQ_LENGTH)(sentences)
    for key in ('input_word_ids', 'input_mask', 'input_type_ids'):
      self.assertAllEqual(packed[key][:, :real_data.SEQ_LENGTH],
                          python_packed[key])
    trimmed = {k: v[:, :real_data.SEQ_LENGTH] for k, v in packed.items()}
    self.assertAllClose(encoder(trimmed)['pooled_output'],
                        encoder(python_packed)['pooled_output'])

  def test_config_that_does_not_match_the_checkpoint_fails(self):
    directory = self.create_tempdir().full_path
    for name in os.listdir(pretrained.model_dir()):
      tf.io.gfile.copy(os.path.join(pretrained.model_dir(), name),
                       os.path.join(directory, name))
    params_path = os.path.join(directory, 'params.yaml')
    with open(params_path) as f:
      params = yaml.safe_load(f)
    params['task']['model']['encoder']['bert']['num_layers'] = 6
    with open(params_path, 'w') as f:
      yaml.safe_dump(params, f)
    with self.assertRaisesRegex(ValueError,
                                r'has num_layers=4 \(config: 6\)'):
      export_tfhub.export(directory, self.create_tempdir().full_path)

  def test_pooler_note_names_where_the_pooler_weights_come_from(self):
    config = export_tfhub.read_experiment_config(pretrained.model_dir())
    self.assertIn('random initial weights', export_tfhub.pooler_note(config))
    config.task.init_checkpoint = '/ckpts/bert-base/bert_model.ckpt'
    note = export_tfhub.pooler_note(config)
    self.assertIn('task.init_checkpoint (/ckpts/bert-base/bert_model.ckpt)',
                  note)
    self.assertNotIn('random', note)

  def test_vocabulary_of_another_size_fails(self):
    vocab = os.path.join(self.create_tempdir().full_path, 'vocab.txt')
    with open(real_data.VOCAB) as f:
      tokens = f.read().splitlines()
    with open(vocab, 'w') as f:
      f.write('\n'.join(tokens[:-9]) + '\n')
    with self.assertRaisesRegex(
        ValueError, f'has {len(tokens) - 9} ids but the checkpoint .* has '
        f'{len(tokens)}'):
      export_tfhub.export(pretrained.model_dir(),
                          self.create_tempdir().full_path, vocab_file=vocab)


if __name__ == '__main__':
  tf.test.main()
