"""Bad configs and inputs fail when the task is built, before any training."""

import json
import os
import shutil

from absl.testing import parameterized
import tensorflow as tf

from official.core import task_factory
from tests import real_data
from tests import task_configs


class InputChecksTest(tf.test.TestCase, parameterized.TestCase):

  def _fails(self, overrides, error, message, num_layers=4):
    config = task_configs.tiny_experiment(num_layers=num_layers)
    config.override({'task': overrides}, is_strict=True)
    with self.assertRaisesRegex(error, message):
      task_factory.get_task(config.task)

  @parameterized.parameters('return_attention_scores',
                            'return_word_embeddings')
  def test_unsupported_encoder_options_are_named(self, option):
    self._fails({'model': {'encoder': {'bert': {option: True}}}}, ValueError,
                f'task.model.encoder.bert.{option}=true is not supported')

  def test_sctd_normalization_must_be_known(self):
    self._fails({'sctd': {'enabled': True, 'kl_normalization': 'tokens'}},
                ValueError, "task.sctd.kl_normalization='tokens'")

  def test_tiny_config_is_accepted(self):
    config = task_configs.tiny_experiment()
    self.assertIsNotNone(task_factory.get_task(config.task))

  def test_missing_input_files(self):
    missing = os.path.join(self.create_tempdir().full_path, 'train-*')
    self._fails({'train_data': {'input_path': missing}}, FileNotFoundError,
                'task.train_data.input_path=.*train-\\*.* matches no file')

  def test_empty_input_file(self):
    directory = self.create_tempdir().full_path
    empty = os.path.join(directory, 'train-00000-of-00001.tfrecord')
    open(empty, 'w').close()
    self._fails({'train_data': {'input_path': empty}}, ValueError,
                f'Input file .*{os.path.basename(empty)}.* is empty')

  def test_corrupt_input_file(self):
    directory = self.create_tempdir().full_path
    corrupt = os.path.join(directory, 'train-00000-of-00001.tfrecord')
    with open(corrupt, 'w') as f:
      f.write('this is a text file, not a TFRecord file\n' * 10)
    self._fails({'train_data': {'input_path': corrupt}}, ValueError,
                f'{os.path.basename(corrupt)}.* is not a readable TFRecord')

  def test_input_file_of_other_examples(self):
    directory = self.create_tempdir().full_path
    other = os.path.join(directory, 'train-00000-of-00001.tfrecord')
    with tf.io.TFRecordWriter(other) as writer:
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          'label_ids': tf.train.Feature(
              int64_list=tf.train.Int64List(value=[1]))})).SerializeToString())
    self._fails({'train_data': {'input_path': other}}, ValueError,
                "holds no pretraining examples \\(features: \\['label_ids'\\]")

  def test_vocab_size_differs_from_the_config(self):
    self._fails({'model': {'encoder': {'bert': {'vocab_size': 30522}}}},
                ValueError,
                f'has {real_data.vocab().size} ids but '
                'task.model.encoder.bert.vocab_size is 30522')

  def test_missing_vocab_file(self):
    self._fails({'token_drop': {'vocab_file': '/nonexistent/vocab.txt'}},
                FileNotFoundError, "'/nonexistent/vocab.txt' does not exist")

  def test_data_made_with_another_vocabulary(self):
    directory = self.create_tempdir().full_path
    for name in os.listdir(real_data.tfrecord_dir()):
      shutil.copy(os.path.join(real_data.tfrecord_dir(), name), directory)
    metadata_path = os.path.join(directory, 'metadata.json')
    with open(metadata_path) as f:
      metadata = json.load(f)
    metadata['vocab_sha256'] = '0' * 64
    metadata['vocab_file'] = 'other/vocab.txt'
    with open(metadata_path, 'w') as f:
      json.dump(metadata, f)
    self._fails({'train_data': {'input_path': f'{directory}/train-*'}},
                ValueError, "tokenized with 'other/vocab.txt'")

  @parameterized.parameters(0.0, -0.5, 1.01)
  def test_keep_ratio_outside_unit_interval(self, keep_ratio):
    self._fails({'token_drop': {'keep_ratio': keep_ratio}}, ValueError,
                f'keep_ratio must be in \\(0, 1\\], got {keep_ratio}')

  def test_too_few_layers_to_drop(self):
    self._fails({}, ValueError, 'at least 2 Transformer layers', num_layers=1)

  def test_layer_split_past_the_last_layer(self):
    self._fails({'token_drop': {'drop_end_layer': 3}}, ValueError,
                'drop_end_layer=3')

  def test_sequence_length_above_max_position_embeddings(self):
    self._fails({'model': {'encoder': {'bert': {
        'max_position_embeddings': real_data.SEQ_LENGTH // 2}}}},
                ValueError, 'seq_length=32 is above .*'
                'max_position_embeddings=16')

  def test_data_seq_length_differs_from_config(self):
    self._fails({'train_data': {'seq_length': 64},
                 'model': {'encoder': {'bert': {
                     'max_position_embeddings': 64}}}},
                ValueError, 'sequences of 32 tokens but '
                'task.train_data.seq_length is 64')

  def test_unknown_strategy(self):
    self._fails({'strategy': 'loss'}, ValueError, "task.strategy='loss'")


if __name__ == '__main__':
  tf.test.main()
