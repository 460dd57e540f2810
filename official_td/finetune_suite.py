r"""Fine-tunes one pretrained model on every task of the downstream suite.

  python -m official_td.finetune_suite --model_dir=runs/token_drop \
      [--saved_model=exports/token_drop/encoder] --data_dir=data/downstream \
      --output_dir=runs/finetune/token_drop --seeds=1,2,3

The pretrained model is MODEL_DIR's latest checkpoint (or --checkpoint), or
an exported encoder SavedModel (--saved_model); MODEL_DIR/params.yaml gives
the encoder's config. `--random_init` is the control without pretraining:
the same encoder at its random initialisation (seeded by the fine-tuning
seed), fine-tuned the same way; a pretrained model that does not beat it has
learned nothing that the tasks can use. Each task is fine-tuned with the Model Garden's
`sentence_prediction` task once per seed, then scored on its dev and test
splits. Prints a table of accuracy per task (mean over seeds), the average,
and the number of seeds, and writes it to OUTPUT_DIR/results.json.
"""

import json
import os
from typing import Dict, List, Optional, Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from official.core import task_factory
from official.core import train_lib
from official.nlp.data import sentence_prediction_dataloader
from official_td import registry_imports  # pylint: disable=unused-import
from official_td.configs import finetuning
from official_td.serving import export_tfhub

# data_prep.downstream_sources.DEFAULT_SUITE: the tasks any machine can fetch
# (vitaminc, in results before 2026-12-06, needs a local copy of its source).
TASKS = ('polarity', 'bbc_news', 'tweets', 'wic')


def accuracy(model: tf.keras.Model, data_config) -> float:
  """Accuracy of a classifier on every example of a split."""
  data_config = data_config.replace(is_training=False, drop_remainder=False)
  dataset = sentence_prediction_dataloader.SentencePredictionDataLoader(
      data_config).load()
  correct = total = 0
  for features in dataset:
    logits = model(features, training=False)
    predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
    correct += int(tf.reduce_sum(tf.cast(
        predictions == features['label_ids'], tf.int32)))
    total += int(tf.shape(predictions)[0])
  return correct / max(total, 1)


def finetune_task(task_name: str, data_dir: str, encoder_config,
                  output_dir: str, seed: int, init_checkpoint: str = '',
                  hub_module_url: str = '', epochs: float = 3.0,
                  **kwargs) -> Dict[str, float]:
  """Fine-tunes on one task; returns {'dev': acc, 'test': acc}."""
  meta = finetuning.read_task_meta(data_dir, task_name)
  kwargs.setdefault('seq_length', meta['seq_length'])
  config = finetuning.finetune_config(
      task_name, data_dir, encoder_config, init_checkpoint=init_checkpoint,
      hub_module_url=hub_module_url, num_classes=meta['num_labels'],
      train_examples=meta['sizes']['train'], epochs=epochs, seed=seed,
      **kwargs)
  tf.keras.utils.set_random_seed(seed)
  task = task_factory.get_task(config.task)
  model, _ = train_lib.run_experiment(
      distribution_strategy=tf.distribute.get_strategy(), task=task,
      mode='train', params=config,
      model_dir=os.path.join(output_dir, task_name, f'seed{seed}'))
  test_data = config.task.validation_data.replace(
      input_path=os.path.join(data_dir, task_name, 'test.tfrecord'))
  return {'dev': accuracy(model, config.task.validation_data),
          'test': accuracy(model, test_data)}


def run_suite(model_dir: str, data_dir: str, output_dir: str,
              seeds: Sequence[int] = (1,), tasks: Sequence[str] = TASKS,
              checkpoint: Optional[str] = None, saved_model: str = '',
              random_init: bool = False, **kwargs) -> dict:
  """Fine-tunes on every task and seed; returns the results table as a dict.

  With `random_init`, no checkpoint is read: MODEL_DIR only gives the
  encoder's config, and each seed starts from its own random initialisation.

  Raises:
    FileNotFoundError: a task's data (named) or the checkpoint is missing.
  """
  for task_name in tasks:  # fail before any training if a task is missing
    finetuning.read_task_meta(data_dir, task_name)
  encoder_config = export_tfhub.read_experiment_config(
      model_dir).task.model.encoder
  if random_init and (checkpoint or saved_model):
    raise ValueError('random_init is the no-pretraining control: drop '
                     '--checkpoint and --saved_model.')
  if not saved_model and not random_init:
    checkpoint = checkpoint or tf.train.latest_checkpoint(model_dir)
    if not checkpoint:
      raise FileNotFoundError(f'No checkpoint in {model_dir}.')
  per_seed: Dict[str, List[Dict[str, float]]] = {t: [] for t in tasks}
  for seed in seeds:
    for task_name in tasks:
      per_seed[task_name].append(finetune_task(
          task_name, data_dir, encoder_config, output_dir, seed,
          init_checkpoint='' if saved_model or random_init else checkpoint,
          hub_module_url=saved_model,
          random_init=random_init, **kwargs))
  table = {t: {split: float(np.mean([r[split] for r in results]))
               for split in ('dev', 'test')}
           for t, results in per_seed.items()}
  table['average'] = {split: float(np.mean([table[t][split] for t in tasks]))
                      for split in ('dev', 'test')}
  pretrained = ('random init (no pretraining)' if random_init
                else saved_model or checkpoint)
  results = dict(pretrained=pretrained, seeds=list(seeds),
                 accuracy=table, per_seed=per_seed)
  os.makedirs(output_dir, exist_ok=True)
  with open(os.path.join(output_dir, 'results.json'), 'w') as f:
    json.dump(results, f, indent=2)
  return results


def format_table(results: dict) -> str:
  """The results as a Markdown table (accuracy in %)."""
  lines = ['| task | dev | test |', '|---|---|---|']
  for task_name, scores in results['accuracy'].items():
    lines.append(f'| {task_name} | {100 * scores["dev"]:.1f} | '
                 f'{100 * scores["test"]:.1f} |')
  lines.append(f'\npretrained: {results["pretrained"]}; mean over '
               f'{len(results["seeds"])} seed(s) {results["seeds"]}')
  return '\n'.join(lines)


def main(_):
  flags_ = flags.FLAGS
  results = run_suite(flags_.model_dir, flags_.data_dir, flags_.output_dir,
                      seeds=[int(s) for s in flags_.seeds],
                      tasks=flags_.tasks, checkpoint=flags_.checkpoint,
                      saved_model=flags_.saved_model,
                      random_init=flags_.random_init, epochs=flags_.epochs,
                      learning_rate=flags_.learning_rate)
  table = format_table(results)
  logging.info('Downstream suite:\n%s', table)
  print(table)


if __name__ == '__main__':
  flags.DEFINE_string('model_dir', None, 'The pretraining --model_dir.')
  flags.DEFINE_string('checkpoint', None, 'Default: latest in model_dir.')
  flags.DEFINE_string('saved_model', '', 'An exported encoder SavedModel to '
                      'start from instead of the checkpoint.')
  flags.DEFINE_string('data_dir', finetuning.DEFAULT_DOWNSTREAM_DIR,
                      'The suite, from data_prep.create_finetuning_data.')
  flags.DEFINE_string('output_dir', None, 'Where runs and results go.')
  flags.DEFINE_float('learning_rate', 3e-4, 'Peak AdamW learning rate (3e-4 '
                     'suits the small models pretrained here; pretrained '
                     'BERTs such as MiniLM usually take 1e-4 or less).')
  flags.DEFINE_bool('random_init', False, 'The control without pretraining: '
                    'the encoder of MODEL_DIR/params.yaml at random init.')
  flags.DEFINE_list('seeds', ['1'], 'Seeds to average over.')
  flags.DEFINE_list('tasks', list(TASKS), 'Tasks of the suite.')
  flags.DEFINE_float('epochs', 3.0, 'Passes over each train split.')
  flags.mark_flags_as_required(['model_dir', 'output_dir'])
  app.run(main)
