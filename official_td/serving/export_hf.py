r"""Exports a pretraining run as a Hugging Face transformers BERT folder.

  python3 -m official_td.serving.export_hf --model_dir=runs/token_drop \
      --export_dir=exports/token_drop/hf [--checkpoint=runs/token_drop/ckpt-1500]

writes EXPORT_DIR with what `transformers.AutoModelForMaskedLM`, `AutoModel`
and `AutoTokenizer.from_pretrained(EXPORT_DIR)` load with no other step:
  config.json              sizes from the run's params.yaml; `hidden_act` the
                           activation the Model Garden computed (its 'gelu' is
                           transformers' 'gelu_new'); `layer_norm_eps` 1e-12
  model.safetensors        float32: embeddings, every layer, pooler and the MLM
                           head, its output bias included (`cls.predictions.*`)
  vocab.txt, tokenizer_config.json, special_tokens_map.json
                           a `BertTokenizer` on the run's WordPiece vocabulary,
                           lower-casing as in pretraining
  README.md                a model card: config, strategy, steps, the last
                           validation MLM figures of the run, and what the
                           (untrained) pooler holds
A token-dropping checkpoint is an ordinary BERT: the importance table is not
part of the model and is not exported. Works for any strategy, the baseline
and ScTD. The checkpoint is checked against params.yaml and the vocabulary
before anything is written, and the folder appears whole or not at all.
"""

import json
import os
import shutil
import tempfile
from typing import Dict, Optional

from absl import app
from absl import flags
from absl import logging
import numpy as np
from safetensors import numpy as safetensors_numpy
import tensorflow as tf

from official.core import config_definitions as cfg
from official_td import registry_imports  # pylint: disable=unused-import
from official_td.data import vocabulary as vocabulary_lib
from official_td.serving import export_tfhub
from official_td.serving import hf_weights
from official_td.tasks import input_checks

WEIGHTS_FILE = 'model.safetensors'


def export(model_dir: str, export_dir: str,
           checkpoint: Optional[str] = None) -> str:
  """Writes the transformers folder EXPORT_DIR; returns the checkpoint used.

  Args:
    model_dir: a train.py model_dir (params.yaml, checkpoints).
    export_dir: the folder to write; it must not exist yet.
    checkpoint: a checkpoint path; default the newest in `model_dir`.

  Raises:
    FileNotFoundError: no params.yaml or checkpoint.
    FileExistsError: `export_dir` exists.
    ValueError: the checkpoint does not match the config or vocabulary, the
      vocabulary is SentencePiece, or the model is not a BERT transformers
      can express (pre-LayerNorm, embedding projection, another activation).
  """
  config = export_tfhub.read_experiment_config(model_dir)
  checkpoint = checkpoint or tf.train.latest_checkpoint(model_dir)
  if not checkpoint:
    raise FileNotFoundError(f'No checkpoint in {model_dir}.')
  if tf.io.gfile.exists(export_dir):
    raise FileExistsError(f'{export_dir} exists; pass a new --export_dir.')
  drop = config.task.token_drop
  vocab = vocabulary_lib.Vocabulary(drop.vocab_file, lower_case=drop.lower_case)
  if vocab.is_sentencepiece:
    raise ValueError(
        f'{vocab.path} is a SentencePiece model; transformers\' BertTokenizer '
        'needs a WordPiece vocab.txt. Pretrain with a WordPiece vocabulary '
        '(data_prep.build_vocab --type=wordpiece), or export the encoder '
        'with export_tfhub and tokenize with the SentencePiece model.')
  model_config = config.task.model
  input_checks.check_checkpoint_matches(
      checkpoint, model_config.encoder, vocab,
      fix='Export with the config the checkpoint was trained with.')
  hf_config = hf_weights.hf_config(model_config, vocab.special_ids.pad)
  pretrainer = hf_weights.build_pretrainer(model_config)
  tf.train.Checkpoint(**pretrainer.checkpoint_items).read(
      checkpoint).expect_partial().assert_existing_objects_matched()
  tensors = {pair.hf_name: pair.to_hf() for pair in hf_weights.weight_pairs(
      pretrainer.encoder_network, pretrainer.masked_lm)}
  parent = os.path.dirname(os.path.abspath(export_dir))
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix='.export_hf_', dir=parent)
  try:
    _write_folder(staging, hf_config, tensors, vocab, config, model_dir,
                  checkpoint)
    os.rename(staging, export_dir)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  logging.info('Exported %s to %s (transformers BertForMaskedLM).',
               checkpoint, export_dir)
  logging.warning(export_tfhub.pooler_note(config))
  return checkpoint


def _write_folder(folder: str, hf_config: Dict, tensors: Dict[str, np.ndarray],
                  vocab: vocabulary_lib.Vocabulary,
                  config: cfg.ExperimentConfig, model_dir: str,
                  checkpoint: str) -> None:
  _write_json(os.path.join(folder, 'config.json'), hf_config)
  safetensors_numpy.save_file(tensors, os.path.join(folder, WEIGHTS_FILE),
                              metadata={'format': 'pt'})
  shutil.copyfile(vocab.path, os.path.join(folder, 'vocab.txt'))
  special = {'unk_token': '[UNK]', 'sep_token': '[SEP]', 'pad_token': '[PAD]',
             'cls_token': '[CLS]', 'mask_token': '[MASK]'}
  _write_json(os.path.join(folder, 'special_tokens_map.json'), special)
  _write_json(os.path.join(folder, 'tokenizer_config.json'), {
      'tokenizer_class': 'BertTokenizer',
      'do_lower_case': vocab.lower_case,
      # As tensorflow-text's BertTokenizer: accents stripped when lower-casing.
      'strip_accents': None,
      'tokenize_chinese_chars': True,
      'model_max_length': config.task.train_data.seq_length,
      **special})
  with open(os.path.join(folder, 'README.md'), 'w') as f:
    f.write(model_card(config, model_dir, checkpoint))


def _write_json(path: str, value) -> None:
  with open(path, 'w') as f:
    json.dump(value, f, indent=2, sort_keys=True)
    f.write('\n')


def model_card(config: cfg.ExperimentConfig, model_dir: str,
               checkpoint: str) -> str:
  """A short README.md: how the model was pretrained and how far it got."""
  task = config.task
  bert = task.model.encoder.get()
  strategy = task.strategy + (' + ScTD' if task.sctd.enabled else '')
  evaluation = _last_validation(model_dir)
  lines = [
      '---', 'library_name: transformers', 'pipeline_tag: fill-mask', '---',
      '', '# BERT pretrained with token dropping', '',
      'Pretrained with the Model Garden token-dropping trainer '
      '(Hou et al., ACL 2022, arXiv 2203.13240) and exported by '
      '`official_td.serving.export_hf`. The encoder is an ordinary BERT: '
      'token dropping only changes pretraining.', '',
      '| setting | value |', '|---|---|',
      f'| checkpoint | `{os.path.basename(checkpoint)}` |',
      f'| importance strategy | {strategy} |',
      f'| keep ratio | {task.token_drop.keep_ratio} |',
      f'| layers / hidden / heads / intermediate | {bert.num_layers} / '
      f'{bert.hidden_size} / {bert.num_attention_heads} / '
      f'{bert.intermediate_size} |',
      f'| vocabulary | {bert.vocab_size} ids |',
      f'| sequence length | {task.train_data.seq_length} |',
      f'| global batch | {task.train_data.global_batch_size} |',
      f'| train steps | {config.trainer.train_steps} |',
      f'| peak learning rate | '
      f'{config.trainer.optimizer_config.learning_rate.get().initial_learning_rate} |',
  ]
  if evaluation:
    lines.append(f'| validation MLM (step {evaluation["step"]}) | loss '
                 f'{evaluation["loss"]:.3f}, accuracy '
                 f'{evaluation["accuracy"]:.3f} |')
  else:
    lines.append('| validation MLM | not recorded in the run\'s summaries |')
  lines += ['', export_tfhub.pooler_note(config)]
  return '\n'.join(lines) + '\n'


def _last_validation(model_dir: str) -> Optional[Dict]:
  """The newest validation MLM loss and accuracy in the run's summaries."""
  found = {}
  for path in tf.io.gfile.glob(os.path.join(model_dir, 'validation',
                                            'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag in ('validation_loss', 'masked_lm_accuracy'):
          number = float(tf.make_ndarray(value.tensor)) if value.HasField(
              'tensor') else value.simple_value
          found.setdefault(event.step, {})[value.tag] = number
  complete = [s for s, v in found.items() if len(v) == 2]
  if not complete:
    return None
  step = max(complete)
  return {'step': step, 'loss': found[step]['validation_loss'],
          'accuracy': found[step]['masked_lm_accuracy']}


def main(_):
  flags_ = flags.FLAGS
  export(flags_.model_dir, flags_.export_dir, flags_.checkpoint)


if __name__ == '__main__':
  flags.DEFINE_string('model_dir', None, 'A train.py --model_dir.')
  flags.DEFINE_string('export_dir', None, 'The folder to write (new).')
  flags.DEFINE_string('checkpoint', None, 'Default: newest in model_dir.')
  flags.mark_flags_as_required(['model_dir', 'export_dir'])
  app.run(main)
