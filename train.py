r"""Pretrains a BERT with token dropping through the Model Garden trainer.

  python train.py --experiment=bert/token_drop --mode=train_and_eval \
      --model_dir=runs/token_drop [--config_file=experiments/X.yaml] \
      [--params_override=trainer.train_steps=100] [--gin_file=...] [--tpu=...]

Restarted on the same --model_dir, it resumes from the latest checkpoint
(step, weights, optimizer and token-importance table).
"""

import os

# The Model Garden is built on Keras 2 (tf_keras); make tf.keras resolve to it.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
# See official_td/__init__.py: needed for SavedModel export with TF 2.20.
os.environ.setdefault('WRAPT_DISABLE_EXTENSIONS', '1')

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
import gin

from official.common import distribute_utils
from official.common import flags as tfm_flags
from official.core import task_factory
from official.core import train_lib
from official.core import train_utils
from official.modeling import performance
from official_td import registry_imports  # pylint: disable=unused-import
from official_td.tasks import trainer as token_drop_trainer

FLAGS = flags.FLAGS


def main(_):
  gin.parse_config_files_and_bindings(FLAGS.gin_file, FLAGS.gin_params)
  params = train_utils.parse_configuration(FLAGS)
  model_dir = FLAGS.model_dir
  if params.runtime.mixed_precision_dtype:
    performance.set_mixed_precision_policy(params.runtime.mixed_precision_dtype)
  strategy = distribute_utils.get_distribution_strategy(
      distribution_strategy=params.runtime.distribution_strategy,
      all_reduce_alg=params.runtime.all_reduce_alg,
      num_gpus=params.runtime.num_gpus,
      tpu_address=params.runtime.tpu)
  with strategy.scope():
    # The task checks its config and input files here, before any training.
    task = task_factory.get_task(params.task, logging_dir=model_dir)
    trainer = train_utils.create_trainer(
        params, task, train='train' in FLAGS.mode,
        evaluate='eval' in FLAGS.mode,
        checkpoint_exporter=train_utils.maybe_create_best_ckpt_exporter(
            params, model_dir),
        trainer_cls=token_drop_trainer.TokenDropTrainer)
  if 'train' in FLAGS.mode:
    train_utils.serialize_config(params, model_dir)
  train_lib.run_experiment(
      distribution_strategy=strategy,
      task=task,
      mode=FLAGS.mode,
      params=params,
      model_dir=model_dir,
      trainer=trainer)
  train_utils.save_gin_config(FLAGS.mode, model_dir)


if __name__ == '__main__':
  tfm_flags.define_flags()
  flags.mark_flags_as_required(['experiment', 'mode', 'model_dir'])
  app.run(main)
