"""The vocabulary in use: its size, fingerprint, special-token ids, tokenizer.

Both vocabulary kinds BERT users have are supported:
  * a WordPiece `vocab.txt` (one token per line, BERT's format), tokenized with
    `tensorflow_text.BertTokenizer`;
  * a SentencePiece `.model`, tokenized with
    `tensorflow_text.SentencepieceTokenizer`.

Special tokens are looked up in the vocabulary itself, never hard-coded
(SPEC.md, fault 6 of the reference code).
"""

import dataclasses
import functools
import hashlib
import os
from typing import Dict, List, Optional

import tensorflow as tf

# The names each special token goes by in BERT (WordPiece) and in ALBERT-style
# SentencePiece vocabularies; the first one found is used.
_SPECIAL_NAMES = {
    'pad': ('[PAD]', '<pad>'),
    'unk': ('[UNK]', '<unk>'),
    'cls': ('[CLS]', '<cls>'),
    'sep': ('[SEP]', '<sep>'),
    'mask': ('[MASK]', '<mask>'),
}


@dataclasses.dataclass(frozen=True)
class SpecialTokenIds:
  """Ids of the special tokens of one vocabulary (all int)."""
  pad: int
  unk: int
  cls: int
  sep: int
  mask: int

  @property
  def always_kept(self) -> List[int]:
    """Ids that token dropping never drops: [CLS], [SEP], [MASK]."""
    return [self.cls, self.sep, self.mask]


class Vocabulary:
  """A WordPiece `vocab.txt` or a SentencePiece `.model`.

  Args:
    path: the vocabulary file; `.model` means SentencePiece, anything else a
      WordPiece vocab.txt.
    lower_case: whether WordPiece tokenization lower-cases (BERT uncased).

  Raises:
    FileNotFoundError: `path` does not exist.
    ValueError: the file is empty, or lacks a special token
      ([PAD], [UNK], [CLS], [SEP] or [MASK]).
  """

  def __init__(self, path: str, lower_case: bool = True):
    if not path or not tf.io.gfile.exists(path):
      raise FileNotFoundError(
          f'Vocabulary file {path!r} does not exist. Set '
          'task.token_drop.vocab_file to a vocab.txt or SentencePiece .model '
          '(build one with `python -m data_prep.build_vocab`).')
    self.path = path
    self.lower_case = lower_case
    self.is_sentencepiece = path.endswith('.model')
    with tf.io.gfile.GFile(path, 'rb') as f:
      self._raw = f.read()
    if not self._raw:
      raise ValueError(f'Vocabulary file {path!r} is empty.')
    self.tokens = self._read_tokens()
    self._index = {t: i for i, t in enumerate(self.tokens)}
    self.special_ids = self._find_special_ids()

  def _read_tokens(self) -> List[str]:
    if self.is_sentencepiece:
      import sentencepiece as spm  # pylint: disable=g-import-not-at-top
      processor = spm.SentencePieceProcessor(model_proto=self._raw)
      return [processor.id_to_piece(i)
              for i in range(processor.get_piece_size())]
    return [line.rstrip('\n').strip()
            for line in self._raw.decode('utf-8').splitlines()]

  def _find_special_ids(self) -> SpecialTokenIds:
    ids: Dict[str, int] = {}
    for role, names in _SPECIAL_NAMES.items():
      found = [self._index[n] for n in names if n in self._index]
      if not found:
        raise ValueError(
            f'Vocabulary {self.path!r} has no {names[0]} token (nor '
            f'{", ".join(names[1:])}); token dropping needs it. Rebuild the '
            'vocabulary with `python -m data_prep.build_vocab`, which '
            'reserves all special tokens.')
      ids[role] = found[0]
    return SpecialTokenIds(**ids)

  @property
  def size(self) -> int:
    """Number of ids; must equal the encoder's `vocab_size`."""
    return len(self.tokens)

  @property
  def fingerprint(self) -> str:
    """SHA-256 of the file's bytes (hex), to tie derived files to it."""
    return hashlib.sha256(self._raw).hexdigest()

  @functools.cached_property
  def regular_ids(self) -> List[int]:
    """Ids of every token but [PAD], [UNK], [CLS], [SEP] and [MASK], ascending.

    Where to draw MLM's random replacement tokens from, wherever the special
    tokens sit in the vocabulary.
    """
    special = set(dataclasses.astuple(self.special_ids))
    return [i for i in range(self.size) if i not in special]

  def token_id(self, token: str) -> Optional[int]:
    return self._index.get(token)

  def is_word_continuation(self, token: str) -> bool:
    """Whether `token` continues the previous token's word (whole-word masking)."""
    if self.is_sentencepiece:
      return not token.startswith('\u2581') and token not in _ALL_SPECIAL
    return token.startswith('##')

  def tokenizer(self):
    """Returns a tensorflow-text tokenizer producing ids of this vocabulary.

    Its `tokenize(strings)` returns a RaggedTensor `[batch, (words), (pieces)]`
    for WordPiece, `[batch, (pieces)]` for SentencePiece, int64 or int32.
    """
    import tensorflow_text as text  # pylint: disable=g-import-not-at-top
    if self.is_sentencepiece:
      return text.SentencepieceTokenizer(model=self._raw, out_type=tf.int32)
    return text.BertTokenizer(self.path, lower_case=self.lower_case,
                              token_out_type=tf.int64)

  def __repr__(self):
    kind = 'SentencePiece' if self.is_sentencepiece else 'WordPiece'
    return (f'Vocabulary({os.path.basename(self.path)}, {kind}, '
            f'size={self.size})')


_ALL_SPECIAL = frozenset(n for names in _SPECIAL_NAMES.values() for n in names)
