"""Vocabulary-id frequencies of pretraining data, for static token dropping.

Hou et al. (ACL 2022, section 5) compare the cumulative-loss importance with
a static one: frequent ids matter less, so the most frequent are dropped
first. The counts are taken over the data's original (unmasked) tokens and
stored in `token_frequencies.json` beside the TFRecords, with the size and
SHA-256 of the vocabulary they were counted with, so that a frequency file
is never used with another vocabulary.
"""

import json
import os
from typing import Sequence

import numpy as np
import tensorflow as tf

from official_td.data import vocabulary as vocabulary_lib

FILENAME = 'token_frequencies.json'


def count_token_ids(files: Sequence[str], vocab_size: int,
                    seq_length: int, max_predictions_per_seq: int,
                    batch_size: int = 1024) -> np.ndarray:
  """Counts each id among the real tokens of pretraining TFRecords.

  Masked positions count as their original id (`masked_lm_ids`), so the
  counts do not depend on the masking.

  Args:
    files: TFRecord paths in the Model Garden's pretraining format.
    vocab_size: number of ids.
    seq_length: the records' `input_ids` length.
    max_predictions_per_seq: the records' `masked_lm_ids` length.
    batch_size: records parsed at a time.

  Returns:
    `[vocab_size]` int64 counts.
  """
  features = {
      'input_ids': tf.io.FixedLenFeature([seq_length], tf.int64),
      'input_mask': tf.io.FixedLenFeature([seq_length], tf.int64),
      'masked_lm_positions': tf.io.FixedLenFeature([max_predictions_per_seq],
                                                   tf.int64),
      'masked_lm_ids': tf.io.FixedLenFeature([max_predictions_per_seq],
                                             tf.int64),
      'masked_lm_weights': tf.io.FixedLenFeature([max_predictions_per_seq],
                                                 tf.float32),
  }
  counts = np.zeros([vocab_size], np.int64)
  dataset = tf.data.TFRecordDataset(list(files)).batch(batch_size).map(
      lambda records: tf.io.parse_example(records, features))
  for batch in dataset.as_numpy_iterator():
    ids = batch['input_ids'].copy()
    rows, slots = np.nonzero(batch['masked_lm_weights'] > 0)
    ids[rows, batch['masked_lm_positions'][rows, slots]] = (
        batch['masked_lm_ids'][rows, slots])
    counts += np.bincount(ids[batch['input_mask'] > 0],
                          minlength=vocab_size)[:vocab_size]
  return counts


def write_frequency_file(path: str, counts: np.ndarray,
                         vocab: vocabulary_lib.Vocabulary) -> None:
  """Writes counts and the vocabulary's identity to `path`, atomically."""
  record = dict(vocab_file=os.path.abspath(vocab.path), vocab_size=vocab.size,
                vocab_sha256=vocab.fingerprint,
                num_tokens=int(np.sum(counts)),
                counts=[int(c) for c in counts])
  with tf.io.gfile.GFile(path + '.partial', 'w') as f:
    json.dump(record, f)
  tf.io.gfile.rename(path + '.partial', path, overwrite=True)


def read_frequency_file(path: str,
                        vocab: vocabulary_lib.Vocabulary) -> np.ndarray:
  """Returns the `[vocab_size]` int64 counts stored in `path`.

  Raises:
    FileNotFoundError: `path` is empty or does not exist.
    ValueError: the file is not a frequency file, or was counted with
      another vocabulary (size or SHA-256 differ).
  """
  if not path or not tf.io.gfile.exists(path):
    raise FileNotFoundError(
        f'Token frequency file {path!r} does not exist; the static strategy '
        'needs it. Set task.token_drop.frequency_file, or make it with '
        '`python -m data_prep.count_token_frequencies --data_dir=DATA '
        '--vocab_file=VOCAB`.')
  try:
    with tf.io.gfile.GFile(path) as f:
      record = json.load(f)
    counts = np.asarray(record['counts'], np.int64)
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(f'{path!r} is not a token frequency file: {e}') from e
  if (record.get('vocab_size') != vocab.size
      or record.get('vocab_sha256') != vocab.fingerprint
      or counts.shape != (vocab.size,)):
    raise ValueError(
        f'Token frequency file {path!r} was counted with vocabulary '
        f'{record.get("vocab_file")!r} ({record.get("vocab_size")} ids, '
        f'sha256 {str(record.get("vocab_sha256"))[:12]}), not with '
        f'{vocab.path!r} ({vocab.size} ids, sha256 '
        f'{vocab.fingerprint[:12]}). Recount it with the vocabulary in use.')
  return counts


def static_importance(counts: np.ndarray) -> np.ndarray:
  """Scores for static dropping: the more frequent an id, the lower.

  Returns:
    `[vocab_size]` float32, `-counts` (exact in float32 up to 2^24; beyond,
    near-equal huge counts may tie, and ties are broken at random).
  """
  return -np.asarray(counts, np.float32)
