"""Recurrent building blocks: a stack of GRU/LSTM layers, the source encoder built on it, and the
base every recurrent encoder-decoder (`gru`, `lstm`, `bahdanau`, `luong`) is built on.

Whole sequences go through `keras.layers.GRU` / `LSTM` (cuDNN kernels on a GPU; the cells are
cuDNN-compatible: GRU with reset_after, no recurrent dropout). One step goes through the same
layers' cells, so a step computes exactly what the sequence computes at that position.

State is a dict of stacked tensors: "hidden" (batch, num_layers, units), plus "cell" for LSTM.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from textgen.models.base import Seq2SeqModel, State, padding_mask
from textgen.models.config import ModelConfig
from textgen.models.layers import OutputProjection

_RNN_LAYERS = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}


def zero_state(cell: str, batch_size: tf.Tensor, num_layers: int, units: int) -> State:
    zeros = tf.zeros([batch_size, num_layers, units])  # (batch, num_layers, units)
    return {"hidden": zeros, "cell": zeros} if cell == "lstm" else {"hidden": zeros}


def recurrent_part(state: State) -> State:
    """The entries of a state a RecurrentStack reads ("hidden", and "cell" for LSTM)."""
    return {k: state[k] for k in ("hidden", "cell") if k in state}


def _layer_states(cell: str, state: State, layer: int) -> list[tf.Tensor]:
    """The Keras per-layer state list ([h] or [h, c]) of one layer of a stacked state."""
    if cell == "lstm":
        return [state["hidden"][:, layer], state["cell"][:, layer]]
    return [state["hidden"][:, layer]]


def _stack_states(cell: str, per_layer: list[list[tf.Tensor]]) -> State:
    hidden = tf.stack([states[0] for states in per_layer], axis=1)  # (batch, num_layers, units)
    if cell == "lstm":
        return {"hidden": hidden, "cell": tf.stack([states[1] for states in per_layer], axis=1)}
    return {"hidden": hidden}


class RecurrentStack(keras.layers.Layer):
    """num_layers GRU/LSTM layers; layer l reads layer l-1's outputs (dropout in between)."""

    def __init__(self, cell: str, input_dim: int, units: int, num_layers: int,
                 dropout: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cell_kind = cell
        self.input_dim = input_dim
        self.units = units
        self.num_layers = num_layers
        self.rnn_layers = [
            _RNN_LAYERS[cell](units, return_sequences=True, return_state=True, name=f"{cell}_{i}")
            for i in range(num_layers)
        ]
        self.between_layers_dropout = keras.layers.Dropout(dropout)

    def build(self, input_shape=None) -> None:
        for i, layer in enumerate(self.rnn_layers):
            layer.build((None, None, self.input_dim if i == 0 else self.units))

    def call(self, inputs: tf.Tensor, initial_state: State | None = None,
             training: bool = False) -> tuple[tf.Tensor, State]:
        """inputs (batch, len, input_dim) -> outputs (batch, len, units), final state.

        No mask: the decoder is causal, so padding at the end never reaches real positions.
        """
        x, final_states = inputs, []
        for i, layer in enumerate(self.rnn_layers):
            if i > 0:
                x = self.between_layers_dropout(x, training=training)
            start = None if initial_state is None else _layer_states(self.cell_kind, initial_state, i)
            x, *states = layer(x, initial_state=start, training=training)
            final_states.append(states)
        return x, _stack_states(self.cell_kind, final_states)

    def step(self, inputs: tf.Tensor, state: State, training: bool = False) -> tuple[tf.Tensor, State]:
        """One time step: inputs (batch, input_dim) -> output (batch, units), new state."""
        x, new_states = inputs, []
        for i, layer in enumerate(self.rnn_layers):
            if i > 0:
                x = self.between_layers_dropout(x, training=training)
            x, states = layer.cell(x, _layer_states(self.cell_kind, state, i), training=training)
            new_states.append(states)
        return x, _stack_states(self.cell_kind, new_states)


class RecurrentEncoder(keras.layers.Layer):
    """Source embedding + a stack of GRU/LSTM layers, optionally bidirectional.

    The final state of each layer is the context vector C its decoder layer starts from. A
    bidirectional layer sums its forward and backward outputs and final states
    (h_j = h_j→ + h_j←), so every size stays `units` and the decoder needs no bridge layer.
    Padding is masked explicitly (from the ids): the forward pass stops at the last real token and
    the backward pass starts there, so appended padding changes nothing.
    """

    def __init__(self, cell: str, vocab_size: int, embedding_dim: int, units: int,
                 num_layers: int, bidirectional: bool = False, dropout: float = 0.0,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.cell_kind = cell
        self.embedding_dim = embedding_dim
        self.units = units
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding")
        self.rnn_layers = []
        for i in range(num_layers):
            layer = _RNN_LAYERS[cell](units, return_sequences=True, return_state=True,
                                      name=f"{cell}_{i}")
            if bidirectional:
                layer = keras.layers.Bidirectional(layer, merge_mode="sum", name=f"bi_{cell}_{i}")
            self.rnn_layers.append(layer)
        self.bidirectional = bidirectional
        self.dropout = keras.layers.Dropout(dropout)

    def build(self, input_shape=None) -> None:
        self.embedding.build((None, None))
        for i, layer in enumerate(self.rnn_layers):
            layer.build((None, None, self.embedding_dim if i == 0 else self.units))

    def call(self, source_ids: tf.Tensor, training: bool = False) -> tuple[tf.Tensor, tf.Tensor, State]:
        """source_ids (batch, source_len) -> outputs (batch, source_len, units), source_mask
        (batch, source_len) bool, final state {"hidden": (batch, num_layers, units)[, "cell"]}."""
        source_mask = padding_mask(source_ids)
        x = self.dropout(self.embedding(source_ids), training=training)
        final_states = []
        for i, layer in enumerate(self.rnn_layers):
            if i > 0:
                x = self.dropout(x, training=training)
            x, *states = layer(x, mask=source_mask, training=training)
            if self.bidirectional:
                half = len(states) // 2  # [forward states..., backward states...]
                states = [f + b for f, b in zip(states[:half], states[half:])]
            final_states.append(states)
        return x, source_mask, _stack_states(self.cell_kind, final_states)


class RecurrentSeq2Seq(Seq2SeqModel):
    """What the recurrent encoder-decoders share: the source encoder, the target embedding, the
    decoder stack, dropout and the output projection, under the same attribute names in every
    family (a checkpoint's weights are stored by these names), and the logits.

    decoder_input_dim: what the decoder reads each step (the embedding, plus the attention context
    with input feeding); features_dim: what the output projection reads. make_attention: the
    family's attention layer, made before the decoder when the attention reads the previous
    decoder state (Bahdanau), after it otherwise (Luong): layers are made and built in this order,
    so a seed gives the same initial weights as before the families shared this base."""

    def __init__(self, config: ModelConfig, *, decoder_input_dim: int, features_dim: int,
                 make_attention=None, attention_before_decoder: bool = False, **kwargs) -> None:
        super().__init__(config, **kwargs)
        c = config
        self.encoder = RecurrentEncoder(c.cell, c.source_vocab_size, c.embedding_dim, c.hidden_units,
                                        c.num_layers, c.bidirectional, c.dropout, name="encoder")
        self.target_embedding = keras.layers.Embedding(c.target_vocab_size, c.embedding_dim,
                                                       name="target_embedding")
        self._attention_first = attention_before_decoder
        if make_attention is not None and attention_before_decoder:
            self.attention = make_attention()
        self.decoder = RecurrentStack(c.cell, decoder_input_dim, c.hidden_units, c.num_layers, c.dropout,
                                      name="decoder")
        if make_attention is not None and not attention_before_decoder:
            self.attention = make_attention()
        self.dropout = keras.layers.Dropout(c.dropout)
        self.output_projection = OutputProjection(
            c.target_vocab_size, features_dim, c.embedding_dim if c.tie_embeddings else None,
            name="output_projection")

    def build(self, input_shape=None) -> None:
        attention = getattr(self, "attention", None)
        self.encoder.build()
        self.target_embedding.build((None, None))
        if attention is not None and self._attention_first:
            attention.build()
        self.decoder.build()
        if attention is not None and not self._attention_first:
            attention.build()
        self.output_projection.build()

    def _logits(self, features: tf.Tensor) -> tf.Tensor:
        tied = self.target_embedding.embeddings if self.config.tie_embeddings else None
        return self.output_projection(features, tied)

    def _encode_with_memory(self, source_ids: tf.Tensor, training: bool) -> State:
        """The encoder's final states, plus what attention reads: the encoder outputs (memory),
        their projection by the attention (memory_keys) and the source padding mask."""
        memory, source_mask, context_state = self.encoder(source_ids, training=training)
        return {**context_state, "memory": memory,
                "memory_keys": self.attention.project_memory(memory), "source_mask": source_mask}
