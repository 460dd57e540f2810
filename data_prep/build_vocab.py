r"""Trains a WordPiece or SentencePiece vocabulary on a corpus.

WordPiece (default; BERT's format, one token per line):
  python -m data_prep.build_vocab --corpus=data_prep/default/corpus.txt.gz \
      --output=data_prep/default/vocab.txt --vocab_size=8192
SentencePiece (writes OUTPUT.model and OUTPUT.vocab):
  python -m data_prep.build_vocab --kind=sentencepiece --corpus=... \
      --output=/tmp/sp --vocab_size=8000

Both reserve [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4. An existing BERT
`vocab.txt` or SentencePiece model works as it is; nothing here is required.
"""

import os
import tempfile
from typing import Iterator, List

from absl import app
from absl import flags
from absl import logging

from data_prep import build_corpus

RESERVED_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']


def _paragraphs(corpus: str) -> Iterator[str]:
  for document in build_corpus.read_corpus(corpus):
    yield from document


def train_wordpiece(corpus: str, output: str, vocab_size: int,
                    lower_case: bool = True) -> List[str]:
  """Trains a WordPiece vocabulary with tensorflow-text; writes `output`.

  Returns:
    The tokens, reserved tokens first.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset as bvd  # pylint: disable=g-import-not-at-top
  dataset = tf.data.Dataset.from_generator(
      lambda: _paragraphs(corpus),
      output_signature=tf.TensorSpec([], tf.string)).batch(1024)
  tokens = bvd.bert_vocab_from_dataset(
      dataset,
      vocab_size=vocab_size,
      reserved_tokens=RESERVED_TOKENS,
      bert_tokenizer_params=dict(lower_case=lower_case),
      learn_params={})
  _write_atomically(output, ''.join(t + '\n' for t in tokens))
  return tokens


def train_sentencepiece(corpus: str, output_prefix: str,
                        vocab_size: int) -> str:
  """Trains a unigram SentencePiece model; returns the `.model` path."""
  import sentencepiece as spm  # pylint: disable=g-import-not-at-top
  with tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False) as f:
    for paragraph in _paragraphs(corpus):
      f.write(paragraph + '\n')
  try:
    spm.SentencePieceTrainer.train(
        input=f.name, model_prefix=output_prefix, vocab_size=vocab_size,
        model_type='unigram', pad_id=0, unk_id=1, bos_id=-1, eos_id=-1,
        control_symbols=['[CLS]', '[SEP]', '[MASK]'], pad_piece='[PAD]',
        unk_piece='[UNK]', normalization_rule_name='nmt_nfkc_cf',
        input_sentence_size=2_000_000, shuffle_input_sentence=True)
  finally:
    os.unlink(f.name)
  return output_prefix + '.model'


def _write_atomically(path: str, text: str) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path + '.partial', 'w', encoding='utf-8') as f:
    f.write(text)
  os.replace(path + '.partial', path)


def main(_):
  flags_ = flags.FLAGS
  if flags_.kind == 'wordpiece':
    tokens = train_wordpiece(flags_.corpus, flags_.output, flags_.vocab_size,
                             flags_.lower_case)
    logging.info('Wrote %s: %d WordPiece tokens.', flags_.output, len(tokens))
  else:
    path = train_sentencepiece(flags_.corpus, flags_.output,
                               flags_.vocab_size)
    logging.info('Wrote %s.', path)


if __name__ == '__main__':
  flags.DEFINE_string('corpus', None, 'Corpus file from build_corpus.')
  flags.DEFINE_string('output', None, 'vocab.txt path, or the SentencePiece '
                      'model prefix.')
  flags.DEFINE_enum('kind', 'wordpiece', ['wordpiece', 'sentencepiece'],
                    'Vocabulary kind.')
  flags.DEFINE_integer('vocab_size', 8192, 'Target vocabulary size.')
  flags.DEFINE_bool('lower_case', True, 'Lower-case before WordPiece.')
  flags.mark_flags_as_required(['corpus', 'output'])
  app.run(main)
