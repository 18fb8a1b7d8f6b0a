"""Scores of generated text: sacreBLEU (BLEU, chrF, TER) and rouge-score (ROUGE-1/2/L), with 95%
bootstrap confidence intervals, per-sentence scores, paired significance tests, storage in the
their corpus-level figures for validation.

No metric is re-implemented here: every number comes from sacrebleu 2.x or rouge-score.

- Hypotheses and references (and sources) pass through `textgen.core.text.normalize` (NFC) first, so a
  composed and a decomposed "é" score the same.
- BLEU, chrF, TER: sacrebleu's default settings (BLEU tok 13a, exp smoothing; chrF2; TER
  case-insensitive), one reference; the value is exactly `corpus_score` (the command line's
  figure). Each metric's sufficient statistics are extracted once per sentence
  (`_extract_corpus_statistics`, what `corpus_score` itself calls); corpus scores of bootstrap
  resamples are computed from resampled sums of those statistics with `_compute_score_from_stats`,
  which is exactly sacrebleu's own `--confidence` bootstrap, but with our seeded RNG and a
  percentile interval [2.5 %, 97.5 %] instead of sacrebleu's symmetric "mean ± half-width".
- Sentence BLEU uses effective order (sacrebleu's recommendation for single sentences); sentence
  chrF is `CHRF().sentence_score`. Both come from the same per-sentence statistics.
- ROUGE: `rouge_score.rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)`,
  F1 of each sentence; the corpus value is the mean over sentences. Its interval is a seeded
  percentile bootstrap of that mean (as `rouge_score.scoring.BootstrapAggregator` does, which
  draws from numpy's global RNG, so we resample ourselves). rouge-score's default tokenizer keeps
  only [a-z0-9] runs, so text in other scripts scores 0: pass rouge_tokenizer="unicode" for
  lower-cased Unicode word runs (no stemming).
- All scores are on a 0-100 scale (ROUGE F1 x 100), to sit beside BLEU and chrF.
- Paired tests: sacrebleu's `PairedTest` (paired bootstrap "bs" or approximate randomisation
  "ar") for BLEU, chrF and TER; for ROUGE-L the same test statistic and p-value rule
  ((count + 1) / (n + 1)) applied to per-sentence ROUGE-L F1, in `_paired_sentence_test`."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import os
import re
import threading
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.significance import PairedTest

from textgen.core.text import normalize

METRIC_NAMES = ("bleu", "chrf", "ter", "rouge1", "rouge2", "rougeL")


SENTENCE_METRICS = ("bleu", "chrf", "rougeL")


ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


ROUGE_TOKENIZERS = ("default", "unicode")


SIGNIFICANCE_METHODS = ("bs", "ar")


CONFIDENCE = 0.95


# Bootstrap resamples are scored this many sentence-index rows at a time (bounded memory).
_BOOTSTRAP_CELLS = 4_000_000


@dataclasses.dataclass(frozen=True)
class MetricScore:
    """A corpus score and its 95% bootstrap interval [low, high] (0-100 scale)."""

    name: str
    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    """Corpus scores, the settings that produced them and per-example scores (plain data)."""

    metrics: dict[str, MetricScore]  # keys METRIC_NAMES
    signature: str  # sacreBLEU signatures of BLEU / chrF / TER + ROUGE and bootstrap settings
    sentence_scores: dict[str, np.ndarray]  # "bleu", "chrf", "rougeL": float64 (num_examples,)
    hypotheses: list[str]  # normalised, as scored
    references: list[str]
    sources: list[str]  # empty strings when no sources were given

    def __len__(self) -> int:
        return len(self.hypotheses)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per example: index, source, reference, hypothesis and sentence scores."""
        return [
            {"index": i, "source": self.sources[i], "reference": self.references[i],
             "hypothesis": self.hypotheses[i],
             **{name: float(self.sentence_scores[name][i]) for name in SENTENCE_METRICS}}
            for i in range(len(self))
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "signature": self.signature,
            "examples": self.rows(),
        }


class _UnicodeWordTokenizer:
    """rouge-score tokenizer interface: lower-cased runs of Unicode word characters."""

    _WORD = re.compile(r"\w+", re.UNICODE)

    def tokenize(self, text: str) -> list[str]:
        return self._WORD.findall(text.lower())


def _rouge_scorer(rouge_tokenizer: str) -> rouge_scorer.RougeScorer:
    if rouge_tokenizer not in ROUGE_TOKENIZERS:
        raise ValueError(f"rouge_tokenizer must be one of {', '.join(ROUGE_TOKENIZERS)}; "
                         f"got {rouge_tokenizer!r}.")
    tokenizer = _UnicodeWordTokenizer() if rouge_tokenizer == "unicode" else None
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True, tokenizer=tokenizer)


def check_texts(hypotheses: Sequence[str], references: Sequence[str],
                 sources: Sequence[str] | None) -> None:
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise TypeError("hypotheses and references must be sequences of strings, not one string.")
    if len(hypotheses) != len(references):
        raise ValueError(f"got {len(hypotheses)} hypotheses but {len(references)} references.")
    if not hypotheses:
        raise ValueError("nothing to score: no hypotheses.")
    if sources is not None and len(sources) != len(hypotheses):
        raise ValueError(f"got {len(sources)} sources for {len(hypotheses)} hypotheses.")


def _resample_counts(num_examples: int, num_samples: int, seed: int) -> Iterable[np.ndarray]:
    """Bootstrap resamples as counts (rows: resamples, columns: how often each example is drawn),
    in chunks. The same seed gives the same resamples."""
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOTSTRAP_CELLS // max(num_examples, 1))
    for begin in range(0, num_samples, chunk):
        rows = min(chunk, num_samples - begin)
        draws = rng.integers(0, num_examples, size=(rows, num_examples))
        flat = (draws + np.arange(rows)[:, None] * num_examples).ravel()
        yield np.bincount(flat, minlength=rows * num_examples).reshape(rows, num_examples)


def _interval(samples: np.ndarray) -> tuple[float, float]:
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def _sacrebleu_score(metric, stats: list, samples: int, seed: int) -> tuple[float, float, float]:
    value = float(metric._aggregate_and_compute(stats).score)
    if samples <= 1:
        return value, value, value
    matrix = np.asarray(stats, dtype=np.float64)  # (examples, statistics)
    resampled = []
    for counts in _resample_counts(len(matrix), samples, seed):
        for sums in counts @ matrix:
            resampled.append(metric._compute_score_from_stats(sums).score)
    return (value, *_interval(np.asarray(resampled)))


def _mean_score(values: np.ndarray, samples: int, seed: int) -> tuple[float, float, float]:
    value = float(values.mean())
    if samples <= 1:
        return value, value, value
    means = np.concatenate([counts @ values / len(values)
                            for counts in _resample_counts(len(values), samples, seed)])
    return (value, *_interval(means))


def rouge_sentence_scores(hypotheses: Sequence[str], references: Sequence[str], *,
                          rouge_tokenizer: str = "default") -> dict[str, np.ndarray]:
    """rouge-score F1 x 100 of each sentence, per ROUGE type (texts used as given)."""
    scorer = _rouge_scorer(rouge_tokenizer)
    scores = [scorer.score(ref, hyp) for hyp, ref in zip(hypotheses, references)]
    return {t: np.asarray([s[t].fmeasure * 100 for s in scores], np.float64) for t in ROUGE_TYPES}


def _signature(metrics: Mapping[str, Any], rouge_tokenizer: str, samples: int, seed: int) -> str:
    parts = [f"{m.get_signature().format()}" for m in metrics.values()]
    names = ["BLEU", "chrF2", "TER"]
    rouge = (f"ROUGE rouge-score:{importlib.metadata.version('rouge-score')}|"
             f"types:{','.join(ROUGE_TYPES)}|f1x100|mean|stem:yes|tok:{rouge_tokenizer}")
    bootstrap = (f"CI {int(CONFIDENCE * 100)}%-percentile|bs:{samples}|rs:{seed}|"
                 "text:NFC|sentence-bleu:eff:yes")
    return "; ".join([f"{n} {p}" for n, p in zip(names, parts)] + [rouge, bootstrap])


def score(
    hypotheses: Sequence[str],
    references: Sequence[str],
    *,
    sources: Sequence[str] | None = None,
    bootstrap_samples: int = 1000,
    seed: int = 12345,
    rouge_tokenizer: str = "default",
) -> EvaluationResult:
    """Corpus BLEU, chrF, TER, ROUGE-1/2/L with 95% bootstrap intervals, and per-sentence BLEU,
    chrF and ROUGE-L, of hypotheses against one reference each. bootstrap_samples <= 1 skips the
    intervals (low = high = value)."""
    check_texts(hypotheses, references, sources)
    hyps = [normalize(h) for h in hypotheses]
    refs = [normalize(r) for r in references]
    srcs = [normalize(s) for s in sources] if sources is not None else [""] * len(hyps)
    corpus_metrics = {"bleu": BLEU(), "chrf": CHRF(), "ter": TER()}
    metrics: dict[str, MetricScore] = {}
    sentence: dict[str, np.ndarray] = {}
    for name, metric in corpus_metrics.items():
        stats = metric._extract_corpus_statistics(hyps, [refs])
        value, low, high = _sacrebleu_score(metric, stats, bootstrap_samples, seed)
        metrics[name] = MetricScore(name, value, low, high)
        if name == "bleu":
            sentence_bleu = BLEU(effective_order=True)
            sentence["bleu"] = np.asarray(
                [sentence_bleu._compute_score_from_stats(s).score for s in stats], np.float64)
        elif name == "chrf":
            sentence["chrf"] = np.asarray(
                [metric._compute_score_from_stats(s).score for s in stats], np.float64)
    rouge = rouge_sentence_scores(hyps, refs, rouge_tokenizer=rouge_tokenizer)
    for name in ROUGE_TYPES:
        metrics[name] = MetricScore(name, *_mean_score(rouge[name], bootstrap_samples, seed))
    sentence["rougeL"] = rouge["rougeL"]
    return EvaluationResult(
        metrics={name: metrics[name] for name in METRIC_NAMES},
        signature=_signature(corpus_metrics, rouge_tokenizer, bootstrap_samples, seed),
        sentence_scores=sentence, hypotheses=hyps, references=refs, sources=srcs)


_SEED_LOCK = threading.Lock()


@contextlib.contextmanager
def _sacrebleu_seed(seed: int):
    """sacrebleu reads its RNG seed from SACREBLEU_SEED when a PairedTest is built."""
    with _SEED_LOCK:
        previous = os.environ.get("SACREBLEU_SEED")
        os.environ["SACREBLEU_SEED"] = str(seed)
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("SACREBLEU_SEED", None)
            else:
                os.environ["SACREBLEU_SEED"] = previous


def _paired_sentence_test(baseline: np.ndarray, system: np.ndarray, method: str, n_samples: int,
                          seed: int) -> float:
    """p-value of the difference of mean sentence scores, with sacrebleu's test statistics:
    bs: |resampled difference| centred on its mean vs the observed difference;
    ar: |difference| after randomly swapping each sentence's two scores."""
    rng = np.random.default_rng(seed)
    observed = abs(system.mean() - baseline.mean())
    if observed == 0.0:
        return 1.0  # see _p_value
    n = len(system)
    if method == "bs":
        draws = rng.choice(n, size=(n_samples, n), replace=True)
        differences = np.abs(system[draws].mean(1) - baseline[draws].mean(1))
        statistics = differences - differences.mean()
    else:
        swap = rng.integers(2, size=(n_samples, n), dtype=bool)
        a = np.where(swap, system, baseline).mean(1)
        b = np.where(swap, baseline, system).mean(1)
        statistics = np.abs(a - b)
    return float((np.sum(statistics > observed) + 1) / (n_samples + 1))


def _p_value(p_value: float, delta: float) -> float:
    """sacrebleu counts resampled statistics strictly above the observed difference, so two
    systems with identical scores (every statistic 0, observed 0) get p = 1 / (n + 1), the
    smallest possible value. With no observed difference nothing is significant: p = 1."""
    return 1.0 if delta == 0.0 else float(p_value)


def paired_significance(
    systems: Mapping[str, Sequence[str]],
    references: Sequence[str],
    *,
    baseline: str,
    method: str = "bs",
    n_samples: int = 1000,
    seed: int = 12345,
    rouge_tokenizer: str = "default",
) -> dict[str, dict[str, dict[str, float]]]:
    """Is each system's difference from `baseline` significant, on the same inputs?

    Returns {system: {"bleu" | "chrf" | "ter" | "rougeL": {"p_value", "delta", "score"}}} for
    every system but the baseline; delta = system score - baseline score (for TER lower is
    better). method "bs": paired bootstrap resampling; "ar": approximate randomisation.
    Where a score is exactly the baseline's, p_value is 1 (see `_p_value`).
    n_samples: resamples / trials. seed must be >= 1 (sacrebleu treats 0 as "unseeded").
    """
    if method not in SIGNIFICANCE_METHODS:
        raise ValueError(f"method must be 'bs' or 'ar', got {method!r}.")
    if baseline not in systems:
        raise ValueError(f"baseline {baseline!r} is not one of the systems "
                         f"({', '.join(map(repr, systems))}).")
    if len(systems) < 2:
        raise ValueError("paired_significance needs at least two systems.")
    if n_samples < 1 or seed < 1:
        raise ValueError(f"n_samples and seed must be at least 1, got {n_samples} and {seed}.")
    refs = [normalize(r) for r in references]
    named = [(baseline, [normalize(h) for h in systems[baseline]])]
    named += [(name, [normalize(h) for h in hyps]) for name, hyps in systems.items()
              if name != baseline]
    for name, hyps in named:
        check_texts(hyps, refs, None)
    with _sacrebleu_seed(seed):
        test = PairedTest(named, metrics={"BLEU": BLEU(), "chrF": CHRF(), "TER": TER()},
                          references=[refs], test_type=method, n_samples=n_samples,
                          n_ar_confidence=-1)
    _, table = test()
    keys = {"bleu": "BLEU", "chrf": "chrF2", "ter": "TER"}
    rouge = [rouge_sentence_scores(hyps, refs, rouge_tokenizer=rouge_tokenizer)["rougeL"]
             for _, hyps in named]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for i, (name, _) in enumerate(named[1:], start=1):
        entry = {}
        for ours, theirs in keys.items():
            base, result = table[theirs][0], table[theirs][i]
            delta = float(result.score - base.score)
            entry[ours] = {"p_value": _p_value(result.p_value, delta), "delta": delta,
                           "score": float(result.score)}
        entry["rougeL"] = {
            "p_value": _paired_sentence_test(rouge[0], rouge[i], method, n_samples, seed),
            "delta": float(rouge[i].mean() - rouge[0].mean()), "score": float(rouge[i].mean())}
        out[name] = entry
    return out


def validation_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Corpus BLEU and chrF without intervals: the cheap figures logged at each evaluation."""
    from textgen.scoring.metrics import score

    metrics = score(hypotheses, references, bootstrap_samples=0).metrics
    return {"bleu": metrics["bleu"].value, "chrf": metrics["chrf"].value}
