"""Readers that turn real English text sources into documents.

A document is a list of paragraphs (strings, one line each). The sources are
the Debian packages listed in `shared/DATA.md` plus any directory of a user's
own `.txt` files. Each reader yields documents; `build_corpus.py` writes them.
"""

import glob
import os
import re
from typing import Iterator, List

Document = List[str]

# Roles like :func:`len` or :ref:`label <target>`: keep the visible text.
_ROLE_WITH_TARGET = re.compile(r':[\w:+-]+:`([^`<]*?)\s*<[^`>]*>`')
_ROLE = re.compile(r':[\w:+-]+:`!?~?([^`]*)`')
_LITERAL = re.compile(r'``([^`]*)``')
_LINK = re.compile(r'`([^`<]*?)\s*<[^`>]*>`_*')
_INTERPRETED = re.compile(r'`([^`]*)`_*')
_EMPHASIS = re.compile(r'\*\*?([^*\s][^*]*?)\*\*?')
_SUBSTITUTION = re.compile(r'\|([\w-]+)\|')
_ADORNMENT = re.compile(r'^([=\-~`^"\'#*+:.<>_])\1{2,}\s*$')
_LIST_MARKER = re.compile(r'^(\*|-|\+|#\.|\d+\.)\s+')


def _clean_inline(text: str) -> str:
  text = _ROLE_WITH_TARGET.sub(r'\1', text)
  text = _ROLE.sub(r'\1', text)
  text = _LITERAL.sub(r'\1', text)
  text = _LINK.sub(r'\1', text)
  text = _INTERPRETED.sub(r'\1', text)
  text = _EMPHASIS.sub(r'\1', text)
  text = _SUBSTITUTION.sub(r'\1', text)
  text = re.sub(r'::$', ':', text)
  return re.sub(r'\s+', ' ', text).strip()


def _is_prose(paragraph: str, min_words: int) -> bool:
  words = paragraph.split()
  if len(words) < min_words:
    return False
  letters = sum(c.isalpha() or c.isspace() for c in paragraph)
  return letters >= 0.8 * len(paragraph)


def rst_paragraphs(text: str, min_words: int = 6) -> Document:
  """Returns the prose paragraphs of a reStructuredText file.

  Literal blocks (after `::`), doctest lines, directives, comments and section
  adornments are dropped; inline markup is reduced to its visible text.

  Args:
    text: the file's contents.
    min_words: paragraphs with fewer words are dropped (headings, labels).

  Returns:
    The paragraphs, one string each, whitespace folded.
  """
  paragraphs, current = [], []
  skip_indent = None  # indentation of a literal/directive block being skipped

  def flush():
    if current:
      paragraph = _clean_inline(' '.join(current))
      if _is_prose(paragraph, min_words):
        paragraphs.append(paragraph)
      current.clear()

  for raw in text.splitlines():
    line = raw.rstrip()
    indent = len(line) - len(line.lstrip())
    stripped = line.strip()
    if skip_indent is not None:
      if not stripped or indent > skip_indent:
        continue
      skip_indent = None
    if not stripped:
      flush()
      continue
    if stripped.startswith('.. ') or stripped == '..':
      flush()
      # Directive bodies that are prose (note, versionadded) are kept: only
      # the directive line and its options are dropped; code and comment
      # directives drop their whole body.
      if re.match(r'\.\.\s+(code-block|code|highlight|literalinclude|'
                  r'productionlist|doctest|testcode|testoutput|index|'
                  r'_|\|)|\.\.\s*$|\.\.\s+[^:]*$', stripped):
        skip_indent = indent
      continue
    if stripped.startswith(('>>>', '...', ':')) or _ADORNMENT.match(stripped):
      flush()
      continue
    if _LIST_MARKER.match(stripped):
      flush()
      stripped = _LIST_MARKER.sub('', stripped)
    current.append(stripped)
    if stripped.endswith('::'):
      flush()
      skip_indent = indent
  flush()
  return paragraphs


def rst_documents(root: str, exclude: str = 'translations') -> Iterator[Document]:
  """Yields one document per `*.rst.txt` file below `root`, in sorted order.

  Raises:
    FileNotFoundError: no `.rst.txt` file is below `root`.
  """
  files = sorted(glob.glob(os.path.join(root, '**', '*.rst.txt'),
                           recursive=True))
  files = [f for f in files if f'{os.sep}{exclude}{os.sep}' not in f]
  if not files:
    raise FileNotFoundError(f'No .rst.txt files below {root!r}: point it at '
                            'the package\'s html/_sources folder.')
  for path in files:
    with open(path, encoding='utf-8', errors='replace') as f:
      document = rst_paragraphs(f.read())
    if document:
      yield document


def wordnet_documents(root: str,
                      glosses_per_document: int = 64) -> Iterator[Document]:
  """Yields WordNet glosses (definitions and examples) grouped in documents.

  Synsets in a `data.*` file are stored by lexicographer file, so neighbours
  are on related subjects; groups of them make coherent-enough documents.

  Args:
    root: the folder holding `data.noun`, `data.verb`, `data.adj`, `data.adv`.
    glosses_per_document: how many glosses make one document.

  Raises:
    FileNotFoundError: a `data.*` file is missing.
  """
  for pos in ('noun', 'verb', 'adj', 'adv'):
    path = os.path.join(root, f'data.{pos}')
    if not os.path.exists(path):
      raise FileNotFoundError(f'WordNet file {path!r} is missing: point '
                              '--wordnet_dir at usr/share/wordnet.')
    document = []
    with open(path, encoding='utf-8', errors='replace') as f:
      for line in f:
        if line.startswith(' ') or ' | ' not in line:
          continue  # licence header
        gloss = line.split(' | ', 1)[1].strip()
        gloss = re.sub(r'\s+', ' ', gloss.replace('"', ''))
        if gloss:
          document.append(gloss[0].upper() + gloss[1:])
        if len(document) == glosses_per_document:
          yield document
          document = []
    if document:
      yield document


def text_dir_documents(root: str) -> Iterator[Document]:
  """Yields one document per `.txt` file below `root` (a user's own text).

  Paragraphs are separated by blank lines; lines inside one are joined.

  Raises:
    FileNotFoundError: no `.txt` file is below `root`.
  """
  files = sorted(glob.glob(os.path.join(root, '**', '*.txt'), recursive=True))
  if not files:
    raise FileNotFoundError(f'No .txt files below {root!r}.')
  for path in files:
    with open(path, encoding='utf-8', errors='replace') as f:
      blocks = re.split(r'\n\s*\n', f.read())
    document = [re.sub(r'\s+', ' ', b).strip() for b in blocks]
    document = [p for p in document if p]
    if document:
      yield document


def gcide_documents(dict_path: str,
                    entries_per_document: int = 200) -> Iterator[Document]:
  """Yields definitions and quotations of the 1913 Webster (GCIDE), grouped.

  `dict_path` is `gcide.dict.dz` (dictzip is gzip-readable). Headword lines,
  pronunciations, etymologies, source tags and cross-reference braces are
  dropped; each definition or quotation becomes a paragraph.

  Raises:
    FileNotFoundError: `dict_path` does not exist.
  """
  import gzip  # pylint: disable=g-import-not-at-top
  if not os.path.exists(dict_path):
    raise FileNotFoundError(f'GCIDE file {dict_path!r} is missing.')
  document: Document = []
  entries = 0
  with gzip.open(dict_path, 'rt', encoding='utf-8', errors='replace') as f:
    block: List[str] = []
    for line in f:
      if line.strip():
        block.append(line.rstrip())
        continue
      paragraph = _gcide_paragraph(block)
      block = []
      if paragraph:
        document.append(paragraph)
        entries += 1
      if entries == entries_per_document:
        yield document
        document, entries = [], 0
  if document:
    yield document


def _gcide_paragraph(block: List[str]) -> str:
  """One GCIDE block as prose: headword, etymology and tags removed."""
  lines = [line.strip() for line in block
           if not line.strip().startswith(('Syn:', 'Note:', '00-'))]
  text = ' '.join(lines)
  if block and not block[0].startswith(' '):
    # A headword line: its pronunciation and etymology end at the first ']'
    # (often lines later), or, without an etymology, at the line's end.
    if '[' in block[0] and ']' in text:
      text = text[text.index(']') + 1:]
    else:
      text = text[len(lines[0]):] if lines else ''
  text = re.sub(r'\[[^\]]*\]', ' ', text)  # source tags, inner etymologies
  text = re.sub(r'[{}]', '', text)
  text = re.sub(r'\s--\s?[A-Z][\w .,&]*\.\s*', ' ', text)  # attributions
  text = re.sub(r'\s+', ' ', text).strip()
  return text if _is_prose(text, 6) else ''


def tidytext_books_documents(rda_path: str,
                             lines_per_paragraph: int = 8,
                             paragraphs_per_document: int = 50
                             ) -> Iterator[Document]:
  """Yields the four public-domain novels in r-cran-tidytext's `books.rda`.

  Needs the `pyreadr` package. Consecutive text lines are joined into
  paragraphs.

  Raises:
    FileNotFoundError: `rda_path` does not exist.
  """
  import pyreadr  # pylint: disable=g-import-not-at-top
  if not os.path.exists(rda_path):
    raise FileNotFoundError(f'tidytext books file {rda_path!r} is missing.')
  frame = next(iter(pyreadr.read_r(rda_path).values()))
  for _, book in frame.groupby('title', sort=True):
    lines = [str(t).strip() for t in book['text'] if str(t).strip()]
    paragraphs = [' '.join(lines[i:i + lines_per_paragraph])
                  for i in range(0, len(lines), lines_per_paragraph)]
    for i in range(0, len(paragraphs), paragraphs_per_document):
      yield paragraphs[i:i + paragraphs_per_document]
