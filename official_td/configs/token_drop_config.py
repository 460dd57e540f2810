"""Configuration of token dropping (Hou et al., ACL 2022)."""

import dataclasses
from typing import List

from official.modeling.hyperparams import base_config


@dataclasses.dataclass
class TokenDropConfig(base_config.Config):
  """How the middle layers drop tokens and how importance is scored.

  Attributes:
    keep_ratio: share of each sequence the middle layers process, in (0, 1];
      K = round(keep_ratio * seq_length) per sequence (0.5 in the paper).
    drop_start_layer: the boundary layer (kept tokens attend to all tokens);
      -1 for num_layers / 2 - 1, the paper's default.
    drop_end_layer: the last layer that sees kept tokens only; -1 for
      num_layers - 2, so that the last layer sees all tokens.
    importance_beta: decay of the cumulative-loss moving average (0.995).
    importance_initial_score: every id's starting score (10.0, high so that
      unseen ids count as important).
    vocab_file: the vocabulary the data was tokenized with (WordPiece
      vocab.txt or SentencePiece .model); special-token ids come from it and
      its size must equal the encoder's vocab_size.
    lower_case: whether the WordPiece vocabulary is uncased.
    frequency_file: `token_frequencies.json` of the pretraining data (made by
      `data_prep.create_pretraining_data` or
      `data_prep.count_token_frequencies`); needed by the 'static' strategy.
    seed: seed of the dropping draws (the random tie-break and the 'random'
      strategy). Each step's draws are a stateless function of (seed, step,
      replica): the same seed keeps the same positions, and a resumed run
      draws what the uninterrupted run drew.
  """
  keep_ratio: float = 0.5
  drop_start_layer: int = -1
  drop_end_layer: int = -1
  importance_beta: float = 0.995
  importance_initial_score: float = 10.0
  vocab_file: str = ''
  lower_case: bool = True
  frequency_file: str = ''
  seed: int = 0


@dataclasses.dataclass
class SctdConfig(base_config.Config):
  """Semantic-consistent token dropping (ScTD; Zhong et al., ACL 2023).

  Every `every_n_steps`-th training step also runs the batch through the
  full encoder and adds `sum_i weights[i] * sum_b KL(P_full || P_dropped) / N`
  of the [CLS] states at `layers` (softmax over the hidden dimension, summed
  over the batch b) to the mean MLM loss; other steps are plain
  token-dropping steps.

  The normalizer N decides the strength. The authors' criterion (fairseq)
  sums the MLM loss over masked tokens and the KL over the batch and divides
  the whole by the number of masked tokens, so relative to a mean MLM loss
  their weight is 0.05 / (masked tokens per sequence): at seq_length 128
  with about 20 masked tokens per sequence, 0.0025 per sequence-mean KL,
  20 times weaker than 0.05 on a per-sequence mean.

  Attributes:
    enabled: off in `bert/token_drop`, on in `bert/token_drop_sctd`.
    every_n_steps: F, 10 in the authors' code.
    layers: encoder layer indices (negative from the end): the penultimate
      and the last.
    weights: one per layer, 0.05 each in the authors' code.
    kl_normalization: N above. 'masked_tokens' (the default, the authors'
      effective weighting): the weighted number of MLM targets in the batch
      (sum of `masked_lm_weights`); 'sequences': the batch size, i.e. the
      weights apply to the per-sequence mean KL (20 times stronger at
      seq_length 128).
  """
  enabled: bool = False
  every_n_steps: int = 10
  layers: List[int] = dataclasses.field(default_factory=lambda: [-2, -1])
  weights: List[float] = dataclasses.field(
      default_factory=lambda: [0.05, 0.05])
  kl_normalization: str = 'masked_tokens'


KL_NORMALIZATIONS = ('masked_tokens', 'sequences')
