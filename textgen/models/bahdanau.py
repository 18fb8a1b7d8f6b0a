"""`bahdanau`: GRU/LSTM encoder-decoder with additive attention (Bahdanau et al. 2015).

At each step the previous decoder state s_{t-1} (top layer) scores every encoder output h_j:

    e_tj = vᵀ tanh(W s_{t-1} + U h_j + b)
    α_tj = softmax_j(e_tj)  over real source tokens (exactly 0 on padding)
    c_t  = Σ_j α_tj h_j
    s_t  = RNN([E y_{t-1}; c_t], s_{t-1})        the context is fed into the recurrence
    p(y_t | y_<t, x) = softmax(W_o [s_t; c_t] + b_o)

Because c_t is an input of the recurrence, the teacher-forced `call` cannot run the decoder as
one cuDNN sequence: it runs `_step` (the exact function `decode_step` runs) over time with
`tf.scan` (a tf.while_loop inside `fit`). The U h_j term is computed once per source, in `encode`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from textgen.models.base import Attention, State
from textgen.models.config import ModelConfig
from textgen.models.layers import Dense, masked_softmax
from textgen.models.recurrent import RecurrentSeq2Seq, recurrent_part


class BahdanauAttention(keras.layers.Layer):
    """Additive score e_j = vᵀ tanh(W s + U h_j + b), weights and context over the memory."""

    def __init__(self, query_dim: int, memory_dim: int, attention_dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.query_dim = query_dim
        self.memory_dim = memory_dim
        self.attention_dim = attention_dim
        self.query_projection = Dense(attention_dim, name="W")  # W s + b
        self.memory_projection = Dense(attention_dim, use_bias=False, name="U")
        self.score_vector = Dense(1, use_bias=False, name="v")

    def build(self, input_shape=None) -> None:
        self.query_projection.build((None, self.query_dim))
        self.memory_projection.build((None, self.memory_dim))
        self.score_vector.build((None, self.attention_dim))

    def project_memory(self, memory: tf.Tensor) -> tf.Tensor:
        """U h_j for every source position: (batch, source_len, attention_dim)."""
        return self.memory_projection(memory)

    def call(self, query: tf.Tensor, memory: tf.Tensor, memory_keys: tf.Tensor,
             source_mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """query s (batch, query_dim) -> context c (batch, memory_dim), weights α (batch, source_len)."""
        projected_query = self.query_projection(query)[:, None, :]  # (batch, 1, attention_dim)
        hidden = tf.tanh(projected_query + memory_keys)  # (batch, source_len, attention_dim)
        attention_scores = tf.squeeze(self.score_vector(hidden), axis=-1)  # (batch, source_len)
        attention_weights = masked_softmax(attention_scores, source_mask)
        context = tf.einsum("bs,bsh->bh", attention_weights, memory)  # (batch, memory_dim)
        return context, attention_weights


class BahdanauSeq2Seq(RecurrentSeq2Seq):
    """Encoder-decoder with additive attention and input feeding. Attention: "cross_attention"."""

    def __init__(self, config: ModelConfig, **kwargs) -> None:
        units = config.hidden_units
        super().__init__(config, decoder_input_dim=config.embedding_dim + units, features_dim=2 * units,
                         make_attention=lambda: BahdanauAttention(units, units, units, name="attention"),
                         attention_before_decoder=True, **kwargs)

    def _step(self, embedded: tf.Tensor, state: State,
              training: bool = False) -> tuple[tf.Tensor, State, tf.Tensor]:
        """embedded E y_{t-1} (batch, embedding_dim) -> features [s_t; c_t] (batch, 2 units),
        new state, α_t (batch, source_len)."""
        previous_top = state["hidden"][:, -1]  # s_{t-1}: (batch, units)
        context, attention_weights = self.attention(
            previous_top, state["memory"], state["memory_keys"], state["source_mask"])
        output, new_recurrent = self.decoder.step(
            tf.concat([embedded, context], axis=-1), recurrent_part(state), training=training)
        features = tf.concat([output, context], axis=-1)  # (batch, 2 units)
        return features, {**state, **new_recurrent}, attention_weights

    def call_with_attention(self, inputs, training=False):
        state = self._encode_with_memory(inputs["source_ids"], training)
        embedded = self.dropout(self.target_embedding(inputs["target_input_ids"]), training=training)
        batch_size = tf.shape(embedded)[0]
        source_len = tf.shape(state["source_mask"])[1]

        # Only the recurrent state is carried (and stacked by tf.scan); the memory is closed over.
        source_parts = {k: state[k] for k in ("memory", "memory_keys", "source_mask")}

        def scan_step(carry, embedded_t):
            recurrent_state, _, _ = carry
            features_t, new_state, weights_t = self._step(
                embedded_t, {**recurrent_state, **source_parts}, training=training)
            return recurrent_part(new_state), features_t, weights_t

        initial = (recurrent_part(state), tf.zeros([batch_size, 2 * self.config.hidden_units]),
                   tf.zeros([batch_size, source_len]))
        # tf.scan runs over axis 0, so time goes first.
        _, features, attention_weights = tf.scan(
            scan_step, tf.transpose(embedded, [1, 0, 2]), initializer=initial)  # (target_len, batch, ...)
        features = tf.transpose(features, [1, 0, 2])  # (batch, target_len, 2 units)
        attention_weights = tf.transpose(attention_weights, [1, 0, 2])  # (batch, target_len, source_len)
        logits = self._logits(self.dropout(features, training=training))
        return logits, {"cross_attention": attention_weights}

    def encode(self, source_ids: tf.Tensor, max_decode_length=None) -> State:
        return self._encode_with_memory(source_ids, training=False)

    def decode_step(self, token_ids: tf.Tensor, state: State) -> tuple[tf.Tensor, State, Attention]:
        features, new_state, attention_weights = self._step(self.target_embedding(token_ids), state)
        return self._logits(features), new_state, {"cross_attention": attention_weights}
