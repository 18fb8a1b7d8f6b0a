"""The one interface every model family implements.

    call(inputs, training=False) -> logits                         teacher forcing, used by `fit`
    call_with_attention(inputs, training=False) -> (logits, attention)   the same, plus attention
    encode(source_ids) -> state
    decode_step(token_ids, state) -> (logits, new_state, attention)

Token ids: <pad>=0, <unk>=1, <s>=2, </s>=3. Padding is 0 everywhere and every mask is built from
the ids (`ids != 0`) and passed explicitly; nothing relies on Keras implicit masking.

Teacher forcing
    inputs = {"source_ids": int32 (batch, source_len), "target_input_ids": int32 (batch, target_len)}
    logits: float32 (batch, target_len, target_vocab_size), no softmax.
    target_input = [<s>] + target, labels = target + [</s>], both padded with 0 at the end.
    Decoder-only models receive source_ids of shape (batch, 0) and ignore it.

Step by step
    token_ids: int32 (batch,), the previous token (<s> at step 0).
    logits: float32 (batch, target_vocab_size).
    `decode_step` is a pure function of its inputs (it never changes `state` or the model), runs
    inside `tf.function` with fixed shapes, and computes exactly what `call` computes at that
    position (tests check 1e-5). State is a dict of tensors, each with the batch on axis 0, so a
    beam search reorders any model's state with
        tf.nest.map_structure(lambda t: tf.gather(t, beam_indices), state)

Attention returned by decode_step (a dict; the keys a family has are always present)

    family                     key                shape
    gru, lstm, lstm-lm         (none: {})
    bahdanau, luong            "cross_attention"  (batch, source_len)
    transformer                "cross_attention"  (batch, num_layers, num_heads, source_len)
                               "self_attention"   (batch, num_layers, num_heads, max_target_length)
    transformer-lm             "self_attention"   (batch, num_layers, num_heads, max_target_length)

    Attention over the source sums to 1 and is exactly 0 on padding. Self attention covers the
    prefix (positions 0..step) and is exactly 0 beyond the current step.

Attention returned by call_with_attention (the same keys, for a whole teacher-forced sequence)

    bahdanau, luong            "cross_attention"          (batch, target_len, source_len)
    transformer                "cross_attention"          (batch, num_layers, num_heads, target_len, source_len)
                               "self_attention"           (batch, num_layers, num_heads, target_len, target_len)
                               "encoder_self_attention"   (batch, num_layers, num_heads, source_len, source_len)
    transformer-lm             "self_attention"           (batch, num_layers, num_heads, target_len, target_len)

State layout per family (all float32 unless noted)

    gru / lstm-lm / lstm   "hidden" (batch, num_layers, hidden_units) [+ "cell" for LSTM cells]
    bahdanau / luong       the above + "memory" (batch, source_len, hidden_units): encoder outputs,
                           "memory_keys" (batch, source_len, hidden_units): their projection for
                           the score, "source_mask" bool (batch, source_len)
    transformer            "cross_keys_<i>", "cross_values_<i>" for each layer i (batch,
                           num_heads, source_len, head_dim): encoder memory projected once;
                           "source_mask" bool (batch, source_len); "self_keys_<i>",
                           "self_values_<i>" (batch, num_heads, cache_length, head_dim): the
                           KV cache, which starts short and grows as decoding goes (at most
                           max_target_length); "step" int32 (batch,): the position the next
                           token is written to
    transformer-lm         "self_keys_<i>", "self_values_<i>", "step" as above
"""

from __future__ import annotations

import contextlib
from typing import Any

import keras
import tensorflow as tf

from textgen.core.config import check_choice
from textgen.models.config import MATMUL_PRECISIONS, ModelConfig
from textgen.models.layers import Dense, OutputProjection

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

State = dict[str, tf.Tensor]
Attention = dict[str, tf.Tensor]


def padding_mask(token_ids: tf.Tensor) -> tf.Tensor:
    """True on real tokens, False on padding; same shape as the ids."""
    return tf.not_equal(token_ids, PAD_ID)


def dummy_inputs(config: ModelConfig, batch_size: int = 1, length: int = 2) -> dict[str, tf.Tensor]:
    """A small batch of non-padding ids that builds every layer of a model."""
    source_len = 0 if config.is_decoder_only else min(length, config.max_source_length)
    target_len = min(length, config.max_target_length)
    return {
        "source_ids": tf.fill([batch_size, source_len], BOS_ID),
        "target_input_ids": tf.fill([batch_size, target_len], BOS_ID),
    }


def in_parts(function: Any, inputs: dict[str, tf.Tensor], parts: int) -> tf.Tensor:
    """function(inputs) -> (batch, ...), computed as `parts` independent slices of the batch and
    concatenated: the same values, but graphs with nothing between them, which TensorFlow runs
    side by side (one inter-op thread each). Every slice has ceil(batch / parts) rows, the last
    ones shifted back to stay inside the batch, so no slice is empty (a recurrent cell refuses an
    empty batch); rows computed twice are dropped from all but their first slice."""
    batch = tf.shape(next(iter(inputs.values())))[0]
    size = (batch + parts - 1) // parts  # rows per slice, >= 1 for a non-empty batch
    outputs = []
    for part in range(parts):
        first = tf.minimum(part * size, tf.maximum(batch - size, 0))  # where this slice starts
        sliced = {name: value[first:first + size] for name, value in inputs.items()}  # (size, ...)
        keep_from = part * size - first  # rows already covered by earlier slices
        keep_to = tf.minimum((part + 1) * size, batch) - first
        outputs.append(function(sliced)[keep_from:keep_to])
    return tf.concat(outputs, axis=0)  # (batch, ...)


class Seq2SeqModel(keras.Model):
    """Base class of every family: stores the config and defines the step interface.

    `batch_parts` (a run-time setting, not saved; a job sets it from its thread layout,
    `training.threads.thread_layout`):
    `call` computes the batch in that many independent slices (`in_parts`), the same logits and
    gradients. With one thread per op, a small model's step is mostly a chain of ops that keeps
    one core busy; independent slices keep every core busy.

    `matmul_precision` (a run-time setting too; `set_matmul_precision`): what `call`'s
    projections multiply in."""

    def __init__(self, config: ModelConfig, **kwargs: Any) -> None:
        super().__init__(name=kwargs.pop("name", config.kind.replace("-", "_")), **kwargs)
        self.config = config
        self.batch_parts = 1
        self.matmul_precision = "float32"

    def set_matmul_precision(self, precision: str) -> None:
        """What the projections read in the teacher-forced pass (`call`: training and validation
        loss): "float32" (the default) or "bfloat16" (see TrainConfig.matmul_precision, which sets
        it for a job; not saved). Decoding (`encode`, `decode_step`) multiplies in float32 either
        way, so a run's probes decode as its checkpoint does once loaded."""
        check_choice("matmul_precision", precision, MATMUL_PRECISIONS)
        self.matmul_precision = precision

    @contextlib.contextmanager
    def _projections_in(self, precision: str):
        """The model's projections multiply at `precision` inside the block (while `call` is
        traced or run eagerly), in float32 again after it."""
        if precision == "float32":
            yield
            return
        projections = [layer for layer in self._flatten_layers(include_self=False, recursive=True)
                       if isinstance(layer, (Dense, OutputProjection))]
        for layer in projections:
            layer.matmul_precision = precision
        try:
            yield
        finally:
            for layer in projections:
                layer.matmul_precision = "float32"

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        with self._projections_in(self.matmul_precision):
            if self.batch_parts > 1:
                return in_parts(lambda part: self.call_with_attention(part, training=training)[0], inputs,
                                self.batch_parts)
            logits, _ = self.call_with_attention(inputs, training=training)
            return logits

    def call_with_attention(self, inputs: dict[str, tf.Tensor],
                            training: bool = False) -> tuple[tf.Tensor, Attention]:
        raise NotImplementedError

    def encode(self, source_ids: tf.Tensor, max_decode_length: int | tf.Tensor | None = None) -> State:
        """The starting state. max_decode_length: the most positions decoding will step through
        (prompt included); a state that grows with the output (the Transformers' key/value
        cache) is never allocated longer, nor longer than max_target_length. Other families
        ignore it."""
        raise NotImplementedError

    def decode_step(self, token_ids: tf.Tensor, state: State) -> tuple[tf.Tensor, State, Attention]:
        raise NotImplementedError
