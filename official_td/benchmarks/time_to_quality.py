r"""Time to quality: the baseline and token dropping on one wall-clock budget.

  python -m official_td.benchmarks.time_to_quality --data_dir=data/large \
      --model=L12_H256 --budget_minutes=20 --num_evals=8 \
      --output_dir=runs/time_to_quality

For each variant in turn (each alone on the machine):
  1. calibration: a throw-away copy of the model times a few steps, giving
     its step rate; its step budget is rate x budget, so that its learning
     rate schedule (warm-up, then linear decay to zero) ends on the budget;
  2. training through the Model Garden trainer, in `num_evals` chunks; only
     the training time counts against the budget (training stops early if
     the budget runs out first);
  3. after each chunk, the full-encoder validation MLM loss and accuracy
     (evaluation never drops tokens), on `--eval_batches` batches;
  4. a checkpoint and `params.yaml` in OUTPUT_DIR/VARIANT, ready for
     `official_td.finetune_suite --model_dir=OUTPUT_DIR/VARIANT`.
Writes OUTPUT_DIR/VARIANT/curve.json after each variant, then merges every
variant's curve into OUTPUT_DIR/curves.json and two plots: validation MLM
loss against training wall-clock time and against steps (PNG).

A benchmark that prints figures, not a test: it asserts nothing.
"""

import dataclasses
import glob
import json
import os
import statistics
import time
from typing import Dict, List, Optional, Sequence

# pylint: disable=g-import-not-at-top,wrong-import-position
import official_td  # sets TF_USE_LEGACY_KERAS before TensorFlow loads
from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from official.core import task_factory
from official.core import train_utils
from official_td.benchmarks import bench_configs
from official_td.benchmarks import step_time
from official_td.tasks import trainer as token_drop_trainer

_WARMUP_SHARE = 0.1  # of the step budget, as in the default experiments


@dataclasses.dataclass
class CurvePoint:
  step: int
  train_seconds: float
  val_mlm_loss: float
  val_mlm_accuracy: float


def calibrate(config, num_steps: int, warmup: int = 3) -> float:
  """Median seconds per training step of a throw-away copy of the model."""
  variant = step_time.build_variant('calibration', config, jit_compile=False)
  batches = step_time.real_batches(config, 4)
  step_time.warm_up(variant, batches, warmup)
  variant.run(batches, 0, num_steps)
  return statistics.median(variant.times_ms) / 1000


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


def train_on_budget(config, model_dir: str, budget_seconds: float,
                    num_evals: int, eval_batches: int) -> List[CurvePoint]:
  """Trains until the step budget or the time budget ends; returns the curve.

  The first point is the untrained model at step 0. Saves the final
  checkpoint and `params.yaml` in `model_dir`.
  """
  os.makedirs(model_dir, exist_ok=True)
  train_utils.serialize_config(config, model_dir)
  task = task_factory.get_task(config.task, logging_dir=model_dir)
  trainer = train_utils.create_trainer(
      config, task, train=True, evaluate=True,
      trainer_cls=token_drop_trainer.TokenDropTrainer)
  checkpoints = tf.train.CheckpointManager(
      trainer.checkpoint, model_dir, max_to_keep=1,
      step_counter=trainer.global_step)
  total_steps = config.trainer.train_steps
  chunk = max(1, -(-total_steps // num_evals))
  curve = [_evaluate(trainer, 0, 0.0, eval_batches)]
  train_seconds = 0.0
  while curve[-1].step < total_steps and train_seconds < budget_seconds:
    steps = min(chunk, total_steps - curve[-1].step)
    start = time.perf_counter()
    trainer.train(tf.constant(steps, tf.int32))
    trainer.global_step.numpy()  # waits for the last step
    train_seconds += time.perf_counter() - start
    curve.append(_evaluate(trainer, int(trainer.global_step.numpy()),
                           train_seconds, eval_batches))
    logging.info('%s: %s', model_dir, curve[-1])
  checkpoints.save(checkpoint_number=trainer.global_step)
  return curve


def _evaluate(trainer, step: int, train_seconds: float,
              eval_batches: int) -> CurvePoint:
  logs = trainer.evaluate(tf.constant(eval_batches, tf.int32))
  return CurvePoint(step=step, train_seconds=round(train_seconds, 2),
                    val_mlm_loss=float(logs['lm_example_loss']),
                    val_mlm_accuracy=float(logs['masked_lm_accuracy']))


def plot(curves: Dict[str, List[CurvePoint]], output_dir: str,
         title: str) -> List[str]:
  """Writes the loss-vs-time and loss-vs-steps PNGs; returns their paths."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  paths = []
  for x_name, x_label, scale in (('train_seconds', 'training time (min)', 60),
                                 ('step', 'training steps', 1)):
    figure, axes = pyplot.subplots(figsize=(6, 4), dpi=120)
    for variant, points in curves.items():
      points = [p for p in points if p.step]  # step 0 is off the scale
      axes.plot([getattr(p, x_name) / scale for p in points],
                [p.val_mlm_loss for p in points], marker='o', label=variant)
    axes.set_xlabel(x_label)
    axes.set_ylabel('validation MLM loss (full encoder, nats)')
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path = os.path.join(output_dir, f'val_mlm_loss_vs_{x_name}.png')
    figure.savefig(path)
    pyplot.close(figure)
    paths.append(path)
  return paths


def run(variants: Sequence[str], model: str, data_dir: str, output_dir: str,
        batch_size: int, budget_seconds: float, num_evals: int,
        eval_batches: int, calibration_steps: int,
        learning_rate: Optional[float] = None
        ) -> Dict[str, List[CurvePoint]]:
  """The whole experiment; returns the curves of every variant in output_dir.

  Each variant's curve is saved in OUTPUT_DIR/VARIANT/curve.json as soon as
  it is done, so variants can be run (or re-run) one at a time; the summary,
  curves.json and the plots cover every variant found there.
  """
  size = bench_configs.model_size(model)
  for variant in variants:
    config = bench_configs.experiment(variant, size, data_dir, batch_size)
    seconds_per_step = calibrate(config, calibration_steps)
    step_budget = max(1, int(budget_seconds / seconds_per_step))
    print(f'{variant}: {seconds_per_step * 1000:.0f} ms/step calibrated, '
          f'{step_budget} steps in {budget_seconds:.0f} s', flush=True)
    model_dir = os.path.join(output_dir, variant)
    curve = train_on_budget(
        with_step_budget(config, step_budget, learning_rate), model_dir,
        budget_seconds, num_evals, eval_batches)
    with open(os.path.join(model_dir, 'curve.json'), 'w') as f:
      json.dump({'model': model, 'model_size': size,
                 'batch_size': batch_size, 'learning_rate': learning_rate,
                 'budget_seconds': budget_seconds,
                 'calibrated_ms_per_step': 1000 * seconds_per_step,
                 'step_budget': step_budget,
                 'curve': [dataclasses.asdict(p) for p in curve]}, f,
                indent=1)
  return summarize(output_dir)


def summarize(output_dir: str) -> Dict[str, List[CurvePoint]]:
  """Merges OUTPUT_DIR/*/curve.json into curves.json, plots and a table."""
  runs = {}
  for path in sorted(glob.glob(os.path.join(output_dir, '*', 'curve.json'))):
    with open(path) as f:
      runs[os.path.basename(os.path.dirname(path))] = json.load(f)
  if not runs:
    raise FileNotFoundError(f'No */curve.json under {output_dir}.')
  order = [v for v in bench_configs.VARIANTS if v in runs]
  curves = {v: [CurvePoint(**p) for p in runs[v]['curve']] for v in order}
  with open(os.path.join(output_dir, 'curves.json'), 'w') as f:
    json.dump({v: runs[v] for v in order}, f, indent=1)
  first = runs[order[0]]
  plot(curves, output_dir, f"{first['model']}, batch {first['batch_size']}, "
       f"{first['budget_seconds'] / 60:.0f} min of training each")
  print_table(curves)
  return curves


def print_table(curves: Dict[str, List[CurvePoint]]) -> None:
  print('| variant | step | training min | val MLM loss | val MLM accuracy |')
  print('|---|---|---|---|---|')
  for variant, points in curves.items():
    for p in points:
      print(f'| {variant} | {p.step} | {p.train_seconds / 60:.1f} | '
            f'{p.val_mlm_loss:.3f} | {p.val_mlm_accuracy:.4f} |')


def main(_):
  flags_ = flags.FLAGS
  os.makedirs(flags_.output_dir, exist_ok=True)
  run(flags_.variants, flags_.model, flags_.data_dir, flags_.output_dir,
      flags_.batch_size, 60 * flags_.budget_minutes, flags_.num_evals,
      flags_.eval_batches, flags_.calibration_steps, flags_.learning_rate)


if __name__ == '__main__':
  flags.DEFINE_list('variants', ['baseline', 'dynamic'],
                    f'Variants, in order; from {bench_configs.VARIANTS}.')
  flags.DEFINE_string('model', 'L12_H256', 'Model size: a preset '
                      f'{sorted(bench_configs.PRESETS)} or '
                      'L{layers}_H{hidden}.')
  flags.DEFINE_string('data_dir', 'data/large', 'Pretraining TFRecords and '
                      'metadata.json from data_prep.create_pretraining_data.')
  flags.DEFINE_string('output_dir', 'runs/time_to_quality', 'Where the '
                      'checkpoints, curves.json and plots go.')
  flags.DEFINE_integer('batch_size', 32, 'Global batch size.')
  flags.DEFINE_float('budget_minutes', 20, 'Training time per variant.')
  flags.DEFINE_integer('num_evals', 8, 'Validation points per variant.')
  flags.DEFINE_integer('eval_batches', 40, 'Validation batches per point.')
  flags.DEFINE_integer('calibration_steps', 10, 'Timed calibration steps.')
  flags.DEFINE_float('learning_rate', None, 'Peak learning rate; default: '
                     "the experiment's (1e-3, for the 4-layer default).")
  app.run(main)
