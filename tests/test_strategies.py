"""Static, random and dynamic strategies; chosen by YAML or gin; their metrics."""

import json
import os
import shutil

from absl.testing import parameterized
import gin
import numpy as np
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official.core import task_factory
from official.modeling import hyperparams
from official_td.data import token_frequencies
from official_td.modeling import token_importance
from official_td.tasks import drop_metrics
from tests import real_data
from tests import task_configs


def _frequencies():
  return token_frequencies.read_frequency_file(
      os.path.join(real_data.tfrecord_dir(), token_frequencies.FILENAME),
      real_data.vocab())


def _recorder(strategy, **kwargs):
  special = real_data.vocab().special_ids
  return token_importance.TokenImportanceRecorder(
      vocab_size=real_data.vocab().size, pad_id=special.pad,
      always_keep_ids=special.always_kept, strategy=strategy, **kwargs)


def _task(strategy):
  config = task_configs.tiny_experiment()
  config.task.strategy = strategy
  task = task_factory.get_task(config.task)
  return task, task.build_model()


def _train_steps(task, model, steps):
  optimizer = tf_keras.optimizers.Adam(1e-3)
  metrics = task.build_metrics(training=True)
  step = tf.function(lambda x: task.train_step(x, model, optimizer, metrics))
  for features in task.build_inputs(task.task_config.train_data).take(steps):
    step(features)
  return {m.name: m.result().numpy() for m in metrics}


class FrequencyFileTest(tf.test.TestCase):

  def test_counts_are_the_original_tokens_of_the_train_split(self):
    counts = _frequencies()
    special = real_data.vocab().special_ids
    records = tf.data.TFRecordDataset(tf.io.gfile.glob(
        os.path.join(real_data.tfrecord_dir(), 'train-*')))
    num_sequences = sum(1 for _ in records)
    self.assertEqual(counts[special.cls], num_sequences)
    self.assertEqual(counts[special.pad], 0)  # padding is not counted
    self.assertEqual(counts[special.mask], 0)  # masks count as their original
    the = real_data.vocab().token_id('the')
    self.assertEqual(int(np.argmax(counts)), the)

  def test_counts_do_not_depend_on_the_masking_seed(self):
    directory = self.create_tempdir().full_path
    from data_prep import create_pretraining_data as cpd  # pylint: disable=g-import-not-at-top
    cpd.create_pretraining_data(
        real_data.corpus_slice(), real_data.VOCAB, directory,
        cpd.MaskingConfig(seq_length=real_data.SEQ_LENGTH,
                          max_predictions_per_seq=real_data.MAX_PREDICTIONS),
        seed=99, num_shards=2, validation_every=10)
    other = token_frequencies.read_frequency_file(
        os.path.join(directory, token_frequencies.FILENAME), real_data.vocab())
    self.assertAllEqual(other, _frequencies())


class StaticStrategyTest(tf.test.TestCase):

  def test_keeps_the_rarest_ids_of_each_sequence(self):
    counts = _frequencies()
    recorder = _recorder(
        'static', static_scores=token_frequencies.static_importance(counts))
    word_ids = real_data.batch()['input_word_ids']
    scores = recorder(word_ids)
    kept = token_importance.select_kept_positions(scores, 16).numpy()
    special = real_data.vocab().special_ids
    for row in range(word_ids.shape[0]):
      regular = ~np.isin(word_ids[row], special.always_kept + [special.pad])
      is_kept = np.zeros(word_ids.shape[1], bool)
      is_kept[kept[row]] = True
      kept_counts = counts[word_ids[row][regular & is_kept]]
      dropped_counts = counts[word_ids[row][regular & ~is_kept]]
      if kept_counts.size and dropped_counts.size:
        self.assertLessEqual(kept_counts.max(), dropped_counts.min())

  def test_table_is_bit_identical_after_training(self):
    task, model = _task('static')
    before = model.importance_recorder.importance.numpy().copy()
    self.assertAllEqual(before, -_frequencies().astype(np.float32))
    _train_steps(task, model, steps=3)
    after = model.importance_recorder.importance.numpy()
    self.assertEqual(before.tobytes(), after.tobytes())

  def test_missing_frequency_file_fails_before_training(self):
    config = task_configs.tiny_experiment()
    config.task.strategy = 'static'
    config.task.token_drop.frequency_file = '/nonexistent/freq.json'
    with self.assertRaisesRegex(FileNotFoundError,
                                "'/nonexistent/freq.json' does not exist"):
      task_factory.get_task(config.task)

  def test_frequency_file_of_another_vocabulary_fails(self):
    path = os.path.join(self.create_tempdir().full_path, 'freq.json')
    shutil.copy(os.path.join(real_data.tfrecord_dir(),
                             token_frequencies.FILENAME), path)
    with open(path) as f:
      record = json.load(f)
    record.update(vocab_file='bert-base-uncased/vocab.txt', vocab_size=30522,
                  vocab_sha256='ab' * 32)
    with open(path, 'w') as f:
      json.dump(record, f)
    config = task_configs.tiny_experiment()
    config.task.strategy = 'static'
    config.task.token_drop.frequency_file = path
    with self.assertRaisesRegex(
        ValueError, f"'{path}' was counted with vocabulary "
        "'bert-base-uncased/vocab.txt' \\(30522 ids"):
      task_factory.get_task(config.task)


class RandomStrategyTest(tf.test.TestCase):

  def test_picks_differ_between_steps_and_respect_special_tokens(self):
    recorder = _recorder('random')
    word_ids = real_data.batch()['input_word_ids']
    special = real_data.vocab().special_ids
    picks = []
    for _ in range(2):
      kept = token_importance.select_kept_positions(
          recorder(word_ids), 16).numpy()
      picks.append(kept)
      for row in range(word_ids.shape[0]):
        kept_ids = word_ids[row, kept[row]]
        self.assertNotIn(special.pad, kept_ids)
        always = np.flatnonzero(np.isin(word_ids[row], special.always_kept))
        self.assertContainsSubset(always.tolist(), kept[row].tolist())
    self.assertNotAllEqual(picks[0], picks[1])

  def test_update_changes_nothing(self):
    recorder = _recorder('random')
    features = real_data.batch()
    recorder.update(features['masked_lm_ids'],
                    np.ones_like(features['masked_lm_weights']),
                    features['masked_lm_weights'])
    self.assertAllEqual(recorder.importance.numpy(),
                        np.full([real_data.vocab().size], 10.0))


class SelectionTest(tf.test.TestCase, parameterized.TestCase):

  def tearDown(self):
    gin.clear_config()
    super().tearDown()

  @parameterized.parameters('dynamic', 'static', 'random')
  def test_yaml_and_gin_give_the_same_config(self, strategy):
    experiments = os.path.join(real_data.REPO, 'experiments')
    gin.parse_config_files_and_bindings(
        [os.path.join(experiments, f'{strategy}.gin')], None)
    by_gin = exp_factory.get_exp_config('bert/token_drop')
    gin.clear_config()
    by_yaml = hyperparams.override_params_dict(
        exp_factory.get_exp_config('bert/token_drop'),
        os.path.join(experiments, f'{strategy}.yaml'), is_strict=True)
    self.assertEqual(by_gin.task.strategy, strategy)
    self.assertEqual(by_gin.as_dict(), by_yaml.as_dict())

  def test_config_file_wins_over_gin(self):
    experiments = os.path.join(real_data.REPO, 'experiments')
    gin.parse_config_files_and_bindings(
        [os.path.join(experiments, 'static.gin')], None)
    config = hyperparams.override_params_dict(
        exp_factory.get_exp_config('bert/token_drop'),
        os.path.join(experiments, 'random.yaml'), is_strict=True)
    self.assertEqual(config.task.strategy, 'random')


class DropMetricsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters('dynamic', 'static')
  def test_kept_tokens_score_higher_than_dropped(self, strategy):
    task, model = _task(strategy)
    if strategy == 'dynamic':  # give the table some spread first
      _train_steps(task, model, steps=3)
    logs = _train_steps(task, model, steps=2)
    self.assertBetween(logs[drop_metrics.DROPPED_SHARE], 0.0, 0.99)
    self.assertGreater(logs[drop_metrics.MEAN_KEPT],
                       logs[drop_metrics.MEAN_DROPPED])
    counts = logs[drop_metrics.DROPPED_COUNTS]
    self.assertEqual(counts.shape, (real_data.vocab().size,))
    special = real_data.vocab().special_ids
    self.assertAllEqual(counts[special.always_kept + [special.pad]],
                        [0, 0, 0, 0])
    # Two steps of 8 sequences of 32 tokens, half dropped, minus padding.
    self.assertBetween(counts.sum(), 100, 2 * 8 * 16)

  def test_top_dropped_text(self):
    counts = np.zeros([real_data.vocab().size])
    the, of = real_data.vocab().token_id('the'), real_data.vocab().token_id(
        'of')
    counts[the], counts[of] = 7, 3
    self.assertEqual(
        drop_metrics.top_dropped_text(counts, real_data.vocab().tokens),
        'the (7), of (3)')


if __name__ == '__main__':
  tf.test.main()
