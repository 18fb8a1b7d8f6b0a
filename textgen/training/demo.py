"""The first-launch demo: three small models on the dates corpus, so every page has runs to show.

One call registers `sample:dates` and submits a GRU encoder-decoder without attention, a
Bahdanau-attention GRU and a Transformer. The job queue (`TEXTGEN_MAX_JOBS`, default 1) trains
them one after the other. Each run has a time budget (`DEMO_MINUTES` of training after its data
and model are ready, about 20 s of start-up on top), so the three finish in about 3 minutes on a
2-core machine whatever its speed; on a faster one they stop at `DEMO_EPOCHS` instead.

The measured durations and scores are in bench/RESULTS.md ("the first-launch demo").
"""

from __future__ import annotations

from textgen.data import registry
from textgen.store.database import RunRecord, RunStore
from textgen.training import jobs, planning

DEMO_CORPUS = "sample:dates"
DEMO_KINDS = ("gru", "bahdanau", "transformer")
DEMO_PRESET = "tiny"
# Training minutes per run (the clock starts once data and model are ready).
DEMO_MINUTES = 0.75
DEMO_EPOCHS = 30
# Shared by the three runs; the recurrent models get a higher learning rate to learn in the budget.
DEMO_SETTINGS = {
    "tokenizer": "char",
    "batch_size": "64",
    "eval_bleu_examples": "64",
    "num_probe_samples": "8",
    "keep_checkpoints": "5",
}
DEMO_LEARNING_RATES = {"gru": "3e-3", "bahdanau": "3e-3", "transformer": "2e-3"}
DEMO_LABELS = {
    "gru": "demo: GRU encoder-decoder (no attention)",
    "bahdanau": "demo: GRU with Bahdanau attention",
    "transformer": "demo: Transformer",
}


def demo_settings(kind: str) -> dict[str, str]:
    """The `--set`-style settings of the demo run of `kind` (one of DEMO_KINDS)."""
    if kind not in DEMO_KINDS:
        raise ValueError(f"kind must be one of {', '.join(DEMO_KINDS)}, got {kind!r}.")
    return {**DEMO_SETTINGS, "epochs": str(DEMO_EPOCHS), "minutes": str(DEMO_MINUTES),
            "learning_rate": DEMO_LEARNING_RATES[kind]}


def plan_demo(store: RunStore) -> list[planning.RunPlan]:
    """Validated plans of the three demo runs (registers the dates corpus; creates no run)."""
    corpus = registry.register_reference(store, DEMO_CORPUS)
    return [
        planning.plan_run(store, corpus.id, kind, preset=DEMO_PRESET, settings=demo_settings(kind),
                          label=DEMO_LABELS[kind])
        for kind in DEMO_KINDS
    ]


def start_demo(store: RunStore, *, background: bool = True) -> list[str]:
    """Register sample:dates and submit the three demo runs; returns their run ids in queue order.

    All three are planned (validated) before the first is submitted, so a failure leaves no run.
    """
    plans = plan_demo(store)
    runs: list[RunRecord] = [jobs.submit(store, plan, background=background) for plan in plans]
    return [run.id for run in runs]


def demo_minutes() -> float:
    """About how long the demo takes on a 2-core machine: each run's training budget plus its
    start-up, one run after the other."""
    from textgen.training.estimates import START_UP_SECONDS

    return len(DEMO_KINDS) * (DEMO_MINUTES + START_UP_SECONDS / 60)
