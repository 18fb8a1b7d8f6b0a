"""The Evaluate page's data, from stored evaluations: leaderboard rows with confidence intervals,
paired-significance matrices between runs, per-sentence score distributions, and exports.

Evaluations come from `evaluation.save_evaluation`: the corpus scores are in the store (one row
per evaluation), the per-example hypotheses and sentence scores in
runs/<run_id>/evaluations/evaluation-<id>.json. A run evaluated several times keeps every
evaluation; the leaderboard shows the latest one for each (run, split, decoding settings).

Significance needs the same inputs: two runs are compared only when their evaluations hold the
same sources and references in the same order (same corpus, split and number of examples).
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import json
from typing import Any, Iterable, Mapping, Sequence

from textgen.core import tables
from textgen.core.errors import StoreError
from textgen.scoring.metrics import METRIC_NAMES, SENTENCE_METRICS, paired_significance
from textgen.store.database import EvaluationRecord, RunRecord, RunStore

METRIC_TITLES = {"bleu": "BLEU", "chrf": "chrF", "ter": "TER", "rouge1": "ROUGE-1",
                 "rouge2": "ROUGE-2", "rougeL": "ROUGE-L"}
SIGNIFICANCE_METRICS = ("bleu", "chrf", "ter", "rougeL")
SENTENCE_METRIC_TITLES = {"bleu": "sentence BLEU", "chrf": "sentence chrF", "rougeL": "sentence ROUGE-L"}
# A matrix of n runs takes n - 1 paired tests; beyond this it is slow and unreadable.
MAX_SIGNIFICANCE_SYSTEMS = 8


def _decoding_key(decoding: Mapping[str, Any]) -> str:
    return json.dumps(dict(decoding), sort_keys=True)


def decoding_summary(decoding: Mapping[str, Any]) -> str:
    """A short description of decoding settings: "greedy", "beam 4 (α 0.6)", "sample T 1.0 …".
    Beam search stopped by the exhaustive rule says so: "beam 4 (α 0.6, exhaustive)" (settings
    saved before `beam_stopping` existed were decoded that way)."""
    strategy = decoding.get("strategy", "greedy")
    if strategy == "beam":
        exhaustive = decoding.get("beam_stopping", "max_length") == "max_length"
        return (f"beam {decoding.get('beam_width', '?')} (α {decoding.get('length_penalty', '?')}"
                f"{', exhaustive' if exhaustive else ''})")
    if strategy == "sample":
        return (f"sample T {decoding.get('temperature', '?')} top-k {decoding.get('top_k', '?')} "
                f"top-p {decoding.get('top_p', '?')} seed {decoding.get('seed', '?')}")
    return str(strategy)


def latest_evaluations(store: RunStore, run_ids: Iterable[str]) -> list[EvaluationRecord]:
    """The latest evaluation of each (run, split, decoding settings), runs in the given order."""
    latest: dict[tuple[str, str, str], EvaluationRecord] = {}
    for run_id in run_ids:
        for record in store.get_evaluations(run_id):  # ordered by id: later ones replace
            latest[(record.run_id, record.split, _decoding_key(record.decoding))] = record
    return list(latest.values())


def latest_per_run(store: RunStore, run_ids: Iterable[str], split: str) -> dict[str, EvaluationRecord]:
    """Each run's most recent evaluation on `split` (any decoding); runs without one are left out."""
    chosen: dict[str, EvaluationRecord] = {}
    for run_id in run_ids:
        on_split = [r for r in store.get_evaluations(run_id) if r.split == split]
        if on_split:
            chosen[run_id] = on_split[-1]
    return chosen


def leaderboard_rows(store: RunStore, runs: Sequence[RunRecord], split: str | None = None) -> list[dict[str, Any]]:
    """One row per latest evaluation (see `latest_evaluations`) of `runs`, best BLEU first.

    Keys: run_id, label (untrusted text), model, split, decoding, then for each metric of
    `METRIC_NAMES` its value and 95% interval as `bleu`, `bleu_low`, `bleu_high`, ...,
    then evaluation_id and evaluated_at (UTC, ISO 8601). split: keep only that split.
    """
    by_id = {run.id: run for run in runs}
    rows = []
    for record in latest_evaluations(store, by_id):
        if split is not None and record.split != split:
            continue
        run = by_id[record.run_id]
        row: dict[str, Any] = {"run_id": run.id, "label": run.label, "model": run.kind,
                               "split": record.split, "decoding": decoding_summary(record.decoding)}
        for name in METRIC_NAMES:
            score = record.metrics.get(name) or {}
            row[name] = score.get("value")
            row[f"{name}_low"] = score.get("low")
            row[f"{name}_high"] = score.get("high")
        row["evaluation_id"] = record.id
        row["evaluated_at"] = datetime.datetime.fromtimestamp(
            record.created_at, datetime.timezone.utc).isoformat(timespec="seconds")
        rows.append(row)
    rows.sort(key=lambda r: (r["bleu"] is None, -(r["bleu"] or 0.0)))
    return rows


def splits_evaluated(store: RunStore, run_ids: Iterable[str]) -> list[str]:
    """The splits any of these runs was evaluated on ("test" first when present)."""
    found = {record.split for run_id in run_ids for record in store.get_evaluations(run_id)}
    return sorted(found, key=lambda s: (s != "test", s != "valid", s))


# -- per-example data --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EvaluationExamples:
    """One stored evaluation's examples: what was decoded, expected and produced, with sentence
    scores ("bleu", "chrf", "rougeL"; 0-100), all lists of the same length."""

    run_id: str
    evaluation_id: int
    split: str
    decoding: dict[str, Any]
    sources: list[str]
    references: list[str]
    hypotheses: list[str]
    sentence_scores: dict[str, list[float]]

    def __len__(self) -> int:
        return len(self.hypotheses)


def load_examples(store: RunStore, record: EvaluationRecord) -> EvaluationExamples:
    """Read an evaluation's per-example file (written by `evaluation.save_evaluation`)."""
    path = store.run_dir(record.run_id) / "evaluations" / f"evaluation-{int(record.id)}.json"
    if not path.exists():
        raise StoreError(f"evaluation {record.id} of run {record.run_id} has no per-example file "
                         f"(evaluations/{path.name}); evaluate the run again to compare it.")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        examples = payload["examples"]
        scores = {name: [float(e[name]) if e.get(name) is not None else 0.0 for e in examples]
                  for name in SENTENCE_METRICS}
        return EvaluationExamples(
            run_id=record.run_id, evaluation_id=int(record.id), split=record.split,
            decoding=dict(record.decoding),
            sources=[str(e.get("source", "")) for e in examples],
            references=[str(e["reference"]) for e in examples],
            hypotheses=[str(e["hypothesis"]) for e in examples],
            sentence_scores=scores)
    except (ValueError, KeyError, TypeError) as error:
        raise StoreError(f"the per-example file of evaluation {record.id} (run {record.run_id}) "
                         f"is damaged ({type(error).__name__}: {error}).") from None


def check_shared_examples(examples: Mapping[str, EvaluationExamples]) -> None:
    """Raise StoreError, saying which runs differ and how, unless every evaluation holds the
    same sources and references in the same order (paired tests compare sentence by sentence)."""
    items = list(examples.items())
    if len(items) < 2:
        return
    first_name, first = items[0]
    for name, other in items[1:]:
        if len(other) != len(first):
            raise StoreError(
                f"runs {first_name} and {name} were evaluated on different examples ({len(first)} vs "
                f"{len(other)}); a paired test needs the same inputs. Evaluate both on the same split "
                "of one corpus with the same maximum number of examples.")
        if other.references != first.references or other.sources != first.sources:
            raise StoreError(
                f"runs {first_name} and {name} were evaluated on different examples (same count, other "
                "sources or references: another corpus or split); a paired test needs the same inputs.")


@dataclasses.dataclass(frozen=True)
class SignificanceMatrix:
    """Paired tests between every two systems, for one metric.

    p_values[i][j]: p-value of the difference between systems i and j (symmetric; None on the
    diagonal). deltas[i][j]: score of j minus score of i (for TER lower is better).
    scores[i]: corpus score of system i.
    """

    systems: list[str]
    metric: str
    method: str
    n_samples: int
    p_values: list[list[float | None]]
    deltas: list[list[float | None]]
    scores: list[float]


def significance_matrices(examples: Mapping[str, EvaluationExamples], *, method: str = "bs",
                          n_samples: int = 1000, seed: int = 12345) -> dict[str, SignificanceMatrix]:
    """Pairwise paired tests (`paired_significance`) of 2 to MAX_SIGNIFICANCE_SYSTEMS
    systems, for each metric of SIGNIFICANCE_METRICS.

    The test statistic is the absolute difference of the pair's scores on shared resamples, so
    p(i, j) = p(j, i): each pair is tested once (system i as the baseline of every j > i, n - 1
    calls) and mirrored.
    """
    systems = list(examples)
    if not 2 <= len(systems) <= MAX_SIGNIFICANCE_SYSTEMS:
        raise ValueError(f"significance needs 2 to {MAX_SIGNIFICANCE_SYSTEMS} systems, got {len(systems)}.")
    check_shared_examples(examples)
    references = examples[systems[0]].references
    n = len(systems)
    p_values = {m: [[None] * n for _ in range(n)] for m in SIGNIFICANCE_METRICS}
    deltas = {m: [[None] * n for _ in range(n)] for m in SIGNIFICANCE_METRICS}
    scores: dict[str, list[float]] = {m: [0.0] * n for m in SIGNIFICANCE_METRICS}
    for i in range(n - 1):
        results = paired_significance(
            {name: examples[name].hypotheses for name in systems[i:]}, references,
            baseline=systems[i], method=method, n_samples=n_samples, seed=seed)
        for j in range(i + 1, n):
            for metric in SIGNIFICANCE_METRICS:
                entry = results[systems[j]][metric]
                p_values[metric][i][j] = p_values[metric][j][i] = float(entry["p_value"])
                deltas[metric][i][j] = float(entry["delta"])
                deltas[metric][j][i] = 0.0 - float(entry["delta"])  # never -0.0
                if i == 0:
                    scores[metric][j] = float(entry["score"])
    for metric in SIGNIFICANCE_METRICS:
        scores[metric][0] = scores[metric][1] - deltas[metric][0][1]  # type: ignore[operator]
    return {m: SignificanceMatrix(systems, m, method, n_samples, p_values[m], deltas[m], scores[m])
            for m in SIGNIFICANCE_METRICS}


def example_rows(examples: Mapping[str, EvaluationExamples]) -> list[dict[str, Any]]:
    """Every example of every system (run_id, evaluation_id, index, source, reference,
    hypothesis, sentence scores): the per-sentence download."""
    return [
        {"run_id": data.run_id, "evaluation_id": data.evaluation_id, "index": i,
         "source": data.sources[i], "reference": data.references[i], "hypothesis": data.hypotheses[i],
         **{metric: data.sentence_scores[metric][i] for metric in SENTENCE_METRICS}}
        for data in examples.values()
        for i in range(len(data))
    ]


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as CSV text through `tables.export_csv`, so untrusted text (labels, generated
    text) starting with = + - @ cannot run as a spreadsheet formula."""
    buffer = io.StringIO()
    if rows:
        tables.export_csv([dict(row) for row in rows], buffer)
    return buffer.getvalue()


def to_json(data: Any) -> str:
    """Plain data as JSON text through `tables.export_json` (NaN becomes null)."""
    buffer = io.StringIO()
    tables.export_json(data, buffer)
    return buffer.getvalue()
