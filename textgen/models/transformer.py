"""`transformer`: the encoder-decoder Transformer (Vaswani et al. 2017), pre- or post-norm.

    x_0 = E[y] √model_dim + P[position]                      (P sinusoidal or learned)
    encoder layer:  x = x + SelfAttention(x);  x = x + FFN(x)
    decoder layer:  x = x + CausalSelfAttention(x);  x = x + CrossAttention(x, memory);  x = x + FFN(x)
    each "x = x + F(x)" is, with dropout D (rate `dropout`) and layer normalisation LN,
        pre-norm (norm_first):  x + D(F(LN(x)))      and a final LN after the last layer
        post-norm (original):   LN(x + D(F(x)))
    FFN(x) = max(0, x W_1 + b_1) W_2 + b_2, its hidden activations dropped at `activation_dropout`
    (0 by default, as in the paper); attention weights are dropped at `dropout`.

Masks come from the ids: source padding is masked in encoder self attention and in cross
attention; decoder self attention is causal (padding at the end of the target can only be seen
by later padding, so real positions never see it).

Key/value cache. `encode` projects the encoder memory into every decoder layer's cross-attention
keys and values once, and allocates the self-attention cache: "self_keys_<i>" /
"self_values_<i>" per layer i (batch, num_heads, cache_length, head_dim) and a "step" (batch,)
counter. `decode_step` projects only the new token, writes its key and value at `step`
(`tensor_scatter_nd_update` of those slots only) and attends over positions 0..step. A step
therefore costs the new token's projections and FFN plus one pass over the cache, never a
recomputation of the prefix. The cache is a fixed-shape tensor, so each step's write copies it
and a beam search's reorder copies it again: the encoder-decoder's cache starts at
INITIAL_CACHE_LENGTH slots and doubles when a step reaches its end (at most max_target_length),
so those copies and the attention pass cover about what the outputs use, not the length cap.
The language model's holds encode's max_decode_length (its prompt is read in first; see
decoding/decoder.py `prefill`). Each step's self-attention weights are padded to
max_target_length, so every step reports the same shape.
"""

from __future__ import annotations

import math
from typing import Callable

import keras
import tensorflow as tf

from textgen.models.base import Attention, Seq2SeqModel, State, padding_mask
from textgen.models.config import ModelConfig
from textgen.models.layers import FeedForward, LayerNorm, MultiHeadAttention, OutputProjection, PositionEmbedding

_LAYER_NORM_EPSILON = 1e-5
# Slots an encoder-decoder search's self-attention cache starts with; it doubles when a step
# needs more (at most max_target_length).
INITIAL_CACHE_LENGTH = 16


def _layer_norm(name: str) -> LayerNorm:
    return LayerNorm(epsilon=_LAYER_NORM_EPSILON, name=name)


class _ResidualLayer(keras.layers.Layer):
    """Shared by encoder and decoder layers: the pre-/post-norm residual connection."""

    def __init__(self, model_dim: int, dropout: float, norm_first: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model_dim = model_dim
        self.norm_first = norm_first
        self.residual_dropout = keras.layers.Dropout(dropout)

    def residual(self, x: tf.Tensor, norm: keras.layers.Layer, sublayer: Callable,
                 training: bool) -> tuple[tf.Tensor, object]:
        """sublayer(y) -> (output, extras). Pre-norm: x + D(F(LN(x))); post-norm: LN(x + D(F(x)))."""
        if self.norm_first:
            output, extras = sublayer(norm(x))
            return x + self.residual_dropout(output, training=training), extras
        output, extras = sublayer(x)
        return norm(x + self.residual_dropout(output, training=training)), extras


class TransformerEncoderLayer(_ResidualLayer):
    """Self attention over the source, then a position-wise feed-forward network."""

    def __init__(self, model_dim: int, num_heads: int, feed_forward_dim: int, dropout: float,
                 norm_first: bool, activation_dropout: float = 0.0, **kwargs) -> None:
        super().__init__(model_dim, dropout, norm_first, **kwargs)
        self.self_attention = MultiHeadAttention(model_dim, num_heads, dropout, name="self_attention")
        self.self_attention_norm = _layer_norm("self_attention_norm")
        self.feed_forward = FeedForward(model_dim, feed_forward_dim, activation_dropout, name="feed_forward")
        self.feed_forward_norm = _layer_norm("feed_forward_norm")

    def build(self, input_shape=None) -> None:
        for layer in (self.self_attention, self.feed_forward):
            layer.build()
        for norm in (self.self_attention_norm, self.feed_forward_norm):
            norm.build((None, self.model_dim))

    def call(self, x: tf.Tensor, attention_mask: tf.Tensor,
             training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        """x (batch, source_len, model_dim) -> same shape, weights (batch, heads, source_len, source_len)."""
        x, weights = self.residual(
            x, self.self_attention_norm,
            lambda y: self.self_attention(y, y, attention_mask, training=training), training)
        x, _ = self.residual(x, self.feed_forward_norm,
                             lambda y: (self.feed_forward(y, training=training), None), training)
        return x, weights


class TransformerDecoderLayer(_ResidualLayer):
    """Causal self attention, cross attention over the memory (seq2seq only), feed-forward."""

    def __init__(self, model_dim: int, num_heads: int, feed_forward_dim: int, dropout: float,
                 norm_first: bool, cross_attention: bool = True, activation_dropout: float = 0.0,
                 **kwargs) -> None:
        super().__init__(model_dim, dropout, norm_first, **kwargs)
        self.self_attention = MultiHeadAttention(model_dim, num_heads, dropout, name="self_attention")
        self.self_attention_norm = _layer_norm("self_attention_norm")
        self.has_cross_attention = cross_attention
        if cross_attention:
            self.cross_attention = MultiHeadAttention(model_dim, num_heads, dropout,
                                                      name="cross_attention")
            self.cross_attention_norm = _layer_norm("cross_attention_norm")
        self.feed_forward = FeedForward(model_dim, feed_forward_dim, activation_dropout, name="feed_forward")
        self.feed_forward_norm = _layer_norm("feed_forward_norm")

    def build(self, input_shape=None) -> None:
        self.self_attention.build()
        self.feed_forward.build()
        norms = [self.self_attention_norm, self.feed_forward_norm]
        if self.has_cross_attention:
            self.cross_attention.build()
            norms.append(self.cross_attention_norm)
        for norm in norms:
            norm.build((None, self.model_dim))

    def _forward(self, x, self_attend: Callable, cross_attend: Callable, training: bool):
        x, self_extras = self.residual(x, self.self_attention_norm, self_attend, training)
        cross_weights = None
        if self.has_cross_attention:
            x, cross_weights = self.residual(x, self.cross_attention_norm, cross_attend, training)
        x, _ = self.residual(x, self.feed_forward_norm,
                             lambda y: (self.feed_forward(y, training=training), None), training)
        return x, self_extras, cross_weights

    def call(self, x: tf.Tensor, causal_mask: tf.Tensor, memory: tf.Tensor | None = None,
             source_mask: tf.Tensor | None = None, training: bool = False):
        """Teacher forcing. x (batch, target_len, model_dim) -> x, self weights (batch, heads,
        target_len, target_len), cross weights (batch, heads, target_len, source_len) or None."""
        return self._forward(
            x,
            lambda y: self.self_attention(y, y, causal_mask, training=training),
            lambda y: self.cross_attention(y, memory, source_mask, training=training),
            training)

    def step(self, x: tf.Tensor, self_keys: tf.Tensor, self_values: tf.Tensor,
             write_indices: tf.Tensor, prefix_mask: tf.Tensor, cross_keys: tf.Tensor | None = None,
             cross_values: tf.Tensor | None = None, source_mask: tf.Tensor | None = None):
        """One position. x (batch, 1, model_dim); self_keys/values (batch, heads, cache_len, head_dim);
        write_indices int32 (batch, heads, 3): the cache slot [row, head, position] of each
        row's new key and value; prefix_mask bool (batch, 1, 1, cache_len).
        Returns x, (self weights (batch, heads, 1, cache_len), self_keys, self_values) with this
        position written, and cross weights (batch, heads, 1, source_len) or None."""

        def cached_self_attention(y):
            new_keys, new_values = self.self_attention.project_keys_values(y)  # (batch, heads, 1, head_dim)
            # Only the new slots are written: a `where` over the whole cache rewrites all of it,
            # which was most of a step (bench/RESULTS.md).
            keys = tf.tensor_scatter_nd_update(self_keys, write_indices, new_keys[:, :, 0])  # (batch, heads, cache_len, head_dim)
            values = tf.tensor_scatter_nd_update(self_values, write_indices, new_values[:, :, 0])
            output, weights = self.self_attention.attend(y, keys, values, prefix_mask)
            return output, (weights, keys, values)

        return self._forward(
            x, cached_self_attention,
            lambda y: self.cross_attention.attend(y, cross_keys, cross_values, source_mask),
            training=False)


class TransformerEncoder(keras.layers.Layer):
    """Source embedding + positions + encoder layers (+ final LayerNorm when pre-norm)."""

    def __init__(self, config: ModelConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        c = config
        self.model_dim = c.model_dim
        self.embedding = keras.layers.Embedding(c.source_vocab_size, c.model_dim, name="embedding")
        self.positions = PositionEmbedding(c.max_source_length, c.model_dim, c.positional,
                                           name="positions")
        self.embedding_dropout = keras.layers.Dropout(c.dropout)
        self.encoder_layers = [
            TransformerEncoderLayer(c.model_dim, c.num_heads, c.feed_forward_dim, c.dropout,
                                    c.norm_first, activation_dropout=c.activation_dropout, name=f"layer_{i}")
            for i in range(c.num_layers)
        ]
        self.final_norm = _layer_norm("final_norm") if c.norm_first else None

    def build(self, input_shape=None) -> None:
        self.embedding.build((None, None))
        self.positions.build()
        for layer in self.encoder_layers:
            layer.build()
        if self.final_norm is not None:
            self.final_norm.build((None, self.model_dim))

    def call(self, source_ids: tf.Tensor, training: bool = False):
        """source_ids (batch, source_len) -> memory (batch, source_len, model_dim), source_mask
        bool (batch, source_len), self attention (batch, num_layers, heads, source_len, source_len)."""
        source_mask = padding_mask(source_ids)
        positions = tf.range(tf.shape(source_ids)[1])[None, :]  # (1, source_len)
        x = self.embedding(source_ids) * math.sqrt(self.model_dim) + self.positions(positions)
        x = self.embedding_dropout(x, training=training)
        key_mask = source_mask[:, None, None, :]  # (batch, 1, 1, source_len)
        all_weights = []
        for layer in self.encoder_layers:
            x, weights = layer(x, key_mask, training=training)
            all_weights.append(weights)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x, source_mask, tf.stack(all_weights, axis=1)


class TransformerDecoder(keras.layers.Layer):
    """Target embedding + positions + decoder layers + output projection; with or without cross
    attention (`transformer` / `transformer-lm`). Teacher forcing in `call`, one cached step in `step`."""

    def __init__(self, config: ModelConfig, cross_attention: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        c = config
        self.model_dim = c.model_dim
        self.num_heads = c.num_heads
        self.head_dim = c.model_dim // c.num_heads
        self.num_layers = c.num_layers
        self.max_length = c.max_target_length
        self.tie_embeddings = c.tie_embeddings
        self.has_cross_attention = cross_attention
        self.embedding = keras.layers.Embedding(c.target_vocab_size, c.model_dim, name="embedding")
        self.positions = PositionEmbedding(c.max_target_length, c.model_dim, c.positional,
                                           name="positions")
        self.embedding_dropout = keras.layers.Dropout(c.dropout)
        self.decoder_layers = [
            TransformerDecoderLayer(c.model_dim, c.num_heads, c.feed_forward_dim, c.dropout,
                                    c.norm_first, cross_attention, activation_dropout=c.activation_dropout,
                                    name=f"layer_{i}")
            for i in range(c.num_layers)
        ]
        self.final_norm = _layer_norm("final_norm") if c.norm_first else None
        self.output_projection = OutputProjection(
            c.target_vocab_size, c.model_dim, c.model_dim if c.tie_embeddings else None,
            name="output_projection")

    def build(self, input_shape=None) -> None:
        self.embedding.build((None, None))
        self.positions.build()
        for layer in self.decoder_layers:
            layer.build()
        if self.final_norm is not None:
            self.final_norm.build((None, self.model_dim))
        self.output_projection.build()

    def _embed(self, token_ids: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
        return self.embedding(token_ids) * math.sqrt(self.model_dim) + self.positions(positions)

    def _logits(self, x: tf.Tensor) -> tf.Tensor:
        if self.final_norm is not None:
            x = self.final_norm(x)
        tied = self.embedding.embeddings if self.tie_embeddings else None
        return self.output_projection(x, tied)

    def call(self, target_ids: tf.Tensor, memory: tf.Tensor | None = None,
             source_mask: tf.Tensor | None = None, training: bool = False):
        """target_ids (batch, target_len) -> logits (batch, target_len, vocab), attention dict."""
        target_len = tf.shape(target_ids)[1]
        x = self._embed(target_ids, tf.range(target_len)[None, :])  # (batch, target_len, model_dim)
        x = self.embedding_dropout(x, training=training)
        causal = tf.linalg.band_part(tf.ones([target_len, target_len], tf.bool), -1, 0)
        causal_mask = causal[None, None, :, :]  # (1, 1, target_len, target_len)
        cross_mask = None if source_mask is None else source_mask[:, None, None, :]  # (batch, 1, 1, source_len)
        self_weights, cross_weights = [], []
        for layer in self.decoder_layers:
            x, layer_self, layer_cross = layer(x, causal_mask, memory, cross_mask, training=training)
            self_weights.append(layer_self)
            cross_weights.append(layer_cross)
        attention = {"self_attention": tf.stack(self_weights, axis=1)}  # (batch, layers, heads, T, T)
        if self.has_cross_attention:
            attention["cross_attention"] = tf.stack(cross_weights, axis=1)  # (batch, layers, heads, T, S)
        return self._logits(x), attention

    # One state entry per layer, not one (batch, layers, ...) tensor: no stacking of the layers
    # after every step and slicing them out again (16 slices and 2 stacks per step for 4 layers).

    def initial_cache(self, batch_size: tf.Tensor, length: int | tf.Tensor | None = None) -> State:
        """Empty self-attention cache for `batch_size` sequences of up to `length` positions (at
        most max_target_length, the default), step 0. Every step copies and reads the whole
        cache, so a search that will stop at 64 positions should not carry 128."""
        length = self.max_length if length is None else tf.minimum(length, self.max_length)
        zeros = tf.zeros([batch_size, self.num_heads, length,
                          self.head_dim])  # (batch, heads, cache_length, head_dim)
        cache = {"step": tf.zeros([batch_size], tf.int32)}
        for i in range(self.num_layers):
            cache[f"self_keys_{i}"], cache[f"self_values_{i}"] = zeros, zeros
        return cache

    def project_memory(self, memory: tf.Tensor) -> State:
        """Every layer's cross-attention keys and values, computed once per source."""
        projected = {}
        for i, layer in enumerate(self.decoder_layers):
            keys, values = layer.cross_attention.project_keys_values(memory)  # (batch, heads, source_len, head_dim)
            projected[f"cross_keys_{i}"], projected[f"cross_values_{i}"] = keys, values
        return projected

    def step(self, token_ids: tf.Tensor, state: State) -> tuple[tf.Tensor, State, Attention]:
        """token_ids (batch,) at position state["step"] -> logits (batch, vocab), new state, attention."""
        # A row the search has stopped may be stepped past the last position (its outputs are
        # never read): it keeps writing to the last slot instead of indexing out of range.
        step = tf.minimum(state["step"], self.max_length - 1)  # (batch,)
        caches = self._room_for(state, tf.reduce_max(step) + 1)
        cache_length = tf.shape(caches["self_keys_0"])[2]
        x = self._embed(token_ids[:, None], step[:, None])  # (batch, 1, model_dim)
        slots = tf.range(cache_length)[None, :]  # (1, cache_length)
        grid = [tf.shape(step)[0], self.num_heads]
        write_indices = tf.stack([tf.broadcast_to(tf.range(grid[0])[:, None], grid),
                                  tf.broadcast_to(tf.range(self.num_heads)[None, :], grid),
                                  tf.broadcast_to(step[:, None], grid)], axis=-1)  # (batch, heads, 3)
        prefix_mask = tf.less_equal(slots, step[:, None])[:, None, None, :]  # (batch, 1, 1, cache_length)
        source_mask = state.get("source_mask")
        cross_mask = None if source_mask is None else source_mask[:, None, None, :]  # (batch, 1, 1, source_len)
        new_state = {**state, "step": state["step"] + 1}
        self_weights, cross_weights = [], []
        for i, layer in enumerate(self.decoder_layers):
            cross = ((state[f"cross_keys_{i}"], state[f"cross_values_{i}"])
                     if self.has_cross_attention else (None, None))
            x, (layer_self, layer_keys, layer_values), layer_cross = layer.step(
                x, caches[f"self_keys_{i}"], caches[f"self_values_{i}"], write_indices,
                prefix_mask, *cross, cross_mask)
            new_state[f"self_keys_{i}"], new_state[f"self_values_{i}"] = layer_keys, layer_values
            self_weights.append(layer_self[:, :, 0])  # (batch, heads, cache_length)
            if self.has_cross_attention:
                cross_weights.append(layer_cross[:, :, 0])  # (batch, heads, source_len)
        # Every step reports the same width, max_target_length (a search records the weights of
        # every step in one array); the slots past the cache are attended by nobody: zeros.
        self_weights = tf.stack(self_weights, axis=1)  # (batch, layers, heads, cache_length)
        self_weights = tf.pad(self_weights, [[0, 0], [0, 0], [0, 0], [0, self.max_length - cache_length]])
        attention = {"self_attention": tf.ensure_shape(
            self_weights, [None, self.num_layers, self.num_heads, self.max_length])}  # (batch, layers, heads, max_target_length)
        if self.has_cross_attention:
            attention["cross_attention"] = tf.stack(cross_weights, axis=1)  # (batch, layers, heads, source_len)
        return self._logits(x)[:, 0], new_state, attention

    def _room_for(self, state: State, needed: tf.Tensor) -> State:
        """The self-attention caches with at least `needed` slots (at most max_target_length):
        when a step reaches the end they grow to twice their length, so a search that starts
        with a short cache copies and reads only about what its outputs use."""
        caches = {f"self_{kind}_{i}": state[f"self_{kind}_{i}"]
                  for i in range(self.num_layers) for kind in ("keys", "values")}
        if caches["self_keys_0"].shape[2] == self.max_length:  # already the whole context
            return caches
        capacity = tf.shape(caches["self_keys_0"])[2]

        def grow():
            longer = tf.minimum(tf.maximum(needed, 2 * capacity), self.max_length)
            padding = [[0, 0], [0, 0], [0, longer - capacity], [0, 0]]
            return {k: tf.pad(v, padding) for k, v in caches.items()}  # (batch, heads, longer, head_dim)

        return tf.cond(needed > capacity, grow, lambda: caches)


class TransformerSeq2Seq(Seq2SeqModel):
    """Encoder-decoder Transformer. Attention: "cross_attention", "self_attention" (see base.py)."""

    def __init__(self, config: ModelConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.encoder = TransformerEncoder(config, name="encoder")
        self.decoder = TransformerDecoder(config, cross_attention=True, name="decoder")

    def build(self, input_shape=None) -> None:
        self.encoder.build()
        self.decoder.build()

    def call_with_attention(self, inputs, training=False):
        memory, source_mask, encoder_weights = self.encoder(inputs["source_ids"], training=training)
        logits, attention = self.decoder(inputs["target_input_ids"], memory, source_mask,
                                         training=training)
        return logits, {**attention, "encoder_self_attention": encoder_weights}

    def encode(self, source_ids: tf.Tensor, max_decode_length=None) -> State:
        memory, source_mask, _ = self.encoder(source_ids, training=False)
        # The cache starts short and grows as the search goes (decode_step): most outputs end
        # long before max_decode_length, and every step copies and reads the whole cache.
        length = INITIAL_CACHE_LENGTH if max_decode_length is None else tf.minimum(
            max_decode_length, INITIAL_CACHE_LENGTH)
        return {**self.decoder.project_memory(memory), "source_mask": source_mask,
                **self.decoder.initial_cache(tf.shape(source_ids)[0], length)}

    def decode_step(self, token_ids: tf.Tensor, state: State) -> tuple[tf.Tensor, State, Attention]:
        return self.decoder.step(token_ids, state)
