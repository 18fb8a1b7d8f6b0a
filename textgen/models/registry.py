"""From a kind name to the class that builds it, and `build_model`, the one way to make a model."""

from __future__ import annotations

from textgen.models.bahdanau import BahdanauSeq2Seq
from textgen.models.base import Seq2SeqModel, dummy_inputs
from textgen.models.config import MODEL_KINDS, ModelConfig
from textgen.models.language_models import LSTMLM, TransformerLM
from textgen.models.luong import LuongSeq2Seq
from textgen.models.rnn import RNNSeq2Seq
from textgen.models.transformer import TransformerSeq2Seq

MODEL_CLASSES: dict[str, type[Seq2SeqModel]] = {
    "gru": RNNSeq2Seq,
    "lstm": RNNSeq2Seq,
    "bahdanau": BahdanauSeq2Seq,
    "luong": LuongSeq2Seq,
    "transformer": TransformerSeq2Seq,
    "transformer-lm": TransformerLM,
    "lstm-lm": LSTMLM,
}
assert tuple(MODEL_CLASSES) == MODEL_KINDS


def build_model(config: ModelConfig) -> Seq2SeqModel:
    """A new model with freshly initialised weights, every weight created.

    Weights are created eagerly here, never inside a traced loop (Bahdanau's tf.scan); one call on
    a 1 x 2 batch then checks the wiring.
    """
    model = MODEL_CLASSES[config.kind](config)
    model.build()
    model(dummy_inputs(config))
    return model
