"""Two-phase pretraining: short sequences first, then full length."""

from absl.testing import parameterized
import tensorflow as tf

from official.core import task_factory
from official.core import train_utils
from official_td.tasks import trainer as token_drop_trainer
from tests import real_data
from tests import task_configs

_SHORT_STEPS = 4


def _config(strategy='dynamic', enable_xla=False, short_steps=_SHORT_STEPS):
  config = task_configs.tiny_experiment()
  config.task.strategy = strategy
  config.runtime.enable_xla = enable_xla
  config.task.short_sequence_phase.steps = short_steps
  config.task.short_sequence_phase.data = real_data.short_data_config()
  return config


def _trainer(config):
  """A trainer whose task counts the sequence length of every step's batch."""
  task = task_factory.get_task(config.task)
  trainer = train_utils.create_trainer(
      config, task, train=True, evaluate=False,
      trainer_cls=token_drop_trainer.TokenDropTrainer)
  token_sum = tf.Variable(0, dtype=tf.int64, trainable=False)
  train_step = task.train_step

  def counting_train_step(inputs, **kwargs):
    token_sum.assign_add(tf.cast(tf.size(inputs['input_word_ids']), tf.int64))
    return train_step(inputs, **kwargs)

  task.train_step = counting_train_step
  return trainer, token_sum


def _tokens(steps_per_phase):
  short = real_data.short_data_config()
  full = real_data.data_config()
  return (steps_per_phase[0] * short.global_batch_size * short.seq_length +
          steps_per_phase[1] * full.global_batch_size * full.seq_length)


class SequencePhasesTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((False, 'dynamic'), (True, 'dynamic'),
                            (False, 'none'))
  def test_a_loop_across_the_change_is_split_there(self, xla, strategy):
    trainer, token_sum = _trainer(_config(strategy, xla))
    trainer.train(tf.constant(_SHORT_STEPS + 2))
    self.assertEqual(int(trainer.global_step.numpy()), _SHORT_STEPS + 2)
    # 4 steps of 16 x 16 tokens, then 2 steps of 8 x 32.
    self.assertEqual(int(token_sum.numpy()), _tokens((_SHORT_STEPS, 2)))
    trainer.train(tf.constant(1))
    self.assertEqual(int(token_sum.numpy()), _tokens((_SHORT_STEPS, 3)))

  @parameterized.parameters((2, (1, 0)), (_SHORT_STEPS, (0, 1)),
                            (_SHORT_STEPS + 3, (0, 1)))
  def test_a_resumed_run_reads_the_phase_of_its_step(self, start, expected):
    trainer, token_sum = _trainer(_config())
    trainer.global_step.assign(start)
    trainer.train(tf.constant(1))
    self.assertEqual(int(token_sum.numpy()), _tokens(expected))

  def test_without_the_phase_every_step_is_full_length(self):
    trainer, token_sum = _trainer(_config(short_steps=0))
    trainer.train(tf.constant(3))
    self.assertEqual(int(token_sum.numpy()), _tokens((0, 3)))

  def test_phase_without_data_is_refused(self):
    config = _config()
    config.task.short_sequence_phase.data.input_path = ''
    with self.assertRaisesRegex(
        ValueError, r'task\.short_sequence_phase\.data\.input_path'):
      task_factory.get_task(config.task)

  def test_phase_longer_than_the_position_table_is_named(self):
    config = _config()
    config.task.model.encoder.bert.max_position_embeddings = (
        real_data.SEQ_LENGTH)
    config.task.short_sequence_phase.data.seq_length = real_data.SEQ_LENGTH + 8
    with self.assertRaisesRegex(ValueError, 'short_sequence_phase'):
      task_factory.get_task(config.task)


if __name__ == '__main__':
  tf.test.main()
