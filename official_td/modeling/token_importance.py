"""Per-vocabulary-id token importance for token dropping.

Hou et al., "Token Dropping for Efficient BERT Pretraining", ACL 2022
(arXiv 2203.13240), section 3.2: a token's importance is the moving average of
the MLM loss of its vocabulary id ("cumulative loss"); the least important
tokens skip the middle layers.

Unlike the reference code (tensorflow/models, projects/token_dropping) the
update here
  * averages the loss of an id over all its weighted targets in the step
    instead of keeping one arbitrary scatter update per id;
  * ignores padded MLM slots (`masked_lm_weights == 0`);
  * sums per-id losses and counts across replicas before updating, so that
    every replica and the checkpoint hold one and the same global table;
  * takes special-token ids from the vocabulary in use.
"""

from typing import Optional, Sequence

import tensorflow as tf
import tf_keras

# Scores that put special tokens outside the range any loss can reach.
ALWAYS_KEEP_SCORE = 1e9
ALWAYS_DROP_SCORE = -1e9


@tf_keras.utils.register_keras_serializable(package='TokenDrop')
class TokenImportanceRecorder(tf_keras.layers.Layer):
  """A non-trainable importance score per vocabulary id, updated from MLM loss.

  Calling the layer maps `input_word_ids` `[batch, seq_len]` int32 to the
  importance of each position `[batch, seq_len]` float32, with [CLS], [SEP]
  and [MASK] (`always_keep_ids`) forced to the top and [PAD] (`pad_id`) to the
  bottom, whatever the table says. `update()` folds one step's MLM losses into
  the table.

  The table `importance` `[vocab_size]` float32 is a layer weight, so it is
  part of any checkpoint of a model that tracks this layer. It is created with
  `ON_WRITE` synchronization and `ONLY_FIRST_REPLICA` aggregation: under
  `tf.distribute`, `update()` all-reduces per-id sums and counts first, every
  replica computes the same new table, and one copy is written to all.

  Args:
    vocab_size: number of vocabulary ids (int).
    pad_id: id of [PAD] (int).
    always_keep_ids: ids never dropped: [CLS], [SEP], [MASK] (ints).
    beta: moving-average decay, in [0, 1); 0.995 in the paper.
    initial_score: every id's starting score; high (10.0 in the paper), so
      that ids not yet seen count as important.
    **kwargs: passed to `tf_keras.layers.Layer`.

  Raises:
    ValueError: `vocab_size` < 1, `beta` outside [0, 1), or a special id
      outside [0, vocab_size).
  """

  def __init__(self,
               vocab_size: int,
               pad_id: int,
               always_keep_ids: Sequence[int],
               beta: float = 0.995,
               initial_score: float = 10.0,
               **kwargs):
    super().__init__(**kwargs)
    if vocab_size < 1:
      raise ValueError(f'vocab_size must be positive, got {vocab_size}.')
    if not 0.0 <= beta < 1.0:
      raise ValueError(f'beta must be in [0, 1), got {beta}.')
    for token_id in [pad_id, *always_keep_ids]:
      if not 0 <= token_id < vocab_size:
        raise ValueError(f'Special token id {token_id} is outside the '
                         f'vocabulary [0, {vocab_size}).')
    self._vocab_size = vocab_size
    self._pad_id = pad_id
    self._always_keep_ids = list(always_keep_ids)
    self._beta = beta
    self._initial_score = initial_score
    self.importance = self.add_weight(
        name='importance',
        shape=[vocab_size],
        dtype=tf.float32,
        initializer=tf_keras.initializers.Constant(initial_score),
        trainable=False,
        synchronization=tf.VariableSynchronization.ON_WRITE,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    self._override_ids = [[i] for i in self._always_keep_ids] + [[pad_id]]
    self._override_scores = ([ALWAYS_KEEP_SCORE] * len(self._always_keep_ids)
                             + [ALWAYS_DROP_SCORE])

  def call(self, input_word_ids: tf.Tensor) -> tf.Tensor:
    """Returns the importance of each position, `[batch, seq_len]` float32."""
    table = tf.tensor_scatter_nd_update(self.importance, self._override_ids,
                                        self._override_scores)
    return tf.gather(table, input_word_ids)

  def update(self, masked_lm_ids: tf.Tensor, mlm_losses: tf.Tensor,
             masked_lm_weights: tf.Tensor) -> tf.Tensor:
    """Folds one step's MLM losses into the table.

    For each id present among the weighted targets of the step (summed over
    all replicas): `score = beta * score + (1 - beta) * mean_loss`, where
    `mean_loss` is the `masked_lm_weights`-weighted mean of that id's
    per-position losses. Ids with no weighted target are left untouched.

    Call it in replica context (inside `strategy.run`, as Model Garden train
    steps are) or with no strategy.

    Args:
      masked_lm_ids: `[batch, max_predictions]` int32, the MLM labels.
      mlm_losses: `[batch, max_predictions]` float32, per-position MLM loss
        (cross-entropy, nats); gradients are not taken through it.
      masked_lm_weights: `[batch, max_predictions]` float32; 0 on padding.

    Returns:
      The updated table, `[vocab_size]` float32.
    """
    ids = tf.reshape(tf.cast(masked_lm_ids, tf.int32), [-1])
    weights = tf.reshape(tf.cast(masked_lm_weights, tf.float32), [-1])
    losses = tf.reshape(tf.stop_gradient(tf.cast(mlm_losses, tf.float32)),
                        [-1])
    loss_sums = tf.math.unsorted_segment_sum(losses * weights, ids,
                                             self._vocab_size)
    counts = tf.math.unsorted_segment_sum(weights, ids, self._vocab_size)
    replica_context = tf.distribute.get_replica_context()
    if replica_context is not None:
      loss_sums, counts = replica_context.all_reduce(
          tf.distribute.ReduceOp.SUM, [loss_sums, counts])
    mean_losses = tf.math.divide_no_nan(loss_sums, counts)
    updated = self._beta * self.importance + (1.0 - self._beta) * mean_losses
    new_table = tf.where(counts > 0, updated, self.importance)
    self.importance.assign(new_table)
    return new_table

  def get_config(self):
    config = super().get_config()
    config.update(vocab_size=self._vocab_size, pad_id=self._pad_id,
                  always_keep_ids=self._always_keep_ids, beta=self._beta,
                  initial_score=self._initial_score)
    return config


def select_kept_positions(importance: tf.Tensor, num_kept: int,
                          seed: Optional[int] = None) -> tf.Tensor:
  """Returns the positions of the `num_kept` most important tokens per row.

  Ties are broken uniformly at random (the reference code keeps the earliest
  positions, which at the start of training, when all scores are equal, means
  always dropping the end of every sequence): rows are randomly permuted,
  `top_k` keeps the lower index among equals, and the indices are mapped back.

  Args:
    importance: `[batch, seq_len]` float32 scores, higher is kept first.
    num_kept: K, a Python int in [1, seq_len]; static, so shapes stay static
      for XLA and TPU.
    seed: optional op seed for the tie-breaking permutation.

  Returns:
    `[batch, num_kept]` int32 positions, ascending within each row.
  """
  permutation = tf.argsort(
      tf.random.uniform(tf.shape(importance), seed=seed), axis=-1)
  permuted = tf.gather(importance, permutation, batch_dims=1)
  _, top = tf.math.top_k(permuted, k=num_kept, sorted=False)
  kept = tf.gather(permutation, top, batch_dims=1)
  return tf.sort(tf.cast(kept, tf.int32), axis=-1)
