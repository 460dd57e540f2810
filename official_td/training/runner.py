"""The Model Garden's experiment runner, with preemption handling."""

import os
import tempfile
from typing import List, Optional

import orbit
import tensorflow as tf

from official.core import train_lib
from official_td.training import checkpoints
from official_td.training import preemption


class PreemptibleExperimentRunner(train_lib.OrbitExperimentRunner):
  """`OrbitExperimentRunner` that saves and exits on SIGTERM or SIGINT.

  Adds `preemption.PreemptionSaver` to the train actions. The Model
  Garden's own on-demand checkpoint action (`trainer.
  preemption_on_demand_checkpoint`, multi-worker only) keeps training after
  it saves; the experiments here turn it off, and this runner refuses to run
  both.

  A worker that is not the chief resumes from the chief's checkpoint (see
  `_maybe_build_checkpoint_manager`).
  """

  def _maybe_build_checkpoint_manager(
      self) -> Optional[tf.train.CheckpointManager]:
    """The Model Garden's manager; other workers restore the chief's files.

    Every worker saves (a save reads variables, which can synchronise), and
    a non-chief worker saves to a temporary folder of its own, as in the
    Model Garden. There it finds nothing on a restart and would initialise
    while the chief restores; but restoring creates the optimizer's slot
    variables, each a collective broadcast under MultiWorkerMirroredStrategy,
    which the other worker would only create in its first train step: the
    collectives never pair up and both workers hang. So a non-chief worker
    restores the chief's newest readable checkpoint.
    """
    if (self.strategy.extended.should_checkpoint or
        not self.trainer.checkpoint):
      return super()._maybe_build_checkpoint_manager()
    resume_from = checkpoints.newest_readable_checkpoint(self.model_dir)

    def restore_chief_checkpoint_or_initialize():
      if resume_from:
        self.trainer.checkpoint.restore(resume_from)
      else:
        self.trainer.initialize()

    return tf.train.CheckpointManager(
        self.trainer.checkpoint,
        directory=tempfile.mkdtemp(),
        max_to_keep=1,
        step_counter=self.trainer.global_step,
        checkpoint_interval=self.params.trainer.checkpoint_interval,
        init_fn=restore_chief_checkpoint_or_initialize)

  def _build_controller(self, trainer, evaluator,
                        train_actions: Optional[List[orbit.Action]] = None,
                        **kwargs) -> orbit.Controller:
    train_actions = list(train_actions or [])
    if trainer:
      if self.params.trainer.preemption_on_demand_checkpoint:
        raise ValueError(
            'trainer.preemption_on_demand_checkpoint=true adds the Model '
            "Garden's own SIGTERM handler, which keeps training after it "
            'saves; train.py handles preemption itself (save, then exit). '
            'Set it to false.')
      chief = self.strategy.extended.should_checkpoint
      train_actions.append(preemption.PreemptionSaver(
          self.strategy, self.checkpoint_manager, trainer.global_step,
          summary_dir=(os.path.join(self.model_dir, 'train') if chief and
                       kwargs.get('save_summary', True) else None)))
    return super()._build_controller(trainer, evaluator,
                                     train_actions=train_actions, **kwargs)
