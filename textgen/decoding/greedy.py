"""Greedy search: the most likely next token at every step."""

from __future__ import annotations

import tensorflow as tf

from textgen.decoding.common import BANNED_IDS, EOS_ID, State, StepFunction, single_hypothesis_search


def pick_greedy(step: tf.Tensor, scores: tf.Tensor) -> tf.Tensor:
    """scores (batch, vocab) -> the arg-max ids (batch,). Ties go to the lowest id."""
    return tf.argmax(scores, axis=-1, output_type=tf.int32)


def greedy_search(
    step_fn: StepFunction,
    initial_state: State,
    start_ids: tf.Tensor,
    *,
    max_steps,
    eos_id: int = EOS_ID,
    deadline=None,
    banned_ids=BANNED_IDS,
    max_lengths=None,
) -> dict[str, tf.Tensor]:
    """Greedy decoding of a batch; outputs as `single_hypothesis_search` describes."""
    return single_hypothesis_search(step_fn, initial_state, start_ids, pick_greedy,
                                    max_steps=max_steps, eos_id=eos_id, deadline=deadline,
                                    banned_ids=banned_ids, max_lengths=max_lengths)
