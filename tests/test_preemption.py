"""Preemption-safe, exactly resumable train.py runs on real TFRecords.

Each test starts train.py processes on the tiny model (one step per train
loop, so a stop is acted on at the next step) and stops them with SIGTERM,
SIGINT or SIGKILL at random steps. Processes are bounded in time and killed
on overrun.
"""

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import tensorflow as tf

from official_td.training import preemption
from tests import real_data
from tests import test_train_e2e
from tests.test_train_e2e import _importance

_TIMEOUT_S = 300
_TRAIN_STEP = re.compile(r'train \| step:\s+(\d+) \| steps/sec')


def _config_file(directory, train_steps, checkpoint_interval=4):
  """The tiny model, one step per loop, a loss summary every step."""
  return test_train_e2e._config_file(
      directory, train_steps, name='preempt', steps_per_loop=1,
      summary_interval=1, checkpoint_interval=checkpoint_interval,
      max_to_keep=100)


def _command(model_dir, config_file, *extra):
  return [sys.executable, os.path.join(real_data.REPO, 'train.py'),
          '--experiment=bert/token_drop', '--mode=train', '--seed=1',
          f'--model_dir={model_dir}', f'--config_file={config_file}', *extra]


class _Run:
  """A train.py process whose log is read as it goes."""

  def __init__(self, command, env=None):
    self.process = subprocess.Popen(
        command, cwd=real_data.REPO, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    self.lines = []
    self.step = -1
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self):
    for line in self.process.stderr:
      self.lines.append(line)
      match = _TRAIN_STEP.search(line)
      if match:
        self.step = int(match.group(1))

  def wait_for_step(self, step):
    deadline = time.time() + _TIMEOUT_S
    while self.step < step:
      if self.process.poll() is not None or time.time() > deadline:
        self.kill()
        raise AssertionError(f'no step {step}:\n{self.log[-3000:]}')
      time.sleep(0.05)

  def finish(self):
    try:
      self.process.wait(timeout=_TIMEOUT_S)
    finally:
      self.kill()
    self._reader.join(timeout=30)
    return self.process.returncode

  def kill(self):
    if self.process.poll() is None:
      os.killpg(self.process.pid, signal.SIGKILL)
      self.process.wait(timeout=30)

  @property
  def log(self):
    return ''.join(self.lines)


def _losses(model_dir):
  """training_loss by step, from every event file of the run."""
  losses = {}
  for path in tf.io.gfile.glob(os.path.join(model_dir, 'train',
                                            'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == 'training_loss':
          loss = float(tf.make_ndarray(value.tensor))
          # A step redone after a SIGKILL must repeat its loss exactly.
          assert losses.get(event.step, loss) == loss, (event.step, loss)
          losses[event.step] = loss
  return losses


def _preempted_step(log):
  match = re.search(r'Preempted: checkpoint of step (\d+) written', log)
  assert match, log[-3000:]
  return int(match.group(1))


class PreemptionTest(tf.test.TestCase):

  def test_sigterm_saves_that_step_and_exits_preempted(self):
    work = self.create_tempdir().full_path
    model_dir = os.path.join(work, 'model')
    config = _config_file(work, 40, checkpoint_interval=100)
    stop_at = random.Random().randint(2, 10)
    run = _Run(_command(model_dir, config))
    run.wait_for_step(stop_at)
    run.process.send_signal(signal.SIGTERM)
    self.assertEqual(run.finish(), preemption.PREEMPTED_EXIT_CODE, run.log)
    self.assertIn('Received SIGTERM', run.log)
    saved = _preempted_step(run.log)
    # The step in flight when the signal came, and no step after it (the
    # action runs before the loop's log line is printed).
    self.assertBetween(saved, stop_at, 39)
    self.assertIn(run.step, (saved - 1, saved))
    self.assertEndsWith(tf.train.latest_checkpoint(model_dir),
                        f'ckpt-{saved}')

    resumed = _Run(_command(model_dir, config))
    self.assertEqual(resumed.finish(), 0, resumed.log)
    self.assertRegex(resumed.log, rf'train \| step:\s+{saved} \| training '
                     'until step 40')
    self.assertEndsWith(tf.train.latest_checkpoint(model_dir), 'ckpt-40')

  def test_stopped_three_times_ends_as_the_uninterrupted_run(self):
    work = self.create_tempdir().full_path
    config = _config_file(work, 20)
    uninterrupted = os.path.join(work, 'uninterrupted')
    whole = _Run(_command(uninterrupted, config))
    self.assertEqual(whole.finish(), 0, whole.log)

    model_dir = os.path.join(work, 'interrupted')
    rng = random.Random()
    stops = sorted(rng.sample(range(2, 14), 3))
    kinds = [signal.SIGTERM, signal.SIGKILL, signal.SIGINT]
    rng.shuffle(kinds)
    for stop_at, kind in zip(stops, kinds):
      run = _Run(_command(model_dir, config))
      run.wait_for_step(stop_at)
      run.process.send_signal(kind)
      status = run.finish()
      if kind == signal.SIGKILL:
        self.assertEqual(status, -signal.SIGKILL)
      else:
        self.assertEqual(status, preemption.PREEMPTED_EXIT_CODE, run.log)
    last = _Run(_command(model_dir, config))
    self.assertEqual(last.finish(), 0, last.log)

    expected, got = _losses(uninterrupted), _losses(model_dir)
    self.assertEqual(sorted(got), list(range(1, 21)),
                     f'stops {stops} by {kinds}')
    # Bitwise: the same ops on the same inputs in the same order on CPU.
    self.assertEqual(got, expected, f'stops {stops} by {kinds}')
    self.assertAllEqual(
        _importance(tf.train.latest_checkpoint(model_dir)),
        _importance(tf.train.latest_checkpoint(uninterrupted)))

  def test_damaged_latest_checkpoint_falls_back_to_the_previous(self):
    work = self.create_tempdir().full_path
    model_dir = os.path.join(work, 'model')
    first = _Run(_command(model_dir, _config_file(work, 4, 2)))
    self.assertEqual(first.finish(), 0, first.log)
    latest = tf.train.latest_checkpoint(model_dir)
    self.assertEndsWith(latest, 'ckpt-4')
    previous = tf.train.get_checkpoint_state(
        model_dir).all_model_checkpoint_paths[-2]
    previous_step = int(previous.rsplit('-', 1)[1])
    data = tf.io.gfile.glob(latest + '.data-*')[0]
    with open(data, 'r+b') as f:
      f.truncate(os.path.getsize(data) // 2)

    resumed = _Run(_command(model_dir, _config_file(work, 6, 2)))
    self.assertEqual(resumed.finish(), 0, resumed.log)
    self.assertRegex(resumed.log, r'Checkpoint \S+ckpt-4 cannot be read')
    self.assertIn(f'Resuming from {previous}.', resumed.log)
    self.assertRegex(resumed.log, rf'train \| step:\s+{previous_step} \| '
                     'training until step 6')
    self.assertTrue(os.path.exists(data + '.damaged'))
    self.assertEndsWith(tf.train.latest_checkpoint(model_dir), 'ckpt-6')


class NamedBeforeTrainingTest(tf.test.TestCase):

  def _fails_naming(self, command, *messages):
    result = subprocess.run(command, cwd=real_data.REPO, capture_output=True,
                            text=True, timeout=_TIMEOUT_S)
    self.assertNotEqual(result.returncode, 0)
    for message in messages:
      self.assertIn(message, result.stderr)
    self.assertNotIn('training until step', result.stderr)

  def test_missing_gin_file(self):
    work = self.create_tempdir().full_path
    missing = os.path.join(work, 'static.gin')
    self._fails_naming(
        _command(os.path.join(work, 'model'), _config_file(work, 4),
                 f'--gin_file={missing}'),
        f"--gin_file='{missing}' does not exist")

  def test_changed_model_setting_on_an_existing_model_dir(self):
    work = self.create_tempdir().full_path
    model_dir = os.path.join(work, 'model')
    config = _config_file(work, 2)
    first = _Run(_command(model_dir, config))
    self.assertEqual(first.finish(), 0, first.log)
    self._fails_naming(
        _command(model_dir, config, '--params_override=task.model.encoder.'
                 'bert.num_layers=6,trainer.train_steps=4'),
        'task.model.encoder.bert.num_layers: 4 -> 6')
    # The step budget and schedule may change.
    more = _Run(_command(model_dir, config,
                         '--params_override=trainer.train_steps=3'))
    self.assertEqual(more.finish(), 0, more.log)

  def test_truncated_shard(self):
    work = self.create_tempdir().full_path
    data = os.path.join(work, 'data')
    os.makedirs(data)
    for name in os.listdir(real_data.tfrecord_dir()):
      with open(os.path.join(real_data.tfrecord_dir(), name), 'rb') as f:
        content = f.read()
      if name == 'train-00001-of-00002.tfrecord':
        content = content[:len(content) // 2]
      with open(os.path.join(data, name), 'wb') as f:
        f.write(content)
    self._fails_naming(
        _command(os.path.join(work, 'model'), _config_file(work, 4),
                 f'--params_override=task.train_data.input_path='
                 f'{data}/train-*'),
        'train-00001-of-00002.tfrecord', 'truncated or changed after data '
        'prep')


if __name__ == '__main__':
  tf.test.main()
