r"""Reads `docs/time_to_quality.json`: the tables and plots of RESULTS.md.

  python -m official_td.benchmarks.time_to_quality --summarize_only \
      --results_file=docs/time_to_quality.json --plot_dir=docs/img/ttq_recipe

The file is a JSON list of runs, each `{"variant", "seed", "evals": [...],
"config_files", "params_override", ...}`, written by
`official_td.benchmarks.time_to_quality`; an eval is a `CurvePoint`. Every
figure below is a linear interpolation between two evaluations or a
difference of consecutive ones, never a figure the run did not record.
"""

import dataclasses
import math
import os
import statistics
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from official_td.benchmarks import bench_configs


@dataclasses.dataclass
class CurvePoint:
  """One evaluation: `block` counts the blocks of all variants of the run."""
  step: int
  train_seconds: float
  val_mlm_loss: float
  val_mlm_accuracy: float
  block: int = 0


def points_of(run: Dict) -> List[CurvePoint]:
  return [CurvePoint(**p) for p in run['evals']]


def _between(x: float, x0: float, y0: float, x1: float, y1: float) -> float:
  """The line through (x0, y0) and (x1, y1) at x."""
  return y0 if x1 == x0 else y0 + (x - x0) / (x1 - x0) * (y1 - y0)


def crossing(points: List[CurvePoint], key: str, target: float,
             lower_is_better: bool, along: str = 'train_seconds'
             ) -> Optional[float]:
  """Where `key` first reaches `target`, interpolated linearly.

  Args:
    points: one run's evaluations, in training order.
    key: `val_mlm_loss` or `val_mlm_accuracy`.
    target: the value to reach.
    lower_is_better: True for a loss, False for an accuracy.
    along: `train_seconds` or `step`: the axis the answer is read on.

  Returns:
    Training seconds (or steps) at the first crossing; None if the curve
    never reaches `target`.
  """
  previous = None
  for point in points:
    value = getattr(point, key)
    if (value <= target) if lower_is_better else (value >= target):
      if previous is None:
        return getattr(point, along)
      return _between(target, getattr(previous, key), getattr(previous, along),
                      value, getattr(point, along))
    previous = point
  return None


def value_at(points: List[CurvePoint], key: str, seconds: float,
             held_until: Optional[float] = None) -> Optional[float]:
  """`key` at `seconds` of training (interpolated); None past the curve.

  Args:
    points: one run's evaluations, in training order.
    key: a CurvePoint field, e.g. 'val_mlm_loss'.
    seconds: training time, in seconds.
    held_until: the run's budget, in seconds. A run that stopped before it
      (its schedule done, or its last step a fraction of a second short)
      keeps its final value up to it: that is the model its budget bought.

  Returns:
    The interpolated value, or None before the first or past the last point
    (and past `held_until`).
  """
  for before, after in zip(points, points[1:]):
    if before.train_seconds <= seconds <= after.train_seconds:
      return _between(seconds, before.train_seconds, getattr(before, key),
                      after.train_seconds, getattr(after, key))
  last = points[-1]
  if held_until is not None and last.train_seconds < seconds <= held_until:
    return getattr(last, key)
  return None


def same_seed_pairs(runs: List[Dict], baseline: str = 'baseline'
                    ) -> Iterator[Tuple[Dict, Dict]]:
  """Yields (run, the baseline run of its seed) for each run that has one.

  The baseline's own runs are not yielded; the order is the results file's.
  """
  references = {r['seed']: r for r in runs if r['variant'] == baseline}
  for r in runs:
    if r['variant'] != baseline and r['seed'] in references:
      yield r, references[r['seed']]


def fractions_of_baseline(runs: List[Dict], baseline: str = 'baseline',
                          along: str = 'train_seconds'
                          ) -> Dict[str, Dict[str, List[Optional[float]]]]:
  """Per variant, the time (or steps) to the same seed's baseline final figures.

  With `along='step'` this is what a dropped step teaches against a full
  one: below 1, fewer steps reached the baseline's quality. The time
  fraction is, roughly, this times the step-time ratio, so the two together
  tell whether a miss comes from the step's cost or from its learning. Read
  on steps, the baseline's schedule has decayed to zero at its final step
  while a faster variant's, planned on the same minutes, has not: the step
  fraction leans against the faster variant.

  Args:
    runs: the results file's runs.
    baseline: the variant the others are measured against.
    along: `train_seconds` (time fractions) or `step` (step fractions).

  Returns:
    {variant: {'loss': [...], 'accuracy': [...]}}, one entry per
    `same_seed_pairs` pair: the variant's training time (steps) to reach the
    baseline's final validation MLM loss (accuracy), divided by the
    baseline's; None where the variant never reached it.
  """
  fractions = {}
  for r, reference in same_seed_pairs(runs, baseline):
    final = points_of(reference)[-1]
    points = points_of(r)
    entry = fractions.setdefault(r['variant'], {'loss': [], 'accuracy': []})
    for name, key, lower in (('loss', 'val_mlm_loss', True),
                             ('accuracy', 'val_mlm_accuracy', False)):
      reached = crossing(points, key, getattr(final, key), lower, along)
      entry[name].append(None if reached is None else
                         reached / getattr(final, along))
  return fractions


def final_gaps(runs: List[Dict], baseline: str = 'baseline'
               ) -> Dict[str, Dict[str, List]]:
  """Per variant, its final figures minus its same-seed baseline's.

  Within a pair both runs had the same budget of training time, so this is
  the method's claim read at the end of the budget: below zero (loss) or
  above zero (accuracy), the variant ended ahead.

  Returns:
    {variant: {'seeds': [...], 'loss': [...], 'accuracy': [...]}}, one entry
    per `same_seed_pairs` pair: the last evaluation's validation MLM loss
    (nats) and accuracy minus the baseline's last.
  """
  gaps = {}
  for r, reference in same_seed_pairs(runs, baseline):
    last, final = points_of(r)[-1], points_of(reference)[-1]
    entry = gaps.setdefault(r['variant'],
                            {'seeds': [], 'loss': [], 'accuracy': []})
    entry['seeds'].append(r['seed'])
    entry['loss'].append(last.val_mlm_loss - final.val_mlm_loss)
    entry['accuracy'].append(last.val_mlm_accuracy - final.val_mlm_accuracy)
  return gaps


def short_phase_steps(run: Dict) -> int:
  """`task.short_sequence_phase.steps` of the run's config files and overrides.

  Raises:
    tf.errors.NotFoundError: a config file the run names is missing
      (summarize from the repository root).
  """
  config = bench_configs.overridden(run.get('config_files') or (),
                                    run.get('params_override') or '')
  return config.task.short_sequence_phase.steps


def block_ms_per_step(points: List[CurvePoint],
                      phase_steps: int) -> Dict[str, List[float]]:
  """Milliseconds per step of each block, by sequence phase.

  A block is the training between two evaluations. Returns
  {'short': [...], 'full': [...]}: blocks wholly before `phase_steps`, and
  wholly after; a block across the boundary is in neither.
  """
  phases = {'short': [], 'full': []}
  for before, after in zip(points, points[1:]):
    steps = after.step - before.step
    if not steps:
      continue
    ms = 1000 * (after.train_seconds - before.train_seconds) / steps
    if after.step <= phase_steps:
      phases['short'].append(ms)
    elif before.step >= phase_steps:
      phases['full'].append(ms)
  return phases


def spread(values: Sequence[Optional[float]]) -> str:
  """'mean +- stdev (n=...)', with how many runs reached no value."""
  reached = [v for v in values if v is not None]
  missed = len(values) - len(reached)
  text = f'{statistics.mean(reached):.3f}' if reached else 'not reached'
  if len(reached) > 1:
    text += f' +- {statistics.stdev(reached):.3f}'
  text += f' (n={len(reached)})' if reached else ''
  return text + (f', not reached in {missed}' if missed and reached else '')


def _mean_range(values: List[float]) -> str:
  if not values:
    return '-'
  return f'{statistics.mean(values):.0f} ({min(values):.0f}-{max(values):.0f})'


def print_final(runs: List[Dict]) -> None:
  print('| variant | seed | steps | training min | val MLM loss | '
        'val MLM accuracy |')
  print('|---|---|---|---|---|---|')
  for r in runs:
    last = r['evals'][-1]
    print(f"| {r['variant']} | {r['seed']} | {last['step']} | "
          f"{last['train_seconds'] / 60:.1f} | {last['val_mlm_loss']:.3f} | "
          f"{last['val_mlm_accuracy']:.4f} |")


def signed_spread(values: Sequence[float]) -> str:
  """'mean +- stdev (min to max)', signed: a gap's direction is its point."""
  text = f'{statistics.mean(values):+.3f}'
  if len(values) > 1:
    text += (f' +- {statistics.stdev(values):.3f} '
             f'({min(values):+.3f} to {max(values):+.3f})')
  return text


def print_by_variant(runs: List[Dict], baseline: str = 'baseline') -> None:
  """Each variant over its seeds, against the same seed's baseline."""
  print('\nEach variant against its same-seed baseline, over seeds (final: '
        'the last evaluation of each run):')
  print('| variant | seeds | ends below its baseline\'s loss | final loss '
        'minus the baseline\'s (nats) | final accuracy minus the '
        'baseline\'s | time to baseline loss | time to baseline accuracy | '
        'steps to baseline loss |')
  print('|---|---|---|---|---|---|---|---|')
  fractions = fractions_of_baseline(runs, baseline)
  steps = fractions_of_baseline(runs, baseline, along='step')
  for variant, gaps in final_gaps(runs, baseline).items():
    ahead = sum(gap < 0 for gap in gaps['loss'])
    print(f"| {variant} | {', '.join(map(str, gaps['seeds']))} | "
          f"{ahead} of {len(gaps['loss'])} | {signed_spread(gaps['loss'])} | "
          f"{signed_spread(gaps['accuracy'])} | "
          f"{spread(fractions[variant]['loss'])} | "
          f"{spread(fractions[variant]['accuracy'])} | "
          f"{spread(steps[variant]['loss'])} |")


def print_equal_time(runs: List[Dict], minutes: Sequence[float]) -> None:
  """Validation loss / accuracy of every run at the same training minutes."""
  print('\nAt equal training time (val MLM loss / accuracy; - past the '
        "run's budget):")
  print('| variant | seed | ' + ' | '.join(f'{m:g} min' for m in minutes) +
        ' |')
  print('|---|---|' + '---|' * len(minutes))
  for r in runs:
    points = points_of(r)
    cells = []
    budget = r.get('budget_seconds')
    for m in minutes:
      loss = value_at(points, 'val_mlm_loss', 60 * m, held_until=budget)
      accuracy = value_at(points, 'val_mlm_accuracy', 60 * m,
                          held_until=budget)
      cells.append('-' if loss is None else f'{loss:.3f} / {accuracy:.3f}')
    print(f"| {r['variant']} | {r['seed']} | " + ' | '.join(cells) + ' |')


def print_step_times(runs: List[Dict], baseline: str = 'baseline') -> None:
  """Block step times per phase, and their ratio to the same seed's baseline."""
  print('\nms per step, block means (range); ratio to the same seed\'s '
        'baseline:')
  print('| variant | seed | calibrated | short phase | full length | '
        'ratio short | ratio full |')
  print('|---|---|---|---|---|---|---|')
  blocks = {(r['variant'], r['seed']):
            block_ms_per_step(points_of(r), short_phase_steps(r))
            for r in runs}
  for r in runs:
    own = blocks[(r['variant'], r['seed'])]
    reference = blocks.get((baseline, r['seed']))
    ratios = []
    for phase in ('short', 'full'):
      if reference and own[phase] and reference[phase]:
        ratio = statistics.mean(own[phase]) / statistics.mean(reference[phase])
        ratios.append(f'{ratio:.2f}')
      else:
        ratios.append('-')
    print(f"| {r['variant']} | {r['seed']} | "
          f"{r.get('calibrated_ms_per_step', '-')} | "
          f"{_mean_range(own['short'])} | {_mean_range(own['full'])} | "
          f"{ratios[0]} | {ratios[1]} |")


_LINESTYLES = ('-', '--', ':', '-.')
_MARKERS = ('.', 'o', '^', 's', 'v', 'D', 'P', 'x', '*', '+')
# Seeds 1 to this many each get a (line style, marker) pair no other has.
SEEDS_WITH_OWN_STYLE = math.lcm(len(_LINESTYLES), len(_MARKERS))


def seed_style(seed: int) -> Dict[str, object]:
  """Line style and marker of a seed's curves in `plot`.

  Colour names the variant and this names the seed, so that seeds of one
  variant stay apart where their curves cross.

  Args:
    seed: the pretraining seed, an int >= 1.

  Returns:
    `linestyle`, `marker` and `markersize` keyword arguments for
    `pyplot.plot`; the (line style, marker) pair is the seed's own for seeds
    1 to `SEEDS_WITH_OWN_STYLE` (20); later seeds cycle.
  """
  return {'linestyle': _LINESTYLES[(seed - 1) % len(_LINESTYLES)],
          'marker': _MARKERS[(seed - 1) % len(_MARKERS)],
          'markersize': 3}


def gaps_to_baseline(runs: List[Dict], key: str = 'val_mlm_loss',
                     baseline: str = 'baseline') -> List[Dict]:
  """Each run's `key` minus its same-seed baseline's, at equal training time.

  The figure the method's claim is about: below zero (for the loss) the
  variant is ahead of the baseline after the same minutes of training.

  Args:
    runs: the results file's runs.
    key: `val_mlm_loss` or `val_mlm_accuracy`.
    baseline: the variant the others are measured against.

  Returns:
    One `{'variant', 'seed', 'minutes': [...], 'gaps': [...]}` per run that is
    not the baseline and has a baseline run of its seed; an entry per
    evaluation of the run after step 0 and within the baseline's curve (the
    baseline's value linearly interpolated at the run's training seconds).
  """
  gaps = []
  for r, reference in same_seed_pairs(runs, baseline):
    curve = points_of(reference)
    entry = {'variant': r['variant'], 'seed': r['seed'], 'minutes': [],
             'gaps': []}
    for point in points_of(r):
      other = value_at(curve, key, point.train_seconds)
      if point.step and other is not None:
        entry['minutes'].append(point.train_seconds / 60)
        entry['gaps'].append(getattr(point, key) - other)
    gaps.append(entry)
  return gaps


def _save(figure, axes, path: str) -> str:
  # Outside the axes: with twenty-odd runs a legend inside hides the
  # curves' ends, which are what the plots are read for.
  axes.legend(fontsize=6, loc='upper left', bbox_to_anchor=(1.01, 1.0))
  axes.grid(alpha=0.3)
  axes.set_xlabel('training time (min)')
  figure.tight_layout()
  figure.savefig(path)
  return path


def plot(runs: List[Dict], output_dir: str) -> List[str]:
  """Plots every run against training time; one PNG per figure.

  `val_mlm_loss_vs_time.png` and `val_mlm_accuracy_vs_time.png`: the full
  encoder's validation MLM loss (nats) and accuracy;
  `val_mlm_loss_gap_vs_time.png`: each run's loss minus its same-seed
  baseline's (`gaps_to_baseline`).

  Returns:
    The paths of the three PNG files written into `output_dir`.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  os.makedirs(output_dir, exist_ok=True)
  colors = {v: f'C{i}' for i, v in enumerate(bench_configs.VARIANTS)}
  paths = []
  for key, label in (('val_mlm_loss', 'validation MLM loss (nats)'),
                     ('val_mlm_accuracy', 'validation MLM accuracy')):
    figure, axes = pyplot.subplots(figsize=(7.5, 4), dpi=120)
    for r in runs:
      points = [p for p in r['evals'] if p['step']]
      axes.plot([p['train_seconds'] / 60 for p in points],
                [p[key] for p in points],
                color=colors.get(r['variant']), **seed_style(r['seed']),
                label=f"{r['variant']} seed {r['seed']}")
    axes.set_ylabel(label + ', full encoder')
    paths.append(_save(figure, axes,
                       os.path.join(output_dir, f'{key}_vs_time.png')))
    pyplot.close(figure)
  figure, axes = pyplot.subplots(figsize=(7.5, 4), dpi=120)
  axes.axhline(0.0, color='black', linewidth=0.8)
  for entry in gaps_to_baseline(runs):
    axes.plot(entry['minutes'], entry['gaps'],
              color=colors.get(entry['variant']), **seed_style(entry['seed']),
              label=f"{entry['variant']} seed {entry['seed']}")
  axes.set_ylabel('val MLM loss minus the same seed\'s\nbaseline at equal '
                  'time (nats)')
  paths.append(_save(figure, axes,
                     os.path.join(output_dir, 'val_mlm_loss_gap_vs_time.png')))
  pyplot.close(figure)
  return paths


def summarize(runs: List[Dict], minutes: Sequence[float],
              plot_dir: Optional[str] = None) -> None:
  """Prints every table above (markdown); plots every run into `plot_dir`."""
  print_final(runs)
  print_by_variant(runs)
  print_equal_time(runs, minutes)
  print_step_times(runs)
  if plot_dir:
    plot(runs, plot_dir)
