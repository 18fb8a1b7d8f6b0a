"""Planning a run: settings in, a validated `RunPlan` out (or an error that says what to change),
and the run created from it. Nothing is written before `create_run`."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from textgen.core.config import FieldSpec
from textgen.core.errors import ConfigError, CorpusError
from textgen.data import registry
from textgen.data.config import CorpusConfig, TokenizerConfig
from textgen.models.config import PRESET_NAMES, ModelConfig, preset_config
from textgen.store.database import RunRecord, RunStore
from textgen.training import artifacts
from textgen.training.config import TrainConfig

# Fewest training examples worth training on; stated in the refusal.
MIN_TRAIN_EXAMPLES = 8


# Families whose training step compiles under XLA (jit_compile=true); see bench/jit_compile.py.
XLA_KINDS = ("transformer", "transformer-lm")


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """A validated run, not yet written: what the app shows before "Start"."""

    label: str
    config: artifacts.RunConfig
    source_tokenizer: Any  # None for decoder-only models
    target_tokenizer: Any
    parameter_count: int
    flops_per_token: int
    num_train_examples: int
    steps_per_epoch: int


def split_settings(settings: dict[str, str]) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Route `--set key=value` pairs to the tokenizer, model and training configs by field name.

    `tokenizer=char` names the tokenizer kind; a prefix (`model.dropout`, `train.seed`,
    `tokenizer.vocab_size`) picks the config explicitly.
    """
    routed: dict[str, dict[str, str]] = {name: {} for name in SETTING_CONFIGS}
    for key, value in settings.items():
        owner, field = _route(key)
        routed[owner][field] = value
    return routed["tokenizer"], routed["model"], routed["train"]


# The configs a run's `--set key=value` settings go to, by prefix.
SETTING_CONFIGS = {"tokenizer": TokenizerConfig, "model": ModelConfig, "train": TrainConfig}


def _route(key: str) -> tuple[str, str]:
    """(config prefix, field name) of a run setting: see `split_settings`."""
    if key == "tokenizer":
        return "tokenizer", "kind"
    prefix, dot, field = key.partition(".")
    if dot and prefix in SETTING_CONFIGS:
        SETTING_CONFIGS[prefix].field_spec(field)  # says the valid fields when it is not one
        return prefix, field
    owners = [name for name, cls in SETTING_CONFIGS.items() if key in cls.field_names() and key != "kind"]
    if not owners:
        valid = sorted({f for cls in SETTING_CONFIGS.values() for f in cls.field_names()} - {"kind"})
        raise ConfigError(f"unknown setting {key!r}. Valid keys: tokenizer, {', '.join(valid)}.")
    return owners[0], key


def setting_spec(key: str) -> FieldSpec:
    """The declaration (type, default, range or choices, help) of a run setting, named as in
    `--set key=value` (`tokenizer` for the tokenizer's kind)."""
    owner, field = _route(key)
    return SETTING_CONFIGS[owner].field_spec(field)


def parse_setting(key: str, text: str) -> Any:
    """A run setting's text (from the command line or a link) as a value of its field's type,
    within its range or choices; ConfigError says what was expected."""
    owner, field = _route(key)
    return SETTING_CONFIGS[owner].parse_setting(field, text)


def settings_help() -> str:
    """Every run setting with its valid values, for `train --set`'s help."""
    names = ["tokenizer"] + [f for cls in SETTING_CONFIGS.values() for f in cls.field_names() if f != "kind"]
    return ", ".join(f"{name} ({setting_spec(name).allowed})" if setting_spec(name).allowed else name
                     for name in dict.fromkeys(names))


def plan_run(
    store: RunStore,
    corpus: str,
    kind: str,
    *,
    preset: str = "small",
    settings: dict[str, str] | None = None,
    label: str | None = None,
    corpus_config: CorpusConfig | None = None,
    valid: str | None = None,
    test: str | None = None,
) -> RunPlan:
    """Validate everything about a run before it exists. `corpus` (and the optional held-out
    `valid` and `test` corpora) is a corpus id, a path or sample:NAME."""
    from textgen.models.size import flops_per_token, parameter_count
    from textgen.training.estimates import check_memory

    if preset not in PRESET_NAMES:
        raise ConfigError(f"preset must be one of {', '.join(PRESET_NAMES)}; got {preset!r}.")
    tokenizer_settings, model_settings, train_settings = split_settings(settings or {})
    tokenizer_config = TokenizerConfig().with_overrides(tokenizer_settings, from_text=True)
    train_config = TrainConfig().with_overrides(train_settings, from_text=True)
    record = resolve_corpus(store, corpus, corpus_config)
    loaded = registry.load_registered(store, record.id)
    decoder_only = preset_config(kind, preset, 8, 8).is_decoder_only  # checks kind and preset before the slow part
    _check_fits(kind, decoder_only, record.label, loaded, train_config)
    held_out = _held_out(store, decoder_only, corpus_config, valid=valid, test=test)
    train_examples = registry.run_examples(store, record.id, valid_corpus_id=held_out.get("valid"),
                                           test_corpus_id=held_out.get("test"), loaded=loaded)["train"]
    source_tokenizer, target_tokenizer = _train_tokenizers(train_examples, tokenizer_config, decoder_only)
    source_vocab = source_tokenizer.vocab_size if source_tokenizer else 0
    model_config = preset_config(kind, preset, source_vocab, target_tokenizer.vocab_size)
    model_config = model_config.with_overrides(model_settings, from_text=True)
    if model_config.source_vocab_size != source_vocab or model_config.target_vocab_size != target_tokenizer.vocab_size:
        raise ConfigError("source_vocab_size and target_vocab_size come from the tokenizers; set vocab_size instead.")
    check_memory(model_config, train_config)  # a vocabulary explosion is refused here, before a run exists
    steps = steps_per_epoch(None if decoder_only else len(train_examples), loaded, train_config, model_config,
                            target_tokenizer)
    config = artifacts.RunConfig(record.id, tokenizer_config, model_config, train_config,
                                 valid_corpus_id=held_out.get("valid"), test_corpus_id=held_out.get("test"))
    return RunPlan(
        label=label or f"{kind} on {record.label}",
        config=config,
        source_tokenizer=source_tokenizer,
        target_tokenizer=target_tokenizer,
        parameter_count=parameter_count(model_config),
        flops_per_token=flops_per_token(model_config),
        num_train_examples=len(train_examples),
        steps_per_epoch=steps,
    )


def _check_fits(kind: str, decoder_only: bool, corpus_label: str, loaded: Any, train: TrainConfig) -> None:
    """Refuse a family that does not fit the corpus (pairs or text), XLA where it does not
    compile, and a training split too small to train on."""
    if decoder_only and loaded.corpus.is_pairs:
        raise ConfigError(
            f"{kind} is a language model for plain text, but corpus {corpus_label!r} has source/target "
            "pairs; pick a seq2seq model (gru, lstm, bahdanau, luong, transformer) or a text corpus."
        )
    if not decoder_only and not loaded.corpus.is_pairs:
        raise ConfigError(
            f"{kind} needs source/target pairs, but corpus {corpus_label!r} is plain text; "
            "pick transformer-lm or lstm-lm, or upload pairs (TSV, CSV or JSONL)."
        )
    if train.jit_compile and kind not in XLA_KINDS:
        raise ConfigError(
            f"jit_compile is available for {', '.join(XLA_KINDS)} only; {kind}'s recurrent step loop has "
            "shapes XLA cannot compile (bahdanau failed to compile here). Set jit_compile=false."
        )
    if len(loaded.split.train) < MIN_TRAIN_EXAMPLES:
        raise CorpusError(
            f"the training split has {len(loaded.split.train)} examples; training needs at least "
            f"{MIN_TRAIN_EXAMPLES}. Add examples or lower valid_fraction/test_fraction."
        )


def _held_out(store: RunStore, decoder_only: bool, corpus_config: CorpusConfig | None, **references: str | None
              ) -> dict[str, str]:
    """The registered ids of the held-out `valid` / `test` pair corpora given instead of the split."""
    ids = {}
    for name, reference in references.items():
        if reference is None:
            continue
        if decoder_only:
            raise ConfigError(f"--{name} is for source/target pairs; language models use the text's own split.")
        ids[name] = resolve_corpus(store, reference, corpus_config).id
        if not registry.load_registered(store, ids[name]).corpus.is_pairs:
            raise ConfigError(f"the --{name} corpus must hold source/target pairs like the training corpus.")
    return ids


def _train_tokenizers(train_examples: list, config: TokenizerConfig, decoder_only: bool) -> tuple[Any, Any]:
    """(source, target) tokenizers trained on the training split; no source one for a language model."""
    from textgen.data.tokenizers import train_tokenizer

    target = train_tokenizer([e.target for e in train_examples], config)
    if decoder_only:
        return None, target
    return train_tokenizer([e.source for e in train_examples], config), target


def steps_per_epoch(num_pairs: int | None, loaded: Any, train: TrainConfig, model: ModelConfig,
                    target_tokenizer: Any) -> int:
    if num_pairs is not None:
        return max(1, math.ceil(num_pairs / train.batch_size))
    from textgen.data.corpus.split import texts_for_split

    text = texts_for_split(loaded.corpus, loaded.split)["train"]
    num_tokens = len(target_tokenizer.encode(text))
    return max(1, math.ceil(num_tokens / model.max_target_length / train.batch_size))


def resolve_corpus(store: RunStore, corpus: str, corpus_config: CorpusConfig | None = None):
    """A registered corpus by id, or register a path / sample:NAME (idempotent)."""
    from textgen.store.database import check_id

    if corpus.startswith("c-"):
        check_id(corpus, "corpus id")
        return store.get_corpus(corpus)
    return registry.register_reference(store, corpus, corpus_config)


def create_run(store: RunStore, plan: RunPlan) -> RunRecord:
    """Write a planned run: a store row (queued), run.json and the tokenizers."""
    run = store.create_run(label=plan.label, kind=plan.config.model.kind, config=plan.config.to_dict(),
                           corpus_id=plan.config.corpus_id, status="queued")
    run_dir = store.run_dir(run.id)
    if plan.source_tokenizer is not None:
        plan.source_tokenizer.save(run_dir / artifacts.SOURCE_TOKENIZER_FILE)
    plan.target_tokenizer.save(run_dir / artifacts.TARGET_TOKENIZER_FILE)
    artifacts.save_run_config(run_dir, plan.config)
    return run
