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

import tensorflow as tf

from tests import real_data
from tests.test_train_e2e import _config_file
from tests.test_train_e2e import _importance

_TIMEOUT_S = 300


def _free_loopback_port():
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


class MultiWorkerTest(tf.test.TestCase):

  def test_two_workers_write_one_checkpoint_with_the_shared_table(self):
    work = self.create_tempdir().full_path
    model_dir = os.path.join(work, 'model')
    config_file = _config_file(work, 4)
    workers = [f'127.0.0.1:{_free_loopback_port()}' for _ in range(2)]
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


if __name__ == '__main__':
  tf.test.main()
