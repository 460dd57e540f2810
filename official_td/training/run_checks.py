"""Checks of a training run's inputs that fail before any training.

  * `check_gin_files`: every `--gin_file` exists (gin itself fails with a
    `TypeError` on a missing one).
  * `check_resumable`: a run restarted on an existing `--model_dir` trains
    the same model on the same kind of data as the run that made it.
"""

import os
from typing import Dict, Iterable, List

from official.modeling import hyperparams
# Settings that a restart on an existing model_dir may not change: the model,
# what it is trained on, and how tokens are dropped. Everything else (the
# step budget, the learning-rate schedule, runtime, input paths, intervals)
# may change.
FROZEN_PREFIXES = (
    'task.model.',
    'task.strategy',
    'task.token_drop.',
    'task.sctd.',
    'task.train_data.seq_length',
    'task.train_data.max_predictions_per_seq',
    'task.train_data.use_next_sentence_label',
)
# Compared by the file's contents, not its path (data may move).
_BY_CONTENT = ('task.token_drop.vocab_file', 'task.token_drop.frequency_file')


def check_gin_files(gin_files: Iterable[str]) -> None:
  """Raises FileNotFoundError naming a `--gin_file` that does not exist."""
  for path in gin_files or []:
    if not os.path.isfile(path):
      raise FileNotFoundError(
          f'--gin_file={path!r} does not exist. The strategy bindings are in '
          'experiments/{dynamic,static,random,sctd}.gin.')


def _flatten(config: dict, prefix: str = '') -> Dict[str, object]:
  flat = {}
  for key, value in config.items():
    name = f'{prefix}{key}'
    if isinstance(value, dict):
      flat.update(_flatten(value, name + '.'))
    else:
      flat[name] = value
  return flat


def _same_content(a: str, b: str) -> bool:
  if a == b:
    return True
  if not (a and b and os.path.isfile(a) and os.path.isfile(b)):
    return False
  with open(a, 'rb') as fa, open(b, 'rb') as fb:
    return fa.read() == fb.read()


def model_differences(saved: dict, new: dict) -> List[str]:
  """The frozen settings (`FROZEN_PREFIXES`) that differ, as text lines.

  Args:
    saved: the earlier run's config, `params.yaml` as a dict.
    new: the new run's config as a dict.

  Returns:
    `'name: saved -> new'` for each differing setting, sorted.
  """
  saved, new = _flatten(saved), _flatten(new)
  differences = []
  for name in sorted(new):
    if not name.startswith(FROZEN_PREFIXES) or name not in saved:
      continue  # a setting the earlier version did not have
    before, after = saved.get(name), new.get(name)
    same = (_same_content(before, after) if name in _BY_CONTENT
            else before == after)
    if not same:
      differences.append(f'{name}: {before!r} -> {after!r}')
  return differences


def check_resumable(model_dir: str, params: hyperparams.Config) -> None:
  """Refuses to continue a run whose model or data settings changed.

  Args:
    model_dir: the run's folder; its `params.yaml` (written by the earlier
      run) is compared with `params`. Nothing is checked without it.
    params: the new run's `ExperimentConfig`.

  Raises:
    ValueError: naming each changed setting and how to proceed.
  """
  path = os.path.join(model_dir, 'params.yaml')
  if not os.path.isfile(path):
    return
  saved = hyperparams.read_yaml_to_params_dict(path).as_dict()
  differences = model_differences(saved, params.as_dict())
  if differences:
    raise ValueError(
        f'--model_dir={model_dir} holds a run made with other model or data '
        f'settings ({path}); resuming it with these would mix two '
        'experiments:\n  ' + '\n  '.join(differences) + '\nUse a new '
        '--model_dir, or restore the settings. (The step budget, the '
        'learning-rate schedule and the runtime may change.)')

