"""The semantic-consistency loss of ScTD.

Zhong et al., "Revisiting Token Dropping Strategy in Efficient BERT
Pretraining", ACL 2023 (arXiv 2305.15273): token dropping loses semantic
information; every few steps, also run the batch through the full model and
pull the token-dropped model's [CLS] representation towards the full
model's with a KL divergence, at the penultimate and the last layer.
"""

from typing import Dict, List, Sequence

import tensorflow as tf


def cls_kl_divergence(full_states: tf.Tensor,
                      dropped_states: tf.Tensor) -> tf.Tensor:
  """KL(P_full || P_dropped) of the [CLS] states, one per sequence.

  Each [CLS] vector is turned into a distribution by a softmax over the
  hidden dimension, in float32.

  Args:
    full_states: `[batch, seq_len, hidden]` float, a layer's output of the
      full (no dropping) pass.
    dropped_states: the same layer's output of the token-dropping pass
      ([CLS], at position 0, is always kept).

  Returns:
    `[batch]` float32, >= 0 (nats). Gradients flow into both passes, as in
    the authors' code (no stop-gradient on the full pass).
  """
  full = tf.cast(full_states[:, 0, :], tf.float32)
  dropped = tf.cast(dropped_states[:, 0, :], tf.float32)
  log_p = tf.nn.log_softmax(full, axis=-1)
  log_q = tf.nn.log_softmax(dropped, axis=-1)
  return tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1)


def consistency_loss(full_outputs: Dict[str, List[tf.Tensor]],
                     dropped_outputs: Dict[str, List[tf.Tensor]],
                     layers: Sequence[int],
                     weights: Sequence[float],
                     normalizer: tf.Tensor) -> tf.Tensor:
  """`sum_i weights[i] * sum_b KL_i(b) / normalizer`, at the given layers.

  The authors (fairseq) sum each KL over the batch and divide the whole
  criterion, MLM loss included, by the number of masked tokens; added to a
  mean MLM loss, their term is this one with `normalizer` = the number of
  weighted MLM targets. `normalizer` = batch size weights the per-sequence
  mean KL instead.

  Args:
    full_outputs: encoder outputs of the full pass, with `encoder_outputs`
      (one `[batch, seq_len, hidden]` tensor per layer).
    dropped_outputs: the same of the token-dropping pass.
    layers: layer indices into `encoder_outputs`; -2, -1 (the penultimate
      and last) in the paper.
    weights: one weight per layer; 0.05 each in the authors' code.
    normalizer: scalar float32 > 0, what the batch sums are divided by
      (0 gives 0).

  Returns:
    Scalar float32.

  Raises:
    ValueError: `layers` and `weights` differ in length.
  """
  if len(layers) != len(weights):
    raise ValueError(f'ScTD needs one weight per layer: layers={layers}, '
                     f'weights={weights}.')
  total = tf.constant(0.0)
  for layer, weight in zip(layers, weights):
    total += weight * tf.reduce_sum(cls_kl_divergence(
        full_outputs['encoder_outputs'][layer],
        dropped_outputs['encoder_outputs'][layer]))
  return tf.math.divide_no_nan(total, tf.cast(normalizer, tf.float32))
