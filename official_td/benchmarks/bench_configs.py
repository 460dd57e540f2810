"""Model sizes and experiment configs shared by the benchmarks.

Every benchmark variant is `bert/token_drop` with one importance strategy
('baseline' is strategy 'none', 'sctd' is 'dynamic' with ScTD), resized to a
model preset and pointed at a folder made by
`data_prep.create_pretraining_data` (its `metadata.json` gives the vocabulary,
sequence length and targets per sequence).
"""

import os
import re
from typing import Dict, Optional, Sequence

from official.core import config_definitions as cfg
from official.modeling import hyperparams
from official_td.configs import experiments
from official_td.data import json_file

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
  """
  if variant not in VARIANTS:
    raise ValueError(f'Unknown variant {variant!r}; choose from {VARIANTS}.')
  metadata = read_metadata(data_dir)
  config = overridden(config_files, params_override)
  config.task.strategy = {'baseline': 'none',
                          'sctd': 'dynamic'}.get(variant, variant)
  config.task.sctd.enabled = variant == 'sctd'
  config.task.sctd.every_n_steps = sctd_every
  config.task.token_drop.vocab_file = metadata['vocab_file']
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
