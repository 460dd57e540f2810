r"""Builds a plain-text pretraining corpus from real English sources.

Output format (the one BERT's data tools read): one paragraph per line, a
blank line between documents; gzip-compressed when the name ends in `.gz`.

Sources (see `shared/DATA.md`), fetched with `apt-get download` when no local
copy is given:
  python_docs  Debian `python3.11-doc`, reStructuredText sources (PSF licence)
  wordnet      Debian `wordnet-base`, glosses and examples (WordNet licence)
  linux_docs   Debian `linux-doc-6.1`, reStructuredText sources (GPL-2)
  gcide        Debian `dict-gcide`, 1913 Webster definitions and quotations
               (GPL-2+)
  books        Debian `r-cran-tidytext`, four public-domain novels (needs
               pyreadr)
  text_dir     any folder of your own `.txt` files (`--text_dir`)

The embedded default corpus, `data_prep/default/corpus.txt.gz`, is:
  python -m data_prep.build_corpus --sources=python_docs,wordnet \
      --output=data_prep/default/corpus.txt.gz
The large benchmark corpus (53 MB of text, 6,044 documents; not committed:
GPL sources):
  python -m data_prep.build_corpus \
      --sources=python_docs,wordnet,linux_docs,gcide,books \
      --output=data/large/corpus.txt.gz

Beside the corpus, `<output>.sources.json` records each source's Debian
package and version, the counts and the corpus's SHA-256. Debian updates
some of these packages between point releases (`linux-doc-6.1` with every
kernel security update), so the same command can build a different corpus
on another day: compare two builds by that file.
"""

import glob
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from typing import Dict, Iterable, Iterator, List, Optional

from absl import app
from absl import flags
from absl import logging

from data_prep import corpus_sources

_DEBIAN_PACKAGES = {
    'python_docs': ('python3.11-doc',
                    'usr/share/doc/python3.11/html/_sources'),
    'wordnet': ('wordnet-base', 'usr/share/wordnet'),
    'linux_docs': ('linux-doc-6.1',
                   'usr/share/doc/linux-doc-6.1/html/_sources'),
    'gcide': ('dict-gcide', 'usr/share/dictd/gcide.dict.dz'),
    'books': ('r-cran-tidytext',
              'usr/lib/R/site-library/tidytext/extdata/books.rda'),
}
_READERS = {
    'python_docs': corpus_sources.rst_documents,
    'wordnet': corpus_sources.wordnet_documents,
    'linux_docs': corpus_sources.rst_documents,
    'gcide': corpus_sources.gcide_documents,
    'books': corpus_sources.tidytext_books_documents,
}


_VERSION_FILE = '.deb_version'


def fetch_debian_package(package: str, cache_dir: str) -> str:
  """Downloads and unpacks a Debian package once; returns the unpack root.

  Raises:
    RuntimeError: `apt-get download` or `dpkg-deb` failed; the message says
      which package and what the tool printed.
  """
  root = os.path.join(cache_dir, package)
  if os.path.isdir(os.path.join(root, 'usr')):
    return root
  os.makedirs(cache_dir, exist_ok=True)
  with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
    cmd = ['apt-get', 'download', package]
    result = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
    if result.returncode != 0:
      raise RuntimeError(
          f'Could not download Debian package {package!r} '
          f'({" ".join(cmd)}): {result.stderr.strip()}. Run '
          '`apt-get update` first, or pass a local copy.')
    unpack_deb(glob.glob(os.path.join(tmp, '*.deb'))[0], root)
  return root


def unpack_deb(deb: str, root: str) -> None:
  """Unpacks a `.deb` file to `root`, recording its version there.

  The unpacked tree appears at `root` in one rename, so an interrupted
  unpack is never mistaken for a cached package.

  Args:
    deb: path of the `.deb` file.
    root: folder to create; must not exist yet.

  Raises:
    subprocess.CalledProcessError: `dpkg-deb` could not read the file.
  """
  staging = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(root)))
  try:
    subprocess.run(['dpkg-deb', '-x', deb, staging], check=True)
    version = subprocess.run(['dpkg-deb', '-f', deb, 'Version'], check=True,
                             capture_output=True, text=True).stdout.strip()
    with open(os.path.join(staging, _VERSION_FILE), 'w') as f:
      f.write(version)
    os.replace(staging, root)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise


def package_version(root: str) -> Optional[str]:
  """The Debian version recorded by `unpack_deb`; None for an older cache."""
  path = os.path.join(root, _VERSION_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return f.read().strip()


def source_documents(name: str, cache_dir: str,
                     text_dir: str = '') -> Iterator[corpus_sources.Document]:
  """Yields the documents of one named source."""
  if name == 'text_dir':
    if not text_dir:
      raise ValueError('Source text_dir needs --text_dir=FOLDER.')
    yield from corpus_sources.text_dir_documents(text_dir)
    return
  if name not in _DEBIAN_PACKAGES:
    raise ValueError(f'Unknown source {name!r}; choose from '
                     f'{sorted(_DEBIAN_PACKAGES) + ["text_dir"]}.')
  package, inner = _DEBIAN_PACKAGES[name]
  root = os.path.join(fetch_debian_package(package, cache_dir), inner)
  yield from _READERS[name](root)


def write_corpus(documents: Iterable[corpus_sources.Document], output: str,
                 max_bytes: int = 0) -> Dict[str, int]:
  """Writes documents to `output` atomically; returns counts.

  Args:
    documents: lists of paragraphs.
    output: path; gzip-compressed when it ends in `.gz`.
    max_bytes: stop after this much plain text (0: no limit).

  Returns:
    {'documents': ..., 'paragraphs': ..., 'bytes': ...} of plain text written.
  """
  counts = {'documents': 0, 'paragraphs': 0, 'bytes': 0}
  opener = gzip.open if output.endswith('.gz') else open
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  partial = output + '.partial'
  with opener(partial, 'wt', encoding='utf-8') as f:
    for document in documents:
      text = '\n'.join(document) + '\n\n'
      f.write(text)
      counts['documents'] += 1
      counts['paragraphs'] += len(document)
      counts['bytes'] += len(text.encode('utf-8'))
      if max_bytes and counts['bytes'] >= max_bytes:
        break
  os.replace(partial, output)
  return counts


def file_sha256(path: str) -> str:
  """SHA-256 of a file's bytes, as 64 hex digits (read in 1 MiB blocks)."""
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def source_provenance(name: str, cache_dir: str) -> Dict[str, Optional[str]]:
  """Which package and version a source was read from (None: not Debian).

  Call it after the source's documents were read, so the package is cached.
  """
  if name not in _DEBIAN_PACKAGES:
    return dict(source=name, package=None, version=None)
  package = _DEBIAN_PACKAGES[name][0]
  return dict(source=name, package=package,
              version=package_version(os.path.join(cache_dir, package)))


def write_sources_record(output: str, sources: List[Dict[str, Optional[str]]],
                         counts: Dict[str, int]) -> str:
  """Writes `<output>.sources.json` atomically; returns its path.

  Args:
    output: the corpus file written by `write_corpus`.
    sources: `source_provenance` of each source, in order.
    counts: what `write_corpus` returned.
  """
  record = dict(corpus=os.path.basename(output), sha256=file_sha256(output),
                sources=sources, **counts)
  path = output + '.sources.json'
  with open(path + '.partial', 'w') as f:
    json.dump(record, f, indent=2)
  os.replace(path + '.partial', path)
  return path


def read_corpus(path: str) -> Iterator[List[str]]:
  """Yields the documents (lists of paragraphs) of a corpus file.

  Raises:
    FileNotFoundError: `path` does not exist.
  """
  if not os.path.exists(path):
    raise FileNotFoundError(f'Corpus file {path!r} does not exist; build it '
                            'with `python -m data_prep.build_corpus`.')
  opener = gzip.open if path.endswith('.gz') else open
  document = []
  with opener(path, 'rt', encoding='utf-8') as f:
    for line in f:
      line = line.strip()
      if line:
        document.append(line)
      elif document:
        yield document
        document = []
  if document:
    yield document


def _interleave(iterators: List[Iterator]) -> Iterator:
  """Round-robin over sources, so a size cap keeps a mix of all of them."""
  iterators = list(iterators)
  while iterators:
    for it in list(iterators):
      try:
        yield next(it)
      except StopIteration:
        iterators.remove(it)


def main(_):
  flags_ = flags.FLAGS
  sources = [s.strip() for s in flags_.sources if s.strip()]
  iterators = [source_documents(s, flags_.cache_dir, flags_.text_dir)
               for s in sources]
  counts = write_corpus(_interleave(iterators), flags_.output,
                        int(flags_.max_mb * 1e6))
  provenance = [source_provenance(s, flags_.cache_dir) for s in sources]
  record = write_sources_record(flags_.output, provenance, counts)
  logging.info('Wrote %s: %d documents, %d paragraphs, %.1f MB of text; '
               'sources and versions in %s: %s', flags_.output,
               counts['documents'], counts['paragraphs'], counts['bytes'] / 1e6,
               record, ', '.join(f'{p["package"]} {p["version"]}'
                                 for p in provenance if p['package']))


if __name__ == '__main__':
  flags.DEFINE_list('sources', ['python_docs', 'wordnet'],
                    'Sources to read: python_docs, wordnet, linux_docs, '
                    'gcide, books, text_dir.')
  flags.DEFINE_string('text_dir', '', 'Folder of your own .txt files.')
  flags.DEFINE_string('output', None, 'Corpus file (.txt or .txt.gz).')
  flags.DEFINE_string('cache_dir',
                      os.path.join(tempfile.gettempdir(), 'td_debian_cache'),
                      'Where Debian packages are downloaded and unpacked.')
  flags.DEFINE_float('max_mb', 0.0, 'Stop after this many MB of text '
                     '(0: all).')
  flags.mark_flag_as_required('output')
  app.run(main)
