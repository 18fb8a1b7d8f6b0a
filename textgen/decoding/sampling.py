"""Random sampling with temperature, top-k and top-p (nucleus) truncation.

Randomness is stateless: the draw for row r at step t uses the seed pair
(seed, example_id[r] * 2**20 + t), so an input's output depends only on the seed, its example id
(its position in the `generate` call) and the model, not on which other inputs share its batch.
"""

from __future__ import annotations

import math

import tensorflow as tf

from textgen.decoding.common import BANNED_IDS, EOS_ID, State, StepFunction, single_hypothesis_search

# Steps per example in the seed space; max_length is at most 100,000 (DecodingConfig).
_STEPS_PER_EXAMPLE = 2**20


def filter_logits(logits: tf.Tensor, *, top_k=0, top_p=1.0, use_top_k: bool = True,
                  use_top_p: bool = True) -> tf.Tensor:
    """logits (batch, vocab) with everything outside the top-k and the top-p nucleus at -inf.

    top_k <= 0 keeps every token (ties with the k-th value are kept too). top_p keeps the
    smallest set of most likely tokens whose probability reaches top_p (always at least one).
    use_top_k / use_top_p (Python booleans) leave the operations out of the graph when off.
    """
    neg_inf = tf.constant(-math.inf, logits.dtype)
    if use_top_k:
        top_k = tf.convert_to_tensor(top_k, tf.int32)
        k = tf.minimum(tf.maximum(top_k, 1), tf.shape(logits)[-1])
        kth = tf.math.top_k(logits, k).values[:, -1:]  # (batch, 1)
        logits = tf.where((top_k > 0) & (logits < kth), neg_inf, logits)
    if use_top_p:
        top_p = tf.cast(top_p, logits.dtype)
        ordered = tf.sort(logits, axis=-1, direction="DESCENDING")  # (batch, vocab)
        before = tf.cumsum(tf.nn.softmax(ordered), axis=-1, exclusive=True)  # mass above each
        kept = tf.where(before < top_p, ordered, tf.constant(math.inf, logits.dtype))
        threshold = tf.reduce_min(kept, axis=-1, keepdims=True)  # smallest kept logit
        logits = tf.where(logits < threshold, neg_inf, logits)
    return logits


def make_pick_sample(*, seed, example_ids, temperature=1.0, top_k=0, top_p=1.0,
                     use_top_k: bool = True, use_top_p: bool = True):
    """A pick function for `single_hypothesis_search` that samples each row's next token."""
    seed = tf.cast(seed, tf.int64)
    example_ids = tf.cast(example_ids, tf.int64)

    def pick(step, scores):
        logits = filter_logits(scores / tf.cast(temperature, scores.dtype), top_k=top_k,
                               top_p=top_p, use_top_k=use_top_k, use_top_p=use_top_p)
        step = tf.cast(step, tf.int64)
        seeds = tf.stack([tf.fill(tf.shape(example_ids), seed),
                          example_ids * _STEPS_PER_EXAMPLE + step], axis=1)  # (batch, 2)
        def draw(row):
            return tf.random.stateless_categorical(row[0][None], 1, seed=row[1],
                                                   dtype=tf.int32)[0, 0]

        if tf.executing_eagerly():  # vectorized_map would trace a new graph at every step
            return tf.stack([draw((logits[i], seeds[i])) for i in range(int(tf.shape(logits)[0]))])
        return tf.vectorized_map(draw, (logits, seeds))

    return pick


def sample_search(
    step_fn: StepFunction,
    initial_state: State,
    start_ids: tf.Tensor,
    *,
    max_steps,
    seed=0,
    example_ids=None,
    temperature=1.0,
    top_k=0,
    top_p=1.0,
    use_top_k: bool = True,
    use_top_p: bool = True,
    eos_id: int = EOS_ID,
    deadline=None,
    banned_ids=BANNED_IDS,
    max_lengths=None,
) -> dict[str, tf.Tensor]:
    """Sampling of a batch; outputs as `single_hypothesis_search` describes. example_ids
    (batch,) key each row's randomness (default 0..batch-1)."""
    start_ids = tf.convert_to_tensor(start_ids, tf.int32)
    if example_ids is None:
        example_ids = tf.range(tf.shape(start_ids)[0])
    pick = make_pick_sample(seed=seed, example_ids=example_ids, temperature=temperature,
                            top_k=top_k, top_p=top_p, use_top_k=use_top_k, use_top_p=use_top_p)
    return single_hypothesis_search(step_fn, initial_state, start_ids, pick, max_steps=max_steps,
                                    eos_id=eos_id, deadline=deadline, banned_ids=banned_ids,
                                    max_lengths=max_lengths)
