"""The Model Garden's experiment runner, with preemption handling."""

import os
from typing import List, Optional

import orbit

from official.core import train_lib
from official_td.training import preemption


class PreemptibleExperimentRunner(train_lib.OrbitExperimentRunner):
  """`OrbitExperimentRunner` that saves and exits on SIGTERM or SIGINT.

  Adds `preemption.PreemptionSaver` to the train actions. The Model
  Garden's own on-demand checkpoint action (`trainer.
  preemption_on_demand_checkpoint`, multi-worker only) keeps training after
  it saves; the experiments here turn it off, and this runner refuses to run
  both.
  """

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
