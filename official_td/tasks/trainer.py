"""The Model Garden trainer, reporting which tokens were dropped."""

from absl import logging
import tensorflow as tf

from official.core import base_trainer
from official_td.tasks import drop_metrics


class TokenDropTrainer(base_trainer.Trainer):
  """`base_trainer.Trainer` that reports the most often dropped tokens.

  At the end of each train loop (every `steps_per_loop` steps, and so at the
  summary interval) the per-id dropped counts, a vector, are taken out of
  the scalar logs, logged as text and written as a TensorBoard text summary
  `most_often_dropped_tokens` (subject to the summary interval).
  """

  def train_loop_end(self):
    logs = super().train_loop_end()
    counts = logs.pop(drop_metrics.DROPPED_COUNTS, None)
    if counts is not None:
      text = drop_metrics.top_dropped_text(
          counts.numpy(), self.task.vocabulary.tokens)
      logging.info('step %d most often dropped tokens: %s',
                   int(self.global_step.numpy()), text)
      tf.summary.text('most_often_dropped_tokens', text,
                      step=self.global_step)
    return logs
