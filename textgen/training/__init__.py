"""Training a run: planning, the trainer and its callbacks, optimizers and schedules, thread
layout, checkpoints, jobs, and the time and memory estimates shown before a run starts."""
