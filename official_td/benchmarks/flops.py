"""A FLOP model of a BERT pretraining step, with and without token dropping.

Counts multiply-adds as 2 FLOPs and a training step as 3 forward passes
(forward, and a backward of twice the forward), the usual approximation
(Kaplan et al. 2020). Per sequence of L tokens, hidden size H, feed-forward
size I, with queries from n_q tokens attending to n_kv tokens, a Transformer
layer costs
  projections  2 H^2 (2 n_q + 2 n_kv)     Q and output on queries, K and V
                                          on keys/values
  attention    4 n_q n_kv H               scores and the weighted sum
  feed-forward 4 n_q H I
With token dropping (Hou et al. 2022) the boundary layer has n_q = K,
n_kv = L, the kept-only layers n_q = n_kv = K, the others L. The MLM head
costs 2 H^2 + 2 H V per prediction (transform and tied output layer). The
embeddings cost 9 H per token, all tokens in both cases: summing the word,
position and type embeddings (2 H) and their layer norm (7 H); the look-ups
themselves are memory reads, not FLOPs.
Layer norms and softmaxes inside the layers, the importance update and the
optimizer are left out: they are memory-bound and small in FLOPs (the
optimizer's ~12 FLOPs per parameter are 0.05% of a step at L12_H256), though
not in time; `RESULTS.md` measures what they cost.
"""

import dataclasses
from typing import Dict, Optional

from official_td.modeling import token_drop_encoder


_EMBEDDING_FLOPS_PER_TOKEN_PER_HIDDEN = 9  # sum of 3 embeddings + layer norm


@dataclasses.dataclass(frozen=True)
class ModelSize:
  """What the FLOP count depends on."""
  num_layers: int
  hidden_size: int
  intermediate_size: int
  vocab_size: int
  seq_length: int
  max_predictions_per_seq: int


def layer_flops(n_queries: int, n_keys: int, hidden: int,
                intermediate: int) -> int:
  """Forward FLOPs of one Transformer layer for one sequence."""
  projections = 2 * hidden * hidden * (2 * n_queries + 2 * n_keys)
  attention = 4 * n_queries * n_keys * hidden
  feed_forward = 4 * n_queries * hidden * intermediate
  return projections + attention + feed_forward


def training_step_flops(size: ModelSize, batch_size: int,
                        keep_ratio: Optional[float] = None,
                        drop_start_layer: int = -1,
                        drop_end_layer: int = -1) -> Dict[str, int]:
  """Training-step FLOPs by part; `keep_ratio=None` is the baseline.

  Returns:
    {'embeddings': ..., 'encoder': ..., 'mlm_head': ..., 'total': ...} for
    the whole batch.
  """
  length = size.seq_length
  layers = [(length, length)] * size.num_layers
  if keep_ratio is not None:
    kept = token_drop_encoder.num_kept_tokens(length, keep_ratio)
    start, end = token_drop_encoder.resolve_layer_split(
        size.num_layers, drop_start_layer, drop_end_layer)
    layers[start] = (kept, length)
    for i in range(start + 1, end + 1):
      layers[i] = (kept, kept)
  encoder = sum(layer_flops(q, k, size.hidden_size, size.intermediate_size)
                for q, k in layers)
  mlm_head = size.max_predictions_per_seq * (
      2 * size.hidden_size ** 2 + 2 * size.hidden_size * size.vocab_size)
  embeddings = _EMBEDDING_FLOPS_PER_TOKEN_PER_HIDDEN * length * size.hidden_size
  forward = {'embeddings': embeddings, 'encoder': encoder,
             'mlm_head': mlm_head}
  step = {k: 3 * v * batch_size for k, v in forward.items()}
  step['total'] = sum(step.values())
  return step


def theoretical_ratio(size: ModelSize, keep_ratio: float = 0.5,
                      drop_start_layer: int = -1,
                      drop_end_layer: int = -1) -> float:
  """Token-dropping step FLOPs / baseline step FLOPs."""
  dropped = training_step_flops(size, 1, keep_ratio, drop_start_layer,
                                drop_end_layer)['total']
  return dropped / training_step_flops(size, 1)['total']
