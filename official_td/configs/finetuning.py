"""Fine-tuning on the downstream suite with the Model Garden's sentence_prediction.

A pretrained model is given either as a pretraining checkpoint (its `encoder`
is restored through `init_checkpoint`) or as an exported encoder SavedModel
(`hub_module_url`). Registered experiment: `bert/token_drop_finetune`
(defaults: the small default encoder, the polarity task in
`data/downstream`); `finetune_config()` builds the same for any task.
"""

import os
from typing import Optional

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import optimization
from official.nlp.configs import encoders
from official.nlp.data import sentence_prediction_dataloader
from official.nlp.tasks import sentence_prediction
from official_td.configs import experiments
from official_td.data import json_file

DEFAULT_DOWNSTREAM_DIR = 'data/downstream'


def read_task_meta(data_dir: str, task: str) -> dict:
  """Reads DATA_DIR/TASK/meta_data.json (written by create_finetuning_data).

  Raises:
    FileNotFoundError: naming the missing file and how to make it.
  """
  path = os.path.join(data_dir, task, 'meta_data.json')
  return json_file.read(
      path, f'Task file {path} does not exist. Make the suite with `python '
      '-m data_prep.create_finetuning_data --vocab_file=VOCAB '
      f'--output_dir={data_dir}`.')


def finetune_config(task: str, data_dir: str,
                    encoder: encoders.EncoderConfig,
                    init_checkpoint: str = '', hub_module_url: str = '',
                    num_classes: Optional[int] = None, seq_length: int = 128,
                    train_examples: int = 4000, epochs: float = 3.0,
                    batch_size: int = 32, learning_rate: float = 3e-4,
                    seed: int = 1,
                    random_init: bool = False) -> cfg.ExperimentConfig:
  """The fine-tuning experiment for one task of the suite.

  Args:
    task: a task folder under `data_dir` (polarity, bbc_news, tweets, wic,
      vitaminc).
    data_dir: the suite's root, with TASK/{train,dev}.tfrecord.
    encoder: the pretrained encoder's config (type `bert` or `bert_v2`).
    init_checkpoint: a pretraining checkpoint, or
    hub_module_url: an exported encoder SavedModel (exactly one of the two,
      unless `random_init`).
    num_classes: default from TASK/meta_data.json.
    seq_length: tokens per example, as in the TFRecords.
    train_examples: size of the train split (sets the number of steps).
    epochs: passes over the train split.
    batch_size: global batch size.
    learning_rate: peak AdamW learning rate (linear warmup 10%, then decay).
    seed: data shuffling seed.
    random_init: the no-pretraining control: the same encoder at its random
      initialisation; give neither `init_checkpoint` nor `hub_module_url`.

  Raises:
    ValueError: both or neither of `init_checkpoint` and `hub_module_url`
      (or either of them with `random_init`).
  """
  if random_init and (init_checkpoint or hub_module_url):
    raise ValueError('random_init is the no-pretraining control: give neither '
                     'init_checkpoint nor hub_module_url with it.')
  if not random_init and bool(init_checkpoint) == bool(hub_module_url):
    raise ValueError('Give exactly one of init_checkpoint and hub_module_url '
                     '(or random_init=True for the no-pretraining control).')
  if num_classes is None:
    num_classes = read_task_meta(data_dir, task)['num_labels']
  train_steps = max(1, int(epochs * train_examples / batch_size))

  def data(split, is_training):
    return sentence_prediction_dataloader.SentencePredictionDataConfig(
        input_path=os.path.join(data_dir, task, f'{split}.tfrecord'),
        global_batch_size=batch_size, is_training=is_training,
        seq_length=seq_length, seed=seed,
        drop_remainder=is_training)

  encoder_v2 = encoders.EncoderConfig(type='bert_v2', bert_v2=encoder.get())
  return cfg.ExperimentConfig(
      task=sentence_prediction.SentencePredictionConfig(
          init_checkpoint=init_checkpoint,
          hub_module_url=hub_module_url,
          model=sentence_prediction.ModelConfig(num_classes=num_classes,
                                                encoder=encoder_v2),
          train_data=data('train', True),
          validation_data=data('dev', False)),
      trainer=cfg.TrainerConfig(
          train_steps=train_steps,
          steps_per_loop=min(100, train_steps),
          summary_interval=min(100, train_steps),
          checkpoint_interval=train_steps,
          validation_interval=train_steps,
          validation_steps=-1,
          max_to_keep=1,
          optimizer_config=optimization.OptimizationConfig({
              'optimizer': {'type': 'adamw', 'adamw': {
                  'weight_decay_rate': 0.01,
                  'exclude_from_weight_decay': ['LayerNorm', 'layer_norm',
                                                'bias']}},
              'learning_rate': {'type': 'polynomial', 'polynomial': {
                  'initial_learning_rate': learning_rate,
                  'decay_steps': train_steps, 'end_learning_rate': 0.0}},
              'warmup': {'type': 'polynomial', 'polynomial': {
                  'warmup_steps': max(1, train_steps // 10)}}})),
      restrictions=['task.train_data.is_training != None',
                    'task.validation_data.is_training != None'])


@exp_factory.register_config_factory('bert/token_drop_finetune')
def bert_token_drop_finetune() -> cfg.ExperimentConfig:
  """Fine-tunes the default small pretrained model on movie-review polarity.

  Set `task.init_checkpoint` (or `task.hub_module_url`) to the pretrained
  model and the data paths to another task to change them.
  """
  encoder = experiments.bert_token_drop().task.model.encoder
  return finetune_config('polarity', DEFAULT_DOWNSTREAM_DIR, encoder,
                         init_checkpoint='runs/token_drop', num_classes=2,
                         train_examples=3188)
