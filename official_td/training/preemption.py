"""Save a checkpoint and exit cleanly when the job is told to stop.

Preemptible TPUs, spot GPUs and batch schedulers announce the end of a job
with SIGTERM (and people with Ctrl-C, SIGINT). `PreemptionSaver` is an Orbit
train action: after the train loop in flight (`trainer.steps_per_loop`
steps) it writes a checkpoint of that step (model, optimizer, importance
table, and so the data position, which is the step) and exits with
`PREEMPTED_EXIT_CODE`. The work is done by `tf.distribute`'s
`PreemptionCheckpointHandler`, which also agrees on the step to save across
`MultiWorkerMirroredStrategy` workers (the chief writes the checkpoint into
`--model_dir`; the others write throw-away copies, as the Model Garden's
checkpoint manager sets up).
"""

import signal
import sys
from typing import Optional, Sequence

from absl import logging
import orbit
import tensorflow as tf

# The exit status of a preempted run: TensorFlow's own restart code for a
# preemption (`tf.distribute.experimental.TerminationConfig`'s default on
# single machines); a scheduler that sees it restarts the job, which resumes.
PREEMPTED_EXIT_CODE = 42


class PreemptionSaver:
  """On SIGTERM or SIGINT: checkpoint the current step, then exit.

  Create it after the checkpoint manager (it restores the latest checkpoint,
  as the Orbit controller does) and pass it as an Orbit train action: it
  runs after every train loop, so a signal is acted on at the end of the
  loop in flight; set `trainer.steps_per_loop` so that a loop fits in the
  grace period the platform gives.

  Orbit runs train actions before it writes the loop's summaries, so the
  last loop's outputs (its losses and metrics) are written here, to
  `summary_dir`, before exiting: a preempted run's TensorBoard curve has no
  hole at the step it stopped.

  Args:
    strategy: the run's `tf.distribute.Strategy`.
    checkpoint_manager: the run's `tf.train.CheckpointManager`.
    global_step: the step counter; the checkpoint is numbered with it.
    summary_dir: where the train summaries go (`model_dir/train`); None
      writes none (non-chief workers).
    signals: the signals that mean "stop"; SIGTERM and SIGINT by default.
      Handlers are installed in the main thread.
  """

  def __init__(self, strategy: tf.distribute.Strategy,
               checkpoint_manager: tf.train.CheckpointManager,
               global_step: tf.Variable,
               summary_dir: Optional[str] = None,
               signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT)):
    self._global_step = global_step
    self._checkpoint_manager = checkpoint_manager
    self._summaries = orbit.utils.SummaryManager(
        summary_dir, tf.summary.scalar, global_step=global_step)
    self._last_output = {}
    # With no termination_watcher_fn the handler installs its own SIGTERM
    # handler, which notes the notice at once (a watcher function would be
    # polled once a second, several steps late on a small model).
    self._handler = tf.distribute.experimental.PreemptionCheckpointHandler(
        strategy.cluster_resolver, checkpoint_manager,
        termination_config=tf.distribute.experimental.TerminationConfig(
            exit_fn=self._exit, grace_period=0))
    self._notify = signal.getsignal(signal.SIGTERM)
    for signum in signals:
      signal.signal(signum, self._on_signal)

  def _on_signal(self, signum, frame):
    logging.warning('Received %s: the run will save a checkpoint after the '
                    'train loop in flight and exit.',
                    signal.Signals(signum).name)
    if callable(self._notify):
      self._notify(signal.SIGTERM, frame)  # the handler's own notice

  def __call__(self, output=None) -> None:
    """Saves and exits if a stop was asked for (by any worker)."""
    self._last_output = output or {}
    self._handler.save_checkpoint_if_preempted(
        checkpoint_number=self._global_step, check_interval=False)

  def _exit(self) -> None:
    step = int(self._global_step.numpy())
    output = tf.nest.map_structure(orbit.utils.get_value, self._last_output)
    logging.info('train | step: %d | output (last loop before the stop): %s',
                 step, output)
    self._summaries.write_summaries(output)
    self._summaries.flush()
    logging.warning(
        'Preempted: checkpoint of step %d written to %s; exiting with '
        'status %d. Run the same command again to resume.', step,
        self._checkpoint_manager.directory, PREEMPTED_EXIT_CODE)
    sys.exit(PREEMPTED_EXIT_CODE)
