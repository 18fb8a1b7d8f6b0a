"""The model configuration: one frozen dataclass for every family, saved as `config.json`.

A trained model is this config + its weights; loading rebuilds the architecture from the config
with our own code. This module imports no TensorFlow, so forms and the CLI can validate a config,
show its presets and (with `textgen.models.size`) its parameter count without loading Keras.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from textgen.core.config import ConfigMixin, check_choice, check_range
from textgen.core.errors import ConfigError

# Seq2seq families, then the decoder-only (language model) families.
MODEL_KINDS = ("gru", "lstm", "bahdanau", "luong", "transformer", "transformer-lm", "lstm-lm")
DECODER_ONLY_KINDS = ("transformer-lm", "lstm-lm")
RECURRENT_KINDS = ("gru", "lstm", "bahdanau", "luong", "lstm-lm")
TRANSFORMER_KINDS = ("transformer", "transformer-lm")
RNN_CELLS = ("gru", "lstm")
LUONG_SCORES = ("dot", "general")
POSITIONAL_ENCODINGS = ("sinusoidal", "learned")

# <pad>, <unk>, <s>, </s> take ids 0-3, so a vocabulary has at least these four tokens.
MIN_VOCAB_SIZE = 4

# The fields each family reads; every other field is ignored by that family (forms can hide them).
_COMMON_FIELDS = ("kind", "target_vocab_size", "num_layers", "dropout", "tie_embeddings")
_ENCODER_RNN_FIELDS = ("source_vocab_size", "embedding_dim", "hidden_units", "bidirectional",
                       "max_source_length", "max_target_length")
FAMILY_FIELDS: dict[str, tuple[str, ...]] = {
    "gru": _COMMON_FIELDS + _ENCODER_RNN_FIELDS,
    "lstm": _COMMON_FIELDS + _ENCODER_RNN_FIELDS,
    "bahdanau": _COMMON_FIELDS + _ENCODER_RNN_FIELDS + ("rnn_cell",),
    "luong": _COMMON_FIELDS + _ENCODER_RNN_FIELDS + ("rnn_cell", "luong_score"),
    "transformer": _COMMON_FIELDS + (
        "source_vocab_size", "num_heads", "model_dim", "feed_forward_dim", "activation_dropout", "norm_first",
        "positional", "max_source_length", "max_target_length"),
    "transformer-lm": _COMMON_FIELDS + (
        "num_heads", "model_dim", "feed_forward_dim", "activation_dropout", "norm_first", "positional",
        "max_target_length"),
    "lstm-lm": _COMMON_FIELDS + ("embedding_dim", "hidden_units", "max_target_length"),
}


@dataclasses.dataclass(frozen=True)
class ModelConfig(ConfigMixin):
    """Architecture of one model. `FAMILY_FIELDS[kind]` lists the fields a family reads."""

    # Which family to build: one of MODEL_KINDS.
    kind: str = "transformer"
    # Source tokenizer's vocabulary, special tokens included (ignored by decoder-only kinds).
    source_vocab_size: int = 8000
    # Target tokenizer's vocabulary, special tokens included; the size of the logits.
    target_vocab_size: int = 8000
    # RNN families: size of the token embeddings (Transformers use model_dim instead).
    embedding_dim: int = 256
    # RNN families: units of every recurrent layer (encoder and decoder) and of the attention.
    hidden_units: int = 512
    # Layers in the encoder and in the decoder (each, not in total).
    num_layers: int = 2
    # RNN encoders: read the source both ways; the two directions are summed, so sizes stay
    # hidden_units and the decoder starts from forward + backward final states.
    bidirectional: bool = False
    # bahdanau / luong: the recurrent cell ("gru" / "lstm" kinds name their cell themselves).
    rnn_cell: str = "gru"
    # luong: "dot" (s . h) or "general" (s W h) attention score.
    luong_score: str = "general"
    # Dropout rate on embeddings, between layers and (Transformers) on attention weights and on
    # each sublayer's output before the residual sum.
    dropout: float = 0.1
    # Transformers: attention heads; model_dim must be a multiple of it.
    num_heads: int = 4
    # Transformers: width of embeddings, attention and residual stream.
    model_dim: int = 256
    # Transformers: hidden width of the position-wise feed-forward network (4 x model_dim is usual).
    feed_forward_dim: int = 1024
    # Transformers: dropout on the feed-forward network's hidden (ReLU) activations. 0, as in the
    # original Transformer, fairseq (`activation_dropout`) and nanoGPT: `dropout` already drops
    # the network's output. It is the largest dropout tensor (feed_forward_dim wide): at 0.1 it
    # made a training step ~7% slower on a CPU (bench/RESULTS.md).
    activation_dropout: float = 0.0
    # Transformers: pre-norm (LayerNorm before each sublayer; trains stably without warm-up)
    # rather than the original post-norm.
    norm_first: bool = True
    # Transformers: "sinusoidal" (fixed) or "learned" position embeddings.
    positional: str = "sinusoidal"
    # Longest source in tokens (learned positions and the source side of attention use it).
    max_source_length: int = 128
    # Longest decoder input in tokens, <s> included: the KV cache size of Transformers and the
    # context length of language models. Decoding runs at most this many steps.
    max_target_length: int = 128
    # Share the target embedding matrix with the output projection (Press & Wolf 2017).
    tie_embeddings: bool = False

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, MODEL_KINDS)
        # Decoder-only models have no source; any value (0 included) is accepted and ignored.
        low_source = 0 if self.kind in DECODER_ONLY_KINDS else MIN_VOCAB_SIZE
        check_range("source_vocab_size", self.source_vocab_size, low_source, 2_000_000)
        check_range("target_vocab_size", self.target_vocab_size, MIN_VOCAB_SIZE, 2_000_000)
        check_range("embedding_dim", self.embedding_dim, 1, 8192)
        check_range("hidden_units", self.hidden_units, 1, 8192)
        check_range("num_layers", self.num_layers, 1, 48)
        check_choice("rnn_cell", self.rnn_cell, RNN_CELLS)
        check_choice("luong_score", self.luong_score, LUONG_SCORES)
        check_range("dropout", self.dropout, 0.0, 0.9)
        check_range("activation_dropout", self.activation_dropout, 0.0, 0.9)
        check_range("num_heads", self.num_heads, 1, 128)
        check_range("model_dim", self.model_dim, 1, 16384)
        check_range("feed_forward_dim", self.feed_forward_dim, 1, 65536)
        check_choice("positional", self.positional, POSITIONAL_ENCODINGS)
        check_range("max_source_length", self.max_source_length, 1, 100_000)
        check_range("max_target_length", self.max_target_length, 2, 100_000)
        for name in ("embedding_dim", "hidden_units", "num_layers", "num_heads", "model_dim",
                     "feed_forward_dim", "max_source_length", "max_target_length",
                     "source_vocab_size", "target_vocab_size"):
            if not isinstance(getattr(self, name), int):
                raise ConfigError(f"{name} must be an integer, got {getattr(self, name)!r}.")
        for name in ("bidirectional", "norm_first", "tie_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}.")
        if self.kind in TRANSFORMER_KINDS and self.model_dim % self.num_heads:
            raise ConfigError(
                f"model_dim must be a multiple of num_heads, got model_dim={self.model_dim} "
                f"and num_heads={self.num_heads}."
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """As ConfigMixin.from_dict. A saved config without `activation_dropout` predates the
        field, when the feed-forward hidden activations were dropped at `dropout`: it keeps that,
        so a resumed run trains as it started."""
        if isinstance(data, dict) and "activation_dropout" not in data:
            data = {**data, "activation_dropout": data.get("dropout", cls.dropout)}
        return super().from_dict(data)

    @property
    def is_decoder_only(self) -> bool:
        return self.kind in DECODER_ONLY_KINDS

    @property
    def cell(self) -> str:
        """The recurrent cell this config's RNN family uses."""
        return self.kind if self.kind in RNN_CELLS else ("lstm" if self.kind == "lstm-lm"
                                                           else self.rnn_cell)


# Sizes shared by the recurrent families and by the Transformer families, per preset. "tiny" trains
# in seconds on a CPU (demos, tests); "small" suits a corpus of a few thousand pairs on a laptop;
# "base" is the usual paper-sized starting point (GPU recommended).
_RECURRENT_PRESETS = {
    "tiny": dict(embedding_dim=32, hidden_units=64, num_layers=1, dropout=0.0),
    "small": dict(embedding_dim=128, hidden_units=256, num_layers=2, dropout=0.1),
    "base": dict(embedding_dim=256, hidden_units=512, num_layers=2, dropout=0.2),
}
_TRANSFORMER_PRESETS = {
    "tiny": dict(model_dim=64, num_heads=2, feed_forward_dim=128, num_layers=1, dropout=0.0),
    "small": dict(model_dim=128, num_heads=4, feed_forward_dim=512, num_layers=3, dropout=0.1),
    "base": dict(model_dim=512, num_heads=8, feed_forward_dim=2048, num_layers=6, dropout=0.1),
}
PRESET_NAMES = ("tiny", "small", "base")
# PRESETS[kind][preset]: the fields a preset sets for that family (the rest keep their defaults).
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    kind: dict(_TRANSFORMER_PRESETS if kind in TRANSFORMER_KINDS else _RECURRENT_PRESETS)
    for kind in MODEL_KINDS
}


def preset_config(kind: str, preset: str, source_vocab_size: int, target_vocab_size: int,
                  **overrides: Any) -> ModelConfig:
    """A validated config of family `kind` at size `preset`, with some fields overridden."""
    check_choice("kind", kind, MODEL_KINDS)
    check_choice("preset", preset, PRESET_NAMES)
    values = dict(PRESETS[kind][preset], kind=kind, source_vocab_size=source_vocab_size,
                  target_vocab_size=target_vocab_size)
    base = ModelConfig(**values)
    return base.with_overrides(overrides) if overrides else base


# What the matrix products of a training step read: float32, or float32 rounded to bfloat16
# (float32 accumulation and float32 everything else; see TrainConfig.matmul_precision).
MATMUL_PRECISIONS = ("float32", "bfloat16")
