"""Registered token-dropping pretraining experiments.

  bert/token_drop           token dropping, cumulative-loss importance
  bert/token_drop_baseline  the same model, data and optimizer, no dropping
  bert/token_drop_sctd      token dropping with ScTD's consistency loss

The strategy of `bert/token_drop` is 'dynamic' unless a gin binding
(`--gin_file=experiments/static.gin`) or the config (`task.strategy`, which
wins) says otherwise.

Defaults are a small BERT (4 layers, hidden 128) on the embedded default data
(`data/default`, made from `data_prep/default` by the README's first command),
sized to pretrain in minutes on a CPU. `experiments/*.yaml` override them,
e.g. `experiments/bert_base_seq512.yaml` for the paper's BERT-base setup.
"""

import gin

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import optimization
from official.nlp.configs import bert
from official.nlp.configs import encoders
from official.nlp.data import pretrain_dataloader
from official_td.configs import token_drop_config
from official_td.tasks import token_drop_masked_lm

DEFAULT_DATA_DIR = 'data/default'
DEFAULT_VOCAB = 'data_prep/default/vocab.txt'
DEFAULT_FREQUENCIES = f'{DEFAULT_DATA_DIR}/token_frequencies.json'
DEFAULT_VOCAB_SIZE = 8009
_SEQ_LENGTH = 128
_MAX_PREDICTIONS = 20


def _data(split: str, is_training: bool) -> cfg.DataConfig:
  return pretrain_dataloader.BertPretrainDataConfig(
      input_path=f'{DEFAULT_DATA_DIR}/{split}-*.tfrecord',
      global_batch_size=32,
      is_training=is_training,
      seq_length=_SEQ_LENGTH,
      max_predictions_per_seq=_MAX_PREDICTIONS,
      use_next_sentence_label=False,
      # A fixed order, so that a resumed run continues the same stream.
      seed=1 if is_training else None)


def _optimizer(train_steps: int) -> optimization.OptimizationConfig:
  return optimization.OptimizationConfig({
      'optimizer': {
          'type': 'adamw',
          'adamw': {
              'weight_decay_rate': 0.01,
              'exclude_from_weight_decay': ['LayerNorm', 'layer_norm', 'bias'],
          },
      },
      'learning_rate': {
          'type': 'polynomial',
          'polynomial': {
              'initial_learning_rate': 1e-3,
              'decay_steps': train_steps,
              'end_learning_rate': 0.0,
          },
      },
      'warmup': {
          'type': 'polynomial',
          'polynomial': {'warmup_steps': train_steps // 10},
      },
  })


def _experiment(strategy: str, sctd: bool = False) -> cfg.ExperimentConfig:
  train_steps = 1500
  return cfg.ExperimentConfig(
      task=token_drop_masked_lm.TokenDropMaskedLMConfig(
          strategy=strategy,
          sctd=token_drop_config.SctdConfig(enabled=sctd),
          token_drop=token_drop_config.TokenDropConfig(
              vocab_file=DEFAULT_VOCAB, frequency_file=DEFAULT_FREQUENCIES),
          model=bert.PretrainerConfig(
              encoder=encoders.EncoderConfig(
                  type='bert',
                  bert=encoders.BertEncoderConfig(
                      vocab_size=DEFAULT_VOCAB_SIZE,
                      hidden_size=128,
                      num_layers=4,
                      num_attention_heads=2,
                      intermediate_size=512,
                      max_position_embeddings=_SEQ_LENGTH)),
              cls_heads=[]),
          train_data=_data('train', is_training=True),
          validation_data=_data('valid', is_training=False)),
      trainer=cfg.TrainerConfig(
          train_steps=train_steps,
          steps_per_loop=100,
          summary_interval=100,
          checkpoint_interval=500,
          validation_interval=500,
          validation_steps=-1,
          max_to_keep=3,
          # train.py saves and exits on SIGTERM itself (training/preemption).
          preemption_on_demand_checkpoint=False,
          optimizer_config=_optimizer(train_steps)),
      restrictions=[
          'task.train_data.is_training != None',
          'task.validation_data.is_training != None',
      ])


@gin.configurable
def token_drop_strategy(strategy: str = 'dynamic') -> str:
  """The importance strategy of `bert/token_drop`, bindable with gin.

  `experiments/{dynamic,static,random}.gin` bind it. Gin sets the
  experiment's default: `--config_file` and `--params_override`
  (`task.strategy`) are applied after it and win.
  """
  return strategy


@gin.configurable
def token_drop_sctd(enabled: bool = False) -> bool:
  """Whether `bert/token_drop` adds ScTD's consistency loss; gin-bindable.

  `experiments/sctd.gin` binds it; `task.sctd.enabled` in the config wins.
  """
  return enabled


@exp_factory.register_config_factory('bert/token_drop')
def bert_token_drop() -> cfg.ExperimentConfig:
  """Token dropping (Hou et al. 2022); cumulative-loss importance by default."""
  return _experiment(token_drop_strategy(), sctd=token_drop_sctd())


@exp_factory.register_config_factory('bert/token_drop_sctd')
def bert_token_drop_sctd() -> cfg.ExperimentConfig:
  """Semantic-consistent token dropping (ScTD, Zhong et al. 2023)."""
  return _experiment(token_drop_strategy(), sctd=True)


@exp_factory.register_config_factory('bert/token_drop_baseline')
def bert_token_drop_baseline() -> cfg.ExperimentConfig:
  """The same pretraining without token dropping."""
  return _experiment('none')
