r"""Step-time benchmark: the baseline and each dropping strategy, interleaved.

  python -m official_td.benchmarks.step_time --models=L12_H256,bert_base \
      --data_dir=data/default --batch_size=32 --steps=30

For each model size, builds the baseline and every variant (dynamic, static,
random, and dynamic with ScTD) in this one process, feeds all of them the
same real batches, warms each up, then times their steps interleaved (the
order rotates every round, so drifts of the machine hit all alike; within a
round each runs `--block` consecutive steps, as a training run would). Prints
median ms/step, tokens/s, the measured step-time ratio to the baseline, the
theoretical ratio from the FLOP model (`flops.py`), and the process's peak
resident memory. For ScTD it prints the cost of one period of F steps
against F plain token-dropping steps.

By default a step is the task's `train_step` on cached batches: the model,
loss and optimizer alone. With `--through_trainer` each variant is a Model
Garden trainer instead (as in `train.py`: its own `tf.data` pipeline, its
metrics, its loop), timed a block at a time: the step time a training run
sees, with the costs that do not shrink with fewer tokens.

`--precisions=float32,bfloat16,float16` prints one table per precision
(`runtime.mixed_precision_dtype`, float16 with loss scaling). On a CPU
without native 16-bit matrix units these are figures, not targets.

This is a benchmark that prints figures, not a test: it asserts nothing.
"""

import contextlib
import dataclasses
import resource
import statistics
import time
from typing import Callable, Dict, List, Optional, Tuple

# pylint: disable=g-import-not-at-top,wrong-import-position
import official_td  # sets TF_USE_LEGACY_KERAS before TensorFlow loads
from absl import app
from absl import flags
import orbit
import tensorflow as tf
import tf_keras

from official.core import task_factory
from official.core import train_utils
from official.modeling import performance
from official.nlp.data import pretrain_dataloader
from official_td.benchmarks import bench_configs
from official_td.benchmarks import flops
from official_td.configs import experiments
from official_td.tasks import trainer as token_drop_trainer

@dataclasses.dataclass
class Variant:
  """One model's training step, and its measured step times (ms).

  Either `step` runs one training step on a given batch (the task's
  `train_step` in a tf.function, fed cached batches), or `trainer` is a
  Model Garden trainer, which reads its own `tf.data` pipeline and updates
  its metrics as a training run does; it runs a block of steps per call and
  is timed a block at a time.
  """
  name: str
  step: Optional[Callable[[Dict[str, tf.Tensor]], tf.Tensor]] = None
  trainer: Optional[orbit.StandardTrainer] = None
  times_ms: List[float] = dataclasses.field(default_factory=list)

  def run(self, batches, first: int, count: int) -> None:
    """Runs `count` steps (from batch `first`), appending their times."""
    if self.trainer is not None:
      start = time.perf_counter()
      self.trainer.train(tf.constant(count, tf.int32))
      self.trainer.global_step.numpy()  # waits for the last step
      per_step = 1000 * (time.perf_counter() - start) / count
      self.times_ms.extend([per_step] * count)
      return
    for i in range(first, first + count):
      start = time.perf_counter()
      float(self.step(batches[i % len(batches)]))  # waits for the step
      self.times_ms.append(1000 * (time.perf_counter() - start))


def build_variant(name: str, config, jit_compile: bool) -> Variant:
  """A variant whose step is the task's `train_step` alone."""
  task = task_factory.get_task(config.task)
  model = task.build_model()
  optimizer = train_utils.create_optimizer(task, config)
  metrics = task.build_metrics(training=True)
  step = tf.function(
      lambda x: task.train_step(x, model, optimizer, metrics)[task.loss],
      jit_compile=jit_compile)
  return Variant(name, step=step)


def build_trainer_variant(name: str, config) -> Variant:
  """A variant that steps through the Model Garden trainer, as `train.py`."""
  task = task_factory.get_task(config.task)
  trainer = train_utils.create_trainer(
      config, task, train=True, evaluate=False,
      trainer_cls=token_drop_trainer.TokenDropTrainer)
  return Variant(name, trainer=trainer)


def real_batches(config, count: int) -> List[Dict[str, tf.Tensor]]:
  data = config.task.train_data.replace(is_training=False)
  dataset = pretrain_dataloader.BertPretrainDataLoader(data).load()
  return list(dataset.take(count))


def warm_up(variant: Variant, batches, steps: int) -> None:
  """Runs `steps` untimed steps (tracing, allocator and cache warm-up)."""
  variant.run(batches, 0, steps)
  variant.times_ms.clear()


def time_interleaved(variants: List[Variant], batches, steps: int,
                     block: int) -> None:
  """Times `steps` steps of each variant, in rounds of `block` steps each.

  Within a round every variant runs `block` consecutive steps (as in
  training, where one model runs step after step, so its weights and
  optimizer slots stay warm in the caches); the variants' order rotates
  from round to round. Appends the step times to `variant.times_ms`.
  """
  for round_index in range(-(-steps // block)):
    shift = round_index % len(variants)
    first = round_index * block
    for variant in variants[shift:] + variants[:shift]:
      variant.run(batches, first, min(block, steps - first))


@contextlib.contextmanager
def _precision(precision: str):
  """Sets `precision`'s Keras policy for the process, as train.py does."""
  previous = tf_keras.mixed_precision.global_policy()
  performance.set_mixed_precision_policy(tf.as_dtype(precision))
  try:
    yield
  finally:
    tf_keras.mixed_precision.set_global_policy(previous)


def run_model(name: str, flags_, precision: str = 'float32') -> List[Variant]:
  """Benchmarks all variants at one model size and prints the table.

  Args:
    name: a model size (`bench_configs.model_size`).
    flags_: the flags (or an object with the same fields).
    precision: 'float32', 'bfloat16' or 'float16': the experiment's
      `runtime.mixed_precision_dtype` (a mixed policy for the last two; for
      float16 the optimizer gets loss scaling, as in train.py).
  """
  size = bench_configs.model_size(name)
  configs = {v: bench_configs.experiment(v, size, flags_.data_dir,
                                         flags_.batch_size, flags_.sctd_every)
             for v in flags_.variants}
  for config in configs.values():
    config.runtime.mixed_precision_dtype = precision
  # The whole run under the policy: Keras builds some sublayers (the MLM
  # head's) at the first call, with the policy in force then.
  with _precision(precision):
    variants, batches = _build_variants(configs, flags_)
    for variant in variants:
      warm_up(variant, batches, flags_.warmup)
    time_interleaved(variants, batches, flags_.steps, flags_.block)
  print_table(name, size, variants, configs, flags_)
  return variants


def _build_variants(configs, flags_) -> Tuple[List[Variant], list]:
  if flags_.through_trainer:
    if flags_.jit_compile:
      raise ValueError('--jit_compile compiles the bare step; with '
                       '--through_trainer the experiment\'s '
                       'runtime.enable_xla decides. Drop one of the two.')
    batches = []  # each trainer reads its own input pipeline
    variants = [build_trainer_variant(v, c) for v, c in configs.items()]
  else:
    batches = real_batches(next(iter(configs.values())), flags_.num_batches)
    variants = [build_variant(v, c, flags_.jit_compile)
                for v, c in configs.items()]
  return variants, batches


def paired_ratio(times_ms: List[float],
                 baseline_ms: List[float]) -> Tuple[float, float, float]:
  """Quartiles of the round-by-round ratios `times_ms[i] / baseline_ms[i]`.

  Each round times every variant once on the same batch, close together,
  so pairing cancels the machine's slow drifts that the medians keep.

  Args:
    times_ms, baseline_ms: step times (ms) of one round each, same length
      (at least 2).

  Returns:
    (first quartile, median, third quartile).
  """
  ratios = [t / b for t, b in zip(times_ms, baseline_ms)]
  low, mid, high = statistics.quantiles(ratios, n=4)
  return low, mid, high


def print_table(name, size, variants, configs, flags_) -> None:
  config = next(iter(configs.values()))
  precision = config.runtime.mixed_precision_dtype or 'float32'
  seq_length = config.task.train_data.seq_length
  flop_size = flops.ModelSize(
      num_layers=size['num_layers'], hidden_size=size['hidden_size'],
      intermediate_size=size['intermediate_size'],
      vocab_size=config.task.model.encoder.bert.vocab_size,
      seq_length=seq_length,
      max_predictions_per_seq=config.task.train_data.max_predictions_per_seq)
  drop = config.task.token_drop
  theory = flops.theoretical_ratio(flop_size, drop.keep_ratio,
                                   drop.drop_start_layer, drop.drop_end_layer)
  medians = {v.name: statistics.median(v.times_ms) for v in variants}
  base = medians.get('baseline')
  print(f'\n## {name} {size}, {precision}, seq_length {seq_length}, batch '
        f'{flags_.batch_size}, {flags_.steps} timed steps after '
        f'{flags_.warmup} warm-up, '
        + ('through the Model Garden trainer (its own input pipeline; '
           f'timed per block of {flags_.block})' if flags_.through_trainer
           else f'bare train_step, jit_compile={flags_.jit_compile}'))
  print('| variant | median ms/step | tokens/s | ratio to baseline | '
        'paired ratio, median [quartiles] | theoretical ratio |')
  print('|---|---|---|---|---|---|')
  baseline = next((v for v in variants if v.name == 'baseline'), None)
  for variant in variants:
    median = medians[variant.name]
    tokens = flags_.batch_size * seq_length / (median / 1000)
    ratio = f'{median / base:.3f}' if base else '-'
    paired = '-'
    if baseline and len(variant.times_ms) >= 2:
      low, mid, high = paired_ratio(variant.times_ms, baseline.times_ms)
      paired = f'{mid:.3f} [{low:.3f}, {high:.3f}]'
    expected = ('1.000' if variant.name == 'baseline' else f'{theory:.3f}')
    print(f'| {variant.name} | {median:.1f} | {tokens:,.0f} | {ratio} | '
          f'{paired} | {expected} |')
  if base and 'dynamic' in medians:
    saving = 1 - medians['dynamic'] / base
    print(f'\nmeasured saving {saving:.1%} of step time; theoretical '
          f'{1 - theory:.1%}; achieved {saving / (1 - theory):.0%} of it')
  sctd = next((v for v in variants if v.name == 'sctd'), None)
  if sctd and 'dynamic' in medians:
    period = flags_.sctd_every
    full_periods = len(sctd.times_ms) // period * period
    per_period = sum(sctd.times_ms[:full_periods]) / (full_periods / period)
    extra = per_period - period * medians['dynamic']
    print(f'ScTD: {per_period:.0f} ms per {period} steps vs '
          f'{period * medians["dynamic"]:.0f} ms for {period} plain '
          f'token-dropping steps: +{extra:.0f} ms '
          f'({extra / (period * medians["dynamic"]):+.1%}) per period')
  peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  print(f'process peak resident memory so far: {peak_mb:,.0f} MB')


def main(_):
  for name in flags.FLAGS.models:
    for precision in flags.FLAGS.precisions:
      run_model(name, flags.FLAGS, precision)


if __name__ == '__main__':
  flags.DEFINE_list('models', ['L12_H256'], 'Model sizes: presets '
                    f'{sorted(bench_configs.PRESETS)} or '
                    'L{layers}_H{hidden}.')
  flags.DEFINE_list('variants', list(bench_configs.VARIANTS),
                    'Variants to time.')
  flags.DEFINE_string('data_dir', experiments.DEFAULT_DATA_DIR,
                      'Pretraining TFRecords (seq_length 128) and their '
                      'token_frequencies.json.')
  flags.DEFINE_integer('batch_size', 32, 'Global batch size.')
  flags.DEFINE_integer('steps', 30, 'Timed steps per variant.')
  flags.DEFINE_integer('block', 5, 'Consecutive steps of one variant per '
                       'round (1: strict step-by-step interleaving).')
  flags.DEFINE_integer('warmup', 3, 'Untimed steps per variant first.')
  flags.DEFINE_integer('num_batches', 8, 'Distinct real batches cycled.')
  flags.DEFINE_integer('sctd_every', 10, 'ScTD period F.')
  flags.DEFINE_bool('jit_compile', False, 'Compile steps with XLA.')
  flags.DEFINE_list('precisions', ['float32'], 'One table per precision '
                    '(runtime.mixed_precision_dtype): float32, bfloat16, '
                    'float16.')
  flags.DEFINE_bool('through_trainer', False, 'Step through the Model Garden '
                    'trainer (its own tf.data pipeline, metrics and loop, '
                    'as train.py) instead of calling train_step on cached '
                    'batches.')
  app.run(main)
