"""Two train.py workers with MultiWorkerMirroredStrategy on 127.0.0.1.

Only loopback ports are bound; the workers are bounded in time and killed by
the test if they overrun.
"""

import glob
import json
import os
import signal
import socket
import subprocess
import sys

import pytest
import tensorflow as tf

from official_td.training import preemption
from tests import real_data
from tests import test_preemption
from tests.test_train_e2e import _config_file
from tests.test_train_e2e import _importance

_TIMEOUT_S = 300

# Two train.py workers keeping each other's heartbeats: never beside another
# test (pytest.ini's `serial`; the README runs these after the rest).
pytestmark = pytest.mark.serial


# The coordination service's words when a task missed its heartbeats for
# 10 s (TensorFlow's fixed default): a failure of the cluster, not of the
# run, which a scheduler answers by starting the job again.
_HEARTBEAT_TIMEOUT = 'heartbeat timeout'


def _worker_addresses(num_workers):
  """Distinct free loopback addresses, one per worker.

  The probe sockets stay open until all ports are chosen, so no two workers
  get the same port (gRPC binds with SO_REUSEPORT: two servers on one port
  would both start and split each other's traffic).
  """
  probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            for _ in range(num_workers)]
  try:
    for probe in probes:
      probe.bind(('127.0.0.1', 0))
    return [f'127.0.0.1:{probe.getsockname()[1]}' for probe in probes]
  finally:
    for probe in probes:
      probe.close()


def _logs(runs):
  return '\n'.join(f'--- worker {index} ---\n{run.log[-6000:]}'
                   for index, run in enumerate(runs))


class MultiWorkerTest(tf.test.TestCase):

  def test_two_workers_write_one_checkpoint_with_the_shared_table(self):
    work = self.create_tempdir().full_path
    model_dir = os.path.join(work, 'model')
    config_file = _config_file(work, 4)
    workers = _worker_addresses(2)
    processes, tmp_dirs = [], []
    for index in range(2):
      tmp_dir = os.path.join(work, f'worker{index}_tmp')
      os.makedirs(tmp_dir)
      tmp_dirs.append(tmp_dir)
      env = dict(os.environ, TMPDIR=tmp_dir, TF_CONFIG=json.dumps({
          'cluster': {'worker': workers},
          'task': {'type': 'worker', 'index': index}}))
      processes.append(subprocess.Popen(
          [sys.executable, os.path.join(real_data.REPO, 'train.py'),
           '--experiment=bert/token_drop', '--mode=train',
           f'--model_dir={model_dir}', f'--config_file={config_file}',
           '--params_override=runtime.distribution_strategy='
           'multi_worker_mirrored'],
          cwd=real_data.REPO, env=env, stdout=subprocess.DEVNULL,
          stderr=subprocess.PIPE, text=True, start_new_session=True))
    logs = []
    try:
      for process in processes:
        _, stderr = process.communicate(timeout=_TIMEOUT_S)
        logs.append(stderr)
    finally:
      for process in processes:
        if process.poll() is None:
          os.killpg(process.pid, signal.SIGKILL)
          process.wait(timeout=30)
    for index, process in enumerate(processes):
      self.assertEqual(process.returncode, 0,
                       f'worker {index} failed:\n{logs[index][-3000:]}')
    self.assertIn('MultiWorkerMirroredStrategy', logs[0])
    chief = tf.train.latest_checkpoint(model_dir)
    self.assertTrue(chief.endswith('ckpt-4'), chief)
    # The non-chief worker saves its copy to a temporary folder of its own.
    other = glob.glob(os.path.join(tmp_dirs[1], '**', 'ckpt-4.index'),
                      recursive=True)
    self.assertLen(other, 1)
    chief_table = _importance(chief)
    self.assertLess(chief_table.min(), 10.0)
    self.assertAllEqual(_importance(other[0][:-len('.index')]), chief_table)


  def test_sigterm_to_one_worker_checkpoints_the_same_step_on_all(self):
    work = self.create_tempdir().full_path
    model_dir = os.path.join(work, 'model')
    config_file = test_preemption._config_file(work, 30,
                                               checkpoint_interval=100)

    def start_workers():
      workers = _worker_addresses(2)
      runs = []
      for index in range(2):
        tmp_dir = os.path.join(work, f'worker{index}_tmp')
        os.makedirs(tmp_dir, exist_ok=True)
        env = dict(os.environ, TMPDIR=tmp_dir, TF_CONFIG=json.dumps({
            'cluster': {'worker': workers},
            'task': {'type': 'worker', 'index': index}}))
        runs.append(test_preemption._Run(test_preemption._command(
            model_dir, config_file, '--params_override=runtime.'
            'distribution_strategy=multi_worker_mirrored'), env=env))
      return runs

    runs = start_workers()
    try:
      runs[0].wait_for_step(3)
      runs[1].process.send_signal(signal.SIGTERM)  # the non-chief is told
      statuses = [run.finish() for run in runs]
    finally:
      for run in runs:
        run.kill()
    for index, status in enumerate(statuses):
      self.assertEqual(status, preemption.PREEMPTED_EXIT_CODE,
                       f'worker {index}:\n{runs[index].log[-3000:]}')
    saved = [test_preemption._preempted_step(run.log) for run in runs]
    self.assertEqual(saved[0], saved[1])  # agreed on one step
    self.assertEndsWith(tf.train.latest_checkpoint(model_dir),
                        f'ckpt-{saved[0]}')

    # Both resume from the chief's checkpoint and reach the final step. A
    # heartbeat timeout (seen once in CI, not reproduced here, also not
    # with both cores loaded) ends an attempt without writing a checkpoint;
    # the job is then started again, as a scheduler would, and must still
    # resume from the preempted step.
    for attempt in range(2):
      runs = start_workers()
      try:
        statuses = [run.finish() for run in runs]
      finally:
        for run in runs:
          run.kill()
      if statuses == [0, 0] or _HEARTBEAT_TIMEOUT not in _logs(runs):
        break
      print(f'attempt {attempt}: {_HEARTBEAT_TIMEOUT}, started again:\n'
            f'{_logs(runs)}')
    self.assertEqual(statuses, [0, 0], f'did not resume:\n{_logs(runs)}')
    for run in runs:
      self.assertIn(f'step: {saved[0]:6d} | training until step 30', run.log)
    chief = tf.train.latest_checkpoint(model_dir)
    self.assertEndsWith(chief, 'ckpt-30')
    other = glob.glob(os.path.join(work, 'worker1_tmp', '**', 'ckpt-30.index'),
                      recursive=True)
    self.assertLen(other, 1)
    self.assertAllEqual(_importance(other[0][:-len('.index')]),
                        _importance(chief))


if __name__ == '__main__':
  tf.test.main()
