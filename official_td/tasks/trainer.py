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

  Phases: with `task.short_sequence_phase.steps` = N > 0, steps 0..N-1 read
  the short-sequence data and the rest `task.train_data`, each positioned
  as above within its phase; a train loop that would cross step N is split
  there, so no step reads the wrong phase's batches.

  Drops: at the end of each train loop (every `steps_per_loop` steps, and so
  at the summary interval) the per-id dropped counts, a vector, are taken
  out of the scalar logs, logged as text and written as a TensorBoard text
  summary `most_often_dropped_tokens` (subject to the summary interval).

  XLA: with `runtime.enable_xla` and one replica (CPU, or one GPU) the
  training step is compiled with `jit_compile=True`. The base class compiles
  only when `runtime.num_gpus > 0`, so on CPU the flag did nothing. On one
  CPU core XLA runs the 4-layer, hidden-128 step 1.7x faster (docs/RESULTS.md
  section 12), every importance strategy and ScTD included; on two cores the
  gain was not measured apart from other changes. Several replicas are left
  to the base class, and under a `TPUStrategy` the TPU compiles the step
  anyway.
  """

  _phase_start = None  # first step of the phase the input iterator serves

  @property
  def compiles_task_step(self) -> bool:
    """Whether `train_step` runs XLA-compiled (see the class docstring)."""
    tpu = (tf.distribute.TPUStrategy, tf.distribute.experimental.TPUStrategy)
    return (bool(self.config.runtime.enable_xla) and
            not isinstance(self.strategy, tpu) and
            self.strategy.num_replicas_in_sync == 1)

  def train_step(self, iterator):
    """As the base class, XLA-compiled if `compiles_task_step`."""
    if not self.compiles_task_step:
      return super().train_step(iterator)
    if getattr(self, '_compiled_step', None) is None:

      def step_fn(inputs):
        logs = self.task.train_step(
            inputs, model=self.model, optimizer=self.optimizer,
            metrics=self.train_metrics)
        self._train_loss.update_state(logs[self.task.loss])
        self.global_step.assign_add(1)

      # The whole replica step is compiled, `strategy.run` included: a
      # compiled function nested inside `strategy.run` (the base class's
      # GPU path) fails at the optimizer's cross-replica merge_call under
      # the MirroredStrategy that train.py uses on CPU.
      self._compiled_step = tf.function(
          lambda inputs: self.strategy.run(
              step_fn, args=(inputs,), options=self._runtime_options),
          jit_compile=True)
    self._compiled_step(self.next_train_inputs(iterator))

  def train(self, num_steps: tf.Tensor):
    step = int(self.global_step.numpy())
    count = int(num_steps)
    boundary = self.config.task.short_sequence_phase.steps
    if step < boundary < step + count:  # never run one loop across phases
      self.train(tf.constant(boundary - step, tf.int32))
      return self.train(tf.constant(step + count - boundary, tf.int32))
    phase_start = self._phase(step)[1]
    if self._train_iter is None or phase_start != self._phase_start:
      # The first loop of this process (possibly resumed, possibly in the
      # short phase), or the change to full-length sequences.
      if step > 0 or boundary:
        self.train_dataset = self._dataset_from_step(step)
      self._phase_start = phase_start
    return super().train(num_steps)

  def _phase(self, step: int):
    """(data config, first step) of the training phase holding `step`."""
    task = self.config.task
    if step < task.short_sequence_phase.steps:
      return task.short_sequence_phase.data, 0
    return task.train_data, task.short_sequence_phase.steps

  def _dataset_from_step(self, step: int):
    """The distributed training input, positioned at global step `step`."""
    data, phase_start = self._phase(step)
    if data.seed is None and step > phase_start:
      logging.warning(
          'The input of this phase has no seed: the input order is random, '
          'so this run, resumed at step %d, reads a fresh stream instead of '
          'continuing the earlier one. Set a seed for exact resumption.',
          step)
      skip = 0
    else:
      skip = step - phase_start

    def dataset_fn(input_context=None):
      dataset = self.task.build_inputs(data, input_context)
      # Each step takes one batch per replica from each input pipeline.
      replicas_per_pipeline = (
          1 if input_context is None else
          input_context.num_replicas_in_sync //
          input_context.num_input_pipelines)
      return dataset.skip(skip * replicas_per_pipeline)

    logging.info('Training input: %s (seq_length %d) from its batch %d, at '
                 'step %d.', data.input_path, data.seq_length, skip, step)
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
