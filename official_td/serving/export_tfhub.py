r"""Exports a pretraining checkpoint as TF Hub BERT SavedModels.

  python -m official_td.serving.export_tfhub --model_dir=runs/token_drop \
      --export_dir=exports/token_drop [--checkpoint=runs/token_drop/ckpt-1500]

writes, with the Model Garden's `export_tfhub_lib`:
  EXPORT_DIR/encoder        the full encoder (no dropping: a token-dropping
                            checkpoint is an ordinary BERT) with the TF Hub
                            BERT interface: inputs `input_word_ids`,
                            `input_mask`, `input_type_ids` `[batch, seq_len]`
                            int32; outputs `pooled_output` `[batch, hidden]`,
                            `sequence_output` `[batch, seq_len, hidden]`,
                            `encoder_outputs` (one per layer), `default`; an
                            `mlm` sub-model taking `masked_lm_positions` and
                            returning `mlm_logits`; the vocabulary as an asset.
  EXPORT_DIR/preprocessing  raw strings in: `tokenize` and `bert_pack_inputs`
                            (tensorflow-text tokenizer with the same
                            vocabulary); calling it packs one segment to
                            `seq_length`.

The pooler behind `pooled_output` is not trained by MLM-only pretraining
(there is no next-sentence head); the export logs a warning saying so, and
`pooler_note` gives the sentence. Fine-tune it with the classifier, or use
`sequence_output[:, 0]`; do not use `pooled_output` frozen.

The experiment config is read from MODEL_DIR/params.yaml (written by
train.py). Before anything is written the checkpoint is checked against the
config and the vocabulary, so a mismatch fails with a message naming it.
"""

import os
from typing import Optional

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams
from official.nlp.configs import encoders
from official.nlp.tools import export_tfhub_lib
from official_td import registry_imports  # pylint: disable=unused-import
from official_td.data import vocabulary as vocabulary_lib
from official_td.tasks import input_checks

def read_experiment_config(model_dir: str) -> cfg.ExperimentConfig:
  """Reads MODEL_DIR/params.yaml into a token-dropping experiment config.

  Raises:
    FileNotFoundError: there is no params.yaml.
  """
  path = os.path.join(model_dir, 'params.yaml')
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f'{path} does not exist: point --model_dir at a '
                            'folder train.py wrote, or pass --params_yaml.')
  return hyperparams.override_params_dict(
      exp_factory.get_exp_config('bert/token_drop'), path, is_strict=True)


def pooler_note(config: cfg.ExperimentConfig) -> str:
  """What the pooler (`pooled_output`'s dense layer) holds after pretraining.

  Token-dropping pretraining is MLM only (the task refuses `cls_heads` and
  next-sentence labels), so the pooler gets no gradient and keeps the
  weights it started with: random, or those of `task.init_checkpoint` when
  pretraining continued an existing BERT.

  Args:
    config: the run's experiment config (`read_experiment_config`).

  Returns:
    One sentence for logs and model cards.
  """
  init = config.task.init_checkpoint
  start = (f'the weights of task.init_checkpoint ({init})' if init
           else 'its random initial weights')
  return ('The pooler (the dense layer behind pooled_output) is not trained '
          'by MLM-only pretraining and holds ' + start + ': fine-tune it with '
          'the classifier or use the [CLS] vector of sequence_output; do not '
          'use pooled_output frozen.')


def export(model_dir: str, export_dir: str,
           checkpoint: Optional[str] = None,
           vocab_file: Optional[str] = None) -> str:
  """Writes EXPORT_DIR/encoder and EXPORT_DIR/preprocessing; returns the ckpt.

  Args:
    model_dir: a train.py model_dir (for params.yaml and the latest
      checkpoint).
    export_dir: where the two SavedModels go.
    checkpoint: a checkpoint path; default the latest in `model_dir`.
    vocab_file: default the config's `task.token_drop.vocab_file`.

  Raises:
    FileNotFoundError: no checkpoint or params.yaml.
    ValueError: the checkpoint does not match the config or vocabulary.
  """
  config = read_experiment_config(model_dir)
  checkpoint = checkpoint or tf.train.latest_checkpoint(model_dir)
  if not checkpoint:
    raise FileNotFoundError(f'No checkpoint in {model_dir}.')
  drop = config.task.token_drop
  vocab = vocabulary_lib.Vocabulary(vocab_file or drop.vocab_file,
                                    lower_case=drop.lower_case)
  encoder = config.task.model.encoder
  input_checks.check_checkpoint_matches(
      checkpoint, encoder, vocab,
      fix='Export with the config the checkpoint was trained with.')
  vocab_kwargs = dict(do_lower_case=vocab.lower_case, **(
      dict(sp_model_file=vocab.path) if vocab.is_sentencepiece
      else dict(vocab_file=vocab.path)))
  export_tfhub_lib.export_model(
      os.path.join(export_dir, 'encoder'),
      encoder_config=encoders.EncoderConfig(type='bert_v2',
                                            bert_v2=encoder.get()),
      model_checkpoint_path=checkpoint, with_mlm=True, **vocab_kwargs)
  export_tfhub_lib.export_preprocessing(
      os.path.join(export_dir, 'preprocessing'),
      tokenize_with_offsets=False,
      default_seq_length=config.task.train_data.seq_length,
      **vocab_kwargs)
  logging.info('Exported %s to %s/{encoder,preprocessing}.', checkpoint,
               export_dir)
  logging.warning(pooler_note(config))
  return checkpoint


def main(_):
  flags_ = flags.FLAGS
  export(flags_.model_dir, flags_.export_dir, flags_.checkpoint,
         flags_.vocab_file)


if __name__ == '__main__':
  flags.DEFINE_string('model_dir', None, 'A train.py --model_dir.')
  flags.DEFINE_string('export_dir', None, 'Where the SavedModels go.')
  flags.DEFINE_string('checkpoint', None, 'Default: latest in model_dir.')
  flags.DEFINE_string('vocab_file', None, 'Default: the config\'s.')
  flags.mark_flags_as_required(['model_dir', 'export_dir'])
  app.run(main)
