"""Restart checks: changed settings, damaged checkpoints (no subprocesses)."""

import os
import re

import tensorflow as tf

from official.core import train_utils
from official_td.training import checkpoints
from official_td.training import run_checks
from tests import task_configs


class CheckResumableTest(tf.test.TestCase):

  def _model_dir_with(self, config):
    model_dir = self.create_tempdir().full_path
    train_utils.serialize_config(config, model_dir)
    return model_dir

  def test_model_and_data_settings_are_frozen(self):
    model_dir = self._model_dir_with(task_configs.tiny_experiment())
    for override, named in (
        ({'task': {'strategy': 'random'}}, 'task.strategy'),
        ({'task': {'token_drop': {'keep_ratio': 0.25}}},
         'task.token_drop.keep_ratio: 0.5 -> 0.25'),
        ({'task': {'model': {'encoder': {'bert': {'hidden_size': 64}}}}},
         'task.model.encoder.bert.hidden_size: 32 -> 64'),
        ({'task': {'train_data': {'seq_length': 64}}},
         'task.train_data.seq_length: 32 -> 64'),
        ({'task': {'token_drop': {'vocab_file': __file__}}},
         'task.token_drop.vocab_file')):
      config = task_configs.tiny_experiment()
      config.override(override, is_strict=True)
      with self.assertRaisesRegex(ValueError, re.escape(named)):
        run_checks.check_resumable(model_dir, config)

  def test_budget_schedule_and_paths_may_change(self):
    model_dir = self._model_dir_with(task_configs.tiny_experiment())
    config = task_configs.tiny_experiment()
    config.override({'trainer': {
        'train_steps': 999, 'optimizer_config': {'learning_rate': {
            'polynomial': {'initial_learning_rate': 0.5}}}},
                     'runtime': {'mixed_precision_dtype': 'bfloat16'}},
                    is_strict=True)
    # The same vocabulary under another path is the same vocabulary.
    copy = os.path.join(self.create_tempdir().full_path, 'vocab.txt')
    tf.io.gfile.copy(config.task.token_drop.vocab_file, copy)
    config.task.token_drop.vocab_file = copy
    run_checks.check_resumable(model_dir, config)  # raises nothing
    self.assertEmpty(run_checks.model_differences(
        task_configs.tiny_experiment().as_dict(), config.as_dict()))

  def test_no_params_yaml_no_check(self):
    run_checks.check_resumable(self.create_tempdir().full_path,
                               task_configs.tiny_experiment())

  def test_missing_gin_file_is_named(self):
    with self.assertRaisesRegex(FileNotFoundError,
                                "--gin_file='nowhere.gin' does not exist"):
      run_checks.check_gin_files(['nowhere.gin'])


class NewestReadableCheckpointTest(tf.test.TestCase):

  def _checkpoints(self, count):
    model_dir = self.create_tempdir().full_path
    step = tf.Variable(0, dtype=tf.int64)
    weights = tf.Variable(tf.zeros([256]))
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(step=step, weights=weights), model_dir,
        max_to_keep=10, step_counter=step)
    for _ in range(count):
      step.assign_add(1)
      weights.assign_add(tf.ones([256]))
      manager.save()
    return model_dir

  def test_whole_checkpoints_are_left_alone(self):
    model_dir = self._checkpoints(2)
    self.assertEndsWith(checkpoints.use_newest_readable_checkpoint(model_dir),
                        'ckpt-2')
    self.assertEndsWith(tf.train.latest_checkpoint(model_dir), 'ckpt-2')

  def test_truncated_latest_is_set_aside_with_a_warning(self):
    model_dir = self._checkpoints(3)
    data = tf.io.gfile.glob(os.path.join(model_dir, 'ckpt-3.data-*'))[0]
    with open(data, 'r+b') as f:
      f.truncate(os.path.getsize(data) // 2)
    with self.assertLogs(level='WARNING') as logs:
      chosen = checkpoints.use_newest_readable_checkpoint(model_dir)
    self.assertEndsWith(chosen, 'ckpt-2')
    self.assertRegex(logs.output[0], r'ckpt-3 cannot be read')
    self.assertEndsWith(tf.train.latest_checkpoint(model_dir), 'ckpt-2')
    self.assertTrue(os.path.exists(data + checkpoints.DAMAGED_SUFFIX))
    self.assertFalse(os.path.exists(data))
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(model_dir))
    self.assertAllEqual(
        reader.get_tensor('weights/.ATTRIBUTES/VARIABLE_VALUE'),
        tf.fill([256], 2.0))

  def test_no_checkpoint(self):
    self.assertIsNone(checkpoints.use_newest_readable_checkpoint(
        self.create_tempdir().full_path))
    self.assertIsNone(checkpoints.newest_readable_checkpoint(
        self.create_tempdir().full_path))

  def test_other_workers_pick_the_same_checkpoint_and_change_nothing(self):
    model_dir = self._checkpoints(3)
    data = tf.io.gfile.glob(os.path.join(model_dir, 'ckpt-3.data-*'))[0]
    with open(data, 'r+b') as f:
      f.truncate(os.path.getsize(data) // 2)
    self.assertEndsWith(checkpoints.newest_readable_checkpoint(model_dir),
                        'ckpt-2')
    self.assertTrue(os.path.exists(data))  # only the chief sets files aside
    self.assertEndsWith(tf.train.latest_checkpoint(model_dir), 'ckpt-3')


if __name__ == '__main__':
  tf.test.main()
