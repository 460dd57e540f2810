"""Two-phase pretraining: shorter sequences first, as BERT does.

BERT (Devlin et al., NAACL 2019, appendix A.2) trains 90% of its steps on
sequences of 128 tokens and the rest on 512; DeepSpeed's sequence-length
warm-up (Li et al., NeurIPS 2022, arXiv 2108.06084) grows the length during
training. On small budgets the short phase is what leaves the unigram
plateau: a 4-layer model on 32-token sequences learns local context within a
few hundred steps, where the same model on 128 tokens spends thousands of
steps averaging the whole sequence (docs/RESULTS.md section 12).
"""

import dataclasses

from official.modeling.hyperparams import base_config
from official.nlp.data import pretrain_dataloader


@dataclasses.dataclass
class ShortSequencePhaseConfig(base_config.Config):
  """The first `steps` training steps read `data` instead of `train_data`.

  The learning-rate schedule, the optimizer state and the importance table
  run on across the change; validation always reads `validation_data`, at
  full length. Token dropping keeps K = round(keep_ratio * seq_length) of
  each phase's own sequence length.

  Attributes:
    steps: training steps on the short sequences; 0 turns the phase off.
    data: the short-sequence data, TFRecords made by
      `data_prep.create_pretraining_data --seq_length=S
      --max_predictions_per_seq=P` with S <= the encoder's
      `max_position_embeddings` (positions beyond S are trained in the
      second phase). Keeping `seq_length * global_batch_size` equal to the
      second phase's keeps the tokens per step, and so the step time, about
      the same.
  """
  steps: int = 0
  data: pretrain_dataloader.BertPretrainDataConfig = dataclasses.field(
      default_factory=lambda: pretrain_dataloader.BertPretrainDataConfig(
          is_training=True, use_next_sentence_label=False, seq_length=32,
          max_predictions_per_seq=13, global_batch_size=128,
          # A fixed order, so that a resumed run continues the same stream.
          seed=1))
