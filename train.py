r"""Pretrains a BERT with token dropping through the Model Garden trainer.

  python train.py --experiment=bert/token_drop --mode=train_and_eval \
      --model_dir=runs/token_drop [--config_file=experiments/X.yaml] \
      [--params_override=trainer.train_steps=100] [--gin_file=...] [--tpu=...]

Restarted on the same --model_dir, it resumes from the newest readable
checkpoint (step, weights, optimizer, token-importance table and so the
position in the seeded input stream). On SIGTERM or SIGINT it checkpoints
the step reached at the end of the train loop in flight and exits with
status 42 (`official_td.training.preemption.PREEMPTED_EXIT_CODE`).
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
import tf_keras

from official.common import distribute_utils
from official.common import flags as tfm_flags
from official.core import task_factory
from official.core import train_utils
from official.modeling import performance
from official_td import registry_imports  # pylint: disable=unused-import
from official_td.tasks import trainer as token_drop_trainer
from official_td.training import checkpoints
from official_td.training import run_checks
from official_td.training import runner as runner_lib

FLAGS = flags.FLAGS


def main(_):
  run_checks.check_gin_files(FLAGS.gin_file)
  gin.parse_config_files_and_bindings(FLAGS.gin_file, FLAGS.gin_params)
  params = train_utils.parse_configuration(FLAGS)
  model_dir = FLAGS.model_dir
  if 'train' in FLAGS.mode:
    run_checks.check_resumable(model_dir, params)
  if FLAGS.seed is not None:  # weight initialisation and other Keras draws
    tf_keras.utils.set_random_seed(FLAGS.seed)
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
  if strategy.extended.should_checkpoint:  # the chief
    checkpoints.use_newest_readable_checkpoint(model_dir)
  runner_lib.PreemptibleExperimentRunner(
      distribution_strategy=strategy,
      task=task,
      mode=FLAGS.mode,
      params=params,
      model_dir=model_dir,
      trainer=trainer).run()
  train_utils.save_gin_config(FLAGS.mode, model_dir)


if __name__ == '__main__':
  tfm_flags.define_flags()
  flags.DEFINE_integer('seed', None, 'Seeds Python, NumPy and TensorFlow '
                       '(weight initialisation) for a reproducible run; the '
                       "dropping draws follow task.token_drop.seed and the "
                       'input order task.train_data.seed.')
  flags.mark_flags_as_required(['experiment', 'mode', 'model_dir'])
  app.run(main)
