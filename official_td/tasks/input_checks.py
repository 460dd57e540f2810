"""Checks that make a pretraining config that cannot work fail before training.

Each check raises with a message that names the setting or file at fault and
how to fix it.
"""

import json
import os
import re
from typing import Dict, List, Optional

import tensorflow as tf

from official.nlp.configs import encoders
from official_td.configs import token_drop_config
from official_td.data import vocabulary as vocabulary_lib
from official_td.modeling import token_drop_encoder


def check_input_files(input_path: str, setting: str) -> List[str]:
  """Returns the files matched by a (comma-separated) glob `input_path`.

  Raises:
    FileNotFoundError: a pattern matches no file.
    ValueError: `input_path` is empty or a matched file is empty.
  """
  if not input_path:
    raise ValueError(f'{setting} is empty: set it to the pretraining '
                     'TFRecords (for example data/default/train-*.tfrecord).')
  files = []
  for pattern in input_path.split(','):
    matched = tf.io.gfile.glob(pattern.strip())
    if not matched:
      raise FileNotFoundError(
          f'{setting}={pattern!r} matches no file. Create the data with '
          '`python -m data_prep.create_pretraining_data` or fix the path.')
    for path in matched:
      if tf.io.gfile.stat(path).length == 0:
        raise ValueError(f'Input file {path!r} ({setting}) is empty; '
                         're-create it.')
    files.extend(matched)
  for path in files[:_FILES_READ]:
    _check_first_record(path, setting)
  return files


# Reading the first record of every shard of a large corpus on remote storage
# would delay the start; the first few catch a wrong pattern or format.
_FILES_READ = 32


def _check_first_record(path: str, setting: str) -> None:
  """Raises ValueError if `path` does not start with a pretraining example."""
  try:
    record = next(iter(tf.data.TFRecordDataset(path).take(1)))
    example = tf.train.Example.FromString(record.numpy())
  except (tf.errors.DataLossError, tf.errors.OpError, ValueError,
          StopIteration) as e:
    raise ValueError(f'Input file {path!r} ({setting}) is not a readable '
                     f'TFRecord file: {type(e).__name__}. Re-create it.'
                     ) from None
  features = example.features.feature
  if 'input_ids' not in features and 'input_word_ids' not in features:
    raise ValueError(f'Input file {path!r} ({setting}) holds no pretraining '
                     f'examples (features: {sorted(features)}).')


def check_encoder_options(encoder: encoders.EncoderConfig) -> None:
  """Refuses `BertEncoderConfig` options the token-dropping encoder lacks.

  Every other field is built as `official.nlp.configs.encoders.
  build_encoder` builds it (`token_drop_encoder.encoder_kwargs`).
  `return_all_encoder_outputs` needs nothing: the dict outputs always hold
  `encoder_outputs`.

  Raises:
    ValueError: naming the option and the fix.
  """
  bert = encoder.get()
  for option in token_drop_encoder.UNSUPPORTED_OPTIONS:
    if getattr(bert, option, False):
      raise ValueError(
          f'task.model.encoder.{encoder.type}.{option}=true is not supported '
          'by the token-dropping encoder (its dropping path has no such '
          'output). Set it to false for pretraining; the exported encoder is '
          'an ordinary BertEncoderV2 that supports it.')


def check_vocab_matches_encoder(vocab: vocabulary_lib.Vocabulary,
                                encoder: encoders.EncoderConfig) -> None:
  """Raises ValueError if the vocabulary size differs from the encoder's."""
  vocab_size = encoder.get().vocab_size
  if vocab.size != vocab_size:
    raise ValueError(
        f'Vocabulary {vocab.path!r} has {vocab.size} ids but '
        f'task.model.encoder.{encoder.type}.vocab_size is {vocab_size}. Set '
        f'vocab_size={vocab.size}, or point vocab_file at the vocabulary the '
        'data was made with.')


_VARIABLE = '/.ATTRIBUTES/VARIABLE_VALUE'
_WORD_EMBEDDINGS = ('masked_lm/embedding_table',
                    'encoder/_embedding_layer/embeddings')
_POSITIONS = 'encoder/_position_embedding_layer/embeddings'
_FIRST_LAYER = 'encoder/_transformer_layers/0/'
_LAYER = re.compile(r'^encoder/_transformer_layers/(\d+)/')


def check_checkpoint_matches(checkpoint: str,
                             encoder: encoders.EncoderConfig,
                             vocab: vocabulary_lib.Vocabulary,
                             fix: str) -> None:
  """Compares a BERT checkpoint's shapes with the config and the vocabulary.

  Args:
    checkpoint: a checkpoint path (prefix) whose root holds `encoder` (and
      usually `masked_lm`), as train.py and `import_hf` write them.
    encoder: the encoder config to compare with.
    vocab: the vocabulary to compare with.
    fix: the sentence of the error message that says what to do.

  Raises:
    ValueError: naming each size that differs (vocabulary, hidden size,
      layers, attention heads, intermediate size, position embeddings).
  """
  bert = encoder.get()
  shapes = {name[:-len(_VARIABLE)]: shape for name, shape in
            tf.train.load_checkpoint(checkpoint).get_variable_to_shape_map(
            ).items() if name.endswith(_VARIABLE)}
  embeddings = [shapes[k] for k in _WORD_EMBEDDINGS if k in shapes]
  if not embeddings or _POSITIONS not in shapes:
    raise ValueError(f'{checkpoint} holds no BERT encoder (no '
                     f'{_WORD_EMBEDDINGS[1]}). {fix}')
  query = shapes[_FIRST_LAYER + '_attention_layer/_query_dense/kernel']
  found = {
      'vocab_size': (embeddings[0][0], bert.vocab_size),
      'hidden_size': (embeddings[0][1], bert.embedding_size or
                      bert.hidden_size),
      'num_layers': (1 + max(int(m.group(1)) for m in map(_LAYER.match, shapes)
                             if m), bert.num_layers),
      'num_attention_heads': (query[1], bert.num_attention_heads),
      'intermediate_size': (
          shapes[_FIRST_LAYER + '_intermediate_dense/kernel'][1],
          bert.intermediate_size),
      'max_position_embeddings': (shapes[_POSITIONS][0],
                                  bert.max_position_embeddings),
  }
  differ = [f'{name}={ckpt} (config: {config})' for name, (ckpt, config)
            in found.items() if ckpt != config]
  if differ:
    raise ValueError(f'The checkpoint {checkpoint} has ' + ', '.join(differ) +
                     f'. {fix}')
  if vocab.size != found['vocab_size'][0]:
    raise ValueError(
        f'Vocabulary {vocab.path!r} has {vocab.size} ids but the checkpoint '
        f'{checkpoint} has {found["vocab_size"][0]}. {fix}')


def check_init_checkpoint(init_checkpoint: str,
                          encoder: encoders.EncoderConfig,
                          vocab: vocabulary_lib.Vocabulary) -> Optional[str]:
  """Checks `task.init_checkpoint` (a file prefix or a folder) before training.

  Returns:
    The checkpoint path, or None if `init_checkpoint` is empty.

  Raises:
    FileNotFoundError: it names nothing readable.
    ValueError: its sizes differ from the config or the vocabulary.
  """
  if not init_checkpoint:
    return None
  path = init_checkpoint
  if tf.io.gfile.isdir(path):
    path = tf.train.latest_checkpoint(path)
  if not path or not tf.io.gfile.exists(path + '.index'):
    raise FileNotFoundError(
        f'task.init_checkpoint={init_checkpoint!r} is not a checkpoint (no '
        '.index file, or a folder with no `checkpoint` file). Point it at a '
        'checkpoint prefix, e.g. runs/X/ckpt-1500, or at the folder '
        'official_td.serving.import_hf wrote.')
  check_checkpoint_matches(
      path, encoder, vocab,
      fix=('Set task.model.encoder and task.token_drop.vocab_file to the '
           "checkpoint's (for an imported transformers model: "
           '--config_file=IMPORT_DIR/continue_pretraining.yaml).'))
  return path


def check_data_metadata(files: List[str], vocab: vocabulary_lib.Vocabulary,
                        seq_length: int, setting: str) -> None:
  """Checks `metadata.json` beside the data (if present) against the config.

  Raises:
    ValueError: the data was made with another vocabulary or sequence
      length, or a matched file is not one that metadata.json lists (a shard
      of another run).
  """
  for directory in sorted({os.path.dirname(f) for f in files}):
    path = os.path.join(directory, 'metadata.json')
    if not tf.io.gfile.exists(path):
      continue
    with tf.io.gfile.GFile(path) as f:
      metadata = json.load(f)
    if metadata.get('vocab_sha256') not in (None, vocab.fingerprint):
      raise ValueError(
          f'The data of {setting} ({path}) was tokenized with '
          f'{metadata.get("vocab_file")!r}, not with {vocab.path!r} (their '
          'contents differ). Use the same vocabulary for data and model.')
    in_directory = [f for f in files if os.path.dirname(f) == directory]
    listed = set(metadata.get('train_files', [])
                 + metadata.get('valid_files', []))
    strays = sorted(os.path.basename(f) for f in in_directory
                    if os.path.basename(f) not in listed)
    if listed and strays:
      raise ValueError(
          f'{setting} matches {", ".join(strays)} in {directory}, which its '
          'metadata.json does not list: shards of another data-prep run. '
          'Remove them, or re-create the folder with '
          '`python -m data_prep.create_pretraining_data`.')
    _check_shard_sizes(in_directory, directory, metadata.get('shards', {}),
                       setting)
    if metadata.get('seq_length') not in (None, seq_length):
      raise ValueError(
          f'The data of {setting} ({path}) has sequences of '
          f'{metadata["seq_length"]} tokens but {setting}.seq_length is '
          f'{seq_length}.')


def _check_shard_sizes(files: List[str], directory: str,
                       shards: Dict[str, dict], setting: str) -> None:
  """Raises ValueError if a shard of `directory` (`files`, all in it) has
  another size than its `metadata.json` entry."""
  for path in files:
    expected = shards.get(os.path.basename(path), {}).get('bytes')
    if expected is None:
      continue
    size = tf.io.gfile.stat(path).length
    if size != expected:
      raise ValueError(
          f'Input file {path!r} ({setting}) has {size:,} bytes but '
          f'{directory}/metadata.json says it was written with {expected:,}: '
          'it was truncated or changed after data prep. Re-create the folder '
          'with `python -m data_prep.create_pretraining_data` (or copy the '
          'file again).')


def check_sequence_length(seq_length: int,
                          encoder: encoders.EncoderConfig,
                          setting: str) -> None:
  """Raises ValueError if sequences exceed the position embeddings."""
  max_positions = encoder.get().max_position_embeddings
  if seq_length > max_positions:
    raise ValueError(
        f'{setting}.seq_length={seq_length} is above '
        f'task.model.encoder.{encoder.type}.max_position_embeddings='
        f'{max_positions}. Raise max_position_embeddings or shorten the '
        'sequences.')


def check_token_drop_settings(token_drop, encoder: encoders.EncoderConfig,
                              seq_length: int) -> None:
  """Raises ValueError for a keep ratio or layer split that cannot work."""
  token_drop_encoder.num_kept_tokens(seq_length, token_drop.keep_ratio)
  token_drop_encoder.resolve_layer_split(encoder.get().num_layers,
                                         token_drop.drop_start_layer,
                                         token_drop.drop_end_layer)
  if not 0.0 <= token_drop.importance_beta < 1.0:
    raise ValueError('task.token_drop.importance_beta must be in [0, 1), got '
                     f'{token_drop.importance_beta}.')


def check_sctd_settings(sctd, strategy: str, num_layers: int) -> None:
  """Raises ValueError for ScTD settings that cannot work."""
  if strategy == 'none':
    raise ValueError('task.sctd.enabled needs token dropping: the baseline '
                     "(task.strategy='none') has nothing to make consistent.")
  if sctd.kl_normalization not in token_drop_config.KL_NORMALIZATIONS:
    raise ValueError(f'task.sctd.kl_normalization={sctd.kl_normalization!r} '
                     f'is not one of {token_drop_config.KL_NORMALIZATIONS}.')
  if sctd.every_n_steps < 1:
    raise ValueError('task.sctd.every_n_steps must be >= 1, got '
                     f'{sctd.every_n_steps}.')
  if len(sctd.layers) != len(sctd.weights):
    raise ValueError(f'task.sctd.layers={list(sctd.layers)} and '
                     f'task.sctd.weights={list(sctd.weights)} must have the '
                     'same length.')
  for layer in sctd.layers:
    if not -num_layers <= layer < num_layers:
      raise ValueError(f'task.sctd.layers has {layer}, outside the '
                       f'{num_layers} encoder layers.')
