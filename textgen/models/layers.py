"""Layers shared by several families: masked softmax, output projection, positions, attention.

Every layer here builds its weights from sizes known at construction (`build` ignores the input
shape), so a model can call any of their methods (`attend`, `project_keys_values`) before or
without going through `__call__`, including inside `tf.function` and `tf.scan` loops.
"""

from __future__ import annotations

import functools
import math

import keras
import numpy as np
import tensorflow as tf

from textgen.core import hardware

# Added to the scores of masked positions: exp(-1e9 - max) is exactly 0.0 in float32, so masked
# positions get exactly zero weight (a true -inf would give NaN on a fully masked row).
_MASKED_SCORE = -1e9


def masked_softmax(scores: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """softmax over the last axis where `mask` is True; exactly 0 where it is False.

    `mask` is bool and broadcasts against `scores`. A row with no True entry (an empty source)
    gets all-zero weights rather than a uniform spread over padding.
    """
    scores = tf.where(mask, scores, _MASKED_SCORE)
    weights = tf.nn.softmax(scores, axis=-1)
    return weights * tf.cast(mask, weights.dtype)


def _is_one_position(x: tf.Tensor) -> bool:
    return x.shape.rank == 3 and x.shape[1] == 1


@tf.custom_gradient
def round_to_bfloat16(x: tf.Tensor) -> tf.Tensor:
    """x (float32) rounded to the nearest bfloat16 (ties to even), kept float32; its gradient is
    rounded the same way, as a cast to bfloat16 and back rounds it.

    On the float32 bits: add 0x7FFF plus the lowest kept bit, then clear the 16 low bits.
    Integer ops rather than two casts: without native bfloat16, the casts made an emulated
    training step about twice as slow as float32, these about a third (bench/RESULTS.md).
    The carry could turn a NaN into an infinity or a zero: adding x - x (0, or NaN for a NaN or
    an infinity) keeps a NaN a NaN, without the boolean tensor a `where` would cost; an infinity
    becomes NaN too (a step that multiplies one has diverged either way)."""
    bits = tf.bitcast(x, tf.int32)
    lowest_kept = tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, 16), 1)
    rounded = tf.bitcast(tf.bitwise.bitwise_and(bits + 0x7FFF + lowest_kept, -65536), tf.float32)
    return rounded + (x - x), round_to_bfloat16


def _accumulates_in_float32(product, a: np.ndarray, b: np.ndarray) -> bool:
    """Whether product(a, b) on bfloat16 operands equals the exact product of the rounded operands,
    rounded once to bfloat16, within one bfloat16 unit in the last place (float32 accumulation
    may round a sum on a tie the other way; accumulating in bfloat16 loses many units)."""
    rounded_a, rounded_b = (tf.cast(tf.cast(x, tf.bfloat16), tf.float64).numpy() for x in (a, b))
    exact = tf.cast(tf.cast(product(rounded_a, rounded_b), tf.bfloat16), tf.float64).numpy()
    got = tf.cast(product(tf.cast(a, tf.bfloat16), tf.cast(b, tf.bfloat16)), tf.float64).numpy()
    unit = np.exp2(np.floor(np.log2(np.maximum(np.abs(exact), 1e-30))) - 7)  # bfloat16: 8 significant bits
    return bool(np.all(np.abs(got - exact) <= unit))


@functools.lru_cache(maxsize=1)
def native_bfloat16_matmul() -> bool:
    """Whether this machine's bfloat16 matmuls run in hardware and accumulate in float32, so that
    `matmul_precision="bfloat16"` can hand them bfloat16 operands (faster). Where the CPU has
    no native bfloat16 (`hardware.native_bfloat16`), TensorFlow falls back to kernels that
    round partial sums to bfloat16 (up to 0.25 off on products near 12): there, and wherever
    this check fails, the operands are rounded to bfloat16 and multiplied in float32 instead, so
    the setting computes the same numbers on every CPU. Checked once per process, eagerly."""
    if hardware.native_bfloat16() is None:
        return False
    rng = np.random.default_rng(0)
    # A sum that a bfloat16 accumulator cannot hold: 256 + 255 x 1 (511, 512 once rounded).
    spike = np.concatenate([[256.0], np.ones(255)])[None, :].astype(np.float32)  # (1, 256)
    ones = np.ones((256, 8), np.float32)
    x = rng.normal(size=(4, 16, 256)).astype(np.float32)  # (batch, length, in)
    w = rng.normal(size=(256, 64)).astype(np.float32)  # (in, out)
    with tf.init_scope():  # eager even when first asked while a function is traced
        return (_accumulates_in_float32(lambda p, q: tf.matmul(p, q), spike, ones)
                and _accumulates_in_float32(lambda p, q: tf.einsum("bli,io->blo", p, q), x, w)
                and _accumulates_in_float32(lambda p, q: tf.matmul(p, q, transpose_b=True), x, w.T))


def _bfloat16_product(product, *operands: tf.Tensor) -> tf.Tensor:
    """product(*operands) on the operands rounded to bfloat16, accumulated in float32, the result
    rounded to bfloat16 and cast back to float32: in hardware where `native_bfloat16_matmul`,
    otherwise with float32 arithmetic on the rounded values (the same numbers, up to the order
    of float32 additions). The gradient flows through the casts: the upstream gradient is
    rounded to bfloat16 too, the weights' gradients come back float32."""
    if native_bfloat16_matmul():
        return tf.cast(product(*(tf.cast(x, tf.bfloat16) for x in operands)), tf.float32)
    return round_to_bfloat16(product(*(round_to_bfloat16(tf.convert_to_tensor(x)) for x in operands)))


def _one_position_matmul(x: tf.Tensor, matrix: tf.Tensor, transpose_b: bool = False) -> tf.Tensor:
    """x (batch, 1, in) @ matrix (in, out), or matrix (out, in) transposed -> (batch, 1, out), as
    one 2-D MatMul (see Dense for why)."""
    flat = tf.reshape(x, [-1, x.shape[-1]])  # (batch, 1, in) -> (batch, in)
    out = matrix.shape[0] if transpose_b else matrix.shape[-1]
    return tf.reshape(tf.matmul(flat, matrix, transpose_b=transpose_b), [-1, 1, out])  # (batch, 1, out)


class Dense(keras.layers.Dense):
    """`keras.layers.Dense` whose rank-3+ inputs take one `Einsum` op.

    Keras 3 on TensorFlow multiplies a (batch, length, in) input by `tf.tensordot`, which adds a
    dozen shape ops (Shape, GatherV2, Prod, ConcatV2, Reshape, Transpose) around each MatMul. A
    Transformer decoding step runs about 30 projections, so those small ops were most of the
    graph of the decoding loop. Same weights and names as `keras.layers.Dense` (checkpoints are
    interchangeable); float32 only (no quantization or LoRA, which we do not use).

    A single position (batch, 1, in), what every decoding step projects, takes a 2-D `MatMul`
    instead: with oneDNN (TensorFlow's default on x86) a small `Einsum` costs 30-50 µs of call
    overhead against 5-15 µs for the `MatMul` (measured at batch 1 and 32, d_model 128), while
    for training shapes the `Einsum` measured a little faster (bench/RESULTS.md).

    `matmul_precision` (a run-time setting, not saved; the model sets it while its teacher-forced
    `call` runs, see `Seq2SeqModel.set_matmul_precision`): "bfloat16" multiplies (..., length > 1,
    in) inputs on bfloat16-rounded operands, the result rounded to bfloat16 and cast back to
    float32 (see TrainConfig.matmul_precision). One position (a decoding step) is always float32.
    """

    matmul_precision = "float32"

    def call(self, inputs, training=None):
        if inputs.shape.rank is None or inputs.shape.rank <= 2:
            return super().call(inputs, training=training)
        if _is_one_position(inputs):
            outputs = _one_position_matmul(inputs, self.kernel)  # (batch, 1, units)
        else:
            # Explicit subscripts, never an ellipsis: TensorFlow's gradient of "...i,io->...o"
            # broadcasts the inputs against the outputs before reducing (a (batch, len, in, units)
            # intermediate: 19 GB for the base Transformer's first step), while "bli,io->blo" is
            # differentiated as two matmuls.
            batch_axes = "abcdefgh"[: inputs.shape.rank - 1]
            equation = f"{batch_axes}i,io->{batch_axes}o"  # (..., in) -> (..., units)
            if self.matmul_precision == "bfloat16":
                outputs = _bfloat16_product(lambda x, w: tf.einsum(equation, x, w), inputs, self.kernel)
            else:
                outputs = tf.einsum(equation, inputs, self.kernel)
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs


def layer_norm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: float) -> tf.Tensor:
    """LayerNorm over the last axis, y = (x - mean) / sqrt(var + epsilon) * gamma + beta, with its
    gradient written out (see `LayerNorm`). x (..., dim), gamma and beta (dim,) -> y (..., dim)."""

    @tf.custom_gradient
    def normalize(x, gamma, beta):
        mean = tf.reduce_mean(x, axis=-1, keepdims=True)  # (..., 1)
        centered = x - mean
        inverse_std = tf.math.rsqrt(tf.reduce_mean(tf.square(centered), axis=-1, keepdims=True) + epsilon)  # (..., 1)
        normalized = centered * inverse_std  # x̂ (..., dim)

        def gradient(upstream):
            # With g = dy·gamma:  dx = (g - mean(g) - x̂·mean(g·x̂)) / std,  dgamma = Σ dy·x̂,  dbeta = Σ dy
            # (sums over every axis but the last).
            leading_axes = list(range(len(upstream.shape) - 1))
            scaled = upstream * gamma
            d_x = inverse_std * (scaled - tf.reduce_mean(scaled, axis=-1, keepdims=True)
                                 - normalized * tf.reduce_mean(scaled * normalized, axis=-1, keepdims=True))
            return (d_x, tf.reduce_sum(upstream * normalized, axis=leading_axes),
                    tf.reduce_sum(upstream, axis=leading_axes))

        return normalized * gamma + beta, gradient

    return normalize(x, gamma, beta)


class LayerNorm(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` over the last axis with a hand-written gradient.

    Keras 3 on TensorFlow normalises in about 13 ops and leaves TensorFlow to differentiate them
    (about 25 more). The Transformers here normalise 9 to 32 times per step, so on small models
    those ~38 small ops per norm were a sixth of a training step's op time; `layer_norm` takes 6
    forward and 11 backward (LM recipe: 62.4 -> 57.0 ms per step, bench/RESULTS.md). Same
    weights and names as the Keras layer (checkpoints are interchangeable), same results up to
    float rounding (tested); other settings (another axis, no centre or scale) take Keras' path.
    """

    def call(self, inputs):
        axes = [self.axis] if isinstance(self.axis, int) else list(self.axis)
        if axes not in ([-1], [len(inputs.shape) - 1]) or not (self.center and self.scale) or self.rms_scaling:
            return super().call(inputs)
        return layer_norm(inputs, tf.convert_to_tensor(self.gamma), tf.convert_to_tensor(self.beta), self.epsilon)


class OutputProjection(keras.layers.Layer):
    """From decoder features to vocabulary logits.

    Untied:  logits = f W + b                     W: (input_dim, vocab_size)
    Tied:    logits = (f P) Eᵀ + b                E: the target embedding matrix (vocab_size, embedding_dim)
             P: (input_dim, embedding_dim) only when the two widths differ (Press & Wolf 2017).
    With tied embeddings the caller passes E to `call` so the matrix has one owner.
    `matmul_precision` as in `Dense` (the tied product over several positions follows it too).
    """

    matmul_precision = "float32"

    def __init__(self, vocab_size: int, input_dim: int, tied_embedding_dim: int | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.input_dim = input_dim
        self.tied = tied_embedding_dim is not None
        if not self.tied:
            self.dense = Dense(vocab_size, name="logits")
        elif tied_embedding_dim != input_dim:
            self.down_projection = Dense(tied_embedding_dim, use_bias=False,
                                                      name="to_embedding")
        else:
            self.down_projection = None

    def build(self, input_shape=None) -> None:
        if not self.tied:
            self.dense.build((None, self.input_dim))
            return
        if self.down_projection is not None:
            self.down_projection.build((None, self.input_dim))
        self.bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros", name="bias")

    def call(self, features: tf.Tensor, embedding_matrix: tf.Tensor | None = None) -> tf.Tensor:
        if not self.tied:
            return self.dense(features)
        if self.down_projection is not None:
            features = self.down_projection(features)
        if _is_one_position(features):  # a decoding step (see Dense)
            return _one_position_matmul(features, embedding_matrix, transpose_b=True) + self.bias  # (batch, 1, vocab)
        if self.matmul_precision == "bfloat16":
            return _bfloat16_product(lambda f, e: tf.matmul(f, e, transpose_b=True), features,
                                     embedding_matrix) + self.bias
        return tf.matmul(features, embedding_matrix, transpose_b=True) + self.bias  # (batch, length, vocab)


def sinusoidal_table(max_length: int, dim: int) -> np.ndarray:
    """PE[pos, 2i] = sin(pos / 10000^(2i/dim)), PE[pos, 2i+1] = cos(pos / 10000^(2i/dim))."""
    positions = np.arange(max_length, dtype=np.float64)[:, None]  # (max_length, 1)
    pair_index = (np.arange(dim) // 2).astype(np.float64)[None, :]  # (1, dim): i for 2i and 2i+1
    angles = positions / np.power(10000.0, 2.0 * pair_index / dim)  # (max_length, dim)
    table = np.where(np.arange(dim) % 2 == 0, np.sin(angles), np.cos(angles))
    return table.astype(np.float32)


class PositionEmbedding(keras.layers.Layer):
    """Position vectors: a fixed sinusoidal table or a learned one, looked up by position."""

    def __init__(self, max_length: int, dim: int, kind: str = "sinusoidal", **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length
        self.dim = dim
        self.kind = kind
        # The fixed table is a constant, not a weight: it is neither trained nor saved.
        self.table = sinusoidal_table(max_length, dim) if kind == "sinusoidal" else None

    def build(self, input_shape=None) -> None:
        if self.kind == "learned":
            self.table = self.add_weight(shape=(self.max_length, self.dim), name="table",
                                         initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, positions: tf.Tensor) -> tf.Tensor:
        """positions: int (...,) -> (..., dim). Positions must be below max_length."""
        return tf.gather(tf.convert_to_tensor(self.table), positions)


class MultiHeadAttention(keras.layers.Layer):
    """Scaled dot-product attention in several heads.

        Q = x W_Q,  K = m W_K,  V = m W_V                  (each split into num_heads heads)
        head = softmax(Q Kᵀ / √head_dim + mask) V
        output = concat(head_1, ..., head_h) W_O

    Written out (not keras.layers.MultiHeadAttention) so keys and values can be projected once and
    cached (`project_keys_values` + `attend`) and the weights come back as a return value.
    """

    def __init__(self, model_dim: int, num_heads: int, dropout: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model_dim = model_dim
        self.num_heads = num_heads
        self.head_dim = model_dim // num_heads
        self.query_projection = Dense(model_dim, name="query")
        self.key_projection = Dense(model_dim, name="key")
        self.value_projection = Dense(model_dim, name="value")
        self.output_projection = Dense(model_dim, name="output")
        self.weights_dropout = keras.layers.Dropout(dropout)

    def build(self, input_shape=None) -> None:
        for projection in (self.query_projection, self.key_projection, self.value_projection,
                           self.output_projection):
            projection.build((None, self.model_dim))

    # Shapes: the batch is -1 and a length known when tracing (1 in a decoding step) is a
    # constant, so a step's graph needs no Shape/StridedSlice/Pack ops to build them.
    def split_heads(self, x: tf.Tensor) -> tf.Tensor:
        length = x.shape[1] if x.shape[1] is not None else tf.shape(x)[1]
        x = tf.reshape(x, [-1, length, self.num_heads, self.head_dim])  # (batch, len, heads, head_dim)
        return tf.transpose(x, [0, 2, 1, 3])  # (batch, heads, len, head_dim)

    def merge_heads(self, x: tf.Tensor) -> tf.Tensor:
        length = x.shape[2] if x.shape[2] is not None else tf.shape(x)[2]
        x = tf.transpose(x, [0, 2, 1, 3])  # (batch, len, heads, head_dim)
        return tf.reshape(x, [-1, length, self.model_dim])  # (batch, len, model_dim)

    def project_keys_values(self, memory: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """memory (batch, memory_len, model_dim) -> keys, values (batch, heads, memory_len, head_dim)."""
        return (self.split_heads(self.key_projection(memory)),
                self.split_heads(self.value_projection(memory)))

    def attend(self, query_input: tf.Tensor, keys: tf.Tensor, values: tf.Tensor,
               attention_mask: tf.Tensor, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        """query_input (batch, query_len, model_dim), keys/values (batch, heads, key_len, head_dim),
        attention_mask bool broadcastable to (batch, heads, query_len, key_len).

        Returns output (batch, query_len, model_dim) and weights (batch, heads, query_len, key_len).
        """
        queries = self.split_heads(self.query_projection(query_input))  # (batch, heads, query_len, head_dim)
        attention_scores = tf.matmul(queries, keys, transpose_b=True)  # (batch, heads, query_len, key_len)
        attention_scores = attention_scores / math.sqrt(self.head_dim)
        attention_weights = masked_softmax(attention_scores, attention_mask)
        dropped = self.weights_dropout(attention_weights, training=training)
        context = tf.matmul(dropped, values)  # (batch, heads, query_len, head_dim)
        return self.output_projection(self.merge_heads(context)), attention_weights

    def call(self, query_input: tf.Tensor, memory: tf.Tensor, attention_mask: tf.Tensor,
             training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        keys, values = self.project_keys_values(memory)
        return self.attend(query_input, keys, values, attention_mask, training=training)


class FeedForward(keras.layers.Layer):
    """Position-wise feed-forward network: FFN(x) = max(0, x W_1 + b_1) W_2 + b_2, with `dropout`
    on the hidden activations while training."""

    def __init__(self, model_dim: int, feed_forward_dim: int, dropout: float = 0.0,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.model_dim = model_dim
        self.feed_forward_dim = feed_forward_dim
        self.hidden = Dense(feed_forward_dim, activation="relu", name="hidden")
        self.hidden_dropout = keras.layers.Dropout(dropout)
        self.output_layer = Dense(model_dim, name="output")

    def build(self, input_shape=None) -> None:
        self.hidden.build((None, self.model_dim))
        self.output_layer.build((None, self.feed_forward_dim))

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.output_layer(self.hidden_dropout(self.hidden(x), training=training))
