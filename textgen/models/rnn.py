"""`gru` and `lstm`: encoder-decoder without attention (Sutskever et al. 2014, Cho et al. 2014).

The encoder reads the source; its final state (one per layer) is the context vector C the decoder
starts from. The decoder is a language model over the target conditioned only through C:

    s_0 = C,   s_t = RNN(E y_{t-1}, s_{t-1}),   p(y_t | y_<t, x) = softmax(W s_t + b)
"""

from __future__ import annotations

import tensorflow as tf

from textgen.models.base import Attention, State
from textgen.models.config import ModelConfig
from textgen.models.recurrent import RecurrentSeq2Seq


class RNNSeq2Seq(RecurrentSeq2Seq):
    """Plain encoder-decoder; the cell is the config's kind ("gru" or "lstm"). Attention: {}."""

    def __init__(self, config: ModelConfig, **kwargs) -> None:
        super().__init__(config, decoder_input_dim=config.embedding_dim, features_dim=config.hidden_units,
                         **kwargs)

    def call_with_attention(self, inputs, training=False):
        _, _, context_state = self.encoder(inputs["source_ids"], training=training)
        embedded = self.dropout(self.target_embedding(inputs["target_input_ids"]), training=training)
        outputs, _ = self.decoder(embedded, context_state, training=training)  # (batch, target_len, hidden)
        return self._logits(self.dropout(outputs, training=training)), {}

    def encode(self, source_ids: tf.Tensor, max_decode_length=None) -> State:
        _, _, context_state = self.encoder(source_ids, training=False)
        return context_state

    def decode_step(self, token_ids: tf.Tensor, state: State) -> tuple[tf.Tensor, State, Attention]:
        output, new_state = self.decoder.step(self.target_embedding(token_ids), state)
        return self._logits(output), new_state, {}
