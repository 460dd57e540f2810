"""Running a pretraining job: resumption checks, checkpoints, preemption."""
