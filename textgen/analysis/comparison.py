"""Side-by-side generation of several runs on the same inputs: outputs, token-level differences
from a pinned baseline, per-example scores and their deltas against the baseline.

    compare_outputs(store, run_ids, sources, references, config, baseline) -> ComparisonTable
    generate_outputs(trained, sources, config) -> [RunOutput]       one loaded model
    build_table(run_ids, sources, references, outputs, baseline)   pure: scores, deltas, diffs
    split_inputs(store, run_ids, split="test", start, limit)       inputs the runs share
    token_diff(a, b) / render_diff(segments)                       difflib opcodes as plain data

Scores are sacreBLEU sentence BLEU and chrF and rouge-score ROUGE-L from `evaluation.score`
(no metric is computed here). An example without a reference has no scores. Differences are
computed over characters when every run uses a character tokenizer (a date or a word differs
by single characters), otherwise over whitespace-separated words.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
from typing import Any, Callable, ContextManager, Mapping, Sequence

import numpy as np

from textgen.core.errors import ConfigError, StoreError

METRICS = ("chrf", "bleu", "rougeL")  # evaluation.SENTENCE_METRICS, chrF first (default)
METRIC_TITLES = {"chrf": "chrF", "bleu": "BLEU", "rougeL": "ROUGE-L"}
DIFF_TAGS = ("equal", "insert", "delete", "replace")
# Bounds that keep one comparison quick and its table readable.
MAX_RUNS = 8
MAX_INPUTS = 100
MAX_INPUT_CHARS = 1000


# -- token-level differences -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DiffSegment:
    """One difflib opcode: `baseline` tokens turned into `other` tokens. equal: the same
    tokens; insert: only `other`; delete: only `baseline`; replace: both, different."""

    tag: str
    baseline: tuple[str, ...]
    other: tuple[str, ...]


def diff_units(text: str, char_level: bool) -> list[str]:
    """The units a difference is counted in: characters, or whitespace-separated words."""
    return list(text) if char_level else text.split()


def token_diff(baseline: Sequence[str], other: Sequence[str]) -> list[DiffSegment]:
    """The segments that turn `baseline` into `other` (difflib.SequenceMatcher opcodes, no
    junk heuristic so long repeats are compared exactly). Concatenating the segments'
    `baseline` parts gives `baseline` back, and their `other` parts give `other`."""
    baseline, other = list(baseline), list(other)
    matcher = difflib.SequenceMatcher(a=baseline, b=other, autojunk=False)
    return [DiffSegment(tag, tuple(baseline[i1:i2]), tuple(other[j1:j2]))
            for tag, i1, i2, j1, j2 in matcher.get_opcodes()]


def render_diff(segments: Sequence[DiffSegment], joiner: str = " ") -> str:
    """Plain-text markup of a difference (as `git diff --word-diff`): deleted baseline tokens
    as [-...-], inserted ones as {+...+}, a replacement as both. Text only, never HTML."""
    parts = []
    for segment in segments:
        old, new = joiner.join(segment.baseline), joiner.join(segment.other)
        if segment.tag == "equal":
            parts.append(new)
        elif segment.tag == "insert":
            parts.append(f"{{+{new}+}}")
        elif segment.tag == "delete":
            parts.append(f"[-{old}-]")
        else:
            parts.append(f"[-{old}-]{{+{new}+}}")
    return joiner.join(part for part in parts if part) if joiner else "".join(parts)


def changed_units(segments: Sequence[DiffSegment]) -> int:
    """How many units differ (the larger side of every non-equal segment)."""
    return sum(max(len(s.baseline), len(s.other)) for s in segments if s.tag != "equal")


# -- outputs of one run ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunOutput:
    """What one run generated for one input (plain data; attention None when the model has
    none, like a GRU encoder-decoder without attention)."""

    output: str
    tokens: list[str]  # labels of the generated tokens, "</s>" last when finished
    finished: bool
    stop_reason: str
    char_level: bool  # the run's target tokenizer works on characters
    attention: Any = None  # attention_views.AttentionSet | None
    source_truncated: int = 0  # input tokens dropped to fit the model's max_source_length

    @property
    def note(self) -> str:
        """What cut this output or its input short, for a caption ("" when nothing did)."""
        notes = []
        if self.stop_reason == "max_length":
            notes.append(f"stopped at the length cap after {len(self.tokens):,} tokens without an end token")
        elif self.stop_reason == "time_limit":
            notes.append(f"stopped by the decoding time limit after {len(self.tokens):,} tokens")
        if self.source_truncated:
            notes.append(f"input truncated: {self.source_truncated:,} tokens over the model's maximum length "
                         "were not read")
        return "; ".join(notes)


def generate_outputs(trained, sources: Sequence[str], decoding_config) -> list[RunOutput]:
    """Decode `sources` with one loaded model (`artifacts.TrainedModel`, read only: the caller
    holds its lock) and keep what a comparison shows."""
    from textgen.analysis import attention_views
    from textgen.decoding import generate

    generations = generate(trained.model, trained.source_tokenizer, trained.target_tokenizer,
                           list(sources), decoding_config,
                           max_source_length=trained.config.model.max_source_length)
    char_level = getattr(trained.target_tokenizer, "kind", "") == "char"
    outputs = []
    for generation in generations:
        attention = attention_views.from_generation(generation) if generation.attention else None
        outputs.append(RunOutput(output=generation.output, tokens=list(generation.tokens),
                                 finished=bool(generation.finished),
                                 stop_reason=generation.stop_reason, char_level=char_level,
                                 attention=attention, source_truncated=generation.source_truncated))
    return outputs


# -- the comparison table ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ExampleResult:
    """One run on one example: its output, scores, deltas and difference from the baseline."""

    run_id: str
    output: RunOutput
    scores: dict[str, float]  # METRICS -> score (0-100); empty without a reference
    deltas: dict[str, float]  # METRICS -> score - baseline's score; empty without a reference
    diff: list[DiffSegment]  # from the baseline's output (all "equal" for the baseline)

    @property
    def changed(self) -> int:
        return changed_units(self.diff)


@dataclasses.dataclass(frozen=True)
class ComparisonRow:
    """One input and every run's result on it (in the table's run order)."""

    index: int
    source: str
    reference: str | None
    results: dict[str, ExampleResult]


@dataclasses.dataclass(frozen=True)
class ComparisonTable:
    """Every run on every input, against a pinned baseline run."""

    run_ids: list[str]
    baseline: str
    rows: list[ComparisonRow]
    char_level: bool  # differences are over characters (else whitespace words)

    @property
    def joiner(self) -> str:
        return "" if self.char_level else " "

    @property
    def has_scores(self) -> bool:
        return any(row.reference is not None for row in self.rows)

    def mean_scores(self, metric: str) -> dict[str, float | None]:
        """Each run's mean sentence score over the examples with a reference (None if none)."""
        _check_metric(metric)
        out: dict[str, float | None] = {}
        for run_id in self.run_ids:
            values = [row.results[run_id].scores[metric] for row in self.rows
                      if metric in row.results[run_id].scores]
            out[run_id] = float(np.mean(values)) if values else None
        return out

    def mean_deltas(self, metric: str) -> dict[str, float | None]:
        """Each run's mean score minus the baseline's (0 for the baseline itself)."""
        means = self.mean_scores(metric)
        base = means[self.baseline]
        return {run_id: None if value is None or base is None else value - base
                for run_id, value in means.items()}

    def sorted_rows(self, run_id: str | None = None, metric: str = "chrf",
                    descending: bool = False) -> list[ComparisonRow]:
        """Rows in input order, or by one run's delta on `metric` (rows without a score last)."""
        if run_id is None:
            return list(self.rows)
        if run_id not in self.run_ids:
            raise ValueError(f"run_id must be one of the compared runs; got {run_id!r}.")
        _check_metric(metric)

        def key(row: ComparisonRow):
            delta = row.results[run_id].deltas.get(metric)
            return (delta is None, 0.0 if delta is None else (-delta if descending else delta), row.index)

        return sorted(self.rows, key=key)

    def records(self, metric: str = "chrf", names: Mapping[str, str] | None = None,
                rows: Sequence[ComparisonRow] | None = None) -> list[dict[str, Any]]:
        """Flat rows for a table: "#", "source", "reference", then per run its output (other
        runs with their difference from the baseline marked up), its score on `metric` and
        (other runs) the delta. `names` maps run ids to column names (default: the ids)."""
        _check_metric(metric)
        names = dict(names or {})
        title = METRIC_TITLES[metric]
        out = []
        for row in (self.rows if rows is None else rows):
            record: dict[str, Any] = {"#": row.index, "source": row.source,
                                      "reference": row.reference if row.reference is not None else ""}
            for run_id in self.run_ids:
                name = names.get(run_id, run_id)
                result = row.results[run_id]
                if run_id == self.baseline:
                    record[f"{name} output"] = result.output.output
                else:
                    record[f"{name} output (vs baseline)"] = render_diff(result.diff, self.joiner)
                record[f"{name} {title}"] = result.scores.get(metric)
                if run_id != self.baseline:
                    record[f"Δ {title} {name}"] = result.deltas.get(metric)
            out.append(record)
        return out


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}.")


def _check_runs(run_ids: Sequence[str], baseline: str | None) -> tuple[list[str], str]:
    run_ids = list(dict.fromkeys(run_ids))
    if not run_ids:
        raise ConfigError("pick at least one run to compare.")
    if len(run_ids) > MAX_RUNS:
        raise ConfigError(f"compare at most {MAX_RUNS} runs at once; got {len(run_ids)}.")
    baseline = run_ids[0] if baseline is None else baseline
    if baseline not in run_ids:
        raise ConfigError(f"the baseline must be one of the compared runs; got {baseline!r}.")
    return run_ids, baseline


def check_inputs(sources: Sequence[str], references: Sequence[str | None] | None
                 ) -> tuple[list[str], list[str | None]]:
    """Sources and references as lists of equal length ("" or None: no reference); raises
    ConfigError for no input, too many, or too long ones."""
    if isinstance(sources, str):
        raise TypeError("sources must be a sequence of strings, not one string.")
    sources = [str(s) for s in sources]
    if not sources:
        raise ConfigError("no inputs to compare: type one, or draw some from the test split.")
    if len(sources) > MAX_INPUTS:
        raise ConfigError(f"compare at most {MAX_INPUTS} inputs at once; got {len(sources)}.")
    longest = max(len(s) for s in sources)
    if longest > MAX_INPUT_CHARS:
        raise ConfigError(f"inputs must be at most {MAX_INPUT_CHARS} characters; one has {longest}.")
    if references is None:
        return sources, [None] * len(sources)
    references = [r if r else None for r in references]
    if len(references) != len(sources):
        raise ConfigError(f"got {len(references)} references for {len(sources)} inputs; give one "
                          "per input (an empty one for none).")
    return sources, references


def build_table(run_ids: Sequence[str], sources: Sequence[str],
                references: Sequence[str | None] | None,
                outputs: Mapping[str, Sequence[RunOutput]], baseline: str | None = None
                ) -> ComparisonTable:
    """Score each run's outputs (sentence BLEU, chrF, ROUGE-L via `evaluation.score`), take
    deltas and token differences against `baseline` (default: the first run)."""
    from textgen.scoring.metrics import score

    run_ids, baseline = _check_runs(run_ids, baseline)
    sources, references = check_inputs(sources, references)
    for run_id in run_ids:
        if len(outputs.get(run_id, ())) != len(sources):
            raise ValueError(f"run {run_id} has {len(outputs.get(run_id, ()))} outputs for "
                             f"{len(sources)} inputs.")
    char_level = all(outputs[run_id][0].char_level for run_id in run_ids)
    scored = [i for i, reference in enumerate(references) if reference is not None]
    scores: dict[str, list[dict[str, float]]] = {}
    for run_id in run_ids:
        per_example: list[dict[str, float]] = [{} for _ in sources]
        if scored:
            result = score([outputs[run_id][i].output for i in scored],
                           [references[i] for i in scored], bootstrap_samples=0)
            for position, i in enumerate(scored):
                per_example[i] = {m: float(result.sentence_scores[m][position]) for m in METRICS}
        scores[run_id] = per_example
    rows = []
    for i, source in enumerate(sources):
        base_output = outputs[baseline][i].output
        base_units = diff_units(base_output, char_level)
        results = {}
        for run_id in run_ids:
            output = outputs[run_id][i]
            own = scores[run_id][i]
            deltas = {m: own[m] - scores[baseline][i][m] for m in own}
            results[run_id] = ExampleResult(
                run_id=run_id, output=output, scores=own, deltas=deltas,
                diff=token_diff(base_units, diff_units(output.output, char_level)))
        rows.append(ComparisonRow(index=i, source=source, reference=references[i], results=results))
    return ComparisonTable(run_ids=run_ids, baseline=baseline, rows=rows, char_level=char_level)


ModelLoader = Callable[[Any, str], ContextManager[Any]]


@contextlib.contextmanager
def _load_best(store, run_id: str):
    from textgen.training import artifacts

    yield artifacts.load_trained(store.run_dir(run_id), which="best")


def compare_outputs(store, run_ids: Sequence[str], sources: Sequence[str],
                    references: Sequence[str | None] | None, decoding_config,
                    baseline: str | None = None, *, load_model: ModelLoader | None = None
                    ) -> ComparisonTable:
    """Generate with every run's best checkpoint on the same inputs and compare them.

    load_model(store, run_id) is a context manager yielding the run's TrainedModel; the app
    passes its bounded, locked model cache (`ui.trained_model`), the default loads afresh."""
    run_ids, baseline = _check_runs(run_ids, baseline)
    sources, references = check_inputs(sources, references)
    load = load_model or _load_best
    outputs = {}
    for run_id in run_ids:
        store.get_run(run_id)  # a missing run is a StoreError that names it
        with load(store, run_id) as trained:
            outputs[run_id] = generate_outputs(trained, sources, decoding_config)
    return build_table(run_ids, sources, references, outputs, baseline)


# -- inputs from the runs' corpus --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InputSet:
    """Inputs drawn from a split the compared runs share."""

    sources: list[str]
    references: list[str]
    corpus_id: str
    split: str
    total: int  # examples in that split (the inputs are sources[start:start + limit])


def split_inputs(store, run_ids: Sequence[str], *, split: str = "test", start: int = 0,
                 limit: int = 10) -> InputSet:
    """`limit` examples from `start` of a split of the runs' corpus. The runs must have been
    trained on the same corpus and split (else their test sets differ and a side-by-side
    comparison means nothing): a StoreError says which differ. Decoder-only runs get prompts
    as `evaluation.evaluate_run` makes them (the first words of a line; the rest is the
    reference)."""
    from textgen.analysis.evaluation import LM_PROMPT_WORDS, SPLITS
    from textgen.data import registry
    from textgen.training import artifacts

    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}.")
    if not run_ids:
        raise ConfigError("pick at least one run to draw inputs from.")
    configs = {run_id: artifacts.load_run_config(store.run_dir(run_id)) for run_id in run_ids}
    first_id, first = next(iter(configs.items()))
    for run_id, config in configs.items():
        if (config.corpus_id, config.test_corpus_id, config.valid_corpus_id) != (
                first.corpus_id, first.test_corpus_id, first.valid_corpus_id):
            raise StoreError(
                f"runs {first_id} and {run_id} were trained on different corpora or splits "
                f"({first.corpus_id} / {config.corpus_id}), so they have no common {split} split: "
                "compare runs of one corpus, or type the inputs.")
        if config.model.is_decoder_only != first.model.is_decoder_only:
            raise StoreError(
                f"runs {first_id} and {run_id} read their inputs differently (one is a language "
                "model, the other an encoder-decoder): compare runs of one kind on a split.")
    examples = registry.run_examples(store, first.corpus_id, valid_corpus_id=first.valid_corpus_id,
                                    test_corpus_id=first.test_corpus_id)[split]
    if first.model.is_decoder_only:
        pairs = [(" ".join(words[:LM_PROMPT_WORDS]), " ".join(words[LM_PROMPT_WORDS:]))
                 for words in (e.target.split() for e in examples) if len(words) > LM_PROMPT_WORDS]
    else:
        pairs = [(e.source, e.target) for e in examples]
    start = min(max(int(start), 0), max(len(pairs) - 1, 0))
    chosen = pairs[start:start + max(int(limit), 0)]
    return InputSet(sources=[p[0] for p in chosen], references=[p[1] for p in chosen],
                    corpus_id=first.corpus_id, split=split, total=len(pairs))
