"""Tests of the corpus, vocabulary and pretraining-data tools on real text."""

import dataclasses
import filecmp
import glob
import hashlib
import json
import os
import random
import shutil
import subprocess

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from data_prep import build_corpus
from data_prep import build_vocab
from data_prep import corpus_sources
from data_prep import create_pretraining_data as cpd
from official.core import task_factory
from official.nlp.data import pretrain_dataloader
from official_td.data import vocabulary
from tests import real_data
from tests import task_configs


def _records(directory, split='train'):
  features = []
  for path in sorted(glob.glob(os.path.join(directory, f'{split}-*'))):
    for record in tf.data.TFRecordDataset(path):
      example = tf.train.Example.FromString(record.numpy()).features.feature
      features.append({k: np.array(v.int64_list.value or v.float_list.value)
                       for k, v in example.items()})
  return features


def _tiny_deb(directory, package, version):
  """Builds a one-file `.deb` with `dpkg-deb --build`; returns its path."""
  tree = os.path.join(directory, 'tree')
  os.makedirs(os.path.join(tree, 'DEBIAN'))
  os.makedirs(os.path.join(tree, 'usr', 'share', package))
  with open(os.path.join(tree, 'usr', 'share', package, 'README'), 'w') as f:
    f.write('A gloss.\n')
  with open(os.path.join(tree, 'DEBIAN', 'control'), 'w') as f:
    f.write(f'Package: {package}\nVersion: {version}\nArchitecture: all\n'
            'Maintainer: Tests <tests@example.org>\nDescription: test\n')
  deb = os.path.join(directory, f'{package}.deb')
  subprocess.run(['dpkg-deb', '--build', '--root-owner-group', tree, deb],
                 check=True, capture_output=True)
  return deb


class CorpusTest(tf.test.TestCase):

  def test_embedded_corpus_is_real_prose(self):
    documents = list(build_corpus.read_corpus(real_data.CORPUS))
    self.assertGreater(len(documents), 500)
    text = ' '.join(documents[0])
    self.assertIn('Python', text)
    paragraphs = [p for d in documents[:50] for p in d]
    for paragraph in paragraphs:
      self.assertNotIn('``', paragraph)  # inline markup was removed
      self.assertNotRegex(paragraph, r':\w+:`')
      self.assertFalse(paragraph.startswith('>>>'))

  def test_rst_cleaning_drops_code_and_markup(self):
    text = ('Title\n=====\n\nThe :func:`len` function returns the ``length`` '
            'of an object, see :ref:`the docs <len-docs>`::\n\n'
            '   >>> len([1, 2])\n   2\n\n.. note::\n\n   Notes are prose '
            'and are kept as they are.\n\n.. code-block:: python\n\n'
            '   x = compute_value(here)\n')
    paragraphs = corpus_sources.rst_paragraphs(text)
    self.assertEqual(paragraphs, [
        'The len function returns the length of an object, see the docs:',
        'Notes are prose and are kept as they are.'])

  def test_text_dir_and_atomic_write(self):
    directory = self.create_tempdir()
    directory.create_file('a.txt', 'First paragraph\nwraps here.\n\nSecond.')
    output = os.path.join(self.create_tempdir().full_path, 'c.txt.gz')
    counts = build_corpus.write_corpus(
        corpus_sources.text_dir_documents(directory.full_path), output)
    self.assertEqual(counts['documents'], 1)
    self.assertEqual(list(build_corpus.read_corpus(output)),
                     [['First paragraph wraps here.', 'Second.']])
    self.assertFalse(os.path.exists(output + '.partial'))

  def test_sources_record_names_versions_and_the_corpus_digest(self):
    directory = self.create_tempdir()
    directory.create_file('a.txt', 'First paragraph.\n\nSecond.')
    cache = self.create_tempdir().full_path
    deb = _tiny_deb(self.create_tempdir().full_path, 'wordnet-base', '1:3.0-37')
    build_corpus.unpack_deb(deb, os.path.join(cache, 'wordnet-base'))
    output = os.path.join(self.create_tempdir().full_path, 'c.txt.gz')
    counts = build_corpus.write_corpus(
        corpus_sources.text_dir_documents(directory.full_path), output)
    provenance = [build_corpus.source_provenance(name, cache)
                  for name in ('wordnet', 'text_dir', 'gcide')]
    path = build_corpus.write_sources_record(output, provenance, counts)
    with open(path) as f:
      record = json.load(f)
    with open(output, 'rb') as f:
      self.assertEqual(record['sha256'], hashlib.sha256(f.read()).hexdigest())
    self.assertEqual(record['documents'], 1)
    self.assertEqual(record['sources'], [
        dict(source='wordnet', package='wordnet-base', version='1:3.0-37'),
        dict(source='text_dir', package=None, version=None),
        # Not unpacked here (or cached before versions were recorded).
        dict(source='gcide', package='dict-gcide', version=None)])
    self.assertFalse(os.path.exists(path + '.partial'))

  def test_a_failed_unpack_leaves_no_cached_package(self):
    cache = self.create_tempdir()
    broken = cache.create_file('broken.deb', 'not an ar archive').full_path
    root = os.path.join(cache.full_path, 'broken')
    with self.assertRaises(subprocess.CalledProcessError):
      build_corpus.unpack_deb(broken, root)
    self.assertCountEqual(os.listdir(cache.full_path), ['broken.deb'])

  def test_missing_corpus_is_named(self):
    with self.assertRaisesRegex(FileNotFoundError, 'nope.txt'):
      list(build_corpus.read_corpus('/tmp/nope.txt'))


class VocabularyTest(tf.test.TestCase):

  def test_default_wordpiece_vocabulary(self):
    vocab = real_data.vocab()
    self.assertEqual(vocab.size, 8009)
    special = vocab.special_ids
    self.assertEqual((special.pad, special.unk, special.cls, special.sep,
                      special.mask), (0, 1, 2, 3, 4))

  def test_special_ids_come_from_the_vocabulary(self):
    path = os.path.join(self.create_tempdir().full_path, 'vocab.txt')
    tokens = ['[UNK]', 'the', '[SEP]', '[PAD]', '[MASK]', 'a', '[CLS]']
    with open(path, 'w') as f:
      f.write('\n'.join(tokens) + '\n')
    special = vocabulary.Vocabulary(path).special_ids
    self.assertEqual(special.pad, 3)
    self.assertEqual(special.always_kept, [6, 2, 4])

  def test_vocabulary_without_mask_is_rejected(self):
    path = os.path.join(self.create_tempdir().full_path, 'vocab.txt')
    with open(path, 'w') as f:
      f.write('[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n')
    with self.assertRaisesRegex(ValueError, r'no \[MASK\] token'):
      vocabulary.Vocabulary(path)

  def test_sentencepiece_model_works_end_to_end(self):
    prefix = os.path.join(self.create_tempdir().full_path, 'sp')
    model = build_vocab.train_sentencepiece(real_data.corpus_slice(), prefix,
                                            vocab_size=800)
    vocab = vocabulary.Vocabulary(model)
    self.assertEqual(vocab.size, 800)
    self.assertEqual(vocab.special_ids.pad, 0)
    output_dir = self.create_tempdir().full_path
    cpd.create_pretraining_data(
        real_data.corpus_slice(), model, output_dir,
        cpd.MaskingConfig(seq_length=32, max_predictions_per_seq=5),
        num_shards=1)
    records = _records(output_dir)
    self.assertNotEmpty(records)
    self.assertTrue(all(r['input_ids'][0] == vocab.special_ids.cls
                        for r in records))


class PretrainingDataTest(tf.test.TestCase, parameterized.TestCase):

  def test_same_seed_same_bytes_other_seed_other_bytes(self):
    config = cpd.MaskingConfig(seq_length=32, max_predictions_per_seq=5)
    dirs = [self.create_tempdir().full_path for _ in range(3)]
    for directory, seed in zip(dirs, (7, 7, 8)):
      cpd.create_pretraining_data(real_data.corpus_slice(), real_data.VOCAB,
                                  directory, config, seed=seed, num_shards=2)
    name = 'train-00000-of-00002.tfrecord'
    self.assertTrue(filecmp.cmp(os.path.join(dirs[0], name),
                                os.path.join(dirs[1], name), shallow=False))
    self.assertFalse(filecmp.cmp(os.path.join(dirs[0], name),
                                 os.path.join(dirs[2], name), shallow=False))
    with open(os.path.join(dirs[0], 'metadata.json')) as f:
      corpus_sha256 = json.load(f)['corpus_sha256']
    with open(real_data.corpus_slice(), 'rb') as f:
      self.assertEqual(corpus_sha256, hashlib.sha256(f.read()).hexdigest())

  def test_a_rerun_removes_the_shards_of_the_earlier_run(self):
    config = cpd.MaskingConfig(seq_length=32, max_predictions_per_seq=5)
    directory = self.create_tempdir().full_path
    cpd.create_pretraining_data(real_data.corpus_slice(), real_data.VOCAB,
                                directory, config, num_shards=4)
    self.assertLen(glob.glob(os.path.join(directory, 'train-*')), 4)
    cpd.create_pretraining_data(real_data.corpus_slice(), real_data.VOCAB,
                                directory, config, num_shards=2)
    self.assertCountEqual(
        [os.path.basename(p) for p in glob.glob(
            os.path.join(directory, 'train-*'))],
        ['train-00000-of-00002.tfrecord', 'train-00001-of-00002.tfrecord'])

  def test_stray_shards_are_named_before_training(self):
    directory = self.create_tempdir().full_path
    for name in ('metadata.json', 'train-00000-of-00002.tfrecord',
                 'train-00001-of-00002.tfrecord'):
      shutil.copy(os.path.join(real_data.tfrecord_dir(), name), directory)
    # A shard left by a run with another shard count.
    shutil.copy(os.path.join(directory, 'train-00000-of-00002.tfrecord'),
                os.path.join(directory, 'train-00003-of-00004.tfrecord'))
    config = task_configs.tiny_experiment()
    config.task.train_data.input_path = os.path.join(directory, 'train-*')
    with self.assertRaisesRegex(ValueError,
                                'train-00003-of-00004.tfrecord .*does not '
                                'list'):
      task_factory.get_task(config.task)

  def test_special_tokens_at_the_end_of_the_vocabulary(self):
    tokens = real_data.vocab().tokens
    special_tokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    path = os.path.join(self.create_tempdir().full_path, 'vocab.txt')
    with open(path, 'w') as f:
      f.write('\n'.join([t for t in tokens if t not in special_tokens]
                        + special_tokens) + '\n')
    vocab = vocabulary.Vocabulary(path)
    self.assertEqual(vocab.special_ids.mask, vocab.size - 1)
    every_target_random = cpd.MaskingConfig(
        seq_length=32, max_predictions_per_seq=5, mask_prob=0.0,
        random_prob=1.0)
    first_document = next(build_corpus.read_corpus(real_data.CORPUS))
    words = cpd.tokenize_documents([first_document], vocab)[0][:20]
    replaced = []
    for seed in range(50):
      example = cpd.mask_sequence(words, vocab, every_target_random,
                                  random.Random(seed))
      replaced += [example.input_ids[p] for p, w in zip(
          example.masked_lm_positions, example.masked_lm_weights) if w]
    self.assertGreaterEqual(len(replaced), 100)
    self.assertTrue(set(replaced).isdisjoint(dataclasses.astuple(
        vocab.special_ids)))
    self.assertGreater(max(replaced), vocab.size - 100)  # the whole range

  def test_records_are_packed_whole_word_masked_sequences(self):
    vocab = real_data.vocab()
    special = vocab.special_ids
    records = _records(real_data.tfrecord_dir())
    self.assertGreater(len(records), 100)
    masked_share, replaced = [], {'mask': 0, 'same': 0, 'random': 0}
    for r in records:
      ids, mask = r['input_ids'], r['input_mask']
      length = int(mask.sum())
      self.assertEqual(ids[0], special.cls)
      self.assertEqual(ids[length - 1], special.sep)
      self.assertTrue(np.all(ids[length:] == special.pad))
      weights = r['masked_lm_weights']
      positions = r['masked_lm_positions'][weights > 0].astype(int)
      labels = r['masked_lm_ids'][weights > 0]
      masked_share.append(len(positions) / (length - 2))
      for position, label in zip(positions, labels):
        token = ids[position]
        kind = ('mask' if token == special.mask else
                'same' if token == label else 'random')
        replaced[kind] += 1
        # Whole-word masking: a masked continuation piece's word start is
        # masked too.
        if vocab.tokens[label].startswith('##'):
          self.assertIn(position - 1, positions)
    # Sequences are packed: most are (nearly) full.
    lengths = [r['input_mask'].sum() for r in records]
    self.assertGreater(np.median(lengths), 28)
    self.assertBetween(np.mean(masked_share), 0.12, 0.18)
    total = sum(replaced.values())
    self.assertBetween(replaced['mask'] / total, 0.72, 0.88)
    self.assertBetween(replaced['random'] / total, 0.04, 0.16)

  def test_model_garden_loader_reads_the_records(self):
    dataset = pretrain_dataloader.BertPretrainDataLoader(
        real_data.data_config(batch_size=4, is_training=False)).load()
    features = next(iter(dataset))
    self.assertEqual(features['input_word_ids'].shape, (4, 32))
    self.assertEqual(features['masked_lm_positions'].shape, (4, 5))
    self.assertEqual(features['masked_lm_weights'].dtype, tf.float32)
    self.assertNotIn('next_sentence_labels', features)


if __name__ == '__main__':
  tf.test.main()


class LargeCorpusSourcesTest(tf.test.TestCase):

  def test_gcide_entry_becomes_prose(self):
    # An entry of the 1913 Webster as dict-gcide ships it.
    block = [
        'Abundant \\A*bun"dant\\, a. [OE. (h)abundant, aboundant, F.',
        '   abondant, fr. L. abudans, p. pr. of abundare. See {Abound}.]',
        '   Fully sufficient; plentiful; in copious supply; -- followed',
        '   by in, rarely by with. "Abundant in goodness and truth."',
        '   --Exod. xxxiv. 6.',
        '   [1913 Webster]']
    self.assertEqual(
        corpus_sources._gcide_paragraph(block),  # pylint: disable=protected-access
        'Fully sufficient; plentiful; in copious supply; -- followed by in, '
        'rarely by with. "Abundant in goodness and truth."')
