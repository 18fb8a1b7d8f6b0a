"""Decoder-only models for plain-text corpora: `transformer-lm` and `lstm-lm`.

They continue a text: p(y_t | y_<t). They share the seq2seq interface with an empty source:
`source_ids` has shape (batch, 0) and is ignored except for its batch size, `encode` returns the
empty starting state, and a prompt is fed through `decode_step` one token at a time (or through
`call` as a teacher-forced prefix). `max_target_length` is the context length.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from textgen.models.base import Attention, Seq2SeqModel, State
from textgen.models.config import ModelConfig
from textgen.models.layers import OutputProjection
from textgen.models.recurrent import RecurrentStack, zero_state
from textgen.models.transformer import TransformerDecoder


class TransformerLM(Seq2SeqModel):
    """GPT-style decoder: causal self attention only, cached steps. Attention: "self_attention"."""

    def __init__(self, config: ModelConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.decoder = TransformerDecoder(config, cross_attention=False, name="decoder")

    def build(self, input_shape=None) -> None:
        self.decoder.build()

    def call_with_attention(self, inputs, training=False):
        return self.decoder(inputs["target_input_ids"], training=training)

    def encode(self, source_ids: tf.Tensor, max_decode_length=None) -> State:
        return self.decoder.initial_cache(tf.shape(source_ids)[0], max_decode_length)

    def decode_step(self, token_ids: tf.Tensor, state: State) -> tuple[tf.Tensor, State, Attention]:
        return self.decoder.step(token_ids, state)


class LSTMLM(Seq2SeqModel):
    """LSTM language model: h_t = LSTM(E y_{t-1}, h_{t-1}) from h_0 = 0, p(y_t) = softmax(W h_t + b).
    Attention: {}."""

    def __init__(self, config: ModelConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        c = config
        self.embedding = keras.layers.Embedding(c.target_vocab_size, c.embedding_dim,
                                                name="embedding")
        self.decoder = RecurrentStack("lstm", c.embedding_dim, c.hidden_units, c.num_layers,
                                      c.dropout, name="decoder")
        self.dropout = keras.layers.Dropout(c.dropout)
        self.output_projection = OutputProjection(
            c.target_vocab_size, c.hidden_units, c.embedding_dim if c.tie_embeddings else None,
            name="output_projection")

    def build(self, input_shape=None) -> None:
        self.embedding.build((None, None))
        self.decoder.build()
        self.output_projection.build()

    def _logits(self, features: tf.Tensor) -> tf.Tensor:
        tied = self.embedding.embeddings if self.config.tie_embeddings else None
        return self.output_projection(features, tied)

    def call_with_attention(self, inputs, training=False):
        target_ids = inputs["target_input_ids"]
        embedded = self.dropout(self.embedding(target_ids), training=training)
        start = self.encode(target_ids)
        outputs, _ = self.decoder(embedded, start, training=training)  # (batch, target_len, hidden)
        return self._logits(self.dropout(outputs, training=training)), {}

    def encode(self, source_ids: tf.Tensor, max_decode_length=None) -> State:
        c = self.config
        return zero_state("lstm", tf.shape(source_ids)[0], c.num_layers, c.hidden_units)

    def decode_step(self, token_ids: tf.Tensor, state: State) -> tuple[tf.Tensor, State, Attention]:
        output, new_state = self.decoder.step(self.embedding(token_ids), state)
        return self._logits(output), new_state, {}
