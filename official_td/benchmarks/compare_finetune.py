r"""Downstream accuracy of two pretrained models, side by side.

  python -m official_td.benchmarks.compare_finetune \
      --baseline=runs/finetune/ttq_baseline,runs/finetune/ttq_baseline_seed2 \
      --candidate=runs/finetune/ttq_dynamic,runs/finetune/ttq_dynamic_seed2

Each flag lists `official_td.finetune_suite` output dirs of one pretrained
model (one `results.json` each, e.g. one per seed run); their per-seed scores
are pooled. Prints a Markdown table: per task and on the average, the mean
dev/test accuracy (%) of each model over its seeds and the candidate minus
the baseline in points, and, when the models share two seeds or more, the
difference of the average seed by seed.

  python -m official_td.benchmarks.compare_finetune \
      --models=random_init=runs/ft/random,baseline=runs/ft/b1+runs/ft/b2 \
      --output_json=docs/finetune.json

prints, for any number of models, the mean and standard deviation over
seeds per task and for the average, and writes the pooled scores.

  python -m official_td.benchmarks.compare_finetune \
      --pooled_json=docs/finetune.json --models=dynamic_s8=runs/ft/d8 \
      --output_json=docs/finetune.json

adds models to scores pooled before (whose suite runs may be gone) and
prints the table over all of them; with `--extend`, a model already there
(`--models=random_init=runs/ft/random/seed3`) gains the new runs' seeds.
"""

import json
import os
from typing import Dict, List, Sequence

from absl import app
from absl import flags
import numpy as np

from official_td.data import json_file

SPLITS = ('dev', 'test')


def pool(result_dirs: Sequence[str]) -> Dict[str, Dict[int, Dict[str, float]]]:
  """Per-seed scores of one model from several suite runs.

  Args:
    result_dirs: `finetune_suite --output_dir`s, each with a `results.json`.

  Returns:
    {task: {seed: {'dev': accuracy, 'test': accuracy}}}, accuracy in [0, 1].

  Raises:
    FileNotFoundError: a dir has no `results.json` (the suite writes it only
      when every task is done).
    ValueError: the runs cover different tasks, or a seed appears twice
      (it would be counted twice).
  """
  pooled: Dict[str, Dict[int, Dict[str, float]]] = {}
  for result_dir in result_dirs:
    path = os.path.join(result_dir, 'results.json')
    results = json_file.read(
        path, f'{path} is missing: has `finetune_suite '
        f'--output_dir={result_dir}` finished?')
    tasks = set(results['per_seed'])
    if pooled and tasks != set(pooled):
      raise ValueError(f'{path} has tasks {sorted(tasks)}, the runs before it '
                       f'{sorted(pooled)}: compare runs of the same suite.')
    for task, scores in results['per_seed'].items():
      for seed, score in zip(results['seeds'], scores):
        if seed in pooled.setdefault(task, {}):
          raise ValueError(f'Seed {seed} of {task} appears twice (again in '
                           f'{path}); list each seed run once.')
        pooled[task][seed] = score
  return pooled


def _average_by_seed(pooled) -> Dict[int, Dict[str, float]]:
  """The average over tasks of each seed (seeds every task has)."""
  seeds = set.intersection(*(set(by_seed) for by_seed in pooled.values()))
  return {seed: {split: float(np.mean([pooled[t][seed][split]
                                       for t in pooled]))
                 for split in SPLITS}
          for seed in sorted(seeds)}


def compare(baseline, candidate) -> Dict[str, Dict[str, List[float]]]:
  """Mean accuracy (%) per task and on the average, and the difference.

  Args:
    baseline: `pool(...)` of the baseline model.
    candidate: `pool(...)` of the other model, same tasks.

  Returns:
    {row: {split: [baseline %, candidate %, candidate - baseline points]}},
    rows are the tasks then 'average' (the mean of the task means).

  Raises:
    ValueError: the two cover different tasks.
  """
  if set(baseline) != set(candidate):
    raise ValueError(f'Tasks differ: baseline {sorted(baseline)}, candidate '
                     f'{sorted(candidate)}.')
  rows = {}
  for task in baseline:
    rows[task] = {}
    for split in SPLITS:
      means = [100 * np.mean([s[split] for s in model[task].values()])
               for model in (baseline, candidate)]
      rows[task][split] = [*means, means[1] - means[0]]
  rows['average'] = {
      split: [float(np.mean([rows[t][split][i] for t in baseline]))
              for i in range(3)] for split in SPLITS}
  return rows


def paired_average_differences(baseline, candidate) -> Dict[int, List[float]]:
  """{seed: [dev, test] candidate minus baseline average, points}."""
  base, cand = _average_by_seed(baseline), _average_by_seed(candidate)
  return {seed: [100 * (cand[seed][s] - base[seed][s]) for s in SPLITS]
          for seed in sorted(set(base) & set(cand))}


def format_table(baseline, candidate, names: Sequence[str]) -> str:
  """The comparison as Markdown: tasks, average, then paired seed rows."""
  lines = [f'| task | {names[0]} dev / test | {names[1]} dev / test | '
           'difference dev / test (points) |', '|---|---|---|---|']
  for task, row in compare(baseline, candidate).items():
    cells = [f'{row["dev"][i]:.1f} / {row["test"][i]:.1f}' for i in range(2)]
    lines.append(f'| {task} | {cells[0]} | {cells[1]} | '
                 f'{row["dev"][2]:+.1f} / {row["test"][2]:+.1f} |')
  paired = paired_average_differences(baseline, candidate)
  for seed, (dev, test) in paired.items() if len(paired) > 1 else ():
    lines.append(f'| average, seed {seed} only | | | {dev:+.1f} / {test:+.1f} |')
  seeds = [sorted(next(iter(m.values()))) for m in (baseline, candidate)]
  lines.append(f'\nseeds: {names[0]} {seeds[0]}, {names[1]} {seeds[1]}')
  return '\n'.join(lines)


def mean_and_spread(pooled) -> Dict[str, Dict[str, List[float]]]:
  """{row: {split: [mean %, sample standard deviation % over seeds]}}.

  Rows are the tasks, then 'average': the mean over tasks of each seed
  (seeds every task has), then its mean and spread over seeds.
  """
  rows = {task: {split: [s[split] for s in by_seed.values()]
                 for split in SPLITS} for task, by_seed in pooled.items()}
  by_seed = _average_by_seed(pooled)
  rows['average'] = {split: [a[split] for a in by_seed.values()]
                     for split in SPLITS}
  return {row: {split: [100 * float(np.mean(values)),
                        100 * float(np.std(values, ddof=1))
                        if len(values) > 1 else 0.0]
                for split, values in splits.items()}
          for row, splits in rows.items()}


def spread_table(models: Dict[str, Dict]) -> str:
  """Markdown: per model, mean +- standard deviation (%) of dev and test."""
  names = list(models)
  stats = {name: mean_and_spread(pooled) for name, pooled in models.items()}
  lines = ['| task | ' + ' | '.join(f'{n} dev / test' for n in names) + ' |',
           '|---|' + '---|' * len(names)]
  for row in stats[names[0]]:
    cells = [' / '.join(f'{stats[n][row][s][0]:.1f} +- {stats[n][row][s][1]:.1f}'
                        for s in SPLITS) for n in names]
    lines.append(f'| {row} | ' + ' | '.join(cells) + ' |')
  seeds = {n: sorted(next(iter(models[n].values()))) for n in names}
  lines.append('\nseeds: ' + ', '.join(f'{n} {seeds[n]}' for n in names))
  return '\n'.join(lines)


def parse_models(specs: Sequence[str]) -> Dict[str, Dict]:
  """`NAME=DIR[+DIR...]` specs -> {name: pool(dirs)}."""
  models = {}
  for spec in specs:
    name, _, dirs = spec.partition('=')
    if not dirs:
      raise ValueError(f'--models entry {spec!r} is not NAME=DIR[+DIR...].')
    models[name] = pool(dirs.split('+'))
  return models


def add_models(earlier: Dict[str, Dict], new: Dict[str, Dict],
               extend: bool = False) -> Dict:
  """The models of an earlier pooled JSON followed by new ones.

  Args:
    earlier: {name: pooled} as `read_pooled` returns it.
    new: {name: pooled} as `parse_models` returns it.
    extend: a new model named as an earlier one adds its seeds to the
      earlier one's (e.g. a fine-tuning seed that finished in a later
      session), instead of being refused.

  Raises:
    ValueError: a new model has the name of an earlier one and `extend` is
      off (it would replace scores whose suite runs may be gone), a seed
      already pooled for that name, or other tasks.
  """
  models = dict(earlier)
  for name, pooled in new.items():
    tasks = set(next(iter(models.values()))) if models else set(pooled)
    if set(pooled) != tasks:
      raise ValueError(f'Model {name!r} has tasks {sorted(pooled)}, the pooled '
                       f'JSON {sorted(tasks)}: pool runs of the same suite.')
    if name not in models:
      models[name] = pooled
    elif extend:
      models[name] = _with_more_seeds(name, models[name], pooled)
    else:
      raise ValueError(f'Model {name!r} is already in the pooled JSON; give '
                       'the new one another name, or pass --extend to add '
                       'its seeds to the pooled ones.')
  return models


def _with_more_seeds(name: str, pooled: Dict, more: Dict) -> Dict:
  """`pooled` with the seeds of `more` (same tasks) added, none replaced."""
  merged = {}
  for task, by_seed in pooled.items():
    again = sorted(set(by_seed) & set(more[task]))
    if again:
      raise ValueError(f'Seeds {again} of {task} are already pooled for '
                       f'{name!r}; add only seeds it does not have.')
    merged[task] = {**by_seed, **more[task]}
  return merged


def read_pooled(path: str) -> Dict[str, Dict]:
  """{name: {task: {seed: {'dev', 'test'}}}} from `--output_json`'s file."""
  written = json_file.read(path, f'{path} is missing: it is written by '
                           '`compare_finetune --models=... --output_json`.')
  return {name: {task: {int(seed): score for seed, score in by_seed.items()}
                 for task, by_seed in pooled.items()}
          for name, pooled in written.items()}


def main(_):
  flags_ = flags.FLAGS
  if flags_.models:
    models = parse_models(flags_.models)
    if flags_.pooled_json:
      models = add_models(read_pooled(flags_.pooled_json), models,
                          extend=flags_.extend)
    print(spread_table(models))
    if flags_.output_json:
      with open(flags_.output_json, 'w') as f:
        json.dump({name: {task: {str(seed): score for seed, score in
                                 by_seed.items()}
                          for task, by_seed in pooled.items()}
                   for name, pooled in models.items()}, f, indent=1)
    return
  if not (flags_.baseline and flags_.candidate):
    raise app.UsageError('Give --models, or --baseline and --candidate.')
  print(format_table(pool(flags_.baseline), pool(flags_.candidate),
                     names=(flags_.baseline_name, flags_.candidate_name)))


if __name__ == '__main__':
  flags.DEFINE_list('baseline', None, 'Suite output dirs of the baseline.')
  flags.DEFINE_list('candidate', None, 'Suite output dirs of the model '
                    'compared with it.')
  flags.DEFINE_string('baseline_name', 'baseline', 'Column name.')
  flags.DEFINE_string('candidate_name', 'token dropping', 'Column name.')
  flags.DEFINE_list('models', None, 'Instead: NAME=DIR[+DIR...] per model; '
                    'prints mean +- standard deviation over seeds.')
  flags.DEFINE_string('output_json', None, 'With --models: write the pooled '
                      'per-seed scores here.')
  flags.DEFINE_string('pooled_json', None, 'With --models: an --output_json '
                      'written before; its models come first, the new ones '
                      'are added (it may be --output_json itself).')
  flags.DEFINE_bool('extend', False, 'With --pooled_json: a --models name '
                    'already pooled gains the new seeds instead of being '
                    'refused.')
  app.run(main)
