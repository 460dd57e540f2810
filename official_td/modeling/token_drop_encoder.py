"""A BERT encoder whose middle layers process only the important tokens.

Hou et al., "Token Dropping for Efficient BERT Pretraining", ACL 2022
(arXiv 2203.13240), section 3.1. For an encoder of L layers (indices from 0)
and the default split:
  * layers 0 .. L/2-2 process all tokens;
  * layer L/2-1, the boundary layer, takes the kept tokens as queries and all
    tokens as keys and values;
  * layers L/2 .. L-2 process the kept tokens only;
  * the dropped tokens' hidden states, as they entered the boundary layer,
    rejoin at their positions, and layer L-1 processes all tokens.
The split and the keep ratio are constructor arguments.

`TokenDropEncoder` subclasses the Model Garden's `BertEncoderV2` and adds no
variable: a checkpoint of it restores into `BertEncoderV2` unchanged, so a
model pretrained with token dropping is an ordinary BERT.
"""

import math
from typing import Dict, Optional, Tuple

import tensorflow as tf
import tf_keras

from official.modeling import tf_utils
from official.nlp.modeling import networks
from official_td.modeling import activations  # pylint: disable=unused-import  # registers GELU_EXACT
from official_td.modeling import token_importance

KEPT_POSITIONS_KEY = 'kept_positions'
# BertEncoderV2 options whose extra outputs or inputs the dropping path lacks.
UNSUPPORTED_OPTIONS = ('return_attention_scores', 'return_word_embeddings',
                       'with_dense_inputs')
_KEPT_TOKENS_SCOPE = 'kept_tokens'  # selection, gathers and merges


def resolve_layer_split(num_layers: int, drop_start_layer: int = -1,
                        drop_end_layer: int = -1) -> Tuple[int, int]:
  """Returns `(start, end)`: the boundary layer and the last kept-only layer.

  Layers `[0, start)` see all tokens, layer `start` cross-attends from kept to
  all tokens, layers `(start, end]` see kept tokens only and layers
  `(end, num_layers)` see all tokens again.

  Args:
    num_layers: L, the encoder's number of Transformer layers.
    drop_start_layer: the boundary layer; -1 means the paper's L/2 - 1.
    drop_end_layer: the last layer on kept tokens only; -1 means L - 2.

  Raises:
    ValueError: fewer than 2 layers, or a split that does not satisfy
      0 <= start <= end <= L - 2 (at least one full layer must follow).
  """
  if num_layers < 2:
    raise ValueError(
        f'Token dropping needs at least 2 Transformer layers (a boundary '
        f'layer and a full last layer); the encoder has {num_layers}. '
        'Increase num_layers or use the baseline experiment.')
  start = num_layers // 2 - 1 if drop_start_layer == -1 else drop_start_layer
  end = num_layers - 2 if drop_end_layer == -1 else drop_end_layer
  if not 0 <= start <= end <= num_layers - 2:
    raise ValueError(
        f'Invalid token-dropping layer split for {num_layers} layers: '
        f'drop_start_layer={start}, drop_end_layer={end}. Need '
        f'0 <= drop_start_layer <= drop_end_layer <= {num_layers - 2} '
        '(the last layer must see all tokens); use -1 for the defaults.')
  return start, end


def encoder_kwargs(bert) -> Dict[str, object]:
  """`BertEncoderV2` arguments from a `BertEncoderConfig`, field by field as
  `official.nlp.configs.encoders.build_encoder` maps them.

  Args:
    bert: `official.nlp.configs.encoders.BertEncoderConfig`.

  Returns:
    Keyword arguments for `TokenDropEncoder` (besides the dropping ones).
    `UNSUPPORTED_OPTIONS` are passed through, so that the constructor
    refuses them when set.
  """
  return dict(
      vocab_size=bert.vocab_size,
      hidden_size=bert.hidden_size,
      num_layers=bert.num_layers,
      num_attention_heads=bert.num_attention_heads,
      inner_dim=bert.intermediate_size,
      inner_activation=tf_utils.get_activation(bert.hidden_activation),
      output_dropout=bert.dropout_rate,
      attention_dropout=bert.attention_dropout_rate,
      max_sequence_length=bert.max_position_embeddings,
      type_vocab_size=bert.type_vocab_size,
      initializer=tf_keras.initializers.TruncatedNormal(
          stddev=bert.initializer_range),
      output_range=bert.output_range,
      embedding_width=bert.embedding_size,
      norm_first=bert.norm_first,
      return_attention_scores=bert.return_attention_scores,
      return_word_embeddings=bert.return_word_embeddings)


def num_kept_tokens(seq_length: int, keep_ratio: float) -> int:
  """K for a sequence length: `round(keep_ratio * seq_length)`, at least 1.

  Raises:
    ValueError: `keep_ratio` outside (0, 1].
  """
  if not 0.0 < keep_ratio <= 1.0:
    raise ValueError(f'keep_ratio must be in (0, 1], got {keep_ratio}; it is '
                     'the share of tokens the middle layers process.')
  return max(1, min(seq_length, int(math.floor(keep_ratio * seq_length + 0.5))))


@tf_keras.utils.register_keras_serializable(package='TokenDrop')
class TokenDropEncoder(networks.BertEncoderV2):
  """`BertEncoderV2` that drops unimportant tokens from its middle layers.

  Inputs: a dict with `input_word_ids`, `input_mask`, `input_type_ids`
  (`[batch, seq_len]` int32) and, to drop tokens, `kept_positions`
  (`[batch, K]` int32, ascending within each row: the positions the middle
  layers process). `seq_len` must be static. `select_kept_positions` turns
  importance scores (from `TokenImportanceRecorder` or any other scorer) into
  kept positions.

  The encoder takes positions, not scores, on purpose: under a mixed-precision
  policy Keras casts every float input of a layer (and of a model around it)
  to the compute dtype, and scores ranked in bfloat16 or float16 tie or
  overflow. Positions are int32 and pass through untouched; the ranking
  happens in float32 before the call.

  Tokens are dropped only when `training` is true and `kept_positions` is
  given; otherwise (evaluation, fine-tuning, export) this is exactly
  `BertEncoderV2`.

  Outputs: `BertEncoderV2`'s dict: `sequence_output` `[batch, seq_len,
  hidden]`, `pooled_output` `[batch, hidden]` and `encoder_outputs` (one
  `[batch, seq_len, hidden]` per layer; for a middle layer, its kept tokens'
  states merged with the dropped tokens' skipped states). When dropping, also
  `kept_positions` `[batch, K]` int32, the input.

  Args:
    keep_ratio: share of tokens the middle layers process, in (0, 1]; 0.5 in
      the paper. `select_kept_positions` keeps
      K = `num_kept_tokens(seq_len, keep_ratio)` per sequence.
    drop_start_layer: boundary layer index, -1 for L/2 - 1.
    drop_end_layer: last kept-only layer index, -1 for L - 2.
    **kwargs: `BertEncoderV2` arguments (`vocab_size`, `num_layers`, ...).

  Raises:
    ValueError: `keep_ratio` outside (0, 1], an impossible layer split (see
      `resolve_layer_split`), or `return_attention_scores`,
      `return_word_embeddings` or `with_dense_inputs`, which dropping does
      not support.
  """

  def __init__(self, keep_ratio: float = 0.5, drop_start_layer: int = -1,
               drop_end_layer: int = -1, **kwargs):
    for unsupported in UNSUPPORTED_OPTIONS:
      if kwargs.get(unsupported):
        raise ValueError(f'TokenDropEncoder does not support {unsupported}.')
    super().__init__(**kwargs)
    num_kept_tokens(1, keep_ratio)  # validates keep_ratio
    self._drop_start, self._drop_end = resolve_layer_split(
        self._num_layers, drop_start_layer, drop_end_layer)
    self._keep_ratio = keep_ratio
    self._config.update(keep_ratio=keep_ratio,
                        drop_start_layer=drop_start_layer,
                        drop_end_layer=drop_end_layer)

  @property
  def layer_split(self) -> Tuple[int, int]:
    """(boundary layer, last kept-only layer), resolved."""
    return self._drop_start, self._drop_end

  def select_kept_positions(self, importance: tf.Tensor,
                            seed: Optional[tf.Tensor] = None) -> tf.Tensor:
    """The `kept_positions` input for given importance scores.

    Args:
      importance: `[batch, seq_len]` float32 scores, higher kept first;
        `seq_len` static. Call this outside any mixed-precision Keras call,
        so that the scores are ranked in float32.
      seed: `[2]` int32 stateless seed of the random tie-break
        (`token_importance.step_seed`); None draws from the global
        generator.

    Returns:
      `[batch, K]` int32 positions, ascending, K = `num_kept_tokens(seq_len,
      keep_ratio)`.

    Raises:
      ValueError: `seq_len` is not static.
    """
    seq_length = importance.shape[1]
    if seq_length is None:
      raise ValueError('Token dropping needs a static sequence length; batch '
                       'the input with fixed-length sequences.')
    with tf.name_scope(_KEPT_TOKENS_SCOPE):  # named for profiles
      return token_importance.select_kept_positions(
          importance, num_kept_tokens(seq_length, self._keep_ratio), seed)

  def call(self, inputs: Dict[str, tf.Tensor],
           training: Optional[bool] = None) -> Dict[str, tf.Tensor]:
    if not isinstance(inputs, dict):
      raise ValueError('TokenDropEncoder takes a dict of inputs.')
    kept = inputs.get(KEPT_POSITIONS_KEY)
    if kept is None or not _is_true(training):
      return super().call(inputs)
    if kept.dtype not in (tf.int32, tf.int64):
      raise ValueError(f'{KEPT_POSITIONS_KEY} must be int32 positions '
                       f'`[batch, K]`, got {kept.dtype}; make them with '
                       '`select_kept_positions(importance)`.')
    kept = tf.cast(kept, tf.int32)

    embeddings = self._embed(inputs)
    attention_mask = self._attention_mask_layer(embeddings,
                                                inputs['input_mask'])
    layers = self._transformer_layers
    encoder_outputs = []
    x = embeddings
    for layer in layers[:self._drop_start]:
      x = layer([x, attention_mask])
      encoder_outputs.append(x)

    # Kept tokens query all tokens at the boundary, then only each other.
    skipped = x
    with tf.name_scope(_KEPT_TOKENS_SCOPE):
      cross_mask = tf.gather(attention_mask, kept, batch_dims=1)  # [B, K, L]
      kept_mask = tf.gather(cross_mask, kept, axis=2,
                            batch_dims=1)  # [B, K, K]
      kept_queries = tf.gather(skipped, kept, batch_dims=1)
      scatter_indices = _scatter_indices(kept)  # once for all middle layers
    kept_x = layers[self._drop_start]([kept_queries, skipped, cross_mask])
    # Only the last merge feeds the next layer; the others exist for
    # `encoder_outputs` and are pruned from the graph when nothing reads them.
    encoder_outputs.append(_merge(skipped, kept_x, scatter_indices))
    for layer in layers[self._drop_start + 1:self._drop_end + 1]:
      kept_x = layer([kept_x, kept_mask])
      encoder_outputs.append(_merge(skipped, kept_x, scatter_indices))

    x = encoder_outputs[-1]
    for i, layer in enumerate(layers[self._drop_end + 1:],
                              start=self._drop_end + 1):
      output_range = self._output_range if i == self._num_layers - 1 else None
      x = layer([x, attention_mask], output_range=output_range)
      encoder_outputs.append(x)

    return {
        'sequence_output': x,
        'pooled_output': self._pooler_layer(x[:, 0, :]),
        'encoder_outputs': encoder_outputs,
        KEPT_POSITIONS_KEY: kept,
    }

  def _embed(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    """The embedding stack of `BertEncoderV2.call`, in the same order."""
    word_ids = inputs['input_word_ids']
    embeddings = self._get_embeddings(word_ids, inputs['input_type_ids'],
                                      self._embedding_layer(word_ids),
                                      None, None)
    embeddings = self._embedding_norm_layer(embeddings)
    embeddings = self._embedding_dropout(embeddings)
    if self._embedding_projection is not None:
      embeddings = self._embedding_projection(embeddings)
    return embeddings


def _is_true(training) -> bool:
  if training is None:
    return False
  value = tf.get_static_value(training)
  if value is None:
    raise ValueError('TokenDropEncoder needs a Python bool (or constant) for '
                     '`training`, so that the dropped layers have static '
                     'shapes.')
  return bool(value)


def _scatter_indices(kept: tf.Tensor) -> tf.Tensor:
  """`[B, K]` kept positions to `[B, K, 2]` (batch, position) indices."""
  batch_index = tf.broadcast_to(
      tf.range(tf.shape(kept)[0], dtype=kept.dtype)[:, None], tf.shape(kept))
  return tf.stack([batch_index, kept], axis=-1)


def _merge(full: tf.Tensor, kept_states: tf.Tensor,
           scatter_indices: tf.Tensor) -> tf.Tensor:
  """Writes `kept_states` `[B, K, H]` into `full` `[B, L, H]` at the kept
  positions (`_scatter_indices` of them), in `full`'s dtype.

  Under a mixed policy the two can differ: with `drop_start_layer=0`, `full`
  is the embedding LayerNorm's float32 output and `kept_states` a layer's
  output in the compute dtype. The next layer casts its input to the compute
  dtype anyway.
  """
  with tf.name_scope(_KEPT_TOKENS_SCOPE):
    return tf.tensor_scatter_nd_update(full, scatter_indices,
                                       tf.cast(kept_states, full.dtype))
