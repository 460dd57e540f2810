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

# Scores that put special tokens above and below any table value. [CLS] ranks
# above the other always-kept ids, so that it is kept even when K is smaller
# than the number of [CLS]/[SEP]/[MASK] in a sequence: the pooled output and
# ScTD's consistency loss read it. Table values are finite and below
# ALWAYS_KEEP_SCORE (the update skips non-finite losses).
CLS_SCORE = float('inf')
ALWAYS_KEEP_SCORE = float(np.finfo(np.float32).max)
ALWAYS_DROP_SCORE = float('-inf')


def is_special_score(scores: tf.Tensor) -> tf.Tensor:
  """Where `scores` (from `TokenImportanceRecorder`) mark a special token.

  Args:
    scores: `[batch, seq_len]` float32.

  Returns:
    `[batch, seq_len]` bool: [CLS], [SEP], [MASK] or [PAD].
  """
  return tf.abs(scores) >= ALWAYS_KEEP_SCORE


def nonfinite_targets(mlm_losses: tf.Tensor,
                      masked_lm_weights: tf.Tensor) -> tf.Tensor:
  """Weighted MLM targets whose loss is NaN or infinite.

  Args:
    mlm_losses: `[batch, max_predictions]` float, per-position MLM loss.
    masked_lm_weights: `[batch, max_predictions]` float; 0 on padding.

  Returns:
    `[batch, max_predictions]` bool.
  """
  return (~tf.math.is_finite(tf.cast(mlm_losses, tf.float32))
          & (tf.cast(masked_lm_weights, tf.float32) > 0))


def step_seed(run_seed: int, step: tf.Tensor) -> tf.Tensor:
  """The stateless-RNG seed of one training step on this replica.

  Token dropping draws random numbers for the tie-break and the 'random'
  strategy. Deriving the seed from (run seed, step, replica) instead of a
  stateful generator makes the kept positions a function of the run seed:
  the same seed gives the same draws, a run resumed at step N draws what the
  uninterrupted run drew at step N (the step is in the checkpoint), and
  replicas draw independently of each other.

  Args:
    run_seed: Python int, `task.token_drop.seed`.
    step: scalar int32/int64 tensor, the global step (optimizer iterations).

  Returns:
    `[2]` int32 seed for `tf.random.stateless_*` ops.
  """
  seed = tf.random.experimental.stateless_fold_in(
      tf.constant([run_seed, 0x70d], tf.int32), tf.cast(step, tf.int64))
  replica_context = tf.distribute.get_replica_context()
  replica = 0 if replica_context is None else (
      replica_context.replica_id_in_sync_group)
  return tf.random.experimental.stateless_fold_in(
      seed, tf.cast(replica, tf.int64))


@tf_keras.utils.register_keras_serializable(package='TokenDrop')
class TokenImportanceRecorder(tf_keras.layers.Layer):
  """A non-trainable importance score per vocabulary id, updated from MLM loss.

  Calling the layer maps `input_word_ids` `[batch, seq_len]` int32 to the
  importance of each position `[batch, seq_len]` float32, with [CLS]
  (`cls_id`) first, [SEP] and [MASK] (`always_keep_ids`) next and [PAD]
  (`pad_id`) last, whatever the table says. `update()` folds one step's MLM
  losses into the table.

  The table `importance` `[vocab_size]` float32 is a layer weight, so it is
  part of any checkpoint of a model that tracks this layer. It is created with
  `ON_WRITE` synchronization and `ONLY_FIRST_REPLICA` aggregation: under
  `tf.distribute`, `update()` all-reduces per-id sums and counts first, every
  replica computes the same new table, and one copy is written to all.

  Numerics: the layer's dtype policy is float32 whatever the global policy.
  Under `mixed_bfloat16` a table read in bfloat16 would turn 9.93, 9.94 and
  9.95 into 9.9375 (ranking by tie-break, not by score), and under
  `mixed_float16` minus counts above 65,504 would become -inf and tie with
  [PAD]. Losses are folded in float32 too.

  Args:
    vocab_size: number of vocabulary ids (int).
    pad_id: id of [PAD] (int).
    always_keep_ids: ids never dropped: [CLS], [SEP], [MASK] (ints).
    beta: moving-average decay, in [0, 1); 0.995 in the paper.
    initial_score: every id's starting score, finite; high (10.0 in the
      paper), so that ids not yet seen count as important.
    strategy: 'dynamic', 'static' or 'random' (see the module docstring).
    static_scores: `[vocab_size]` finite float32 table for 'static', higher
      kept first (e.g. `token_frequencies.static_importance(counts)`).
    cls_id: id of [CLS] (int), which then ranks above the other always-kept
      ids; None ranks all always-kept ids equal.
    **kwargs: passed to `tf_keras.layers.Layer`; `dtype` defaults to
      float32 (see Numerics) and may not be another dtype.

  Raises:
    ValueError: `vocab_size` < 1, `beta` outside [0, 1), a special id
      outside [0, vocab_size), an unknown strategy, a non-finite
      `initial_score`, 'static' without finite `static_scores` of shape
      `[vocab_size]`, or a `dtype` other than float32.
  """

  def __init__(self,
               vocab_size: int,
               pad_id: int,
               always_keep_ids: Sequence[int],
               beta: float = 0.995,
               initial_score: float = 10.0,
               strategy: str = 'dynamic',
               static_scores: Optional[Sequence[float]] = None,
               cls_id: Optional[int] = None,
               **kwargs):
    kwargs['dtype'] = _float32_policy(kwargs.get('dtype'))
    super().__init__(**kwargs)
    if vocab_size < 1:
      raise ValueError(f'vocab_size must be positive, got {vocab_size}.')
    if not 0.0 <= beta < 1.0:
      raise ValueError(f'beta must be in [0, 1), got {beta}.')
    if not abs(initial_score) < ALWAYS_KEEP_SCORE:
      raise ValueError(f'initial_score must be finite, got {initial_score}.')
    always_keep_ids = list(always_keep_ids)
    if cls_id is not None and cls_id not in always_keep_ids:
      always_keep_ids.append(cls_id)
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
      static_scores = np.asarray(static_scores, np.float32)
      if not np.all(np.abs(static_scores) < ALWAYS_KEEP_SCORE):
        raise ValueError("The 'static' strategy needs finite static_scores.")
      initializer = tf_keras.initializers.Constant(static_scores)
    self._strategy = strategy
    self._vocab_size = vocab_size
    self._pad_id = pad_id
    self._always_keep_ids = always_keep_ids
    self._cls_id = cls_id
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
    overrides = {i: ALWAYS_KEEP_SCORE for i in always_keep_ids}
    if cls_id is not None:
      overrides[cls_id] = CLS_SCORE
    overrides[pad_id] = ALWAYS_DROP_SCORE
    self._override_ids = [[i] for i in overrides]
    self._override_scores = list(overrides.values())

  @property
  def strategy(self) -> str:
    return self._strategy

  def call(self, input_word_ids: tf.Tensor,
           seed: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Returns the importance of each position.

    Args:
      input_word_ids: `[batch, seq_len]` int32.
      seed: `[2]` int32 stateless-RNG seed for the 'random' strategy's draws
        (`step_seed`); None draws from the global generator.

    Returns:
      `[batch, seq_len]` float32; special tokens as `is_special_score`.
    """
    table = tf.tensor_scatter_nd_update(self.importance, self._override_ids,
                                        self._override_scores)
    scores = tf.gather(table, input_word_ids)
    if self._strategy == 'random':
      shape = tf.shape(input_word_ids)
      draws = (tf.random.uniform(shape) if seed is None else
               tf.random.stateless_uniform(shape, seed))
      scores = tf.where(is_special_score(scores), scores, draws)
    return scores

  def update(self, masked_lm_ids: tf.Tensor, mlm_losses: tf.Tensor,
             masked_lm_weights: tf.Tensor) -> tf.Tensor:
    """Folds one step's MLM losses into the table.

    For each id present among the weighted targets of the step (summed over
    all replicas): `score = beta * score + (1 - beta) * mean_loss`, where
    `mean_loss` is the `masked_lm_weights`-weighted mean of that id's
    per-position losses. Ids with no weighted target are left untouched.
    Targets whose loss is NaN or infinite (a float16 overflow, a bad batch)
    are left out, so that one step cannot poison an id's score for good;
    `nonfinite_targets` counts them.

    Call it in replica context (inside `strategy.run`, as Model Garden train
    steps are) or with no strategy.

    Args:
      masked_lm_ids: `[batch, max_predictions]` int32, the MLM labels.
      mlm_losses: `[batch, max_predictions]` float, per-position MLM loss
        (cross-entropy, nats); gradients are not taken through it.
      masked_lm_weights: `[batch, max_predictions]` float; 0 on padding.

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
    losses = tf.reshape(tf.stop_gradient(tf.cast(mlm_losses, tf.float32)),
                        [-1])
    finite = tf.math.is_finite(losses)
    # Zero both: a NaN loss times a zero weight would still be NaN.
    weights = tf.where(
        finite, tf.reshape(tf.cast(masked_lm_weights, tf.float32), [-1]), 0.0)
    losses = tf.where(finite, losses, 0.0)
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
                  cls_id=self._cls_id,
                  static_scores=(self.importance.numpy().tolist()
                                 if self._strategy == 'static' else None))
    return config


def _float32_policy(dtype):
  """The recorder's dtype policy: float32, refusing anything else."""
  if dtype is None:
    return 'float32'
  name = getattr(dtype, 'name', dtype)
  if name not in ('float32', tf.float32):
    raise ValueError(
        f'TokenImportanceRecorder computes in float32 (got dtype={name!r}): '
        'scores in a 16-bit type tie or overflow. Leave dtype unset.')
  return 'float32'


def select_kept_positions(importance: tf.Tensor, num_kept: int,
                          seed: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Returns the positions of the `num_kept` most important tokens per row.

  Ties are broken uniformly at random (the reference code keeps the earliest
  positions, which at the start of training, when all scores are equal, means
  always dropping the end of every sequence): rows are randomly permuted,
  `top_k` keeps the lower index among equals, and the indices are mapped back.
  The ranking is done in float32 whatever the input dtype.

  Args:
    importance: `[batch, seq_len]` float scores, higher is kept first.
    num_kept: K, a Python int in [1, seq_len]; static, so shapes stay static
      for XLA and TPU.
    seed: `[2]` int32 stateless-RNG seed of the tie-break (`step_seed`); None
      draws from the global generator.

  Returns:
    `[batch, num_kept]` int32 positions, ascending within each row.
  """
  importance = tf.cast(importance, tf.float32)
  shape = tf.shape(importance)
  draws = (tf.random.uniform(shape) if seed is None else
           tf.random.stateless_uniform(shape, seed))
  permutation = tf.argsort(draws, axis=-1)
  permuted = tf.gather(importance, permutation, batch_dims=1)
  _, top = tf.math.top_k(permuted, k=num_kept, sorted=False)
  kept = tf.gather(permutation, top, batch_dims=1)
  return tf.sort(tf.cast(kept, tf.int32), axis=-1)
