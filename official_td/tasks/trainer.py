"""The Model Garden trainer, resuming the data stream and reporting drops."""

from absl import logging
import tensorflow as tf

from official.core import base_trainer
from official_td.tasks import drop_metrics


class TokenDropTrainer(base_trainer.Trainer):
  """`base_trainer.Trainer` that resumes the input stream and reports drops.

  Data position: the training input is a deterministic function of
  `task.train_data.seed` (file order, interleave, shuffle), and a step takes
  one global batch. So the position is the global step, which is in every
  checkpoint: when training starts at step N > 0 (a resumed run), each input
  pipeline skips the batches of the first N steps, and the run sees the
  batches the uninterrupted run saw. Skipping reads and parses those
  batches, as the uninterrupted run did, without training on them. Without
  a seed the order is random and a resumed run starts a fresh stream (a
  warning says so).

  Drops: at the end of each train loop (every `steps_per_loop` steps, and so
  at the summary interval) the per-id dropped counts, a vector, are taken
  out of the scalar logs, logged as text and written as a TensorBoard text
  summary `most_often_dropped_tokens` (subject to the summary interval).
  """

  def train(self, num_steps: tf.Tensor):
    if self._train_iter is None:  # the first loop of this process
      start = int(self.global_step.numpy())
      if start > 0:
        self.train_dataset = self._dataset_from_step(start)
    return super().train(num_steps)

  def _dataset_from_step(self, step: int):
    """The distributed training input, positioned at global step `step`."""
    data = self.config.task.train_data
    if data.seed is None:
      logging.warning(
          'task.train_data.seed is not set: the input order is random, so '
          'this run, resumed at step %d, reads a fresh stream instead of '
          'continuing the earlier one. Set a seed for exact resumption.',
          step)
      return self.train_dataset

    def dataset_fn(input_context=None):
      dataset = self.task.build_inputs(data, input_context)
      # Each step takes one batch per replica from each input pipeline.
      replicas_per_pipeline = (
          1 if input_context is None else
          input_context.num_replicas_in_sync //
          input_context.num_input_pipelines)
      return dataset.skip(step * replicas_per_pipeline)

    logging.info('Resuming the input stream at step %d.', step)
    return self.distribute_dataset(dataset_fn)

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
