"""Resuming from the newest checkpoint that is whole.

Checkpoints are written atomically (`tf.train.CheckpointManager` writes to a
temporary name and renames), but a file can still be damaged afterwards: a
disk filled up, a copy cut short. `use_newest_readable_checkpoint` reads the
latest checkpoint in full before the trainer restores it; if it cannot be
read, it is set aside (renamed, not deleted) with a warning naming its files,
and the previous one becomes the latest.
"""

import os
from typing import List, Optional

from absl import logging
import tensorflow as tf

DAMAGED_SUFFIX = '.damaged'


def unreadable_reason(prefix: str) -> Optional[str]:
  """Why the checkpoint `prefix` (e.g. `runs/x/ckpt-20`) cannot be restored.

  Reads every tensor, as a restore would.

  Returns:
    None if it reads whole, else the error's first line.
  """
  try:
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
      reader.get_tensor(name)
  # The reader raises OpError, ValueError or IndexError ("Read less bytes
  # than requested") depending on where a file is cut.
  except (tf.errors.OpError, ValueError, OSError, IndexError) as e:
    return str(e).strip().splitlines()[0][:300]
  return None


def _files(prefix: str) -> List[str]:
  return tf.io.gfile.glob(prefix + '.index') + tf.io.gfile.glob(
      prefix + '.data-*')


def _readable_and_damaged(model_dir: str):
  """The checkpoint prefixes up to the newest readable one, and those after."""
  state = tf.train.get_checkpoint_state(model_dir)
  if state is None:
    return [], []
  prefixes = list(state.all_model_checkpoint_paths) or [
      state.model_checkpoint_path]
  damaged = []
  while prefixes:
    reason = unreadable_reason(prefixes[-1])
    if reason is None:
      break
    damaged.append((prefixes.pop(), reason))
  return prefixes, damaged


def newest_readable_checkpoint(model_dir: str) -> Optional[str]:
  """The prefix `use_newest_readable_checkpoint` resumes from; changes nothing.

  For the workers that are not the chief: they restore what the chief
  restores, whether or not the chief has set damaged files aside yet.
  """
  readable, _ = _readable_and_damaged(model_dir)
  return readable[-1] if readable else None


def use_newest_readable_checkpoint(model_dir: str) -> Optional[str]:
  """Sets aside unreadable latest checkpoints; returns the one to resume from.

  Only the chief calls this (it alone writes to `model_dir`).

  Args:
    model_dir: the run's folder, with its `checkpoint` state file.

  Returns:
    The prefix of the newest readable checkpoint, or None (no checkpoint, or
    none readable: training then starts from scratch, and says so).
  """
  if tf.train.get_checkpoint_state(model_dir) is None:
    return None
  prefixes, damaged = _readable_and_damaged(model_dir)
  for prefix, reason in damaged:
    for path in _files(prefix):
      tf.io.gfile.rename(path, path + DAMAGED_SUFFIX, overwrite=True)
    logging.warning(
        'Checkpoint %s cannot be read (%s); set aside as %s*%s. Resuming '
        'from %s.', prefix, reason, prefix, DAMAGED_SUFFIX,
        prefixes[-1] if prefixes else 'scratch (no readable checkpoint left)')
  if prefixes:
    tf.compat.v1.train.update_checkpoint_state(
        model_dir, prefixes[-1], all_model_checkpoint_paths=prefixes)
    return prefixes[-1]
  tf.io.gfile.remove(os.path.join(model_dir, 'checkpoint'))
  return None
