"""`luong`: GRU/LSTM encoder-decoder with multiplicative (global) attention (Luong et al. 2015).

The decoder state at step t, s_t, scores every encoder output h_j:

    score(s_t, h_j) = s_tᵀ h_j            "dot"
                    = s_tᵀ W_a h_j        "general"
    α_tj = softmax_j(score)  over real source tokens (exactly 0 on padding)
    c_t  = Σ_j α_tj h_j
    s̃_t  = tanh(W_c [c_t; s_t])            the attentional vector
    p(y_t | y_<t, x) = softmax(W_s s̃_t + b_s)

Without input feeding (s̃_{t-1} is not fed back into the recurrence), attention sits on top of
the decoder RNN: the teacher-forced `call` runs the whole target through cuDNN-compatible GRU/LSTM
layers, then attends for all positions at once with two batched matmuls. `decode_step` runs one
RNN step and the same attention for one query. W_a h_j is computed once per source, in `encode`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from textgen.models.base import Attention, State
from textgen.models.config import ModelConfig
from textgen.models.layers import Dense, masked_softmax
from textgen.models.recurrent import RecurrentSeq2Seq, recurrent_part


class LuongAttention(keras.layers.Layer):
    """Multiplicative attention and the attentional vector s̃ = tanh(W_c [c; s])."""

    def __init__(self, units: int, score: str = "general", **kwargs) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.score = score
        # s W_a h = s · (W_a h): the memory side is projected once (no bias, as in the paper).
        self.memory_projection = (Dense(units, use_bias=False, name="W_a")
                                  if score == "general" else None)
        self.combine = Dense(units, activation="tanh", use_bias=False, name="W_c")

    def build(self, input_shape=None) -> None:
        if self.memory_projection is not None:
            self.memory_projection.build((None, self.units))
        self.combine.build((None, 2 * self.units))

    def project_memory(self, memory: tf.Tensor) -> tf.Tensor:
        """The keys the decoder state is scored against: h_j (dot) or W_a h_j (general)."""
        return memory if self.memory_projection is None else self.memory_projection(memory)

    def call(self, queries: tf.Tensor, memory: tf.Tensor, memory_keys: tf.Tensor,
             source_mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """queries s (batch, target_len, units) -> s̃ (batch, target_len, units),
        weights α (batch, target_len, source_len)."""
        attention_scores = tf.matmul(queries, memory_keys, transpose_b=True)  # (batch, target_len, source_len)
        attention_weights = masked_softmax(attention_scores, source_mask[:, None, :])
        context = tf.matmul(attention_weights, memory)  # (batch, target_len, units)
        attentional = self.combine(tf.concat([context, queries], axis=-1))  # (batch, target_len, units)
        return attentional, attention_weights


class LuongSeq2Seq(RecurrentSeq2Seq):
    """Encoder-decoder with dot/general attention. Attention: "cross_attention"."""

    def __init__(self, config: ModelConfig, **kwargs) -> None:
        super().__init__(config, decoder_input_dim=config.embedding_dim, features_dim=config.hidden_units,
                         make_attention=lambda: LuongAttention(config.hidden_units, config.luong_score,
                                                               name="attention"), **kwargs)

    def call_with_attention(self, inputs, training=False):
        state = self._encode_with_memory(inputs["source_ids"], training)
        embedded = self.dropout(self.target_embedding(inputs["target_input_ids"]), training=training)
        outputs, _ = self.decoder(embedded, recurrent_part(state), training=training)  # (batch, target_len, units)
        attentional, attention_weights = self.attention(
            outputs, state["memory"], state["memory_keys"], state["source_mask"])
        logits = self._logits(self.dropout(attentional, training=training))
        return logits, {"cross_attention": attention_weights}

    def encode(self, source_ids: tf.Tensor, max_decode_length=None) -> State:
        return self._encode_with_memory(source_ids, training=False)

    def decode_step(self, token_ids: tf.Tensor, state: State) -> tuple[tf.Tensor, State, Attention]:
        output, new_recurrent = self.decoder.step(self.target_embedding(token_ids),
                                                  recurrent_part(state))
        attentional, attention_weights = self.attention(
            output[:, None, :], state["memory"], state["memory_keys"], state["source_mask"])
        logits = self._logits(attentional[:, 0])
        return logits, {**state, **new_recurrent}, {"cross_attention": attention_weights[:, 0]}
