"""The model configuration: one frozen dataclass for every family, saved as `config.json`.

A trained model is this config + its weights; loading rebuilds the architecture from the config
with our own code. This module imports no TensorFlow, so forms and the CLI can validate a config,
show its presets and (with `textgen.models.size`) its parameter count without loading Keras.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from textgen.core.config import ConfigMixin, check_choice, check_range, setting
from textgen.core.errors import ConfigError

# Seq2seq families, then the decoder-only (language model) families.
MODEL_KINDS = ("gru", "lstm", "bahdanau", "luong", "transformer", "transformer-lm", "lstm-lm")
DECODER_ONLY_KINDS = ("transformer-lm", "lstm-lm")
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

    kind: str = setting("transformer", "Which family to build.", choices=MODEL_KINDS)
    source_vocab_size: int = setting(
        8000, low=0, high=2_000_000,
        help=("Source tokenizer's vocabulary, special tokens included (ignored by decoder-only "
              "kinds)."))
    target_vocab_size: int = setting(
        8000, low=MIN_VOCAB_SIZE, high=2_000_000,
        help="Target tokenizer's vocabulary, special tokens included; the size of the logits.")
    embedding_dim: int = setting(
        256, low=1, high=8192,
        help="RNN families: size of the token embeddings (Transformers use model_dim instead).")
    hidden_units: int = setting(
        512, low=1, high=8192,
        help=("RNN families: units of every recurrent layer (encoder and decoder) and of the "
              "attention."))
    num_layers: int = setting(2, "Layers in the encoder and in the decoder (each, not in total).", low=1, high=48)
    bidirectional: bool = setting(
        False,
        help=("RNN encoders: read the source both ways; the two directions are summed, so sizes stay "
              "hidden_units and the decoder starts from forward + backward final states."))
    rnn_cell: str = setting(
        "gru", choices=RNN_CELLS,
        help=("bahdanau / luong: the recurrent cell (\"gru\" / \"lstm\" kinds name their cell "
              "themselves)."))
    luong_score: str = setting(
        "general", choices=LUONG_SCORES,
        help="luong: \"dot\" (s . h) or \"general\" (s W h) attention score.")
    dropout: float = setting(
        0.1, low=0.0, high=0.9,
        help=("Dropout rate on embeddings, between layers and (Transformers) on attention weights and "
              "on each sublayer's output before the residual sum."))
    num_heads: int = setting(
        4, low=1, high=128,
        help="Transformers: attention heads; model_dim must be a multiple of it.")
    model_dim: int = setting(
        256, low=1, high=16384,
        help="Transformers: width of embeddings, attention and residual stream.")
    feed_forward_dim: int = setting(
        1024, low=1, high=65536,
        help=("Transformers: hidden width of the position-wise feed-forward network (4 x model_dim is "
              "usual)."))
    activation_dropout: float = setting(
        0.0, low=0.0, high=0.9,
        help=("Transformers: dropout on the feed-forward network's hidden (ReLU) activations. 0, as "
              "in the original Transformer, fairseq (`activation_dropout`) and nanoGPT: `dropout` "
              "already drops the network's output. It is the largest dropout tensor (feed_forward_dim "
              "wide), so it costs the most time of any dropout."))
    norm_first: bool = setting(
        True,
        help=("Transformers: pre-norm (LayerNorm before each sublayer; trains stably without warm-up) "
              "rather than the original post-norm."))
    positional: str = setting(
        "sinusoidal", choices=POSITIONAL_ENCODINGS,
        help="Transformers: \"sinusoidal\" (fixed) or \"learned\" position embeddings.")
    max_source_length: int = setting(
        128, low=1, high=100_000,
        help="Longest source in tokens (learned positions and the source side of attention use it).")
    max_target_length: int = setting(
        128, low=2, high=100_000,
        help=("Longest decoder input in tokens, <s> included: the KV cache size of Transformers and "
              "the context length of language models. Decoding runs at most this many steps."))
    tie_embeddings: bool = setting(
        False,
        help="Share the target embedding matrix with the output projection (Press & Wolf 2017).")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind not in DECODER_ONLY_KINDS:  # decoder-only models accept any source size (0 included)
            check_range("source_vocab_size", self.source_vocab_size, MIN_VOCAB_SIZE, 2_000_000)
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
