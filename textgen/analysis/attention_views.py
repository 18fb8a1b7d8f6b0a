"""Attention maps as plain data for the Attention and Compare pages (and any other caller).

    attention_for_input(trained, source, reference=None, config) -> AttentionSet   runs the model
    from_generation(generation) / from_teacher_forced(...)     -> AttentionSet   pure, no TF
    AttentionSet.kinds / num_layers / num_heads / map(kind, layer, head) / head_maps(kind, layer)
    checkpoint_choices(run_dir) -> [CheckpointChoice]          the checkpoints a slider offers
    unique_labels(labels)                                     axis labels that never merge

Every kind of attention is held as one array (rows, layers, heads, columns), so a recurrent
model's single map is (rows, 1, 1, columns) and one code path draws both families. Rows are
output tokens (what the model generated, or the reference under teacher forcing); columns are
what they attend to: source tokens (cross attention), decoder inputs (decoder self attention) or
source tokens again (encoder self attention, where rows are source tokens too).

Attention on generated tokens comes from `decoding.generate` (`Generation.attention`), which has
no encoder self attention: it is taken from a teacher-forced pass over the same source, since
the encoder reads only the source and its attention does not depend on the target.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

KINDS = ("cross_attention", "self_attention", "encoder_self_attention")
KIND_TITLES = {
    "cross_attention": "Cross attention (output → source)",
    "self_attention": "Decoder self attention (output → earlier outputs)",
    "encoder_self_attention": "Encoder self attention (source → source)",
}
# What the rows and columns of each kind are, for axis titles.
KIND_AXES = {
    "cross_attention": ("output token", "source token"),
    "self_attention": ("output token", "decoder input"),
    "encoder_self_attention": ("source token", "source token"),
}
MODES = ("generated", "teacher_forced")
# Decoder-only models under teacher forcing: the last position predicts a token not shown.
NEXT_LABEL = "(next)"


@dataclasses.dataclass(frozen=True)
class AttentionMap:
    """One 2-D map ready to draw: values (rows, columns), one label per row and column."""

    kind: str
    values: np.ndarray  # float (rows, columns)
    row_labels: list[str]
    column_labels: list[str]
    layer: int | None  # None for recurrent attention (one map)
    head: int | None  # None: the mean over heads (or recurrent attention)

    @property
    def title(self) -> str:
        if self.layer is None:
            return KIND_TITLES[self.kind]
        which = "mean of heads" if self.head is None else f"head {self.head}"
        return f"{KIND_TITLES[self.kind]} · layer {self.layer} · {which}"


@dataclasses.dataclass(frozen=True)
class AttentionSet:
    """All the attention of one input: per kind an array (rows, layers, heads, columns) with
    its row and column labels. `multi_head` is True for Transformers (layers and heads mean
    something); recurrent attention has one layer and one head."""

    mode: str  # "generated" or "teacher_forced"
    source: str
    output: str  # the generated output, or the reference read under teacher forcing
    arrays: dict[str, np.ndarray]
    row_labels: dict[str, list[str]]
    column_labels: dict[str, list[str]]
    multi_head: bool

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}.")
        for kind, array in self.arrays.items():
            if kind not in KINDS:
                raise ValueError(f"attention kind must be one of {', '.join(KINDS)}; got {kind!r}.")
            if array.ndim != 4:
                raise ValueError(f"{kind} must be (rows, layers, heads, columns); got shape {array.shape}.")
            rows, columns = len(self.row_labels[kind]), len(self.column_labels[kind])
            if (array.shape[0], array.shape[3]) != (rows, columns):
                raise ValueError(f"{kind} has shape {array.shape} but {rows} row labels and "
                                 f"{columns} column labels.")

    @property
    def kinds(self) -> list[str]:
        """The kinds this input has, in KINDS order (empty for a model without attention)."""
        return [kind for kind in KINDS if kind in self.arrays]

    def _array(self, kind: str) -> np.ndarray:
        if kind not in self.arrays:
            have = ", ".join(self.kinds) or "none"
            raise ValueError(f"no {kind} here; this model has: {have}.")
        return self.arrays[kind]

    def num_layers(self, kind: str) -> int:
        return int(self._array(kind).shape[1])

    def num_heads(self, kind: str) -> int:
        return int(self._array(kind).shape[2])

    def map(self, kind: str, layer: int = -1, head: int | None = None) -> AttentionMap:
        """The map of one layer and head, or (head=None) the mean over that layer's heads.
        Negative layers count from the last, like Python indices."""
        array = self._array(kind)
        layers, heads = array.shape[1], array.shape[2]
        if not -layers <= layer < layers:
            raise ValueError(f"layer must be in [0, {layers - 1}] (or negative from the end); got {layer}.")
        if head is not None and not 0 <= head < heads:
            raise ValueError(f"head must be in [0, {heads - 1}] or None for the mean; got {head}.")
        selected = array[:, layer]  # (rows, heads, columns)
        values = selected.mean(axis=1) if head is None else selected[:, head]
        return AttentionMap(
            kind=kind, values=np.asarray(values, np.float64),
            row_labels=list(self.row_labels[kind]), column_labels=list(self.column_labels[kind]),
            layer=(layer % layers) if self.multi_head else None,
            head=head if self.multi_head else None)

    def head_maps(self, kind: str, layer: int = -1) -> list[AttentionMap]:
        """Every head of one layer, head 0 first, then their mean (the grid of all heads)."""
        heads = self.num_heads(kind)
        return [self.map(kind, layer, head) for head in range(heads)] + [self.map(kind, layer, None)]


def as_layered(value: np.ndarray) -> np.ndarray:
    """(rows, columns) recurrent attention as (rows, 1, 1, columns); 4-D arrays as they are."""
    value = np.asarray(value)
    if value.ndim == 2:
        return value[:, None, None, :]
    if value.ndim == 4:
        return value
    raise ValueError(f"attention must be (rows, columns) or (rows, layers, heads, columns); "
                     f"got shape {value.shape}.")


def _fit(labels: Sequence[str], size: int, filler: str) -> list[str]:
    """Labels cut or padded to `size` (a truncated sequence, or a source that was empty and
    read as one <pad>)."""
    labels = list(labels)[:size]
    return labels + [filler] * (size - len(labels))


def from_generation(generation, *, encoder_self_attention: np.ndarray | None = None) -> AttentionSet:
    """The attention of a `decoding.Generation` (the tokens the model really generated), plus an
    optional encoder self attention (source_len, layers, heads, source_len) for its source."""
    arrays, rows, columns = {}, {}, {}
    multi_head = False
    for kind, value in generation.attention.items():
        if kind not in ("cross_attention", "self_attention"):
            continue
        multi_head = multi_head or np.asarray(value).ndim == 4
        arrays[kind] = as_layered(value)
        rows[kind] = _fit(generation.tokens, arrays[kind].shape[0], "")
        labels = generation.source_tokens if kind == "cross_attention" else generation.decoder_input_tokens
        columns[kind] = _fit(labels, arrays[kind].shape[3], "<pad>")
    if encoder_self_attention is not None:
        arrays["encoder_self_attention"] = as_layered(encoder_self_attention)
        size = arrays["encoder_self_attention"].shape[0]
        rows["encoder_self_attention"] = columns["encoder_self_attention"] = _fit(
            generation.source_tokens, size, "<pad>")
        multi_head = True
    return AttentionSet(mode="generated", source=generation.source, output=generation.output,
                        arrays=arrays, row_labels=rows, column_labels=columns, multi_head=multi_head)


def from_teacher_forced(attention: Mapping[str, np.ndarray], *, source: str, reference: str,
                        source_tokens: Sequence[str], reference_tokens: Sequence[str],
                        decoder_only: bool = False) -> AttentionSet:
    """The attention of `decoding.teacher_forced_attention` with its labels.

    Seq2seq: row t predicts label t (the reference tokens, then </s>); self attention columns
    are the decoder inputs [<s>] + reference tokens; cross attention columns and both axes of
    encoder self attention are the source tokens. Decoder-only: the model reads the prompt
    (`source_tokens`) and the reference as one sequence; row t reads input t and predicts
    input t + 1 (the last row's prediction is not shown)."""
    if decoder_only:
        inputs = list(source_tokens) + list(reference_tokens) or ["<s>"]
        labels, decoder_inputs = inputs[1:] + [NEXT_LABEL], inputs
    else:
        labels, decoder_inputs = list(reference_tokens) + ["</s>"], ["<s>"] + list(reference_tokens)
    arrays, rows, columns = {}, {}, {}
    multi_head = False
    for kind, value in attention.items():
        if kind not in KINDS:
            continue
        multi_head = multi_head or np.asarray(value).ndim == 4
        array = arrays[kind] = as_layered(value)
        if kind == "encoder_self_attention":
            rows[kind] = _fit(source_tokens, array.shape[0], "<pad>")
            columns[kind] = _fit(source_tokens, array.shape[3], "<pad>")
        else:
            rows[kind] = _fit(labels, array.shape[0], "")
            column_labels = source_tokens if kind == "cross_attention" else decoder_inputs
            columns[kind] = _fit(column_labels, array.shape[3], "<pad>")
    return AttentionSet(mode="teacher_forced", source=source, output=reference, arrays=arrays,
                        row_labels=rows, column_labels=columns, multi_head=multi_head)


def attention_for_input(trained, source: str, reference: str | None = None,
                        decoding_config=None) -> AttentionSet:
    """Run a loaded model (`artifacts.TrainedModel`) on one input and return its attention:
    on the tokens it generates with `decoding_config` (default greedy) when `reference` is None
    or empty, else teacher-forced on `reference`.

    The caller holds the model's lock (`ui.trained_model`): this function only reads it."""
    from textgen.decoding import DecodingConfig, generate, teacher_forced_attention

    model, source_tokenizer, target_tokenizer = (trained.model, trained.source_tokenizer,
                                                 trained.target_tokenizer)
    model_config = trained.config.model
    decoder_only = bool(model_config.is_decoder_only)
    if reference:
        attention = teacher_forced_attention(model, source_tokenizer, target_tokenizer, source, reference)
        prompt_tokenizer = target_tokenizer if decoder_only else source_tokenizer
        source_ids = prompt_tokenizer.encode(source)
        if not decoder_only:
            source_ids = source_ids[:model_config.max_source_length]
        reference_ids = target_tokenizer.encode(reference)
        return from_teacher_forced(
            attention, source=source, reference=reference, decoder_only=decoder_only,
            source_tokens=prompt_tokenizer.token_labels(source_ids),
            reference_tokens=target_tokenizer.token_labels(reference_ids))
    config = decoding_config or DecodingConfig()
    generation = generate(model, source_tokenizer, target_tokenizer, [source], config,
                          max_source_length=model_config.max_source_length)[0]
    encoder_self = None
    if not decoder_only and model_config.kind == "transformer":
        # The encoder reads only the source: its attention is the same whatever the target.
        forced = teacher_forced_attention(model, source_tokenizer, target_tokenizer, source,
                                          generation.output)
        encoder_self = forced.get("encoder_self_attention")
    return from_generation(generation, encoder_self_attention=encoder_self)


def unique_labels(labels: Sequence[str]) -> list[str]:
    """Axis labels prefixed with their position ("0 a", "1 b", "2 a"): a chart's category axis
    merges equal labels into one cell, and tokens repeat."""
    return [f"{position} {text}" for position, text in enumerate(labels)]


# -- checkpoints -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CheckpointChoice:
    """A kept checkpoint of a run, for the checkpoint slider."""

    name: str  # "ckpt-000000120": what `ui.trained_model(store, run_id, name)` loads
    step: int
    epoch: float
    is_best: bool
    is_last: bool
    metrics: dict[str, float]

    @property
    def title(self) -> str:
        tags = [tag for tag, on in (("best", self.is_best), ("last", self.is_last)) if on]
        suffix = f" ({', '.join(tags)})" if tags else ""
        return f"step {self.step} · epoch {self.epoch:g}{suffix}"


def has_checkpoint(run_dir: Path) -> bool:
    """Whether a run has written a checkpoint (without creating folders for one that has not)."""
    from textgen.training import artifacts

    return (Path(run_dir) / artifacts.CHECKPOINTS_DIR / artifacts.INDEX_FILE).is_file()


def checkpoint_choices(run_dir: Path) -> list[CheckpointChoice]:
    """Every kept checkpoint of a run (best, last and the recent history), oldest first; empty
    when the run has none yet."""
    from textgen.training import artifacts

    if not has_checkpoint(run_dir):
        return []
    checkpoints = artifacts.Checkpoints(Path(run_dir))
    best, last = checkpoints.get("best"), checkpoints.get("last")
    return [CheckpointChoice(name=info.name, step=info.step, epoch=info.epoch,
                             is_best=best is not None and info.name == best.name,
                             is_last=last is not None and info.name == last.name,
                             metrics=dict(info.metrics))
            for info in checkpoints.list()]


def default_checkpoint(choices: Sequence[CheckpointChoice]) -> CheckpointChoice | None:
    """The best checkpoint (else the last one listed): what a view shows before any choice."""
    for choice in choices:
        if choice.is_best:
            return choice
    return choices[-1] if choices else None
