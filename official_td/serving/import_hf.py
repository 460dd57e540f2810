r"""Imports a Hugging Face transformers BERT to continue pretraining it.

  python3 -m official_td.serving.import_hf --hf_dir=PATH/TO/BERT \
      --output_dir=imports/my_bert

reads a transformers BERT folder (`config.json`; `model.safetensors`, or
`pytorch_model.bin` with PyTorch installed; `vocab.txt`; `tokenizer_config.
json` for `do_lower_case`) and writes OUTPUT_DIR, a model_dir at step 0:
  ckpt-0.*, checkpoint   the encoder and MLM head as train.py's checkpoints
                         hold them: `task.init_checkpoint=OUTPUT_DIR` loads it
  vocab.txt              the model's vocabulary (make your TFRecords with it)
  continue_pretraining.yaml
                         a `--config_file` for train.py: the model's sizes,
                         activation (kept exact: transformers' 'gelu' is the
                         erf form, not the Model Garden's 'gelu'), dropout,
                         vocabulary, lower-casing, `init_checkpoint` and a
                         continued-pretraining peak learning rate of 1e-4
  params.yaml            the whole experiment config, so that
                         `export_hf --model_dir=OUTPUT_DIR` exports it back
A folder without an MLM head (a `BertModel`, e.g. a sentence encoder) gets a
freshly initialised one, and the log says which weights were made fresh.
Then, e.g. (README, "Continue pretraining a transformers BERT"):

  python3 train.py --experiment=bert/token_drop --mode=train_and_eval \
      --model_dir=runs/my_bert_td \
      --config_file=imports/my_bert/continue_pretraining.yaml \
      --params_override=task.train_data.input_path=my_data/train-*,...
"""

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Dict, List

from absl import app
from absl import flags
from absl import logging
import numpy as np
from safetensors import numpy as safetensors_numpy
import tensorflow as tf
import yaml

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.core import train_utils
from official.nlp.configs import bert as bert_configs
from official.nlp.configs import encoders
from official_td import registry_imports  # pylint: disable=unused-import
from official_td.data import vocabulary as vocabulary_lib
from official_td.serving import hf_weights

CONFIG_FILE = 'continue_pretraining.yaml'
# Entries of a transformers state dict that carry no weight of their own.
_NOT_WEIGHTS = ('bert.embeddings.position_ids',
                'cls.predictions.decoder.weight',  # tied to word embeddings
                'cls.predictions.decoder.bias')  # tied to cls.predictions.bias


@dataclasses.dataclass
class ImportResult:
  """What `import_model` wrote and what it could not take from the folder.

  Attributes:
    checkpoint: the checkpoint prefix (OUTPUT_DIR/ckpt-0).
    config_file: OUTPUT_DIR/continue_pretraining.yaml.
    fresh: transformers names of the weights initialised fresh (the MLM
      head, if the folder has none).
    ignored: names in the folder that a BERT MLM pretrainer has no use for
      (e.g. a next-sentence head).
  """
  checkpoint: str
  config_file: str
  fresh: List[str]
  ignored: List[str]


def read_weights(hf_dir: str) -> Dict[str, np.ndarray]:
  """The folder's weights as float32 arrays, named as in `BertForMaskedLM`.

  Names without the `bert.`/`cls.` prefix (a `BertModel`) get `bert.`;
  the old `LayerNorm.gamma`/`beta` become `weight`/`bias`.

  Raises:
    FileNotFoundError: neither model.safetensors nor pytorch_model.bin.
    ImportError: only pytorch_model.bin, and PyTorch is not installed.
  """
  safetensors_path = os.path.join(hf_dir, 'model.safetensors')
  torch_path = os.path.join(hf_dir, 'pytorch_model.bin')
  if os.path.exists(safetensors_path):
    raw = safetensors_numpy.load_file(safetensors_path)
  elif os.path.exists(torch_path):
    try:
      import torch  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise ImportError(
          f'{torch_path} is a PyTorch pickle; install torch to read it, or '
          'save the model with safetensors (model.save_pretrained(DIR)).'
      ) from None
    state = torch.load(torch_path, map_location='cpu', weights_only=True)
    raw = {name: value.float().numpy() for name, value in state.items()}
  else:
    raise FileNotFoundError(f'{hf_dir} has neither model.safetensors nor '
                            'pytorch_model.bin.')
  weights = {}
  for name, value in raw.items():
    if not name.startswith(('bert.', 'cls.')):
      name = 'bert.' + name
    name = name.replace('LayerNorm.gamma', 'LayerNorm.weight').replace(
        'LayerNorm.beta', 'LayerNorm.bias')
    weights[name] = np.asarray(value, np.float32)
  return weights


def _read_json(path: str, required: bool = True) -> Dict:
  if not os.path.exists(path):
    if required:
      raise FileNotFoundError(f'{path} does not exist: --hf_dir must be a '
                              'transformers model folder.')
    return {}
  with open(path) as f:
    return json.load(f)


def experiment_config(bert: encoders.BertEncoderConfig, vocab_file: str,
                      lower_case: bool, init_checkpoint: str
                      ) -> cfg.ExperimentConfig:
  """`bert/token_drop` with the imported model's encoder and vocabulary."""
  config = exp_factory.get_exp_config('bert/token_drop')
  config.task.model = bert_configs.PretrainerConfig(
      encoder=encoders.EncoderConfig(type='bert', bert=bert),
      mlm_activation=bert.hidden_activation, cls_heads=[])
  config.task.token_drop.vocab_file = vocab_file
  config.task.token_drop.lower_case = lower_case
  config.task.init_checkpoint = init_checkpoint
  return config


# Peak learning rate for continued pretraining: BERT-style models are
# further pretrained at about 1e-4 (the defaults' 1e-3 suits a small model
# from scratch and would undo much of a pretrained one).
CONTINUE_LEARNING_RATE = 1e-4


def continue_pretraining_overrides(config: cfg.ExperimentConfig) -> Dict:
  """What a `--config_file` must set to continue pretraining the import."""
  task = config.task
  return {
      'task': {
          'init_checkpoint': task.init_checkpoint,
          'model': {'encoder': task.model.encoder.as_dict(),
                    'mlm_activation': task.model.mlm_activation},
          'token_drop': {'vocab_file': task.token_drop.vocab_file,
                         'lower_case': task.token_drop.lower_case},
      },
      'trainer': {'optimizer_config': {'learning_rate': {'polynomial': {
          'initial_learning_rate': CONTINUE_LEARNING_RATE}}}},
  }


def import_model(hf_dir: str, output_dir: str) -> ImportResult:
  """Writes OUTPUT_DIR (see the module docstring) from a transformers BERT.

  Args:
    hf_dir: a transformers BERT folder.
    output_dir: the folder to write; it must not exist yet.

  Raises:
    FileNotFoundError: a file the folder must have is missing (named).
    FileExistsError: `output_dir` exists.
    ValueError: the model is not a BERT our encoder reproduces (the setting
      is named), its vocabulary size differs from config.json's, or an
      encoder weight is missing or has another shape (named).
  """
  if os.path.exists(output_dir):
    raise FileExistsError(f'{output_dir} exists; pass a new --output_dir.')
  config_path = os.path.join(hf_dir, 'config.json')
  bert = hf_weights.bert_config(_read_json(config_path), config_path)
  lower_case = _read_json(os.path.join(hf_dir, 'tokenizer_config.json'),
                          required=False).get('do_lower_case', True)
  vocab = vocabulary_lib.Vocabulary(os.path.join(hf_dir, 'vocab.txt'),
                                    lower_case=lower_case)
  if vocab.size != bert.vocab_size:
    raise ValueError(f'{vocab.path} has {vocab.size} tokens but '
                     f'{config_path} says vocab_size={bert.vocab_size}.')
  output_dir = os.path.abspath(output_dir)
  config = experiment_config(bert, os.path.join(output_dir, 'vocab.txt'),
                             lower_case, output_dir)
  pretrainer = hf_weights.build_pretrainer(config.task.model)
  fresh, ignored = _assign(pretrainer, read_weights(hf_dir), hf_dir)
  if fresh:
    logging.warning('%s has no MLM head: initialised fresh: %s', hf_dir,
                    ', '.join(fresh))
  if ignored:
    logging.warning('Not used (no such weight in a BERT MLM pretrainer): %s',
                    ', '.join(ignored))
  os.makedirs(os.path.dirname(output_dir), exist_ok=True)
  staging = tempfile.mkdtemp(prefix='.import_hf_',
                             dir=os.path.dirname(output_dir))
  try:
    checkpoint = tf.train.Checkpoint(**pretrainer.checkpoint_items)
    tf.train.CheckpointManager(checkpoint, staging, max_to_keep=1).save(
        checkpoint_number=0)
    shutil.copyfile(vocab.path, os.path.join(staging, 'vocab.txt'))
    train_utils.serialize_config(config, staging)
    with open(os.path.join(staging, CONFIG_FILE), 'w') as f:
      f.write(f'# Continue pretraining {os.path.abspath(hf_dir)}: pass as '
              'train.py --config_file.\n')
      yaml.safe_dump(continue_pretraining_overrides(config), f,
                     sort_keys=False)
    os.rename(staging, output_dir)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  logging.info('Imported %s to %s.', hf_dir, output_dir)
  return ImportResult(checkpoint=os.path.join(output_dir, 'ckpt-0'),
                      config_file=os.path.join(output_dir, CONFIG_FILE),
                      fresh=fresh, ignored=ignored)


def _assign(pretrainer, weights: Dict[str, np.ndarray], hf_dir: str):
  """Sets the pretrainer's weights; returns (fresh, ignored) names."""
  fresh, used = [], set(_NOT_WEIGHTS)
  for pair in hf_weights.weight_pairs(pretrainer.encoder_network,
                                      pretrainer.masked_lm):
    if pair.hf_name in weights:
      pair.assign_from_hf(weights[pair.hf_name])
      used.add(pair.hf_name)
    elif pair.hf_name.startswith(hf_weights.MLM_HEAD_PREFIX):
      fresh.append(pair.hf_name)
    else:
      raise ValueError(f'{hf_dir} has no {pair.hf_name}: not a complete '
                       'BERT encoder.')
  decoder = weights.get('cls.predictions.decoder.weight')
  if decoder is not None and not np.array_equal(
      decoder, weights['bert.embeddings.word_embeddings.weight']):
    raise ValueError(f'{hf_dir} has an MLM output layer not tied to the word '
                     'embeddings; the Model Garden BERT ties them.')
  return fresh, sorted(set(weights) - used)


def main(_):
  result = import_model(flags.FLAGS.hf_dir, flags.FLAGS.output_dir)
  print(f'Continue pretraining with --config_file={result.config_file}')


if __name__ == '__main__':
  flags.DEFINE_string('hf_dir', None, 'A transformers BERT folder.')
  flags.DEFINE_string('output_dir', None, 'The folder to write (new).')
  flags.mark_flags_as_required(['hf_dir', 'output_dir'])
  app.run(main)
