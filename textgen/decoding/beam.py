"""Beam search with a GNMT length penalty and an n-best list.

Hypotheses of a batch live flattened on axis 0, row b * beam_width + k, and the model state is
reordered after every step with `tf.gather` (any model's state, see models/base.py).

Each step (as in OpenNMT-py): the beam_width best continuations of the live hypotheses by total
log-probability are kept. A continuation ending in </s> leaves the beam for the finished pool
(its slot is dead for the next step and is refilled from the others); the pool keeps the
num_return best finished hypotheses by score = sum(log p) / ((5 + length) / 6) ** alpha. So the
length penalty decides between finished hypotheses, and beam_width 1 is exactly greedy search.
A batch row is done when nothing in its beam is alive, when it reached its length cap, or when
its pool is full and no live hypothesis can still beat the pool's worst (for alpha >= 0 a live
total c can at best reach c / penalty(cap)); a done row is frozen (pool and live scores; its
model state is not: what the step computes for it is never read, see common.py).

Nothing is copied per step to keep histories: each step records, per slot, its parent slot,
token, log-probability and the attention of the step (by the slot that computed it); the chosen
hypotheses are read back by following parents from their last step (`collect_beam`, in numpy).
If fewer than num_return hypotheses finished (length cap, time limit), the best live ones fill
the list, marked unfinished. The list is ordered: finished first, each group by score.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from textgen.decoding.common import (BANNED_IDS, EOS_ID, Hypothesis, RawResult, State,
                                     StepFunction, as_deadline, ban, length_penalty,
                                     new_arrays, stack_arrays, stop_reason, write_arrays)


def beam_search(
    step_fn: StepFunction,
    initial_state: State,
    start_ids: tf.Tensor,
    *,
    beam_width: int,
    num_return: int | None = None,
    alpha=0.6,
    max_steps,
    eos_id: int = EOS_ID,
    deadline=None,
    banned_ids=BANNED_IDS,
    max_lengths=None,
) -> dict[str, tf.Tensor]:
    """Beam search over a batch. beam_width and num_return are Python ints (shapes).
    max_lengths (batch,), optional: a length cap per row (each at most max_steps).

    Returns (time-major histories, steps = steps run): "parents", "tokens", "log_probs"
    (steps, batch, beam); "attention" {key: (steps, batch * beam, ...)}; the finished pool
    "pool_scores", "pool_steps", "pool_parents", "pool_log_probs" (batch, num_return), -inf
    scores where empty; "alive_log_probs" (batch, beam) (as they were when the row was done);
    "done" (batch,); "last_steps" (batch,): the step each done row ended at; "steps".
    """
    K = int(beam_width)
    N = int(num_return or beam_width)
    if not 1 <= N <= K:
        raise ValueError(f"num_return must be between 1 and beam_width ({K}), got {N}.")
    start_ids = tf.convert_to_tensor(start_ids, tf.int32)
    max_steps = tf.convert_to_tensor(max_steps, tf.int32)
    deadline = as_deadline(deadline)
    alpha = tf.cast(alpha, tf.float32)
    batch = tf.shape(start_ids)[0]
    neg_inf = tf.constant(-math.inf, tf.float32)
    offsets = (tf.range(batch) * K)[:, None]  # (batch, 1): first flat row of each batch row
    max_lengths = (tf.fill([batch], max_steps) if max_lengths is None
                   else tf.minimum(tf.cast(max_lengths, tf.int32), max_steps))
    # The bound on what a live hypothesis can still score, for the stopping test.
    max_penalty = length_penalty(max_lengths, alpha)  # (batch,)

    def advance(step, tokens, state, alive, pool, done, last_steps):
        logits, new_state, attention = step_fn(tokens, state)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))  # (batch * K, vocab)
        vocab = tf.shape(log_probs)[-1]
        scores = tf.reshape(ban(log_probs, banned_ids), [batch, K, vocab])
        candidates = tf.reshape(alive[:, :, None] + scores, [batch, K * vocab])
        top_values, top_index = tf.math.top_k(candidates, K)  # (batch, K)
        parents = top_index // vocab
        next_tokens = top_index % vocab
        token_log_probs = tf.gather(tf.reshape(log_probs, [batch, K * vocab]), top_index,
                                    batch_dims=1)
        live = top_values > neg_inf
        ends = tf.logical_and(live, tf.equal(next_tokens, eos_id))
        # Finished continuations join the pool, which keeps the N best scores.
        ended_scores = tf.where(ends, top_values / length_penalty(step + 1, alpha), neg_inf)
        merged_scores = tf.concat([pool["scores"], ended_scores], axis=1)  # (batch, N + K)
        pool_scores, order = tf.math.top_k(merged_scores, N)
        new_pool = {
            "scores": pool_scores,
            "steps": tf.gather(tf.concat([pool["steps"], tf.fill([batch, K], step)], 1), order,
                               batch_dims=1),
            "parents": tf.gather(tf.concat([pool["parents"], parents], 1), order, batch_dims=1),
            "log_probs": tf.gather(tf.concat([pool["log_probs"], token_log_probs], 1), order,
                                   batch_dims=1),
        }
        new_alive = tf.where(ends, neg_inf, top_values)
        # Done rows change nothing (what their slots compute from now on is never read).
        pool = {k: tf.where(done[:, None], pool[k], new_pool[k]) for k in pool}
        new_alive = tf.where(done[:, None], alive, new_alive)
        best_alive = tf.reduce_max(new_alive, axis=1)  # (batch,)
        full = pool["scores"][:, N - 1] > neg_inf
        cannot_improve = pool["scores"][:, N - 1] >= best_alive / max_penalty
        now_done = (tf.logical_not(best_alive > neg_inf) | (full & cannot_improve)
                    | (step + 1 >= max_lengths))
        last_steps = tf.where(done, last_steps, step)
        done = done | now_done
        flat_parents = tf.reshape(parents + offsets, [-1])  # (batch * K,)
        # Entries the step passed through unchanged (the same object: per-source constants such
        # as the encoder memory) are equal across a row's K slots, so reordering them is a no-op.
        new_state = tf.nest.map_structure(lambda o, n: n if n is o else tf.gather(n, flat_parents),
                                          state, new_state)
        record = {"parents": parents, "tokens": next_tokens, "log_probs": token_log_probs,
                  **{"attention/" + k: v for k, v in attention.items()}}
        return tf.reshape(next_tokens, [-1]), new_state, new_alive, pool, done, last_steps, record

    state = tf.nest.map_structure(lambda t: tf.repeat(t, K, axis=0), initial_state)
    tokens = tf.repeat(start_ids, K)
    # Only slot 0 is live at first, so the first step expands one hypothesis, not K copies.
    alive = tf.tile(tf.concat([[0.0], tf.fill([K - 1], -math.inf)], 0)[None, :], [batch, 1])
    pool = {"scores": tf.fill([batch, N], neg_inf), "steps": tf.zeros([batch, N], tf.int32),
            "parents": tf.zeros([batch, N], tf.int32), "log_probs": tf.zeros([batch, N])}
    done = tf.zeros([batch], tf.bool)
    last_steps = tf.zeros([batch], tf.int32)
    tokens, state, alive, pool, done, last_steps, record = advance(
        0, tokens, state, alive, pool, done, last_steps)
    histories = write_arrays(new_arrays(record), 0, record)

    def condition(step, tokens, state, alive, pool, done, last_steps, histories):
        return (step < max_steps) & tf.logical_not(tf.reduce_all(done)) & (
            tf.timestamp() < deadline)

    def body(step, tokens, state, alive, pool, done, last_steps, histories):
        tokens, state, alive, pool, done, last_steps, record = advance(
            step, tokens, state, alive, pool, done, last_steps)
        return (step + 1, tokens, state, alive, pool, done, last_steps,
                write_arrays(histories, step, record))

    steps, _, _, alive, pool, done, last_steps, histories = tf.while_loop(
        condition, body,
        (tf.constant(1), tokens, state, alive, pool, done, last_steps, histories))
    stacked = stack_arrays(histories)
    attention = {k[len("attention/"):]: v for k, v in stacked.items() if k.startswith("attention/")}
    return {"parents": stacked["parents"], "tokens": stacked["tokens"],
            "log_probs": stacked["log_probs"], "attention": attention,
            "pool_scores": pool["scores"], "pool_steps": pool["steps"],
            "pool_parents": pool["parents"], "pool_log_probs": pool["log_probs"],
            "alive_log_probs": alive, "done": done, "last_steps": last_steps, "steps": steps}


def collect_beam(outputs: dict, *, beam_width: int, alpha: float, max_steps,
                 eos_id: int = EOS_ID) -> list[RawResult]:
    """`RawResult`s from beam_search's outputs (numpy values): the n-best list of each row and,
    for the best hypothesis, its attention. max_steps: the cap, one or one per row."""
    K = int(beam_width)
    steps = int(outputs["steps"])
    caps = np.broadcast_to(np.asarray(max_steps), outputs["done"].shape)
    parents, tokens, log_probs = outputs["parents"], outputs["tokens"], outputs["log_probs"]
    attention = outputs["attention"]

    def trace(row: int, last_step: int, slot: int):
        """Tokens, log-probs and computing slots of the hypothesis in `slot` after `last_step`."""
        ids, lps, computed_by = [], [], []
        for step in range(last_step, -1, -1):
            ids.append(int(tokens[step, row, slot]))
            lps.append(float(log_probs[step, row, slot]))
            slot = int(parents[step, row, slot])
            computed_by.append(slot)
        return ids[::-1], lps[::-1], computed_by[::-1]

    results = []
    for row in range(outputs["pool_scores"].shape[0]):
        candidates = []  # (finished, score, ids, log_probs, computing slots)
        for j, score in enumerate(outputs["pool_scores"][row]):
            if not np.isfinite(score):
                continue
            end, parent = int(outputs["pool_steps"][row, j]), int(outputs["pool_parents"][row, j])
            ids, lps, slots = trace(row, end - 1, parent) if end > 0 else ([], [], [])
            ids, lps = ids + [eos_id], lps + [float(outputs["pool_log_probs"][row, j])]
            candidates.append((True, float(score), ids, lps, slots + [parent]))
        alive = outputs["alive_log_probs"][row]
        last = int(outputs["last_steps"][row]) if outputs["done"][row] else steps - 1
        if len(candidates) < len(outputs["pool_scores"][row]) and last >= 0:
            for slot in np.argsort(-alive, kind="stable"):
                if np.isfinite(alive[slot]):
                    ids, lps, slots = trace(row, last, int(slot))
                    candidates.append((False, float(alive[slot]) / length_penalty(last + 1, alpha),
                                       ids, lps, slots))
        candidates.sort(key=lambda c: (not c[0], -c[1]))
        candidates = candidates[:len(outputs["pool_scores"][row])]
        n_best = [Hypothesis(ids=np.asarray(ids[:-1] if fin else ids, np.int32),
                             log_probs=np.asarray(lps, np.float32), score=score, finished=fin)
                  for fin, score, ids, lps, _ in candidates]
        if not candidates:  # nothing decoded (time ran out before the first step)
            empty = Hypothesis(ids=np.zeros(0, np.int32), log_probs=np.zeros(0, np.float32),
                               score=0.0, finished=False)
            results.append(RawResult(ids=empty.ids, log_probs=empty.log_probs, score=0.0,
                                     finished=False, stop_reason="time_limit", attention={},
                                     n_best=[empty]))
            continue
        best = n_best[0]
        slots = candidates[0][4]
        rows = np.asarray(slots, np.int64) + row * K
        steps_taken = np.arange(len(rows))
        best_attention = {k: np.asarray(v[steps_taken, rows]) for k, v in attention.items()}
        reason = stop_reason(best.finished, len(best.log_probs), int(caps[row]))
        results.append(RawResult(ids=best.ids, log_probs=best.log_probs, score=best.score,
                                 finished=best.finished, stop_reason=reason,
                                 attention=best_attention, n_best=n_best))
    return results
