"""train.py end to end: train_and_eval, resume, and a crash mid-run."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf
import yaml

from tests import real_data
from tests import task_configs

_TIMEOUT_S = 300


def _config_file(directory, train_steps, name='tiny', **trainer):
  """A YAML config: the tiny model on the real test TFRecords.

  `trainer` overrides the trainer settings below (e.g. steps_per_loop).
  """
  config = task_configs.tiny_experiment()
  settings = {
      'train_steps': train_steps, 'steps_per_loop': 2, 'summary_interval': 2,
      'checkpoint_interval': 2, 'validation_interval': 4,
      'validation_steps': 2,
      'optimizer_config': {'learning_rate': {'polynomial': {
          'decay_steps': 100}}, 'warmup': {'polynomial': {
              'warmup_steps': 2}}}}
  settings.update(trainer)
  config.override({'trainer': settings})
  path = os.path.join(directory, f'{name}_{train_steps}.yaml')
  with open(path, 'w') as f:
    yaml.safe_dump(config.as_dict(), f)
  return path


def _train_command(model_dir, config_file, *extra):
  return [sys.executable, os.path.join(real_data.REPO, 'train.py'),
          '--experiment=bert/token_drop', '--mode=train_and_eval',
          f'--model_dir={model_dir}', f'--config_file={config_file}', *extra]


def _run(command):
  result = subprocess.run(command, cwd=real_data.REPO, capture_output=True,
                          text=True, timeout=_TIMEOUT_S)
  if result.returncode != 0:
    raise AssertionError(f'train.py failed:\n{result.stderr[-4000:]}')
  return result.stderr


def _importance(checkpoint):
  reader = tf.train.load_checkpoint(checkpoint)
  keys = [k for k in reader.get_variable_to_shape_map()
          if 'importance_recorder' in k and 'VARIABLE_VALUE' in k]
  assert len(keys) == 1, keys
  return reader.get_tensor(keys[0])


class TrainE2ETest(tf.test.TestCase):

  def test_train_and_eval_then_resume(self):
    work = self.create_tempdir().full_path
    model_dir = os.path.join(work, 'model')
    log = _run(_train_command(model_dir, _config_file(work, 4)))
    self.assertRegex(log, r'train \| step:\s+2 \| steps/sec:')
    self.assertRegex(log, r'eval \| step:\s+4 \|')
    self.assertIn("'masked_lm_accuracy'", log)
    self.assertIn("'dropped_share_of_mlm_targets'", log)
    self.assertRegex(log, r'step 2 most often dropped tokens: \S+ \(\d+\)')
    summaries = tf.io.gfile.glob(os.path.join(model_dir, 'train',
                                              'events.out.tfevents.*'))
    tags = {value.tag for path in summaries
            for event in tf.compat.v1.train.summary_iterator(path)
            for value in event.summary.value}
    self.assertContainsSubset(
        {'most_often_dropped_tokens', 'dropped_share_of_mlm_targets',
         'mean_importance_kept', 'mean_importance_dropped'}, tags)
    first = tf.train.latest_checkpoint(model_dir)
    self.assertTrue(first.endswith('ckpt-4'), first)
    table_4 = _importance(first)
    self.assertLess(table_4.min(), 10.0)  # the scores moved
    self._assert_restores_into_bert_encoder_v2(first)

    log = _run(_train_command(model_dir, _config_file(work, 8)))
    self.assertRegex(log, r'train \| step:\s+4 \| training until step 8')
    self.assertNotRegex(log, r'train \| step:\s+0 \|')
    last = tf.train.latest_checkpoint(model_dir)
    self.assertTrue(last.endswith('ckpt-8'), last)
    table_8 = _importance(last)
    # The table went on from the restored one rather than from 10.0.
    self.assertGreater(np.sum(10.0 - table_8), np.sum(10.0 - table_4) * 1.5)

  def _assert_restores_into_bert_encoder_v2(self, checkpoint):
    """The training checkpoint's `encoder` is an ordinary BertEncoderV2."""
    encoder = task_configs.plain_encoder()
    status = tf.train.Checkpoint(encoder=encoder).read(checkpoint)
    features = real_data.batch(batch_size=2)
    encoder({k: features[k] for k in ('input_word_ids', 'input_mask',
                                      'input_type_ids')})
    status.assert_existing_objects_matched()
    reader = tf.train.load_checkpoint(checkpoint)
    # The word embeddings are stored once, as the (tied) MLM output table.
    key = 'masked_lm/embedding_table/.ATTRIBUTES/VARIABLE_VALUE'
    self.assertAllEqual(encoder.get_embedding_table().numpy(),
                        reader.get_tensor(key))

  def test_bad_config_fails_before_training(self):
    work = self.create_tempdir().full_path
    result = subprocess.run(
        _train_command(os.path.join(work, 'model'), _config_file(work, 4),
                       '--params_override=task.token_drop.keep_ratio=1.5'),
        cwd=real_data.REPO, capture_output=True, text=True,
        timeout=_TIMEOUT_S)
    self.assertNotEqual(result.returncode, 0)
    self.assertIn('keep_ratio must be in (0, 1], got 1.5', result.stderr)
    self.assertNotIn('training until step', result.stderr)

  def test_crash_mid_run_leaves_the_last_checkpoint_readable(self):
    work = self.create_tempdir().full_path
    model_dir = os.path.join(work, 'model')
    process = subprocess.Popen(
        _train_command(model_dir, _config_file(work, 100000)),
        cwd=real_data.REPO, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
      deadline = time.time() + _TIMEOUT_S
      while time.time() < deadline:
        latest = tf.train.latest_checkpoint(model_dir)
        if latest and int(re.search(r'ckpt-(\d+)', latest).group(1)) >= 6:
          break
        time.sleep(0.2)
      else:
        self.fail('no checkpoint was written in time')
    finally:
      os.killpg(process.pid, signal.SIGKILL)  # a crash, mid-step or mid-save
      process.wait(timeout=60)
    latest = tf.train.latest_checkpoint(model_dir)
    reader = tf.train.load_checkpoint(latest)
    for key in reader.get_variable_to_shape_map():
      reader.get_tensor(key)  # every tensor reads back
    self.assertEqual(_importance(latest).shape, (real_data.vocab().size,))


if __name__ == '__main__':
  tf.test.main()
