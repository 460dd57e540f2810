r"""Where a training step's time goes: op time by kind, baseline vs dropping.

  python -m official_td.benchmarks.profile_step --model=L12_H256 \
      --variants=baseline,dynamic --steps=5

Profiles `--steps` warm steps of each variant with the TensorFlow profiler
and sums the executor's op time (both threads, ms per step) by op type and
by the parts of the model the op names point to. It prints, per op type and
per part, the baseline's time, each variant's, and their ratio, so that the
cost of token dropping's own machinery (the importance lookup and update,
the top-k selection, the gathers and the merge scatter) can be read off
next to the Transformer layers it saves. Op times overlap on two threads,
so their sum is up to twice a step's wall time.

A benchmark that prints figures, not a test: it asserts nothing.
"""

import collections
import glob
import os
import tempfile
from typing import Dict, Sequence, Tuple

# pylint: disable=g-import-not-at-top,wrong-import-position
import official_td  # sets TF_USE_LEGACY_KERAS before TensorFlow loads
from absl import app
from absl import flags
import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from official_td.benchmarks import bench_configs
from official_td.benchmarks import step_time

# Op-name fragments -> the part of the step they belong to, first match wins.
# Backward ops carry their forward op's name after 'gradient_tape/'.
_PARTS = (
    ('token_importance', 'token dropping: importance lookup and update'),
    ('kept_tokens/', 'token dropping: top-k selection, gathers, merge'),
    ('/transformer/layer_', 'Transformer layers'),
    ('/cls/predictions', 'MLM head and loss'),
    ('SparseSoftmaxCrossEntropyWithLogits', 'MLM head and loss'),
    ('embedding', 'embeddings'),
    ('AdamWeightDecay', 'optimizer and gradient clipping'),
    ('global_norm', 'optimizer and gradient clipping'),
)


def part_of(op_name: str) -> str:
  """The part of the step an op belongs to, from its name."""
  for fragment, part in _PARTS:
    if fragment in op_name:
      return part
  return 'other (gradient sums, metrics)'


def op_times(xspace_path: str, num_steps: int
             ) -> Tuple[Dict[str, float], Dict[str, float]]:
  """Op time (ms per step) by op type and by part, from an XSpace file."""
  space = xplane_pb2.XSpace()
  with open(xspace_path, 'rb') as f:
    space.ParseFromString(f.read())
  by_type, by_part = collections.Counter(), collections.Counter()
  for plane in space.planes:
    for line in plane.lines:
      if not line.name.startswith('tf_Compute'):
        continue  # the executor's threads; others are Python and Eigen
      for event in line.events:
        name = plane.event_metadata[event.metadata_id].name
        if ':' not in name or name.startswith('ExecutorState'):
          continue  # executor bookkeeping (it wraps the ops), not an op
        op_name, op_type = name.rsplit(':', 1)
        ms = event.duration_ps / 1e9 / num_steps
        by_type[op_type] += ms
        by_part[part_of(op_name)] += ms
  return dict(by_type), dict(by_part)


def profile(variant: str, model: str, data_dir: str, batch_size: int,
            num_steps: int) -> Tuple[Dict[str, float], Dict[str, float]]:
  """Profiles `num_steps` warm training steps of one variant."""
  config = bench_configs.experiment(
      variant, bench_configs.model_size(model), data_dir, batch_size)
  batches = step_time.real_batches(config, 4)
  built = step_time.build_variant(variant, config, jit_compile=False)
  step_time.warm_up(built, batches, 3)
  logdir = tempfile.mkdtemp(prefix=f'profile_{variant}_')
  tf.profiler.experimental.start(logdir)
  for i in range(num_steps):
    float(built.step(batches[i % len(batches)]))
  tf.profiler.experimental.stop()
  paths = glob.glob(os.path.join(logdir, '**', '*.xplane.pb'), recursive=True)
  if not paths:
    raise FileNotFoundError(f'The profiler wrote no .xplane.pb under {logdir}.')
  return op_times(sorted(paths)[-1], num_steps)


def print_comparison(title: str, times: Dict[str, Dict[str, float]],
                     rows: int) -> None:
  names = list(times)
  keys = sorted(set().union(*times.values()),
                key=lambda k: -max(t.get(k, 0.0) for t in times.values()))
  print(f'\n| {title} | ' + ' | '.join(f'{n} ms' for n in names)
        + ' | ' + ' | '.join(f'{n} / {names[0]}' for n in names[1:]) + ' |')
  print('|---' * (2 * len(names)) + '|')
  for key in keys[:rows] + ['total']:
    values = ([sum(t.values()) for t in times.values()] if key == 'total'
              else [t.get(key, 0.0) for t in times.values()])
    ratios = [f'{v / values[0]:.2f}' if values[0] else '-' for v in values[1:]]
    print(f'| {key} | ' + ' | '.join(f'{v:.1f}' for v in values) + ' | '
          + ' | '.join(ratios) + ' |')


def main(_):
  flags_ = flags.FLAGS
  by_type, by_part = {}, {}
  for variant in flags_.variants:
    by_type[variant], by_part[variant] = profile(
        variant, flags_.model, flags_.data_dir, flags_.batch_size,
        flags_.steps)
  print(f'## {flags_.model}, batch {flags_.batch_size}: op time per step '
        '(ms, summed over the executor threads)')
  print_comparison('part of the step', by_part, rows=len(_PARTS) + 1)
  print_comparison('op type', by_type, rows=flags_.rows)


if __name__ == '__main__':
  flags.DEFINE_string('model', 'L12_H256', 'Model size preset or '
                      'L{layers}_H{hidden}.')
  flags.DEFINE_list('variants', ['baseline', 'dynamic'],
                    'Variants; the first is the reference.')
  flags.DEFINE_string('data_dir', 'data/default', 'Pretraining data.')
  flags.DEFINE_integer('batch_size', 32, 'Global batch size.')
  flags.DEFINE_integer('steps', 5, 'Profiled steps per variant.')
  flags.DEFINE_integer('rows', 25, 'Op types to print.')
  app.run(main)
