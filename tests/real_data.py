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


SHORT_SEQ_LENGTH = 16
SHORT_MAX_PREDICTIONS = 3


def tfrecord_dir(vocab_file: str = VOCAB, seq_length: int = SEQ_LENGTH,
                 max_predictions: int = MAX_PREDICTIONS) -> str:
  """TFRecords (default: seq_length 32, 5 predictions) of real text; made once."""
  # One cache key per setting, however the arguments are spelled.
  return _make_tfrecords(vocab_file, seq_length, max_predictions)


@functools.lru_cache(maxsize=None)
def _make_tfrecords(vocab_file: str, seq_length: int,
                    max_predictions: int) -> str:
  output_dir = tempfile.mkdtemp(prefix='td_data_')
  cpd.create_pretraining_data(
      corpus_slice(), vocab_file, output_dir,
      cpd.MaskingConfig(seq_length=seq_length,
                        max_predictions_per_seq=max_predictions),
      num_shards=2, validation_every=10)
  return output_dir


def data_config(split: str = 'train', batch_size: int = 8,
                is_training: bool = True, vocab_file: str = VOCAB,
                seq_length: int = SEQ_LENGTH,
                max_predictions: int = MAX_PREDICTIONS):
  directory = tfrecord_dir(vocab_file, seq_length, max_predictions)
  return pretrain_dataloader.BertPretrainDataConfig(
      input_path=os.path.join(directory, f'{split}-*.tfrecord'),
      global_batch_size=batch_size, is_training=is_training,
      seq_length=seq_length, max_predictions_per_seq=max_predictions,
      use_next_sentence_label=False, seed=1, deterministic=True)


def short_data_config(batch_size: int = 16):
  """Training data of the same text at seq_length 16 (3 predictions)."""
  return data_config('train', batch_size, seq_length=SHORT_SEQ_LENGTH,
                     max_predictions=SHORT_MAX_PREDICTIONS)


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
