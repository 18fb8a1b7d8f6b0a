"""Evaluating a run: decode a split (or given pairs) with a decoding config, score the outputs
(`scoring.metrics.score`), and keep the result in the run store with its per-example file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from textgen.core.tables import json_safe
from textgen.scoring.metrics import EvaluationResult, check_texts, score


def evaluate(model, source_tokenizer, target_tokenizer, sources: Sequence[str],
             references: Sequence[str], decoding_config, *, bootstrap_samples: int = 1000,
             seed: int = 12345, max_source_length: int | None = None, progress=None,
             rouge_tokenizer: str = "default") -> tuple[EvaluationResult, list]:
    """Decode `sources` with `decoding_config` and score the outputs against `references`.
    Returns the scores and the `Generation`s (texts, tokens and log-probabilities; decoded
    without attention, which scoring never reads)."""
    from textgen.decoding import generate  # TensorFlow only when a model is evaluated

    check_texts(list(sources), references, None)
    generations = generate(model, source_tokenizer, target_tokenizer, sources, decoding_config,
                           max_source_length=max_source_length, progress=progress, attention=False)
    result = score([g.output for g in generations], references, sources=sources,
                   bootstrap_samples=bootstrap_samples, seed=seed,
                   rouge_tokenizer=rouge_tokenizer)
    return result, generations


SPLITS = ("train", "valid", "test")


# Decoder-only runs: a test line's first words are the prompt and the rest the reference (the
# convention of training's probe samples); shorter lines are skipped.
LM_PROMPT_WORDS = 4


def evaluate_run(store, run_id: str, decoding_config, *, split: str = "test",
                 checkpoint: str = "best", max_examples: int | None = None,
                 bootstrap_samples: int = 1000, seed: int = 12345,
                 rouge_tokenizer: str = "default", progress=None,
                 save: bool = True) -> tuple[EvaluationResult, list, int | None]:
    """Evaluate a trained run on a split of its corpus (the split made when the corpus was
    registered) with `decoding_config`; by default store the result (`save_evaluation`).
    Returns the scores, the `Generation`s and the evaluation id (None when not saved)."""
    from textgen.core.errors import StoreError
    from textgen.data import registry
    from textgen.training import artifacts

    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}.")
    trained = artifacts.load_trained(store.run_dir(run_id), which=checkpoint)
    config = trained.config
    examples = registry.run_examples(store, config.corpus_id, valid_corpus_id=config.valid_corpus_id,
                                    test_corpus_id=config.test_corpus_id)[split]
    if trained.config.model.is_decoder_only:
        pairs = [(" ".join(words[:LM_PROMPT_WORDS]), " ".join(words[LM_PROMPT_WORDS:]))
                 for words in (e.target.split() for e in examples)
                 if len(words) > LM_PROMPT_WORDS]
    else:
        pairs = [(e.source, e.target) for e in examples]
    pairs = pairs[:max_examples] if max_examples is not None else pairs
    if not pairs:
        raise StoreError(f"the {split} split of run {run_id} has no examples to evaluate.")
    sources, references = [p[0] for p in pairs], [p[1] for p in pairs]
    result, generations = evaluate(
        trained.model, trained.source_tokenizer, trained.target_tokenizer, sources, references,
        decoding_config, bootstrap_samples=bootstrap_samples, seed=seed,
        max_source_length=trained.config.model.max_source_length, progress=progress,
        rouge_tokenizer=rouge_tokenizer)
    evaluation_id = (save_evaluation(store, run_id, split, decoding_config, result) if save
                     else None)
    return result, generations, evaluation_id


def save_evaluation(store, run_id: str, split: str, decoding_config,
                    result: EvaluationResult) -> int:
    """Record an evaluation in the run store (decoding config, metrics, signature) and write the
    per-example scores beside the run as runs/<run_id>/evaluations/evaluation-<id>.json.
    Returns the evaluation id."""
    from textgen.core.fsutil import atomic_write_text

    decoding = (decoding_config.to_dict() if hasattr(decoding_config, "to_dict")
                else dict(decoding_config))
    evaluation_id = store.add_evaluation(
        run_id, split=split, decoding=decoding,
        metrics={name: m.to_dict() for name, m in result.metrics.items()},
        signature=result.signature)
    path = Path(store.run_dir(run_id)) / "evaluations" / f"evaluation-{int(evaluation_id)}.json"
    payload = {"split": split, "decoding": decoding, **result.to_dict()}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(json_safe(payload), ensure_ascii=False, indent=2))
    return int(evaluation_id)
