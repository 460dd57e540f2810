"""What token dropping did in a training step: metrics for TensorBoard and logs.

  dropped_share_of_mlm_targets  share of weighted MLM targets that skipped the
                                middle layers
  mean_importance_kept          mean score of kept regular tokens
  mean_importance_dropped       mean score of dropped regular tokens
  dropped_token_counts          per-id count of dropped regular tokens; the
                                trainer turns it into the most-often-dropped
                                tokens as text (`top_dropped_text`)

Regular tokens are real (`input_mask` 1) and not special ([CLS], [SEP],
[MASK], [PAD]: `token_importance.is_special_score`).
"""

from typing import Dict, List, Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from official_td.modeling import token_importance

DROPPED_SHARE = 'dropped_share_of_mlm_targets'
MEAN_KEPT = 'mean_importance_kept'
MEAN_DROPPED = 'mean_importance_dropped'
DROPPED_COUNTS = 'dropped_token_counts'


class DroppedTokenCounts(tf_keras.metrics.Metric):
  """Counts dropped regular tokens per vocabulary id, `[vocab_size]` float32.

  Its result is a vector, not a scalar: `TokenDropTrainer` takes it out of
  the logs and reports the top ids as text.
  """

  def __init__(self, vocab_size: int, name: str = DROPPED_COUNTS, **kwargs):
    super().__init__(name=name, **kwargs)
    self._vocab_size = vocab_size
    self.counts = self.add_weight('counts', shape=[vocab_size],
                                  initializer='zeros')

  def update_state(self, word_ids: tf.Tensor, dropped: tf.Tensor):
    """Adds `dropped` `[batch, seq_len]` bool positions of `word_ids`."""
    self.counts.assign_add(tf.math.unsorted_segment_sum(
        tf.reshape(tf.cast(dropped, tf.float32), [-1]),
        tf.reshape(word_ids, [-1]), self._vocab_size))

  def result(self) -> tf.Tensor:
    return tf.identity(self.counts)

  def reset_state(self):
    self.counts.assign(tf.zeros_like(self.counts))


def build(vocab_size: int) -> List[tf_keras.metrics.Metric]:
  """The training metrics of a token-dropping task."""
  return [tf_keras.metrics.Mean(name=DROPPED_SHARE),
          tf_keras.metrics.Mean(name=MEAN_KEPT),
          tf_keras.metrics.Mean(name=MEAN_DROPPED),
          DroppedTokenCounts(vocab_size)]


def kept_mask(kept_positions: tf.Tensor, seq_length: int) -> tf.Tensor:
  """`[batch, K]` int32 kept positions to a `[batch, seq_len]` bool mask."""
  return tf.reduce_any(
      tf.one_hot(kept_positions, seq_length, on_value=True, off_value=False,
                 dtype=tf.bool), axis=1)


def kept_share_of_targets(kept: tf.Tensor, masked_lm_positions: tf.Tensor,
                          masked_lm_weights: tf.Tensor) -> tf.Tensor:
  """Weighted share of MLM targets at kept positions (scalar float32).

  Args:
    kept: `[batch, seq_len]` bool, from `kept_mask`.
    masked_lm_positions: `[batch, num_predictions]` int32.
    masked_lm_weights: `[batch, num_predictions]` float32; padded slots are 0.
  """
  hits = tf.gather(kept, masked_lm_positions, batch_dims=1)
  return tf.math.divide_no_nan(
      tf.reduce_sum(tf.cast(hits, tf.float32) * masked_lm_weights),
      tf.reduce_sum(masked_lm_weights))


def update(metrics: Dict[str, tf_keras.metrics.Metric],
           features: Dict[str, tf.Tensor], importance: tf.Tensor,
           kept_positions: tf.Tensor) -> None:
  """Updates the metrics above from one step.

  Args:
    metrics: by name; those absent are skipped.
    features: the batch (`input_word_ids`, `input_mask`,
      `masked_lm_positions`, `masked_lm_weights`).
    importance: `[batch, seq_len]` float32 scores the step dropped by.
    kept_positions: `[batch, K]` int32.
  """
  weights = features['masked_lm_weights']
  kept = kept_mask(kept_positions, importance.shape[1])
  if DROPPED_SHARE in metrics:
    metrics[DROPPED_SHARE].update_state(
        1.0 - kept_share_of_targets(kept, features['masked_lm_positions'],
                                    weights),
        sample_weight=tf.reduce_sum(weights))
  regular = (tf.cast(features['input_mask'], tf.bool)
             & ~token_importance.is_special_score(importance))
  finite = tf.where(regular, importance, tf.zeros_like(importance))
  for name, where in ((MEAN_KEPT, regular & kept),
                      (MEAN_DROPPED, regular & ~kept)):
    if name in metrics:
      metrics[name].update_state(finite, sample_weight=tf.cast(where,
                                                               tf.float32))
  if DROPPED_COUNTS in metrics:
    metrics[DROPPED_COUNTS].update_state(features['input_word_ids'],
                                         regular & ~kept)


def top_dropped_text(counts: np.ndarray, tokens: Sequence[str],
                     top_k: int = 20) -> str:
  """The most often dropped tokens as `token (count), ...`, most first."""
  counts = np.asarray(counts)
  order = [i for i in np.argsort(-counts, kind='stable')[:top_k]
           if counts[i] > 0]
  return ', '.join(f'{tokens[i]} ({int(counts[i])})' for i in order)
