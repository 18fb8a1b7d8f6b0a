"""Plain reference models for the throughput benchmark, written the way the TensorFlow tutorials
write them: what a user would build instead of using TextGen Lab.

- `TutorialTransformer`: "Neural machine translation with a Transformer and Keras"
  (tensorflow.org/text/tutorials/transformer): `keras.layers.MultiHeadAttention`, post-norm
  `Add` + `LayerNormalization` blocks, `Embedding(mask_zero=True)` with sinusoidal positions,
  a final `Dense` onto the vocabulary.
- `TutorialBahdanau`: the TF2 "Neural machine translation with attention" tutorial's
  encoder / `BahdanauAttention` / decoder: a GRU encoder; at each target step the additive score
  vᵀ tanh(W1 s + W2 h_j) (W2 h recomputed every step, as the tutorial does), the context
  concatenated with the embedded input, one GRU step, a `Dense` on [output; context]. The loop
  over target positions is a Python loop, unrolled over the padded length.

Both train with the default `fit` (no bucketing, no compilation flags), on batches padded to
the longest example in the corpus, with the tutorials' masked loss.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def positional_encoding(length: int, depth: int) -> np.ndarray:
    half = depth / 2
    positions = np.arange(length)[:, np.newaxis]  # (length, 1)
    depths = np.arange(half)[np.newaxis, :] / half  # (1, depth / 2)
    angle_rads = positions * (1 / (10000 ** depths))  # (length, depth / 2)
    return np.concatenate([np.sin(angle_rads), np.cos(angle_rads)], axis=-1).astype(np.float32)


class PositionalEmbedding(keras.layers.Layer):
    def __init__(self, vocab_size: int, d_model: int, max_length: int = 2048) -> None:
        super().__init__()
        self.d_model = d_model
        self.embedding = keras.layers.Embedding(vocab_size, d_model, mask_zero=True)
        self.pos_encoding = tf.constant(positional_encoding(max_length, d_model))

    def compute_mask(self, *args, **kwargs):
        return self.embedding.compute_mask(*args, **kwargs)

    def call(self, x):
        length = tf.shape(x)[1]
        x = self.embedding(x) * tf.math.sqrt(tf.cast(self.d_model, tf.float32))
        return x + self.pos_encoding[tf.newaxis, :length, :]


class BaseAttention(keras.layers.Layer):
    def __init__(self, **kwargs) -> None:
        super().__init__()
        self.mha = keras.layers.MultiHeadAttention(**kwargs)
        self.layernorm = keras.layers.LayerNormalization()
        self.add = keras.layers.Add()


class CrossAttention(BaseAttention):
    def call(self, x, context):
        attn_output = self.mha(query=x, key=context, value=context)
        return self.layernorm(self.add([x, attn_output]))


class GlobalSelfAttention(BaseAttention):
    def call(self, x):
        return self.layernorm(self.add([x, self.mha(query=x, value=x, key=x)]))


class CausalSelfAttention(BaseAttention):
    def call(self, x):
        return self.layernorm(self.add([x, self.mha(query=x, value=x, key=x, use_causal_mask=True)]))


class FeedForward(keras.layers.Layer):
    def __init__(self, d_model: int, dff: int, dropout_rate: float = 0.1) -> None:
        super().__init__()
        self.seq = keras.Sequential([
            keras.layers.Dense(dff, activation="relu"),
            keras.layers.Dense(d_model),
            keras.layers.Dropout(dropout_rate),
        ])
        self.add = keras.layers.Add()
        self.layer_norm = keras.layers.LayerNormalization()

    def call(self, x):
        return self.layer_norm(self.add([x, self.seq(x)]))


class EncoderLayer(keras.layers.Layer):
    def __init__(self, *, d_model, num_heads, dff, dropout_rate=0.1) -> None:
        super().__init__()
        self.self_attention = GlobalSelfAttention(num_heads=num_heads, key_dim=d_model // num_heads,
                                                  dropout=dropout_rate)
        self.ffn = FeedForward(d_model, dff)

    def call(self, x):
        return self.ffn(self.self_attention(x))


class DecoderLayer(keras.layers.Layer):
    def __init__(self, *, d_model, num_heads, dff, dropout_rate=0.1) -> None:
        super().__init__()
        self.causal_self_attention = CausalSelfAttention(num_heads=num_heads, key_dim=d_model // num_heads,
                                                         dropout=dropout_rate)
        self.cross_attention = CrossAttention(num_heads=num_heads, key_dim=d_model // num_heads,
                                              dropout=dropout_rate)
        self.ffn = FeedForward(d_model, dff)

    def call(self, x, context):
        return self.ffn(self.cross_attention(self.causal_self_attention(x), context))


class TutorialTransformer(keras.Model):
    """The tutorial's Transformer. The tutorial passes key_dim=d_model (each head as wide as the
    model, 8x the attention projections of the paper); here key_dim = d_model // num_heads, the
    same architecture and size as ours, which only makes the reference faster."""

    def __init__(self, *, num_layers, d_model, num_heads, dff, input_vocab_size, target_vocab_size,
                 dropout_rate=0.1) -> None:
        super().__init__()
        self.source_embedding = PositionalEmbedding(input_vocab_size, d_model)
        self.target_embedding = PositionalEmbedding(target_vocab_size, d_model)
        self.encoder_layers = [EncoderLayer(d_model=d_model, num_heads=num_heads, dff=dff,
                                            dropout_rate=dropout_rate) for _ in range(num_layers)]
        self.decoder_layers = [DecoderLayer(d_model=d_model, num_heads=num_heads, dff=dff,
                                            dropout_rate=dropout_rate) for _ in range(num_layers)]
        self.dropout = keras.layers.Dropout(dropout_rate)
        self.final_layer = keras.layers.Dense(target_vocab_size)

    def call(self, inputs, training=None):
        # The tutorial's `call(self, inputs)` has no `training` argument. Keras 2 passed fit's
        # training=True down to the dropout layers anyway; Keras 3 passes it only to a model whose
        # `call` accepts it, so as written the tutorial's dropout would never run under `fit`
        # here, and the reference would skip work that ours (dropout 0.1 too) does.
        context = self.dropout(self.source_embedding(inputs["source_ids"]))
        for layer in self.encoder_layers:
            context = layer(context)
        x = self.dropout(self.target_embedding(inputs["target_input_ids"]))
        for layer in self.decoder_layers:
            x = layer(x, context)
        return self.final_layer(x)


class TutorialBahdanau(keras.Model):
    """The TF2 attention tutorial's encoder-decoder with `BahdanauAttention`, teacher forced."""

    def __init__(self, *, input_vocab_size, target_vocab_size, embedding_dim, units) -> None:
        super().__init__()
        self.source_embedding = keras.layers.Embedding(input_vocab_size, embedding_dim, mask_zero=True)
        self.encoder = keras.layers.GRU(units, return_sequences=True, return_state=True)
        self.target_embedding = keras.layers.Embedding(target_vocab_size, embedding_dim)
        self.W1 = keras.layers.Dense(units)
        self.W2 = keras.layers.Dense(units)
        self.V = keras.layers.Dense(1)
        self.decoder_gru = keras.layers.GRU(units, return_sequences=True, return_state=True)
        self.fc = keras.layers.Dense(target_vocab_size)

    def call(self, inputs):
        source, target = inputs["source_ids"], inputs["target_input_ids"]
        enc_output, hidden = self.encoder(self.source_embedding(source))  # (B, S, units), (B, units)
        source_mask = tf.cast(tf.not_equal(source, 0), tf.float32)[:, :, None]  # (B, S, 1)
        outputs = []
        for t in range(target.shape[1]):  # padded to a fixed length: unrolled, as in the tutorial
            query = tf.expand_dims(hidden, 1)  # (B, 1, units)
            score = self.V(tf.nn.tanh(self.W1(query) + self.W2(enc_output)))  # (B, S, 1)
            score += (1.0 - source_mask) * -1e9
            attention_weights = tf.nn.softmax(score, axis=1)  # (B, S, 1)
            context = tf.reduce_sum(attention_weights * enc_output, axis=1)  # (B, units)
            x = self.target_embedding(target[:, t:t + 1])  # (B, 1, embedding_dim)
            x = tf.concat([tf.expand_dims(context, 1), x], axis=-1)  # (B, 1, units + embedding_dim)
            output, hidden = self.decoder_gru(x, initial_state=hidden)  # (B, 1, units), (B, units)
            outputs.append(self.fc(tf.concat([output[:, 0], context], axis=-1)))  # (B, vocab)
        return tf.stack(outputs, axis=1)  # (B, T, vocab)


def masked_loss(label, pred):
    mask = label != 0
    loss_object = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
    loss = loss_object(label, pred)
    mask = tf.cast(mask, dtype=loss.dtype)
    loss *= mask
    return tf.reduce_sum(loss) / tf.reduce_sum(mask)


def masked_accuracy(label, pred):
    pred = tf.argmax(pred, axis=2)
    label = tf.cast(label, pred.dtype)
    match = tf.cast((label == pred) & (label != 0), tf.float32)
    mask = tf.cast(label != 0, tf.float32)
    return tf.reduce_sum(match) / tf.reduce_sum(mask)


class CustomSchedule(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, d_model, warmup_steps=4000) -> None:
        super().__init__()
        self.d_model = tf.cast(d_model, tf.float32)
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = tf.cast(step, dtype=tf.float32)
        return tf.math.rsqrt(self.d_model) * tf.math.minimum(tf.math.rsqrt(step), step * (self.warmup_steps ** -1.5))


def padded_dataset(source_ids: list[np.ndarray], target_ids: list[np.ndarray], batch_size: int,
                   bos_id: int, eos_id: int) -> tuple[tf.data.Dataset, int]:
    """Every example padded to the corpus's longest source / target: the tutorials' fixed shapes.
    Returns the dataset (repeated, shuffled, batched, prefetched) and the real target tokens
    (</s> included) per epoch."""
    source_len = max(len(s) for s in source_ids)
    target_len = max(len(t) for t in target_ids) + 1
    count = len(source_ids)
    sources = np.zeros((count, source_len), np.int32)
    inputs = np.zeros((count, target_len), np.int32)
    labels = np.zeros((count, target_len), np.int32)
    for i, (s, t) in enumerate(zip(source_ids, target_ids)):
        sources[i, :len(s)] = s
        inputs[i, :len(t) + 1] = [bos_id, *t]
        labels[i, :len(t) + 1] = [*t, eos_id]
    ds = tf.data.Dataset.from_tensor_slices(({"source_ids": sources, "target_input_ids": inputs}, labels))
    ds = ds.shuffle(count, seed=0).repeat().batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return ds, int((labels != 0).sum())
