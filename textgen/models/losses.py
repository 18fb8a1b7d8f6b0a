"""Training objective and metrics over real tokens only (labels of 0, padding, are ignored).

    loss = (1 / N) Σ_{t: y_t ≠ pad} -Σ_k q_tk log softmax(z_t)_k,   N = number of real tokens
    q_t = (1 - ε) onehot(y_t) + ε / V                                (label smoothing ε)
    perplexity = exp(mean cross-entropy over real tokens, without smoothing)

All three work with `model.compile(loss=masked_cross_entropy, metrics=[MaskedTokenAccuracy(),
MaskedPerplexity()])`; use `MaskedCrossEntropy(label_smoothing=0.1)` to smooth in `compile`.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from textgen.models.base import PAD_ID


# The smallest normal float32. A label whose softmax probability falls below it (a diverging
# model, or a NaN or inf logit) takes the exact, slower path.
_SMALLEST_PROBABILITY = float(np.finfo(np.float32).tiny)


@tf.custom_gradient
def sparse_cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """-log softmax(logits)[label]: labels int32 (...,), logits (..., vocab) -> (...,).

    The same values and gradient (softmax - onehot) as `tf.nn.sparse_softmax_cross_entropy_with_logits`,
    from one softmax (oneDNN's, multi-threaded) and a gather: that op is single-threaded Eigen
    code, 45-57 ms of a ~300 ms Multi30k Transformer step at batch 64 x 15 tokens x 8,000 words
    against 10-12 ms for this (bench/RESULTS.md). When some label's probability underflows
    float32 (or is NaN), -log p would be wrong, so that batch's losses come from a log-sum-exp
    instead: a diverging run still shows its loss exploding and fails at the same step.
    """
    probabilities = tf.nn.softmax(logits)  # (..., vocab)
    picked = tf.gather(probabilities, labels, batch_dims=labels.shape.rank)  # (...,)
    loss = tf.cond(
        tf.reduce_all(picked >= _SMALLEST_PROBABILITY),  # False for a NaN too
        lambda: -tf.math.log(picked),
        lambda: tf.reduce_logsumexp(logits, axis=-1) - tf.gather(logits, labels, batch_dims=labels.shape.rank))

    def gradient(upstream):  # upstream (...,) -> d logits = upstream * (softmax - onehot)
        flat_labels = tf.reshape(labels, [-1])  # (n,)
        rows = tf.range(tf.size(flat_labels))
        vocab_size = tf.shape(logits)[-1]
        scaled = tf.reshape(probabilities, [-1, vocab_size]) * tf.reshape(upstream, [-1, 1])  # (n, vocab)
        at_labels = tf.stack([rows, flat_labels], axis=1)  # (n, 2)
        d_logits = tf.tensor_scatter_nd_sub(scaled, at_labels, tf.reshape(upstream, [-1]))
        return None, tf.reshape(d_logits, tf.shape(logits))

    return loss, gradient


def _per_token_cross_entropy(labels: tf.Tensor, logits: tf.Tensor,
                             label_smoothing: float = 0.0) -> tf.Tensor:
    """labels (batch, len), logits (batch, len, vocab) -> cross-entropy (batch, len)."""
    if label_smoothing:
        vocab_size = tf.shape(logits)[-1]
        off_value = label_smoothing / tf.cast(vocab_size, tf.float32)
        targets = tf.one_hot(labels, vocab_size, on_value=1.0 - label_smoothing + off_value,
                             off_value=off_value)  # (batch, len, vocab)
        return tf.nn.softmax_cross_entropy_with_logits(targets, logits)
    return sparse_cross_entropy(labels, logits)


def _labels_and_mask(labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    labels = tf.cast(labels, tf.int32)  # Keras may hand labels over as floats
    return labels, tf.not_equal(labels, PAD_ID)


def masked_cross_entropy(labels: tf.Tensor, logits: tf.Tensor,
                         label_smoothing: float = 0.0) -> tf.Tensor:
    """Mean cross-entropy over the real (non-pad) tokens of the batch: a scalar."""
    labels, mask = _labels_and_mask(labels)
    per_token = _per_token_cross_entropy(labels, tf.cast(logits, tf.float32), label_smoothing)
    # tf.where, not a product: whatever the logits hold at padding cannot leak in (not even NaN).
    total = tf.reduce_sum(tf.where(mask, per_token, 0.0))
    count = tf.reduce_sum(tf.cast(mask, tf.float32))
    return total / tf.maximum(count, 1.0)


class MaskedCrossEntropy(keras.losses.Loss):
    """`masked_cross_entropy` as a Keras loss object, so label smoothing can go to `compile`."""

    def __init__(self, label_smoothing: float = 0.0, name: str = "masked_cross_entropy",
                 **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        # A scalar: Keras' "sum over batch size" reduction of a scalar is the scalar itself.
        return masked_cross_entropy(y_true, y_pred, self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


class MaskedTokenAccuracy(keras.metrics.Metric):
    """Fraction of real target tokens whose arg-max prediction is right."""

    def __init__(self, name: str = "token_accuracy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        labels, mask = _labels_and_mask(y_true)
        predictions = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
        hits = tf.logical_and(tf.equal(predictions, labels), mask)
        self.correct.assign_add(tf.reduce_sum(tf.cast(hits, tf.float32)))
        self.total.assign_add(tf.reduce_sum(tf.cast(mask, tf.float32)))

    def result(self) -> tf.Tensor:
        return self.correct / tf.maximum(self.total, 1.0)


class MaskedPerplexity(keras.metrics.Metric):
    """exp(total cross-entropy / real tokens) over everything seen since the last reset."""

    def __init__(self, name: str = "perplexity", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.total_loss = self.add_variable(shape=(), initializer="zeros", name="total_loss")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        labels, mask = _labels_and_mask(y_true)
        per_token = _per_token_cross_entropy(labels, tf.cast(y_pred, tf.float32))
        self.total_loss.assign_add(tf.reduce_sum(tf.where(mask, per_token, 0.0)))
        self.total.assign_add(tf.reduce_sum(tf.cast(mask, tf.float32)))

    def result(self) -> tf.Tensor:
        return tf.exp(self.total_loss / tf.maximum(self.total, 1.0))


def perplexity(mean_cross_entropy: float) -> float:
    """exp of a mean cross-entropy in nats (inf rather than an overflow error)."""
    return math.exp(mean_cross_entropy) if mean_cross_entropy < 700 else math.inf
