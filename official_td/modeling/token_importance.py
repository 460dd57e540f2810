"""Per-vocabulary-id token importance for token dropping.

Hou et al., "Token Dropping for Efficient BERT Pretraining", ACL 2022
(arXiv 2203.13240), section 3.2: a token's importance is the moving average of
the MLM loss of its vocabulary id ("cumulative loss"); the least important
tokens skip the middle layers.

Three ways of scoring, all with the same special-token treatment:
  * 'dynamic': the cumulative MLM loss per id, updated every step;
  * 'static': a fixed table, e.g. minus the id frequencies (section 5 of the
    paper: frequent ids are dropped first); `update()` changes nothing;
  * 'random': fresh uniform scores for every position at every call, the
    ablation baseline; `update()` changes nothing.

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

import numpy as np
import tensorflow as tf
import tf_keras

STRATEGIES = ('dynamic', 'static', 'random')

# Scores that put special tokens above and below any table value.
ALWAYS_KEEP_SCORE = float('inf')
ALWAYS_DROP_SCORE = float('-inf')


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
    strategy: 'dynamic', 'static' or 'random' (see the module docstring).
    static_scores: `[vocab_size]` float32 table for 'static', higher kept
      first (e.g. `token_frequencies.static_importance(counts)`).
    **kwargs: passed to `tf_keras.layers.Layer`.

  Raises:
    ValueError: `vocab_size` < 1, `beta` outside [0, 1), a special id
      outside [0, vocab_size), an unknown strategy, or 'static' without
      `static_scores` of shape `[vocab_size]`.
  """

  def __init__(self,
               vocab_size: int,
               pad_id: int,
               always_keep_ids: Sequence[int],
               beta: float = 0.995,
               initial_score: float = 10.0,
               strategy: str = 'dynamic',
               static_scores: Optional[Sequence[float]] = None,
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
    if strategy not in STRATEGIES:
      raise ValueError(f'Unknown importance strategy {strategy!r}; choose '
                       f'from {STRATEGIES}.')
    initializer = tf_keras.initializers.Constant(initial_score)
    if strategy == 'static':
      if static_scores is None or len(static_scores) != vocab_size:
        raise ValueError("The 'static' strategy needs static_scores of "
                         f'length vocab_size={vocab_size}.')
      initializer = tf_keras.initializers.Constant(
          np.asarray(static_scores, np.float32))
    self._strategy = strategy
    self._vocab_size = vocab_size
    self._pad_id = pad_id
    self._always_keep_ids = list(always_keep_ids)
    self._beta = beta
    self._initial_score = initial_score
    self.importance = self.add_weight(
        name='importance',
        shape=[vocab_size],
        dtype=tf.float32,
        initializer=initializer,
        trainable=False,
        synchronization=tf.VariableSynchronization.ON_WRITE,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    self._override_ids = [[i] for i in self._always_keep_ids] + [[pad_id]]
    self._override_scores = ([ALWAYS_KEEP_SCORE] * len(self._always_keep_ids)
                             + [ALWAYS_DROP_SCORE])

  @property
  def strategy(self) -> str:
    return self._strategy

  def call(self, input_word_ids: tf.Tensor) -> tf.Tensor:
    """Returns the importance of each position, `[batch, seq_len]` float32."""
    table = tf.tensor_scatter_nd_update(self.importance, self._override_ids,
                                        self._override_scores)
    scores = tf.gather(table, input_word_ids)
    if self._strategy == 'random':
      scores = tf.where(tf.math.is_inf(scores), scores,
                        tf.random.uniform(tf.shape(input_word_ids)))
    return scores

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
      The updated table, `[vocab_size]` float32 (for 'static' and 'random',
      the unchanged one).
    """
    if self._strategy != 'dynamic':
      return tf.identity(self.importance)
    with tf.name_scope(f'{self.name}_update'):  # named for profiles
      return self._update(masked_lm_ids, mlm_losses, masked_lm_weights)

  def _update(self, masked_lm_ids, mlm_losses, masked_lm_weights):
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
                  initial_score=self._initial_score, strategy=self._strategy,
                  static_scores=(self.importance.numpy().tolist()
                                 if self._strategy == 'static' else None))
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
