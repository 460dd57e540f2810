r"""Counts vocabulary-id frequencies of pretraining TFRecords (static dropping).

`create_pretraining_data` already writes `token_frequencies.json`; this
command makes it for data made elsewhere in the Model Garden's format:

  python -m data_prep.count_token_frequencies --data_dir=data/default \
      --vocab_file=data_prep/default/vocab.txt --seq_length=128 \
      --max_predictions_per_seq=20

It counts the `train-*` files' original tokens and writes
DATA_DIR/token_frequencies.json with the vocabulary's size and SHA-256.
"""

import os

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf

from official_td.data import token_frequencies
from official_td.data import vocabulary as vocabulary_lib


def count_and_write(data_dir: str, vocab: vocabulary_lib.Vocabulary,
                    seq_length: int, max_predictions_per_seq: int,
                    pattern: str = 'train-*') -> str:
  """Counts ids over DATA_DIR/PATTERN; returns the frequency file's path.

  Raises:
    FileNotFoundError: no file matches.
  """
  files = sorted(tf.io.gfile.glob(os.path.join(data_dir, pattern)))
  files = [f for f in files if not f.endswith('.partial')]
  if not files:
    raise FileNotFoundError(f'No {pattern} files in {data_dir!r}.')
  counts = token_frequencies.count_token_ids(files, vocab.size, seq_length,
                                             max_predictions_per_seq)
  path = os.path.join(data_dir, token_frequencies.FILENAME)
  token_frequencies.write_frequency_file(path, counts, vocab)
  logging.info('Wrote %s: %d tokens over %d files.', path, counts.sum(),
               len(files))
  return path


def main(_):
  flags_ = flags.FLAGS
  vocab = vocabulary_lib.Vocabulary(flags_.vocab_file,
                                    lower_case=flags_.lower_case)
  count_and_write(flags_.data_dir, vocab, flags_.seq_length,
                  flags_.max_predictions_per_seq)


if __name__ == '__main__':
  flags.DEFINE_string('data_dir', None, 'Folder of train-* TFRecords.')
  flags.DEFINE_string('vocab_file', None, 'The data\'s vocabulary.')
  flags.DEFINE_integer('seq_length', 128, 'Tokens per sequence.')
  flags.DEFINE_integer('max_predictions_per_seq', 20, 'MLM slots.')
  flags.DEFINE_bool('lower_case', True, 'Lower-case (WordPiece only).')
  flags.mark_flags_as_required(['data_dir', 'vocab_file'])
  app.run(main)
