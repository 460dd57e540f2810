r"""Time to quality: variants trained interleaved on one wall-clock budget.

  python -m official_td.benchmarks.time_to_quality --variants=baseline,dynamic \
      --seed=1 --data_dir=data/large --config_file=experiments/cpu_recipe.yaml \
      --budget_minutes=45 --num_evals=12 --output_dir=runs/ttq \
      --results_file=docs/time_to_quality.json

All variants of one run (one seed) live in one process and train in turns:
  1. calibration: a throw-away copy of each variant times a few steps (of
     each phase, with a `task.short_sequence_phase`); its step budget is
     what fits the budget at those rates, so that its learning-rate
     schedule (warm-up, then linear decay to zero) ends on the budget;
     with `--lr_schedule_on=time` the step budget, and with it the end of
     the decay, is planned again after every block from the rate the
     variant has shown, so that a calibration that was off (by 1-18% in
     docs/RESULTS.md's runs) or a machine that drifts still ends the decay
     on the time budget; with `--min_steps`, a budget that holds fewer
     steps on this machine fails here, before any training (a slow machine
     would end the run at an earlier stage than the comparison is about);
  2. blocks of steps, one variant after the other (each block is one
     `num_evals`-th of that variant's step budget), so that a machine that
     speeds up or slows down does so for every variant alike; each variant's
     own training time (its blocks only, evaluation excluded) counts
     against its budget; a variant stops at its step budget or when its
     time budget is spent (its last block is cut to the steps that fit, at
     the rate it has shown); `--budget_fractions=dynamic=0.8` gives a
     variant its own share of the budget, its schedule planned on it (the
     question a user asks: does it match the baseline in 80% of the time?);
  3. after each block, that variant's full-encoder validation MLM loss and
     accuracy (evaluation never drops tokens) on `--eval_batches` batches,
     a checkpoint and `params.yaml` in OUTPUT_DIR/VARIANT_sSEED (ready for
     `official_td.finetune_suite --model_dir=...`), and the results file
     rewritten, so a run cut short keeps what it measured.
The same seed gives every variant the same initial weights, data order and
dropping seed. RESULTS_FILE is a JSON list of runs, each `{"variant",
"seed", "evals": [{"train_seconds", "step", "val_mlm_loss",
"val_mlm_accuracy", "block"}], ...}`; a rerun replaces the runs of the same
variant and seed. `--summarize_only` prints, from that file, each variant's
final validation loss and accuracy minus its same-seed baseline's and its
time (and steps) to the baseline's final figures (fractions of the
baseline's), with mean and spread over seeds, every run's validation figures
at equal training minutes (`--at_minutes`) and its block step times per
sequence phase, and plots every run (`time_to_quality_report`).

A benchmark that prints figures, not a test: it asserts nothing.
"""

import dataclasses
import json
import math
import os
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

# pylint: disable=g-import-not-at-top,wrong-import-position
import official_td  # sets TF_USE_LEGACY_KERAS before TensorFlow loads
from absl import app
from absl import flags
from absl import logging
import tensorflow as tf
import tf_keras

from official.core import config_definitions as cfg
from official.core import task_factory
from official.core import train_utils
from official_td.benchmarks import bench_configs
from official_td.benchmarks import step_time
from official_td.benchmarks import time_to_quality_report as report
from official_td.tasks import trainer as token_drop_trainer

_WARMUP_SHARE = 0.1  # of the step budget, as in the default experiments
SCHEDULES_ON = ('steps', 'time')


def calibrate(config, num_steps: int, warmup: int = 3) -> float:
  """Seconds per training step of a throw-away copy, through the trainer.

  Timed as training runs (the Model Garden trainer with its input pipeline
  and metrics), not the bare step: the fixed costs outside the encoder are
  a larger share of a token-dropping step, and leaving them out gave it too
  many steps for its budget. A copy starts at step 0, so with a
  `task.short_sequence_phase` this times the short phase's steps.
  """
  variant = step_time.build_trainer_variant('calibration', config)
  step_time.warm_up(variant, None, warmup)
  variant.run(None, 0, num_steps)
  return statistics.median(variant.times_ms) / 1000


def step_budget(config, budget_seconds: float, calibration_steps: int,
                min_steps: int = 0) -> Tuple[int, float]:
  """Training steps that fit `budget_seconds`, and the full-length step time.

  With `task.short_sequence_phase`, its steps are counted at their own rate
  (a 32-token step and a 128-token step differ in cost, and differently for
  each variant) and the rest at the full-length rate.

  Args:
    config: the variant's experiment config.
    budget_seconds: its training time, in seconds.
    calibration_steps: timed steps per sequence phase.
    min_steps: the fewest steps the comparison needs (0: no check). On a
      slow machine a budget in minutes can end the run before the stage the
      comparison is about (docs/RESULTS.md section 29: a VM 1.4-1.7 times
      slower ended 20 minutes past the plateau's break); this fails then,
      after calibration and before training.

  Returns:
    (steps, seconds per full-length step).

  Raises:
    ValueError: the budget does not hold the short phase, or holds fewer
      than `min_steps` steps.
  """
  phase_steps = config.task.short_sequence_phase.steps
  full_length = config.replace(task={'short_sequence_phase': {'steps': 0}})
  seconds_per_step = calibrate(full_length, calibration_steps)
  phase_seconds = (phase_steps * calibrate(config, calibration_steps)
                   if phase_steps else 0.0)
  if phase_steps and phase_seconds >= budget_seconds:
    raise ValueError(
        f'The budget of {budget_seconds:.0f} s does not hold the '
        f'{phase_steps} steps of task.short_sequence_phase (about '
        f'{phase_seconds:.0f} s here): raise --budget_minutes or shorten '
        'the phase.')
  steps = phase_steps + max(
      1, int((budget_seconds - phase_seconds) / seconds_per_step))
  if steps < min_steps:
    needed = phase_seconds + (min_steps - phase_steps) * seconds_per_step
    raise ValueError(
        f'The budget of {budget_seconds / 60:.1f} min holds {steps} steps '
        f'here ({1000 * seconds_per_step:.0f} ms per full-length step), '
        f'fewer than --min_steps={min_steps}: the run would stop at an '
        f'earlier stage than the comparison is about. Give it at least '
        f'{math.ceil(needed / 60)} min (--budget_minutes, or this '
        "variant's --budget_fractions share), or run on a faster machine.")
  return steps, seconds_per_step


def with_step_budget(config, train_steps: int,
                     learning_rate: Optional[float] = None):
  """`config` with its trainer and learning-rate schedule on `train_steps`.

  The peak learning rate is `learning_rate` if given, else the config's.
  """
  config = config.replace(trainer=config.trainer.replace(
      train_steps=train_steps, steps_per_loop=max(1, min(100, train_steps)),
      summary_interval=max(1, min(100, train_steps)),
      checkpoint_interval=train_steps, validation_interval=train_steps))
  optimizer = config.trainer.optimizer_config
  optimizer.learning_rate.polynomial.decay_steps = train_steps
  optimizer.warmup.polynomial.warmup_steps = max(
      1, int(_WARMUP_SHARE * train_steps))
  if learning_rate is not None:
    optimizer.learning_rate.polynomial.initial_learning_rate = learning_rate
  return config


def settable_decay_steps(optimizer) -> tf.Variable:
  """Makes the length of the optimizer's learning-rate decay a variable.

  Call before the first training step: the training function reads the
  variable, so an `assign` between blocks moves the end of the decay
  without tracing the function again. The warm-up length and the peak stay.

  Args:
    optimizer: a Model Garden optimizer (`official.modeling.optimization`)
      whose learning rate is `polynomial` (with or without a `polynomial`
      warm-up), optionally in a `LossScaleOptimizer` (mixed precision).

  Returns:
    The int64 scalar variable now holding `decay_steps` (in steps).

  Raises:
    ValueError: the learning rate is not a polynomial decay.
  """
  # pylint: disable=protected-access
  optimizer = getattr(optimizer, 'inner_optimizer', optimizer)
  # Keras 2 keeps a schedule in `_hyper` (legacy optimizers, e.g. the Model
  # Garden's `adamw`) or in `_learning_rate`; neither has a public getter
  # for the schedule object, nor has PolynomialWarmUp for what it wraps.
  schedule = (optimizer._hyper['learning_rate'] if hasattr(optimizer, '_hyper')
              else optimizer._learning_rate)
  decay = getattr(schedule, '_after_warmup_lr_sched', schedule)
  # pylint: enable=protected-access
  if not isinstance(decay, tf_keras.optimizers.schedules.PolynomialDecay):
    raise ValueError(
        '--lr_schedule_on=time moves the end of a polynomial decay, but the '
        f'learning rate is {type(decay).__name__}: set trainer.optimizer_config'
        '.learning_rate.type to polynomial, or use --lr_schedule_on=steps.')
  if not isinstance(decay.decay_steps, tf.Variable):
    decay.decay_steps = tf.Variable(int(decay.decay_steps), dtype=tf.int64,
                                    trainable=False, name='decay_steps')
  return decay.decay_steps


@dataclasses.dataclass
class Arm:
  """One variant of a run: its trainer, budget and curve."""
  variant: str
  seed: int
  model_dir: str
  trainer: token_drop_trainer.TokenDropTrainer
  checkpoints: tf.train.CheckpointManager
  step_budget: int
  ms_per_step: float
  budget_seconds: float  # its own training time (--budget_fractions)
  train_seconds: float = 0.0
  last_block_seconds_per_step: Optional[float] = None
  last_block_start: int = 0
  evals: List[report.CurvePoint] = dataclasses.field(default_factory=list)
  # Set with --lr_schedule_on=time: the decay's end, planned after each block.
  decay_steps: Optional[tf.Variable] = None
  short_phase_steps: int = 0

  @property
  def step(self) -> int:
    return int(self.trainer.global_step.numpy())

  def _full_length_seconds_per_step(self) -> float:
    """The last block's rate once a block of full-length steps only has run.

    Until then the calibrated rate: a block in (or ending) the short-sequence
    phase measured shorter, faster steps.
    """
    if (self.last_block_seconds_per_step and
        self.last_block_start >= self.short_phase_steps):
      return self.last_block_seconds_per_step
    return self.ms_per_step / 1000

  def _steps_that_fit(self) -> float:
    """Steps from here that fit the time left of its budget (a fraction).

    The rest of the short-sequence phase at the last block's rate (a block
    that ends inside the phase ran short steps only), full-length steps after
    it at `_full_length_seconds_per_step`.
    """
    seconds = max(0.0, self.budget_seconds - self.train_seconds)
    phase_rate = self.last_block_seconds_per_step or self.ms_per_step / 1000
    phase_left = max(0, self.short_phase_steps - self.step)
    if phase_left * phase_rate >= seconds:
      return seconds / phase_rate
    return phase_left + ((seconds - phase_left * phase_rate) /
                         self._full_length_seconds_per_step())

  def steps_left(self) -> int:
    """Steps that fit the time left, rounded up, at least 1.

    So that the last block ends on the budget, not up to a block past it.
    Measured rates, not the run's mean: a short-sequence phase before it ran
    at another rate.
    """
    return max(1, math.ceil(self._steps_that_fit()))

  def end_block(self, steps: int, seconds: float) -> None:
    """Counts a block of `steps` that took `seconds`, then replans."""
    self.train_seconds += seconds
    self.last_block_seconds_per_step = seconds / steps
    self.last_block_start = self.step - steps
    self.replan()

  def replan(self) -> None:
    """Moves the step budget and the decay's end to where the time ends.

    The steps that fit the time left (`_steps_that_fit`). The learning rate
    jumps to where the new plan puts it (by a few percent of the peak once
    the rate is measured), then decays to zero on the budget. Does nothing
    without `decay_steps` (`--lr_schedule_on=steps`).
    """
    if self.decay_steps is None:
      return
    self.step_budget = self.step + int(self._steps_that_fit())
    self.decay_steps.assign(self.step_budget)

  def done(self) -> bool:
    return (self.step >= self.step_budget or
            self.train_seconds >= self.budget_seconds)

  def record(self, eval_batches: int, block: int) -> report.CurvePoint:
    logs = self.trainer.evaluate(tf.constant(eval_batches, tf.int32))
    point = report.CurvePoint(
        step=self.step, train_seconds=self.train_seconds,
        val_mlm_loss=float(logs['lm_example_loss']),
        val_mlm_accuracy=float(logs['masked_lm_accuracy']), block=block)
    self.evals.append(point)
    self.checkpoints.save(checkpoint_number=self.trainer.global_step)
    logging.info('%s seed %d: %s', self.variant, self.seed, point)
    return point

  def as_json(self, extra: Dict) -> Dict:
    return {'variant': self.variant, 'seed': self.seed,
            'evals': [dataclasses.asdict(p) for p in self.evals],
            'step_budget': self.step_budget,
            'calibrated_ms_per_step': round(self.ms_per_step, 2),
            'model_dir': self.model_dir, **extra,
            'budget_seconds': self.budget_seconds}


def variant_config(variant: str, seed: int, data_dir: str, batch_size: int,
                   config_files: Sequence[str] = (),
                   params_override: str = '',
                   model: Optional[str] = None) -> cfg.ExperimentConfig:
  """`bert/token_drop` + config files + overrides, as one variant and seed.

  `model` (a `bench_configs` preset or `L{layers}_H{hidden}`) resizes the
  encoder; without it the config's sizes stay (e.g. an imported model's).
  """
  size = bench_configs.model_size(model) if model else None
  config = bench_configs.experiment(variant, size, data_dir, batch_size,
                                    config_files=config_files,
                                    params_override=params_override)
  config.task.train_data.seed = seed
  config.task.token_drop.seed = seed
  return config


def build_arm(variant: str, seed: int, config, output_dir: str,
              budget_seconds: float, calibration_steps: int,
              learning_rate: Optional[float],
              lr_schedule_on: str = 'steps', min_steps: int = 0) -> Arm:
  """Calibrates, then builds the variant's trainer at its step budget.

  With `lr_schedule_on='time'` the arm plans its step budget and decay
  again after each block (`Arm.replan`).

  Raises:
    ValueError: the budget holds fewer than `min_steps` steps here, or not
      the short phase (`step_budget`).
  """
  steps, seconds_per_step = step_budget(config, budget_seconds,
                                        calibration_steps, min_steps)
  print(f'{variant} seed {seed}: {seconds_per_step * 1000:.0f} ms per '
        f'full-length step calibrated, {steps} steps in '
        f'{budget_seconds:.0f} s', flush=True)
  config = with_step_budget(config, steps, learning_rate)
  model_dir = os.path.join(output_dir, f'{variant}_s{seed}')
  os.makedirs(model_dir, exist_ok=True)
  train_utils.serialize_config(config, model_dir)
  tf_keras.utils.set_random_seed(seed)  # the same initial weights per seed
  task = task_factory.get_task(config.task, logging_dir=model_dir)
  trainer = train_utils.create_trainer(
      config, task, train=True, evaluate=True,
      trainer_cls=token_drop_trainer.TokenDropTrainer)
  trainer.initialize()  # task.init_checkpoint, e.g. an imported model
  # Builds the layers Keras builds on first call (the MLM head), so that
  # `run` can give every variant the same initial weights.
  trainer.model(next(iter(task.build_inputs(config.task.validation_data))),
                training=False)
  return Arm(variant=variant, seed=seed, model_dir=model_dir, trainer=trainer,
             checkpoints=tf.train.CheckpointManager(
                 trainer.checkpoint, model_dir, max_to_keep=1,
                 step_counter=trainer.global_step),
             step_budget=steps, ms_per_step=1000 * seconds_per_step,
             budget_seconds=budget_seconds,
             decay_steps=(settable_decay_steps(trainer.optimizer)
                          if lr_schedule_on == 'time' else None),
             short_phase_steps=config.task.short_sequence_phase.steps)


def train_interleaved(arms: List[Arm], num_evals: int, eval_batches: int,
                      on_eval: Callable[[], None] = lambda: None) -> None:
  """Trains the arms in turns, a block each, until every one is done.

  Each arm spends its own `budget_seconds`.
  """
  block = 0
  for arm in arms:
    arm.record(eval_batches, block)
  on_eval()
  while not all(arm.done() for arm in arms):
    for arm in arms:
      if arm.done():
        continue
      block += 1
      steps = min(-(-arm.step_budget // num_evals),
                  arm.step_budget - arm.step,
                  arm.steps_left())
      start = time.perf_counter()
      arm.trainer.train(tf.constant(steps, tf.int32))
      arm.trainer.global_step.numpy()  # waits for the last step
      arm.end_block(steps, time.perf_counter() - start)
      arm.record(eval_batches, block)
      on_eval()


def write_results(results_file: str, runs: List[Dict]) -> None:
  """Rewrites RESULTS_FILE with `runs`, replacing the same variant and seed."""
  kept = [r for r in read_results(results_file) if
          (r['variant'], r['seed']) not in {(n['variant'], n['seed'])
                                            for n in runs}]
  directory = os.path.dirname(results_file)
  if directory:
    os.makedirs(directory, exist_ok=True)
  with open(results_file + '.tmp', 'w') as f:
    json.dump(kept + runs, f, indent=1)
  os.replace(results_file + '.tmp', results_file)


def read_results(results_file: str) -> List[Dict]:
  if not os.path.exists(results_file):
    return []
  with open(results_file) as f:
    return json.load(f)


def variant_budgets(variants: Sequence[str], budget_seconds: float,
                    fractions: Dict[str, float]) -> Dict[str, float]:
  """Each variant's training-time budget in seconds.

  Raises:
    ValueError: a fraction names a variant not in `variants`, or is not
      positive.
  """
  for variant, fraction in fractions.items():
    if variant not in variants:
      raise ValueError(
          f'--budget_fractions names {variant!r}, which is not in '
          f'--variants={",".join(variants)}: add it there or drop the '
          'fraction.')
    if not fraction > 0:
      raise ValueError(f'--budget_fractions gives {variant} {fraction}: a '
                       'fraction of the budget must be positive.')
  return {v: budget_seconds * fractions.get(v, 1.0) for v in variants}


def parse_fractions(items: Sequence[str]) -> Dict[str, float]:
  """['dynamic=0.8'] -> {'dynamic': 0.8}.

  Raises:
    ValueError: an item is not VARIANT=FRACTION.
  """
  fractions = {}
  for item in items:
    variant, _, fraction = item.partition('=')
    try:
      fractions[variant.strip()] = float(fraction)
    except ValueError:
      raise ValueError(f'--budget_fractions item {item!r}: write '
                       'VARIANT=FRACTION, e.g. dynamic=0.8.') from None
  return fractions


def run(variants: Sequence[str], seed: int, data_dir: str, output_dir: str,
        results_file: str, batch_size: int, budget_seconds: float,
        num_evals: int, eval_batches: int, calibration_steps: int,
        config_files: Sequence[str] = (), params_override: str = '',
        model: Optional[str] = None,
        learning_rate: Optional[float] = None,
        lr_schedule_on: str = 'steps',
        budget_fractions: Optional[Dict[str, float]] = None,
        min_steps: int = 0) -> List[Arm]:
  """One run: the variants for one seed, interleaved; returns the arms.

  `budget_fractions` ({variant: fraction}) gives a variant that fraction of
  `budget_seconds` (e.g. {'dynamic': 0.8}: does token dropping, its
  schedule planned on 80% of the baseline's minutes, end where the baseline
  does?); the others get all of it. A variant whose budget holds fewer than
  `min_steps` steps on this machine fails after its calibration, before
  any training.

  Raises:
    ValueError: `lr_schedule_on` is not one of `SCHEDULES_ON`, a budget
      fraction names a variant not in `variants` or is not positive, or a
      budget holds fewer than `min_steps` steps.
  """
  if lr_schedule_on not in SCHEDULES_ON:
    raise ValueError(f'lr_schedule_on={lr_schedule_on!r}: use one of '
                     f'{SCHEDULES_ON}.')
  budgets = variant_budgets(variants, budget_seconds, budget_fractions or {})
  arms = [build_arm(v, seed, variant_config(
      v, seed, data_dir, batch_size, config_files, params_override, model),
                    output_dir, budgets[v], calibration_steps,
                    learning_rate, lr_schedule_on, min_steps)
          for v in variants]
  # One seed, one initialisation: the variants' models differ in how they
  # train, not in where they start (Keras draws depend on the ops before).
  initial = arms[0].trainer.model.get_weights()
  for arm in arms[1:]:
    arm.trainer.model.set_weights(initial)
  extra = {'data_dir': data_dir, **bench_configs.provenance(data_dir),
           'batch_size': batch_size, 'model': model,
           'config_files': list(config_files),
           'params_override': params_override,
           'learning_rate': learning_rate, 'lr_schedule_on': lr_schedule_on}
  train_interleaved(arms, num_evals, eval_batches,
                    on_eval=lambda: write_results(
                        results_file, [a.as_json(extra) for a in arms]))
  return arms


def main(_):
  flags_ = flags.FLAGS
  if not flags_.summarize_only:
    run(flags_.variants, flags_.seed, flags_.data_dir, flags_.output_dir,
        flags_.results_file, flags_.batch_size, 60 * flags_.budget_minutes,
        flags_.num_evals, flags_.eval_batches, flags_.calibration_steps,
        flags_.config_file or (), flags_.params_override or '',
        flags_.model, flags_.learning_rate, flags_.lr_schedule_on,
        parse_fractions(flags_.budget_fractions or ()), flags_.min_steps)
  report.summarize(read_results(flags_.results_file),
                   [float(m) for m in flags_.at_minutes], flags_.plot_dir)


if __name__ == '__main__':
  flags.DEFINE_list('variants', ['baseline', 'dynamic'],
                    f'Variants, trained in turns; from {bench_configs.VARIANTS}.')
  flags.DEFINE_integer('seed', 1, 'Initial weights, data order and dropping '
                       'draws; the same for every variant of the run.')
  flags.DEFINE_string('model', None, 'Resize the encoder: a preset '
                      f'{sorted(bench_configs.PRESETS)} or L{{layers}}_H{{hidden}}'
                      "; default the config's size.")
  flags.DEFINE_multi_string('config_file', None, 'YAML overrides of '
                            'bert/token_drop (e.g. experiments/cpu_recipe.yaml, '
                            'or an import_hf continue_pretraining.yaml).')
  flags.DEFINE_string('params_override', None, 'Overrides after the files.')
  flags.DEFINE_string('data_dir', 'data/large', 'Pretraining TFRecords and '
                      'metadata.json from data_prep.create_pretraining_data.')
  flags.DEFINE_string('output_dir', 'runs/time_to_quality', 'Checkpoints: '
                      'OUTPUT_DIR/VARIANT_sSEED.')
  flags.DEFINE_string('results_file', 'docs/time_to_quality.json',
                      'The JSON list of runs (merged).')
  flags.DEFINE_string('plot_dir', None, 'Where the PNG plots go (none: no '
                      'plots).')
  flags.DEFINE_bool('summarize_only', False, 'Only print and plot '
                    'RESULTS_FILE.')
  flags.DEFINE_list('at_minutes', ['10', '20', '30', '40', '50', '55'],
                    'Training minutes of the equal-time table.')
  flags.DEFINE_integer('batch_size', 32, 'Global batch size.')
  flags.DEFINE_float('budget_minutes', 45, 'Training time per variant.')
  flags.DEFINE_list('budget_fractions', None, 'VARIANT=FRACTION items: '
                    'that variant trains for FRACTION of --budget_minutes '
                    '(e.g. dynamic=0.8); the others for all of it.')
  flags.DEFINE_integer('min_steps', 0, 'Fail after calibration, before '
                       'training, if a variant\'s budget holds fewer steps '
                       'on this machine (0: no check); e.g. 7500 for '
                       'experiments/cpu_recipe.yaml, so that a slow machine '
                       'does not end the run near the plateau.')
  flags.DEFINE_integer('num_evals', 12, 'Blocks (and validation points) per '
                       'variant.')
  flags.DEFINE_integer('eval_batches', 40, 'Validation batches per point.')
  flags.DEFINE_integer('calibration_steps', 10, 'Timed calibration steps.')
  flags.DEFINE_float('learning_rate', None, "Peak learning rate; default the "
                     "config's.")
  flags.DEFINE_enum('lr_schedule_on', 'steps', SCHEDULES_ON,
                    'steps: the decay ends on the calibrated step budget (the '
                    'runs in docs/time_to_quality.json); time: planned again '
                    'after every block to end on the time budget.')
  app.run(main)
