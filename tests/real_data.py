"""Real pretraining data for tests, made once per process from the embedded corpus.

The corpus (`data_prep/default/corpus.txt.gz`) is real English text: Python
documentation prose and WordNet glosses. A slice of its documents is turned
into TFRecords with the project's own `create_pretraining_data`.
"""

import functools
import os
import tempfile

import numpy as np
import tensorflow as tf

from data_prep import build_corpus
from data_prep import create_pretraining_data as cpd
from official.nlp.data import pretrain_dataloader
from official_td.data import vocabulary

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(REPO, 'data_prep', 'default', 'corpus.txt.gz')
VOCAB = os.path.join(REPO, 'data_prep', 'default', 'vocab.txt')
SEQ_LENGTH = 32
MAX_PREDICTIONS = 5


@functools.lru_cache(maxsize=None)
def vocab() -> vocabulary.Vocabulary:
  return vocabulary.Vocabulary(VOCAB)


@functools.lru_cache(maxsize=None)
def corpus_slice(num_documents: int = 60) -> str:
  """A corpus file of the first documents of the embedded corpus."""
  path = os.path.join(tempfile.mkdtemp(prefix='td_corpus_'), 'corpus.txt')
  documents = []
  for document in build_corpus.read_corpus(CORPUS):
    documents.append(document)
    if len(documents) == num_documents:
      break
  build_corpus.write_corpus(documents, path)
  return path


@functools.lru_cache(maxsize=None)
def tfrecord_dir(vocab_file: str = VOCAB) -> str:
  """TFRecords (seq_length 32, 5 predictions) of real text; made once."""
  output_dir = tempfile.mkdtemp(prefix='td_data_')
  cpd.create_pretraining_data(
      corpus_slice(), vocab_file, output_dir,
      cpd.MaskingConfig(seq_length=SEQ_LENGTH,
                        max_predictions_per_seq=MAX_PREDICTIONS),
      num_shards=2, validation_every=10)
  return output_dir


SHORT_SEQ_LENGTH = 16
SHORT_MAX_PREDICTIONS = 3


@functools.lru_cache(maxsize=None)
def short_tfrecord_dir() -> str:
  """TFRecords of the same text at seq_length 16 (3 predictions)."""
  output_dir = tempfile.mkdtemp(prefix='td_short_data_')
  cpd.create_pretraining_data(
      corpus_slice(), VOCAB, output_dir,
      cpd.MaskingConfig(seq_length=SHORT_SEQ_LENGTH,
                        max_predictions_per_seq=SHORT_MAX_PREDICTIONS),
      num_shards=2, validation_every=10)
  return output_dir


def data_config(split: str = 'train', batch_size: int = 8,
                is_training: bool = True, vocab_file: str = VOCAB):
  return pretrain_dataloader.BertPretrainDataConfig(
      input_path=os.path.join(tfrecord_dir(vocab_file), f'{split}-*.tfrecord'),
      global_batch_size=batch_size, is_training=is_training,
      seq_length=SEQ_LENGTH, max_predictions_per_seq=MAX_PREDICTIONS,
      use_next_sentence_label=False, seed=1, deterministic=True)


def short_data_config(batch_size: int = 16):
  """Training data config of `short_tfrecord_dir()`."""
  return pretrain_dataloader.BertPretrainDataConfig(
      input_path=os.path.join(short_tfrecord_dir(), 'train-*.tfrecord'),
      global_batch_size=batch_size, is_training=True,
      seq_length=SHORT_SEQ_LENGTH,
      max_predictions_per_seq=SHORT_MAX_PREDICTIONS,
      use_next_sentence_label=False, seed=1, deterministic=True)


def batch(batch_size: int = 8, index: int = 0):
  """One batch of real pretraining features, as NumPy arrays."""
  dataset = pretrain_dataloader.BertPretrainDataLoader(
      data_config(batch_size=batch_size, is_training=False)).load()
  for i, features in enumerate(dataset):
    if i == index:
      return {k: v.numpy() for k, v in features.items()}
  raise ValueError(f'Only {i + 1} batches.')


def importance_like(word_ids: np.ndarray, seed: int = 0) -> tf.Tensor:
  """Distinct random scores `[batch, seq_len]` float32 for real word ids."""
  rng = np.random.default_rng(seed)
  return tf.constant(rng.permutation(word_ids.size).reshape(word_ids.shape),
                     tf.float32)


@functools.lru_cache(maxsize=None)
def sentences(count: int = 8) -> tuple:
  """The first lines of the embedded corpus' first documents (real text)."""
  found = []
  for document in build_corpus.read_corpus(CORPUS):
    found.append(document[0])
    if len(found) == count:
      return tuple(found)
  return tuple(found)
