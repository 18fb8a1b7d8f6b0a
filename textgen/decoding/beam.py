"""Beam search with a GNMT length penalty and an n-best list.

The model computes only the rows still searching: their hypotheses live flattened on axis 0,
slot i * beam_width + k for the i-th such row, and the model state is reordered after every step
with `tf.gather` (any model's state, see models/base.py). The same gather drops the rows that
are done, so a batch whose rows finish at different lengths costs what its live rows cost
(the `base` Transformer over Multi30k's 1,000 test sources, 32 a batch: rows were searching in
69% of the batch-steps, and beam 5 took 89 s instead of 125). Per-row search state (live
scores, the finished pool) covers the whole batch and is updated at the searching rows.

Each step (as in OpenNMT-py): the beam_width best continuations of the live hypotheses by total
log-probability are kept. A continuation ending in </s> leaves the beam for the finished pool
(its slot is dead for the next step and is refilled from the others); the pool keeps the
num_return best finished hypotheses by score = sum(log p) / ((5 + length) / 6) ** alpha. So the
length penalty decides between finished hypotheses, and beam_width 1 is exactly greedy search.
A batch row is done when nothing in its beam is alive, when it reached its length cap, or when
its pool is full and no live hypothesis can beat the pool's worst: with stopping
"current_length" (Hugging Face's default) if it ended now, c / penalty(length); with
"max_length" at any length (for alpha >= 0 a live total c can at best reach c / penalty(cap)),
which never stops while a later hypothesis could still win, at the cost of more steps. A done
row leaves the batch and its pool and live scores stay as they were.

Nothing is copied per step to keep histories: each step records, per slot, its parent slot,
token, log-probability and the attention of the step (by the slot that computed it); the chosen
hypotheses are read back by following parents from their last step (`collect_beam`, in numpy).
If fewer than num_return hypotheses finished (length cap, time limit), the best live ones fill
the list, marked unfinished. The list is ordered: finished first, each group by score.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import tensorflow as tf

from textgen.decoding.common import (
    BANNED_IDS,
    EOS_ID,
    Hypothesis,
    RawResult,
    State,
    StepFunction,
    any_length,
    ban,
    length_penalty,
    new_arrays,
    search_limits,
    stack_arrays,
    stop_reason,
    write_arrays,
)


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
    stopping: str = "current_length",
) -> dict[str, tf.Tensor]:
    """Beam search over a batch. beam_width and num_return are Python ints (shapes).
    max_lengths (batch,), optional: a length cap per row (each at most max_steps). stopping:
    "current_length" or "max_length", the bound on what a live hypothesis can still score
    (see the module docstring).

    Returns (time-major histories, steps = steps run): "parents", "tokens", "log_probs"
    (steps, batch, beam); "attention" {key: (steps, batch * beam, ...)}; the finished pool
    "pool_scores", "pool_steps", "pool_parents", "pool_log_probs" (batch, num_return), -inf
    scores where empty; "alive_log_probs" (batch, beam) (as they were when the row was done);
    "done" (batch,); "last_steps" (batch,): the step each done row ended at; "steps".
    """
    K, N = _checked_sizes(beam_width, num_return, stopping)
    start_ids, max_steps, deadline, batch, max_lengths = search_limits(start_ids, max_steps, deadline, max_lengths)
    alpha = tf.cast(alpha, tf.float32)
    # With stopping "max_length", the bound on what a live hypothesis can still score.
    max_penalty = length_penalty(max_lengths, alpha)  # (batch,)
    search = _Search(step_fn, K, N, alpha, eos_id, banned_ids, stopping, max_lengths, max_penalty, batch)
    rows, tokens, state, alive, pool, done, last_steps, record = search.first_step(start_ids, initial_state)
    histories = write_arrays(new_arrays(record), 0, record)

    def condition(step, rows, tokens, state, alive, pool, done, last_steps, histories):
        return (step < max_steps) & (tf.size(rows) > 0) & (tf.timestamp() < deadline)

    def body(step, rows, tokens, state, alive, pool, done, last_steps, histories):
        rows, tokens, state, alive, pool, done, last_steps, record = search.advance(
            step, rows, tokens, state, alive, pool, done, last_steps)
        return (step + 1, rows, tokens, state, alive, pool, done, last_steps,
                write_arrays(histories, step, record))

    loop_vars = (tf.constant(1), rows, tokens, state, alive, pool, done, last_steps, histories)
    # The searching rows, their tokens and their state shrink as rows finish (axis 0).
    invariants = (None, *any_length((rows, tokens, state)),
                  *tf.nest.map_structure(lambda _: None, loop_vars[4:]))
    steps, _, _, _, alive, pool, done, last_steps, histories = tf.while_loop(
        condition, body, loop_vars, shape_invariants=invariants)
    return _results(steps, alive, pool, done, last_steps, histories)


_NEG_INF = -math.inf


def _checked_sizes(beam_width: int, num_return: int | None, stopping: str) -> tuple[int, int]:
    """(K, N): the beam width and the pool size, checked with the stopping rule."""
    K = int(beam_width)
    N = int(num_return or beam_width)
    if not 1 <= N <= K:
        raise ValueError(f"num_return must be between 1 and beam_width ({K}), got {N}.")
    if stopping not in ("current_length", "max_length"):
        raise ValueError(f"stopping must be 'current_length' or 'max_length', got {stopping!r}.")
    return K, N


def _results(steps, alive, pool, done, last_steps, histories) -> dict[str, tf.Tensor]:
    """What `beam_search` returns, from its loop's final values."""
    stacked = stack_arrays(histories)
    attention = {k[len("attention/"):]: v for k, v in stacked.items() if k.startswith("attention/")}
    return {"parents": stacked["parents"], "tokens": stacked["tokens"],
            "log_probs": stacked["log_probs"], "attention": attention,
            "pool_scores": pool["scores"], "pool_steps": pool["steps"],
            "pool_parents": pool["parents"], "pool_log_probs": pool["log_probs"],
            "alive_log_probs": alive, "done": done, "last_steps": last_steps, "steps": steps}


@dataclasses.dataclass(frozen=True)
class _Search:
    """What stays fixed during one beam search, and its step. K: beam width; N: pool size."""

    step_fn: StepFunction
    K: int
    N: int
    alpha: tf.Tensor
    eos_id: int
    banned_ids: Any
    stopping: str
    max_lengths: tf.Tensor  # (batch,)
    max_penalty: tf.Tensor  # (batch,): the length penalty at each row's cap
    batch: tf.Tensor

    def first_step(self, start_ids, initial_state):
        """`advance` from the start: only slot 0 is live, so the first step computes one
        hypothesis a row and expands it to K."""
        K, N, batch = self.K, self.N, self.batch
        alive = tf.tile(tf.concat([[0.0], tf.fill([K - 1], -math.inf)], 0)[None, :], [batch, 1])
        pool = {"scores": tf.fill([batch, N], _NEG_INF), "steps": tf.zeros([batch, N], tf.int32),
                "parents": tf.zeros([batch, N], tf.int32), "log_probs": tf.zeros([batch, N])}
        return self.advance(0, tf.range(batch), start_ids, initial_state, alive, pool, tf.zeros([batch], tf.bool),
                            tf.zeros([batch], tf.int32), width=1)

    def advance(self, step, rows, tokens, state, alive, pool, done, last_steps, width=None):
        """One step for the batch rows still searching: rows (n,) int32, in order; tokens
        (n * width,) and state hold their hypotheses, row-major: width K, or 1 at the first
        step (each row's one hypothesis, computed once, not K times). alive, pool, done and
        last_steps cover the whole batch; only the searching rows' entries change. Returns the
        next step's rows, tokens and state (K hypotheses a row), the whole-batch search state
        and the step's record for the histories."""
        K, width = self.K, width or self.K
        logits, new_state, attention = self.step_fn(tokens, state)
        top_values, parents, next_tokens, token_log_probs = self._best_continuations(logits, rows, alive, width)
        ends = tf.logical_and(top_values > _NEG_INF, tf.equal(next_tokens, self.eos_id))
        new_pool = self._pool_with(step, rows, pool, ends, top_values, parents, token_log_probs)
        new_alive = tf.where(ends, _NEG_INF, top_values)
        now_done = self._done(step, rows, new_alive, new_pool["scores"])  # (n,)
        index = rows[:, None]  # (n, 1): scatter positions in the whole batch
        n = tf.shape(rows)[0]
        alive = tf.tensor_scatter_nd_update(alive, index, new_alive)
        pool = {k: tf.tensor_scatter_nd_update(pool[k], index, new_pool[k]) for k in pool}
        done = tf.tensor_scatter_nd_update(done, index, now_done)
        last_steps = tf.tensor_scatter_nd_update(last_steps, index, tf.fill([n], step))
        slots = tf.reshape(index * K + tf.range(width)[None, :], [-1, 1])  # (n * width, 1): flat rows
        record = {"parents": _spread(index, parents, self.batch),
                  "tokens": _spread(index, next_tokens, self.batch),
                  "log_probs": _spread(index, token_log_probs, self.batch),
                  **{"attention/" + k: _spread(slots, v, self.batch * K) for k, v in attention.items()}}
        rows, next_ids, new_state = self._compacted(rows, now_done, parents, next_tokens, state, new_state, width)
        return rows, next_ids, new_state, alive, pool, done, last_steps, record

    def _best_continuations(self, logits, rows, alive, width):
        """The K best continuations of each searching row's live hypotheses by total
        log-probability: their totals, parent slots, tokens and token log-probabilities (n, K)."""
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))  # (n * width, vocab)
        n = tf.shape(rows)[0]
        vocab = tf.shape(log_probs)[-1]
        scores = tf.reshape(ban(log_probs, self.banned_ids), [n, width, vocab])
        row_alive = tf.gather(alive, rows)[:, :width]  # (n, width)
        candidates = tf.reshape(row_alive[:, :, None] + scores, [n, width * vocab])
        top_values, top_index = tf.math.top_k(candidates, self.K)  # (n, K)
        token_log_probs = tf.gather(tf.reshape(log_probs, [n, width * vocab]), top_index, batch_dims=1)
        return top_values, top_index // vocab, top_index % vocab, token_log_probs  # parents in range(width)

    def _pool_with(self, step, rows, pool, ends, top_values, parents, token_log_probs):
        """The searching rows' pools (n, N) with this step's finished continuations merged in,
        keeping the N best scores."""
        n = tf.shape(rows)[0]
        ended_scores = tf.where(ends, top_values / length_penalty(step + 1, self.alpha), _NEG_INF)
        row_pool = {k: tf.gather(v, rows) for k, v in pool.items()}  # each (n, N)
        merged_scores = tf.concat([row_pool["scores"], ended_scores], axis=1)  # (n, N + K)
        pool_scores, order = tf.math.top_k(merged_scores, self.N)

        def merged(key, new):
            return tf.gather(tf.concat([row_pool[key], new], 1), order, batch_dims=1)

        return {"scores": pool_scores, "steps": merged("steps", tf.fill([n, self.K], step)),
                "parents": merged("parents", parents), "log_probs": merged("log_probs", token_log_probs)}

    def _done(self, step, rows, new_alive, pool_scores):
        """Which searching rows stop: nothing alive, the length cap reached, or a full pool that
        no live hypothesis can beat (by the stopping rule's bound)."""
        best_alive = tf.reduce_max(new_alive, axis=1)  # (n,)
        worst_kept = pool_scores[:, self.N - 1]
        if self.stopping == "current_length":
            penalty = length_penalty(step + 1, self.alpha)
        else:  # the bound at each row's cap
            penalty = tf.gather(self.max_penalty, rows)
        cannot_improve = worst_kept >= best_alive / penalty
        return (tf.logical_not(best_alive > _NEG_INF) | ((worst_kept > _NEG_INF) & cannot_improve)
                | (step + 1 >= tf.gather(self.max_lengths, rows)))

    def _compacted(self, rows, now_done, parents, next_tokens, state, new_state, width):
        """Rows done now leave the batch the model computes; the others' hypotheses are
        reordered by parent. Returns the next rows (m,), tokens (m * K,) and state."""
        K, n = self.K, tf.shape(rows)[0]
        kept = tf.cast(tf.where(tf.logical_not(now_done))[:, 0], tf.int32)  # (m,) of range(n)
        flat_parents = tf.reshape(tf.gather(parents, kept) + kept[:, None] * width, [-1])  # (m * K,)
        all_kept = tf.equal(tf.size(kept), n)
        first_slots = tf.repeat(kept * width, K)  # (m * K,): each kept row's first slot, K times

        def reorder(old, new):
            if new is not old:
                return tf.gather(new, flat_parents)
            # Passed through unchanged (per-source constants such as the encoder memory): equal
            # across a row's slots, so only the rows that left are dropped (and, after the
            # first step, each row's entry is repeated for its K hypotheses).
            if width == K:
                return tf.cond(all_kept, lambda: old, lambda: tf.gather(old, first_slots))
            return tf.gather(old, first_slots)

        new_state = tf.nest.map_structure(reorder, state, new_state)
        next_ids = tf.reshape(tf.gather(next_tokens, kept), [-1])  # (m * K,)
        return tf.gather(rows, kept), next_ids, new_state


def _spread(index: tf.Tensor, values: tf.Tensor, size) -> tf.Tensor:
    """values (n, ...) placed at rows index (n, 1) of a zero tensor (size, ...)."""
    spread = tf.scatter_nd(index, values, tf.concat([[size], tf.shape(values)[1:]], 0))
    return tf.ensure_shape(spread, tf.TensorShape([None]).concatenate(values.shape[1:]))


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
