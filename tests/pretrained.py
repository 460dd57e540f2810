"""A tiny pretrained model (a train.py-style model_dir) and the downstream data."""

import functools
import os
import tempfile

import tensorflow as tf
import tf_keras

from data_prep import create_finetuning_data
from data_prep import downstream_sources
from official.core import task_factory
from official.core import train_utils
from official_td.serving import export_tfhub
from tests import real_data
from tests import task_configs

DOWNSTREAM_CACHE = os.path.join(os.path.expanduser('~'), '.cache',
                                'token_drop_downstream')


@functools.lru_cache(maxsize=None)
def model_dir() -> str:
  """A model_dir with params.yaml and ckpt-3 of a tiny token-dropping BERT."""
  directory = tempfile.mkdtemp(prefix='td_pretrained_')
  config = task_configs.tiny_experiment()
  task = task_factory.get_task(config.task)
  model = task.build_model()
  optimizer = tf_keras.optimizers.Adam(1e-3)
  metrics = task.build_metrics(training=True)
  step = tf.function(lambda x: task.train_step(x, model, optimizer, metrics))
  for features in task.build_inputs(config.task.train_data).take(3):
    step(features)
  # The layout the Model Garden trainer writes: the model and its
  # checkpoint_items (encoder, masked_lm) at the root.
  checkpoint = tf.train.Checkpoint(model=model, **model.checkpoint_items)
  tf.train.CheckpointManager(checkpoint, directory, max_to_keep=1).save(
      checkpoint_number=3)
  train_utils.serialize_config(config, directory)
  return directory


@functools.lru_cache(maxsize=None)
def tfhub_export_dir() -> str:
  """The tiny pretrained model exported by export_tfhub (encoder, preprocessing)."""
  directory = os.path.join(tempfile.mkdtemp(prefix='td_export_'), 'export')
  export_tfhub.export(model_dir(), directory)
  return directory


@functools.lru_cache(maxsize=None)
def downstream_dir() -> str:
  """Small fixed splits of the default suite's tasks (seq_length 32)."""
  directory = tempfile.mkdtemp(prefix='td_downstream_')
  for task in downstream_sources.DEFAULT_SUITE:
    create_finetuning_data.create_task_data(
        task, real_data.vocab(), directory, DOWNSTREAM_CACHE,
        seq_length=real_data.SEQ_LENGTH, max_train=64, max_eval=32)
  return directory
