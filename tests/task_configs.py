"""Tiny task and experiment configs over the real test TFRecords."""

import os

from official.core import exp_factory
from official.nlp.modeling import networks
from official_td import registry_imports  # pylint: disable=unused-import
from official_td.data import token_frequencies
from tests import real_data


def tiny_experiment(experiment: str = 'bert/token_drop', num_layers: int = 4,
                    batch_size: int = 8):
  """The registered experiment, shrunk to a tiny model on the test data."""
  config = exp_factory.get_exp_config(experiment)
  config.override({
      'task': {
          'model': {'encoder': {'bert': {
              'hidden_size': 32, 'num_layers': num_layers,
              'num_attention_heads': 2, 'intermediate_size': 64,
              'max_position_embeddings': real_data.SEQ_LENGTH,
              'dropout_rate': 0.0, 'attention_dropout_rate': 0.0}}},
          'token_drop': {
              'vocab_file': real_data.VOCAB,
              'frequency_file': os.path.join(real_data.tfrecord_dir(),
                                             token_frequencies.FILENAME)},
          'train_data': real_data.data_config('train', batch_size).as_dict(),
          'validation_data': real_data.data_config(
              'valid', batch_size, is_training=False).as_dict(),
      },
  }, is_strict=True)
  return config


def plain_encoder(config=None) -> networks.BertEncoderV2:
  """A Model Garden BertEncoderV2 of the (tiny) experiment's size."""
  bert = (config or tiny_experiment()).task.model.encoder.bert
  return networks.BertEncoderV2(
      vocab_size=bert.vocab_size, hidden_size=bert.hidden_size,
      num_layers=bert.num_layers,
      num_attention_heads=bert.num_attention_heads,
      inner_dim=bert.intermediate_size,
      max_sequence_length=bert.max_position_embeddings,
      type_vocab_size=bert.type_vocab_size)
