r"""Writes masked-LM pretraining TFRecords in the Model Garden's feature format.

The records are read by `official.nlp.data.pretrain_dataloader` with
`use_next_sentence_label=False` (the token-dropping paper's setup): features
`input_ids`, `input_mask`, `segment_ids` `[seq_length]`, `masked_lm_positions`,
`masked_lm_ids` `[max_predictions_per_seq]` int64 and `masked_lm_weights`
float32.

Sequences are packed: documents are tokenized, concatenated with [SEP]
between them and cut into `[CLS] ... [SEP]` pieces of `seq_length` tokens,
never splitting a word unless it alone is longer than a sequence. Masking is
whole-word at `masked_lm_prob` with BERT's 80/10/10 replacement. Everything
is seeded: the same inputs and flags give byte-identical files.

  python -m data_prep.create_pretraining_data \
      --corpus=data_prep/default/corpus.txt.gz \
      --vocab_file=data_prep/default/vocab.txt --output_dir=data/default

writes `train-0000i-of-0000N.tfrecord`, `valid-...` (every
`validation_every`-th document is held out), `token_frequencies.json` (id
counts of the train split, for static dropping) and `metadata.json`.
"""

import dataclasses
import glob
import json
import os
import random
import time
from typing import Dict, Iterable, Iterator, List, Sequence, Tuple

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from data_prep import build_corpus
from data_prep import count_token_frequencies
from official.core import tf_example_builder
from official_td.data import token_frequencies
from official_td.data import vocabulary as vocabulary_lib

Word = List[int]


@dataclasses.dataclass(frozen=True)
class MaskingConfig:
  """How MLM targets are chosen (BERT, Devlin et al. 2019)."""
  seq_length: int = 128
  max_predictions_per_seq: int = 20
  masked_lm_prob: float = 0.15
  mask_prob: float = 0.8    # of targets replaced by [MASK]
  random_prob: float = 0.1  # of targets replaced by a random token


@dataclasses.dataclass
class MaskedExample:
  input_ids: List[int]
  input_mask: List[int]
  masked_lm_positions: List[int]
  masked_lm_ids: List[int]
  masked_lm_weights: List[float]


def tokenize_documents(documents: Sequence[List[str]],
                       vocab: vocabulary_lib.Vocabulary,
                       batch_size: int = 4096) -> List[List[Word]]:
  """Returns each document as a list of words, each a list of token ids."""
  tokenizer = vocab.tokenizer()
  paragraphs = [p for document in documents for p in document]
  words_per_paragraph: List[List[Word]] = []
  # Large batches across documents: one eager call per paragraph is ~20x
  # slower.
  for start in range(0, len(paragraphs), batch_size):
    pieces = tokenizer.tokenize(
        tf.constant(paragraphs[start:start + batch_size]))
    words_per_paragraph.extend(_ragged_to_words(pieces, vocab))
  tokenized, offset = [], 0
  for document in documents:
    paragraph_words = words_per_paragraph[offset:offset + len(document)]
    offset += len(document)
    tokenized.append([w for words in paragraph_words for w in words])
  return tokenized


def _ragged_to_words(pieces: tf.RaggedTensor,
                     vocab: vocabulary_lib.Vocabulary) -> List[List[Word]]:
  """Splits a batch of tokenized paragraphs into words of ids.

  Goes through NumPy row splits: `RaggedTensor.to_list()` is ~50x slower.
  """
  ids = pieces.flat_values.numpy().tolist()
  if vocab.is_sentencepiece:  # [batch, (pieces)]: words start with U+2581
    splits = pieces.row_splits.numpy()
    return [_sentencepiece_words(ids[a:b], vocab)
            for a, b in zip(splits[:-1], splits[1:])]
  word_splits = pieces.values.row_splits.numpy().tolist()  # [batch, (words), (pieces)]
  words = [ids[a:b] for a, b in zip(word_splits[:-1], word_splits[1:])]
  paragraph_splits = pieces.row_splits.numpy().tolist()
  return [words[a:b]
          for a, b in zip(paragraph_splits[:-1], paragraph_splits[1:])]


def _sentencepiece_words(ids: List[int],
                         vocab: vocabulary_lib.Vocabulary) -> List[Word]:
  words: List[Word] = []
  for piece_id in ids:
    if words and vocab.is_word_continuation(vocab.tokens[piece_id]):
      words[-1].append(piece_id)
    else:
      words.append([piece_id])
  return words


def pack_sequences(documents: Iterable[List[Word]], seq_length: int,
                   sep_id: int) -> Iterator[List[Word]]:
  """Packs word streams into sequences of at most `seq_length - 2` tokens.

  Documents are joined with a [SEP] word. Yields the words of each sequence.
  """
  budget = seq_length - 2
  current: List[Word] = []
  used = 0
  for words in documents:
    if current:
      words = [[sep_id]] + words
    for word in words:
      word = word[:budget]
      if used + len(word) > budget:
        yield current
        current, used = [], 0
        if word == [sep_id]:
          continue  # a [SEP] never starts a sequence
      current.append(word)
      used += len(word)
  if current:
    yield current


def mask_sequence(words: List[Word], vocab: vocabulary_lib.Vocabulary,
                  config: MaskingConfig, rng: random.Random) -> MaskedExample:
  """Adds [CLS]/[SEP], chooses whole words to mask and pads to fixed shapes."""
  special = vocab.special_ids
  tokens = [special.cls]
  word_spans: List[Tuple[int, int]] = []
  for word in words:
    if word != [special.sep]:
      word_spans.append((len(tokens), len(tokens) + len(word)))
    tokens.extend(word)
  tokens.append(special.sep)
  n_tokens = len(tokens)

  num_to_predict = min(config.max_predictions_per_seq,
                       max(1, round((n_tokens - 2) * config.masked_lm_prob)))
  rng.shuffle(word_spans)
  positions: List[int] = []
  for start, end in word_spans:
    if len(positions) + (end - start) > num_to_predict:
      continue
    positions.extend(range(start, end))
    if len(positions) == num_to_predict:
      break
  positions.sort()

  input_ids = list(tokens)
  regular_ids = vocab.regular_ids
  for position in positions:
    draw = rng.random()
    if draw < config.mask_prob:
      input_ids[position] = special.mask
    elif draw < config.mask_prob + config.random_prob:
      # Any non-special id; when the special tokens are the first ids (as in
      # the default vocabulary) this draws what randrange over the ids after
      # them did, so existing data stays byte-identical.
      input_ids[position] = regular_ids[rng.randrange(len(regular_ids))]

  pad_len = config.seq_length - n_tokens
  pad_pred = config.max_predictions_per_seq - len(positions)
  return MaskedExample(
      input_ids=input_ids + [special.pad] * pad_len,
      input_mask=[1] * n_tokens + [0] * pad_len,
      masked_lm_positions=positions + [0] * pad_pred,
      masked_lm_ids=[tokens[p] for p in positions] + [0] * pad_pred,
      masked_lm_weights=[1.0] * len(positions) + [0.0] * pad_pred)


def to_tf_example(example: MaskedExample) -> bytes:
  builder = tf_example_builder.TfExampleBuilder()
  builder.add_ints_feature('input_ids', example.input_ids)
  builder.add_ints_feature('input_mask', example.input_mask)
  builder.add_ints_feature('segment_ids', [0] * len(example.input_ids))
  builder.add_ints_feature('masked_lm_positions', example.masked_lm_positions)
  builder.add_ints_feature('masked_lm_ids', example.masked_lm_ids)
  builder.add_floats_feature('masked_lm_weights', example.masked_lm_weights)
  return builder.serialized_example


# What a run writes into its output folder: shards of any count, files in the
# making, and the files that describe them.
_OUTPUT_PATTERNS = ('train-?????-of-?????.tfrecord*',
                    'valid-?????-of-?????.tfrecord*', 'metadata.json*',
                    token_frequencies.FILENAME + '*')


def remove_earlier_outputs(output_dir: str) -> List[str]:
  """Removes the files an earlier run wrote into `output_dir`; returns them.

  Shards of an earlier run with another shard count, vocabulary or sequence
  length would otherwise sit beside the new ones and match the same
  `train-*.tfrecord` pattern. `metadata.json` goes first, so that a run that
  dies half-way leaves no description of data that is not there.
  """
  removed = []
  for pattern in _OUTPUT_PATTERNS:
    for path in sorted(glob.glob(os.path.join(output_dir, pattern))):
      os.remove(path)
      removed.append(path)
  if removed:
    logging.info('Removed %d files of an earlier run from %s: %s',
                 len(removed), output_dir,
                 ', '.join(os.path.basename(p) for p in removed))
  return removed


class ShardedWriter:
  """Writes records round-robin into N shards; files appear only when whole."""

  def __init__(self, output_dir: str, split: str, num_shards: int):
    self.paths = [os.path.join(output_dir, f'{split}-{i:05d}-of-'
                               f'{num_shards:05d}.tfrecord')
                  for i in range(num_shards)]
    self._writers = [tf.io.TFRecordWriter(p + '.partial') for p in self.paths]
    self.count = 0

  def write(self, record: bytes) -> None:
    self._writers[self.count % len(self._writers)].write(record)
    self.count += 1

  def close(self) -> Dict[str, dict]:
    """Closes the shards; returns `describe_shard` of each, by file name."""
    for writer, path in zip(self._writers, self.paths):
      writer.close()
      os.replace(path + '.partial', path)
    shards = len(self.paths)
    return {os.path.basename(path): describe_shard(
        path, self.count // shards + (i < self.count % shards))
            for i, path in enumerate(self.paths)}


def describe_shard(path: str, records: int) -> dict:
  """What `metadata.json` keeps of a shard: bytes, records and SHA-256.

  The size is checked before every training run (cheap, and it catches a
  truncated or partly copied file); the checksum is there for a full check.
  """
  return dict(bytes=os.path.getsize(path), records=records,
              sha256=build_corpus.file_sha256(path))


def create_pretraining_data(corpus: str, vocab_file: str, output_dir: str,
                            config: MaskingConfig, seed: int = 12345,
                            num_shards: int = 4, validation_every: int = 25,
                            dupe_factor: int = 1,
                            lower_case: bool = True) -> dict:
  """Builds train/valid TFRecords and `metadata.json`; returns the metadata.

  Raises:
    FileNotFoundError: the corpus or vocabulary file is missing.
    ValueError: the corpus holds no text.
  """
  vocab = vocabulary_lib.Vocabulary(vocab_file, lower_case=lower_case)
  documents = list(build_corpus.read_corpus(corpus))
  if not documents:
    raise ValueError(f'Corpus {corpus!r} holds no text.')
  splits = {
      'train': [d for i, d in enumerate(documents)
                if i % validation_every != validation_every - 1],
      'valid': [d for i, d in enumerate(documents)
                if i % validation_every == validation_every - 1],
  }
  os.makedirs(output_dir, exist_ok=True)
  remove_earlier_outputs(output_dir)
  metadata = dict(vocab_file=os.path.abspath(vocab_file),
                  vocab_size=vocab.size, vocab_sha256=vocab.fingerprint,
                  seq_length=config.seq_length,
                  max_predictions_per_seq=config.max_predictions_per_seq,
                  masked_lm_prob=config.masked_lm_prob, seed=seed,
                  corpus=os.path.abspath(corpus),
                  corpus_sha256=build_corpus.file_sha256(corpus))
  start = time.time()
  for split, split_documents in splits.items():
    tokenized = tokenize_documents(split_documents, vocab)
    writer = ShardedWriter(output_dir, split,
                           num_shards if split == 'train' else 1)
    for dupe in range(dupe_factor if split == 'train' else 1):
      rng = random.Random(f'{seed}-{split}-{dupe}')
      for words in pack_sequences(tokenized, config.seq_length,
                                  vocab.special_ids.sep):
        writer.write(to_tf_example(mask_sequence(words, vocab, config, rng)))
        if writer.count % 5000 == 0:
          logging.info('%s: %d sequences written (%.0f s).', split,
                       writer.count, time.time() - start)
    metadata.setdefault('shards', {}).update(writer.close())
    metadata[f'{split}_sequences'] = writer.count
    metadata[f'{split}_files'] = [os.path.basename(p) for p in writer.paths]
  metadata['frequency_file'] = os.path.basename(
      count_token_frequencies.count_and_write(
          output_dir, vocab, config.seq_length,
          config.max_predictions_per_seq))
  with open(os.path.join(output_dir, 'metadata.json.partial'), 'w') as f:
    json.dump(metadata, f, indent=2)
  os.replace(os.path.join(output_dir, 'metadata.json.partial'),
             os.path.join(output_dir, 'metadata.json'))
  logging.info('Wrote %d train and %d valid sequences to %s in %.0f s.',
               metadata['train_sequences'], metadata['valid_sequences'],
               output_dir, time.time() - start)
  return metadata


def main(_):
  flags_ = flags.FLAGS
  config = MaskingConfig(seq_length=flags_.seq_length,
                         max_predictions_per_seq=flags_.max_predictions_per_seq,
                         masked_lm_prob=flags_.masked_lm_prob)
  create_pretraining_data(flags_.corpus, flags_.vocab_file, flags_.output_dir,
                          config, seed=flags_.seed,
                          num_shards=flags_.num_shards,
                          validation_every=flags_.validation_every,
                          dupe_factor=flags_.dupe_factor,
                          lower_case=flags_.lower_case)


if __name__ == '__main__':
  flags.DEFINE_string('corpus', None, 'Corpus file from build_corpus.')
  flags.DEFINE_string('vocab_file', None, 'vocab.txt or SentencePiece .model.')
  flags.DEFINE_string('output_dir', None, 'Where the TFRecords go.')
  flags.DEFINE_integer('seq_length', 128, 'Tokens per sequence.')
  flags.DEFINE_integer('max_predictions_per_seq', 20, 'MLM targets per '
                       'sequence at most.')
  flags.DEFINE_float('masked_lm_prob', 0.15, 'Share of tokens masked.')
  flags.DEFINE_integer('seed', 12345, 'Random seed.')
  flags.DEFINE_integer('num_shards', 4, 'Train shards.')
  flags.DEFINE_integer('validation_every', 25, 'Every N-th document is '
                       'held out for validation.')
  flags.DEFINE_integer('dupe_factor', 1, 'Maskings of the train data.')
  flags.DEFINE_bool('lower_case', True, 'Lower-case (WordPiece only).')
  flags.mark_flags_as_required(['corpus', 'vocab_file', 'output_dir'])
  app.run(main)
