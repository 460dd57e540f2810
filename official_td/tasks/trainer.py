"""The Model Garden trainer: resumes the data stream, reports drops, compiles."""

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

  XLA: with `runtime.enable_xla` the task's train step is compiled with
  `jit_compile=True` on every device. The base class does so only when
  `runtime.num_gpus > 0`, so on CPU the flag did nothing; there XLA runs the
  4-layer, hidden-128 step 1.7x faster (docs/RESULTS.md section 12), every
  importance strategy and ScTD included. Under a `TPUStrategy` the step is
  compiled by the TPU anyway and is left as the base class builds it.
  """

  @property
  def compiles_task_step(self) -> bool:
    """Whether `train_step` runs the task's step XLA-compiled."""
    tpu = (tf.distribute.TPUStrategy, tf.distribute.experimental.TPUStrategy)
    return bool(self.config.runtime.enable_xla) and not isinstance(
        self.strategy, tpu)

  def train_step(self, iterator):
    """As the base class, with the task's step XLA-compiled if asked."""
    if not self.compiles_task_step:
      return super().train_step(iterator)
    if getattr(self, '_compiled_task_step', None) is None:
      self._compiled_task_step = tf.function(self.task.train_step,
                                             jit_compile=True)

    def step_fn(inputs):
      logs = self._compiled_task_step(
          inputs, model=self.model, optimizer=self.optimizer,
          metrics=self.train_metrics)
      self._train_loss.update_state(logs[self.task.loss])
      self.global_step.assign_add(1)

    inputs = self.next_train_inputs(iterator)
    self.strategy.run(step_fn, args=(inputs,), options=self._runtime_options)

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
