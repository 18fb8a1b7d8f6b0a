"""How many threads a training job gives TensorFlow, chosen per model family and machine."""

from __future__ import annotations

import dataclasses
import os

from textgen.training.config import TrainConfig

# Families that train faster with one thread per op and the batch in slices side by side, on
# machines with at most SLICED_LAYOUT_MAX_CORES cores (the layout `thread_layout` picks for the
# settings left at 0); the recurrent families were no faster that way (bench/RESULTS.md).
# Machines with more cores were not measured and keep TensorFlow's defaults.
SLICED_LAYOUT_KINDS = ("transformer", "transformer-lm")


SLICED_LAYOUT_MAX_CORES = 2


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS says, else the count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclasses.dataclass(frozen=True)
class ThreadLayout:
    """How a job runs its ops: 0 threads means TensorFlow's default (all cores)."""

    intra_op_threads: int
    inter_op_threads: int
    batch_parts: int

    def summary(self) -> str:
        def threads(n: int) -> str:
            return str(n) if n else "all cores"

        return (f"threads: {threads(self.intra_op_threads)} per op, {threads(self.inter_op_threads)} ops at once, "
                f"the batch in {self.batch_parts} slice{'s' if self.batch_parts > 1 else ''}")


def thread_layout(train: TrainConfig, kind: str, cores: int) -> ThreadLayout:
    """The settings left at 0 chosen for `kind` on `cores` cores; the others as set. The sliced
    layout (one thread per op, `cores` ops at once, `cores` batch slices) for SLICED_LAYOUT_KINDS
    on at most SLICED_LAYOUT_MAX_CORES cores when intra_op_threads is 0 or 1; otherwise
    TensorFlow's defaults, with inter_op_threads as many as intra_op_threads (up to 2) when
    that is set."""
    sliced = (kind in SLICED_LAYOUT_KINDS and cores <= SLICED_LAYOUT_MAX_CORES
              and train.intra_op_threads in (0, 1))
    intra = train.intra_op_threads or (1 if sliced else 0)
    if train.inter_op_threads:
        inter = train.inter_op_threads
    elif sliced:
        inter = cores
    else:
        inter = max(1, min(2, intra)) if intra else 0
    parts = train.batch_parts or (cores if sliced else 1)
    return ThreadLayout(intra, inter, parts)


def configure_threads(layout: ThreadLayout) -> None:
    """Apply the thread settings. They take effect only before TensorFlow executes its first op
    (a job process calls this first); in a process where TensorFlow already ran, a warning says
    they were not applied and training goes on with the threads it has."""
    import tensorflow as tf

    threads, inter = layout.intra_op_threads, layout.inter_op_threads
    try:
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:  # "cannot be modified after initialization"
        print(f"warning: intra_op_threads={threads} and inter_op_threads={inter} were not applied: "
              "TensorFlow had already run in this process; a job started with `python -m textgen` "
              "applies them", flush=True)
