"""Model sizes and experiment configs shared by the benchmarks.

Every benchmark variant is `bert/token_drop` with one importance strategy
('baseline' is strategy 'none', 'sctd' is 'dynamic' with ScTD), resized to a
model preset and pointed at a folder made by
`data_prep.create_pretraining_data` (its `metadata.json` gives the vocabulary,
sequence length and targets per sequence).
"""

import os
import platform
import re
from typing import Dict, Optional, Sequence

from absl import logging

from official.core import config_definitions as cfg
from official.modeling import hyperparams
from official_td.configs import experiments
from official_td.data import json_file
from official_td.data import vocabulary as vocabulary_lib

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

PRESETS = {
    'L12_H256': dict(num_layers=12, hidden_size=256, num_attention_heads=4,
                     intermediate_size=1024),
    'bert_base': dict(num_layers=12, hidden_size=768, num_attention_heads=12,
                      intermediate_size=3072),
    'L4_H128': dict(num_layers=4, hidden_size=128, num_attention_heads=2,
                    intermediate_size=512),
}
VARIANTS = ('baseline', 'dynamic', 'static', 'random', 'sctd')


def model_size(name: str) -> Dict[str, int]:
  """A preset name or `L{layers}_H{hidden}[_A{heads}][_I{inner}]`.

  Heads default to hidden / 64 (at least 1), the feed-forward size to
  4 * hidden.

  Raises:
    ValueError: a name that is neither.
  """
  if name in PRESETS:
    return dict(PRESETS[name])
  match = re.fullmatch(r'L(\d+)_H(\d+)(?:_A(\d+))?(?:_I(\d+))?', name)
  if not match:
    raise ValueError(f'Unknown model {name!r}: use {sorted(PRESETS)} or '
                     'L{layers}_H{hidden}[_A{heads}][_I{inner}].')
  layers, hidden, heads, inner = match.groups()
  return dict(num_layers=int(layers), hidden_size=int(hidden),
              num_attention_heads=int(heads or max(1, int(hidden) // 64)),
              intermediate_size=int(inner or 4 * int(hidden)))


def read_metadata(data_dir: str) -> Dict[str, object]:
  """`data_dir/metadata.json`, written by `create_pretraining_data`.

  Raises:
    FileNotFoundError: no metadata.json, naming the command that makes it.
  """
  path = os.path.join(data_dir, 'metadata.json')
  return json_file.read(
      path, f'{path} not found: make the data with `python -m '
      'data_prep.create_pretraining_data --output_dir=...`.')


def provenance(data_dir: str) -> Dict[str, object]:
  """What a benchmark's results need to say about where they were measured.

  Minute budgets and absolute losses do not transfer between machines or
  corpus builds (docs/RESULTS.md sections 33 and 37), so every run records
  both beside its figures.

  Returns:
    {'machine': CPU model and core count, 'corpus_sha256': of the corpus
    `data_dir` was made from (None for data made before it was recorded),
    'train_sequences': int}.
  """
  metadata = read_metadata(data_dir)
  return dict(machine=machine_description(),
              corpus_sha256=metadata.get('corpus_sha256'),
              train_sequences=metadata.get('train_sequences'))


def machine_description() -> str:
  """'<CPU model name>, <n> cores' from /proc/cpuinfo where there is one."""
  model = platform.processor() or platform.machine()
  if os.path.exists('/proc/cpuinfo'):
    with open('/proc/cpuinfo') as f:
      names = [line.split(':', 1)[1].strip() for line in f
               if line.startswith('model name')]
    model = names[0] if names else model
  return f'{model}, {os.cpu_count()} cores'


def data_vocab_file(metadata: Dict[str, object], data_dir: str) -> str:
  """The vocabulary `data_dir` was tokenized with, found by content if moved.

  `metadata.json` records the vocabulary's absolute path and SHA-256. A data
  folder outlives the checkout that made it (moved, symlinked into another
  worktree, copied to another machine), so when the recorded path is gone,
  `data_dir/vocab.txt` or the repository's default vocabulary is used if its
  SHA-256 is the recorded one.

  Args:
    metadata: `read_metadata(data_dir)`.
    data_dir: the folder `metadata` was read from.

  Returns:
    A path to a vocabulary file with the data's SHA-256.

  Raises:
    FileNotFoundError: the recorded path is gone and no candidate matches,
      naming the path, the SHA-256 and the fix.
  """
  recorded = metadata['vocab_file']
  if os.path.exists(recorded):
    return recorded
  candidates = (os.path.join(data_dir, 'vocab.txt'),
                os.path.join(_REPO, experiments.DEFAULT_VOCAB))
  for candidate in candidates:
    if (os.path.exists(candidate) and vocabulary_lib.Vocabulary(
        candidate).fingerprint == metadata.get('vocab_sha256')):
      logging.warning('%s/metadata.json names %s, which is gone; using %s, '
                      'which has the same SHA-256.', data_dir, recorded,
                      candidate)
      return candidate
  raise FileNotFoundError(
      f'{data_dir}/metadata.json says the data was tokenized with {recorded}, '
      f'which does not exist, and neither {" nor ".join(candidates)} has its '
      f'SHA-256 ({metadata.get("vocab_sha256")}). Copy that vocabulary to '
      f'{candidates[0]}.')


def overridden(config_files: Sequence[str] = (),
               params_override: str = '') -> cfg.ExperimentConfig:
  """`bert/token_drop` with YAML `config_files`, then `params_override`.

  Raises:
    tf.errors.NotFoundError: a config file is missing.
    KeyError: an override names a key the experiment does not have.
  """
  config = experiments.bert_token_drop()
  for path in config_files:
    config = hyperparams.override_params_dict(config, path, is_strict=True)
  if params_override:
    config = hyperparams.override_params_dict(config, params_override,
                                              is_strict=True)
  return config


def experiment(variant: str, size: Optional[Dict[str, int]], data_dir: str,
               batch_size: int, sctd_every: int = 10,
               config_files: Sequence[str] = (),
               params_override: str = '') -> cfg.ExperimentConfig:
  """The experiment config of one variant at one model size on `data_dir`.

  Args:
    variant: one of VARIANTS.
    size: encoder sizes (`model_size`); None keeps the config's.
    data_dir: TFRecords and metadata.json; sets the data, vocabulary and
      frequency file.
    batch_size: the global batch.
    sctd_every: ScTD's consistency step interval.
    config_files: YAML overrides of `bert/token_drop`, applied first.
    params_override: overrides applied after the files.

  Raises:
    ValueError: an unknown variant.
    FileNotFoundError: no metadata.json, or the data's vocabulary is gone
      (`data_vocab_file`).
  """
  if variant not in VARIANTS:
    raise ValueError(f'Unknown variant {variant!r}; choose from {VARIANTS}.')
  metadata = read_metadata(data_dir)
  config = overridden(config_files, params_override)
  config.task.strategy = {'baseline': 'none',
                          'sctd': 'dynamic'}.get(variant, variant)
  config.task.sctd.enabled = variant == 'sctd'
  config.task.sctd.every_n_steps = sctd_every
  config.task.token_drop.vocab_file = data_vocab_file(metadata, data_dir)
  config.task.token_drop.frequency_file = os.path.join(
      data_dir, 'token_frequencies.json')
  bert = config.task.model.encoder.bert
  if size:
    bert.override(size)
    bert.max_position_embeddings = max(metadata['seq_length'], 128)
  bert.vocab_size = metadata['vocab_size']
  for data, split in ((config.task.train_data, 'train'),
                      (config.task.validation_data, 'valid')):
    data.input_path = os.path.join(data_dir, f'{split}-*.tfrecord')
    data.global_batch_size = batch_size
    data.seq_length = metadata['seq_length']
    data.max_predictions_per_seq = metadata['max_predictions_per_seq']
  return config
