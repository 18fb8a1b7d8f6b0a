"""What every strategy shares: the step-function contract, plain-data results, and the
single-hypothesis loop that greedy search and sampling both run.

A strategy never sees a model. It takes

    step_fn(token_ids, state) -> (logits, new_state, attention)
        token_ids int32 (batch,); logits float32 (batch, vocab); state a dict of tensors with the
        batch on axis 0 (a tensor may change length between steps on any axis but its last,
        e.g. a cache that grows; beam search also drops finished rows from the batch);
        attention a dict of tensors with the batch on axis 0 (the same keys and shapes at
        every step; {} is fine)
    initial_state            the state before the first step (after `encode` and any prompt)
    start_ids int32 (batch,) the token fed at the first step (<s>, or a prompt's last token)

and returns a dict of tensors, so it runs inside `tf.function` (decoder.py compiles the whole
loop) or eagerly (tests with fake step functions). The `collect_*` functions turn those tensors,
as numpy, into `RawResult`s.

Conventions, the same for every strategy:
- <pad> and <s> are never generated (their scores are set to -inf before choosing).
- Reported log-probabilities are the model's own (log-softmax of the logits, before temperature,
  top-k or top-p), so outputs of different strategies are comparable. One per generated token,
  </s> included when it was generated.
- A row that emitted </s> is finished: it emits <pad> with log-probability 0 from then on and
  its attention is zero (unlike keras-hub samplers, which keep writing). A row at its length
  cap stops the same way, unfinished. In greedy search and sampling the step function still
  runs on a stopped row (the batch moves together) and what it computes there is discarded;
  its state is not frozen, since selecting old rows of a Transformer's cache every step cost
  more than the step itself, so a step function must accept being stepped past a row's end
  (the Transformer writes its last slot again). Beam search drops done rows instead (its
  reorder gathers the state every step anyway).
- The loop stops when every row finished, after max_steps steps, or at the first step that
  starts after `deadline` (seconds since the epoch, compared with `tf.timestamp()` inside the
  graph, so a time limit needs no Python between steps).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np
import tensorflow as tf

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
# Never generated: <pad> marks "after the end" and <s> only starts a sequence.
BANNED_IDS = (PAD_ID, BOS_ID)

State = dict[str, tf.Tensor]
StepFunction = Callable[[tf.Tensor, State], tuple[tf.Tensor, State, dict[str, tf.Tensor]]]


@dataclasses.dataclass(frozen=True)
class Hypothesis:
    """One output sequence. `ids` excludes </s>; `log_probs` has one entry per generated token,
    </s> included when `finished` (so len(log_probs) == len(ids) + finished)."""

    ids: np.ndarray  # int32 (num_ids,)
    log_probs: np.ndarray  # float32 (num_generated,)
    score: float  # beam: sum(log_probs) / GNMT length penalty; greedy/sample: sum(log_probs)
    finished: bool  # ended with </s> (else stopped at the length cap or the time limit)
    text: str = ""  # filled in by `generate`
    tokens: list[str] = dataclasses.field(default_factory=list)  # labels of generated tokens


@dataclasses.dataclass(frozen=True)
class RawResult:
    """Decoded ids of one input, before detokenisation (what `decode_ids` returns).

    attention[key] has one row per generated token on axis 0 (</s> included), then the shape
    the step function returns without its batch axis; for beam search, the best hypothesis's.
    """

    ids: np.ndarray  # int32 (num_ids,), without <s> and </s>
    log_probs: np.ndarray  # float32 (num_generated,)
    score: float
    finished: bool
    stop_reason: str  # "end" (</s>), "max_length" (the cap) or "time_limit"
    attention: dict[str, np.ndarray]
    n_best: list[Hypothesis]  # beam: sorted (finished first, then by score); else [the output]


def length_penalty(length, alpha):
    """GNMT length penalty ((5 + length) / 6) ** alpha (Wu et al. 2016). Works on numbers and
    tensors; length counts generated tokens, </s> included."""
    if isinstance(length, (int, float)) and isinstance(alpha, (int, float)):
        return ((5.0 + length) / 6.0) ** alpha
    length = tf.cast(length, tf.float32)
    return tf.pow((5.0 + length) / 6.0, tf.cast(alpha, tf.float32))


def ban(log_probs: tf.Tensor, banned_ids) -> tf.Tensor:
    """log_probs (batch, vocab) with the banned columns set to -inf."""
    if not banned_ids:
        return log_probs
    if log_probs.shape[-1] is not None:  # a model's vocabulary is static: one Add of a constant row
        penalty = np.zeros(log_probs.shape[-1], np.float32)  # (vocab,)
        penalty[[i for i in banned_ids if i < len(penalty)]] = -np.inf
        return log_probs + tf.constant(penalty, log_probs.dtype)
    vocab = tf.shape(log_probs)[-1]
    banned_column = tf.constant(list(banned_ids), tf.int32)[None, :]  # (1, num_banned)
    banned = tf.reduce_any(tf.equal(tf.range(vocab)[:, None], banned_column), axis=1)  # (vocab,)
    return tf.where(banned[None, :], tf.constant(-math.inf, log_probs.dtype), log_probs)


def _row_mask(mask: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """mask (batch,) reshaped to broadcast against `like` (batch, ...)."""
    return tf.reshape(mask, [-1] + [1] * (like.shape.rank - 1))


def keep_rows(keep: tf.Tensor, old, new):
    """Structure of tensors: `old` where keep (batch,) is True, `new` elsewhere. A tensor the
    step passed through unchanged (the same object, e.g. a Transformer's cross-attention keys)
    is returned as is: no copy per step."""
    return tf.nest.map_structure(lambda o, n: o if n is o else tf.where(_row_mask(keep, n), o, n), old, new)


def zero_rows(mask: tf.Tensor, values: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    return {k: tf.where(_row_mask(mask, v), tf.zeros_like(v), v) for k, v in values.items()}


def as_deadline(deadline) -> tf.Tensor:
    """Epoch seconds as float64 (float32 would round them to minutes); None: no deadline."""
    if deadline is None:
        return tf.constant(math.inf, tf.float64)
    if isinstance(deadline, (int, float)):
        return tf.constant(deadline, tf.float64)
    return tf.cast(deadline, tf.float64)


def _time_left(deadline: tf.Tensor) -> tf.Tensor:
    return tf.less(tf.timestamp(), deadline)


def any_length(structure):
    """Shape invariants for a tf.while_loop over `structure` (tensors): each tensor's static
    shape with every axis but the last free to change (a state's batch axis shrinks when beam
    search drops finished rows; a Transformer's cache grows). Rank-1 tensors: fully free."""
    def relaxed(tensor):
        shape = tensor.shape
        if shape.rank is None or shape.rank == 0:
            return shape
        return tf.TensorShape([None] * (shape.rank - 1)).concatenate(
            shape[-1:] if shape.rank > 1 else [None])
    return tf.nest.map_structure(relaxed, structure)


def new_arrays(values: dict[str, tf.Tensor]) -> dict[str, tf.TensorArray]:
    """One growable TensorArray per tensor, for per-step histories."""
    return {k: tf.TensorArray(v.dtype, size=0, dynamic_size=True, element_shape=v.shape)
            for k, v in values.items()}


def write_arrays(arrays: dict[str, tf.TensorArray], index, values: dict[str, tf.Tensor]):
    return {k: arrays[k].write(index, values[k]) for k in arrays}


def stack_arrays(arrays: dict[str, tf.TensorArray]) -> dict[str, tf.Tensor]:
    return {k: a.stack() for k, a in arrays.items()}


PickFunction = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def search_limits(start_ids, max_steps, deadline, max_lengths):
    """A search's inputs as tensors: start_ids (batch,) int32, max_steps int32, the deadline (see
    `as_deadline`), the batch size, and each row's cap (batch,): max_lengths, at most max_steps,
    or max_steps for every row when None."""
    start_ids = tf.convert_to_tensor(start_ids, tf.int32)
    max_steps = tf.convert_to_tensor(max_steps, tf.int32)
    batch = tf.shape(start_ids)[0]
    max_lengths = (tf.fill([batch], max_steps) if max_lengths is None
                   else tf.minimum(tf.cast(max_lengths, tf.int32), max_steps))
    return start_ids, max_steps, as_deadline(deadline), batch, max_lengths


def single_hypothesis_search(
    step_fn: StepFunction,
    initial_state: State,
    start_ids: tf.Tensor,
    pick: PickFunction,
    *,
    max_steps,
    eos_id: int = EOS_ID,
    deadline=None,
    banned_ids=BANNED_IDS,
    max_lengths=None,
) -> dict[str, tf.Tensor]:
    """The loop of greedy search and sampling: one hypothesis per row, `pick(step, scores)`
    chooses the next ids (batch,) from scores (batch, vocab): the model's log-probabilities with
    banned tokens at -inf.

    max_lengths (batch,), optional: a cap per row (each at most max_steps), e.g. what is left
    of a language model's context after its prompt; a row at its cap stops like a finished one.

    Returns time-major tensors: "ids" (steps, batch) int32, "log_probs" (steps, batch),
    "attention" {key: (steps, batch, ...)}, plus "lengths" (batch,) (tokens generated, </s>
    included), "finished" (batch,) and "steps" (scalar: steps run).
    """
    start_ids, max_steps, deadline, batch, max_lengths = search_limits(start_ids, max_steps, deadline, max_lengths)
    search = _SingleSearch(step_fn, pick, eos_id, banned_ids, max_steps, max_lengths, deadline)
    tokens, state, finished, lengths, histories = search.first_step(start_ids, initial_state, batch)
    loop_vars = (tf.constant(1), tokens, state, finished, lengths, histories)
    # The state may change length between steps (see the step-function contract above).
    invariants = (None, None, any_length(state), None, None,
                  tf.nest.map_structure(lambda _: None, histories))
    steps, _, _, finished, lengths, histories = tf.while_loop(
        search.condition, search.body, loop_vars, shape_invariants=invariants)
    return _single_results(steps, finished, lengths, histories)


@dataclasses.dataclass(frozen=True)
class _SingleSearch:
    """What stays fixed during one `single_hypothesis_search`, and its step."""

    step_fn: StepFunction
    pick: PickFunction
    eos_id: int
    banned_ids: Any
    max_steps: tf.Tensor  # int32 scalar
    max_lengths: tf.Tensor  # (batch,): each row's cap, at most max_steps
    deadline: tf.Tensor  # float64 epoch seconds (inf: none)

    def first_step(self, start_ids, initial_state, batch):
        """`advance` from the start. The first step runs outside the loop: its attention tells
        which histories to keep. Returns the loop's tokens, state, finished, lengths and
        histories (the first step written)."""
        finished = tf.zeros([batch], tf.bool)
        lengths = tf.zeros([batch], tf.int32)
        tokens, state, finished, lengths, token_log_probs, attention = self.advance(
            0, start_ids, initial_state, finished, lengths)
        record = {"ids": tokens, "log_probs": token_log_probs, **attention}
        histories = write_arrays(new_arrays(record), 0, record)
        return tokens, state, finished, lengths, histories

    def advance(self, step, tokens, state, finished, lengths):
        """One step of every row: the next ids (batch,), the new state, finished and lengths,
        the chosen tokens' log-probabilities (batch,) and the step's attention; a stopped row
        emits <pad> with log-probability 0 and zero attention."""
        stopped = tf.logical_or(finished, lengths >= self.max_lengths)
        logits, new_state, attention = self.step_fn(tokens, state)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))  # (batch, vocab)
        next_ids = tf.cast(self.pick(step, ban(log_probs, self.banned_ids)), tf.int32)
        next_ids = tf.where(stopped, PAD_ID, next_ids)
        token_log_probs = tf.where(stopped, 0.0, tf.gather(log_probs, next_ids, batch_dims=1))
        attention = zero_rows(stopped, attention)
        lengths = lengths + tf.cast(tf.logical_not(stopped), tf.int32)
        finished = tf.logical_or(finished, tf.equal(next_ids, self.eos_id))
        return next_ids, new_state, finished, lengths, token_log_probs, attention

    def condition(self, step, tokens, state, finished, lengths, histories):
        """The loop goes on while steps are left, a row has not stopped and time is left."""
        stopped = tf.logical_or(finished, lengths >= self.max_lengths)
        return tf.logical_and(
            tf.logical_and(step < self.max_steps, tf.logical_not(tf.reduce_all(stopped))),
            _time_left(self.deadline))

    def body(self, step, tokens, state, finished, lengths, histories):
        """One loop iteration: `advance`, then its record written to the histories at `step`."""
        tokens, state, finished, lengths, token_log_probs, attention = self.advance(
            step, tokens, state, finished, lengths)
        histories = write_arrays(
            histories, step, {"ids": tokens, "log_probs": token_log_probs, **attention})
        return step + 1, tokens, state, finished, lengths, histories


def _single_results(steps, finished, lengths, histories) -> dict[str, tf.Tensor]:
    """What `single_hypothesis_search` returns, from its loop's final values."""
    stacked = stack_arrays(histories)
    ids, log_probs = stacked.pop("ids"), stacked.pop("log_probs")
    return {"ids": ids, "log_probs": log_probs, "attention": stacked, "lengths": lengths,
            "finished": finished, "steps": steps}


def collect_single(outputs: dict, *, max_steps, eos_id: int = EOS_ID) -> list[RawResult]:
    """`RawResult`s from single_hypothesis_search's outputs (numpy values). max_steps: the cap,
    one for all rows or one per row."""

    caps = np.broadcast_to(np.asarray(max_steps), outputs["lengths"].shape)
    results = []
    for row, (length, finished) in enumerate(zip(outputs["lengths"], outputs["finished"])):
        length, finished = int(length), bool(finished)
        tokens = np.asarray(outputs["ids"][:length, row], np.int32)
        log_probs = np.asarray(outputs["log_probs"][:length, row], np.float32)
        ids = tokens[:-1] if finished else tokens
        score = float(log_probs.sum())
        reason = stop_reason(finished, length, int(caps[row]))
        attention = {k: np.asarray(v[:length, row]) for k, v in outputs["attention"].items()}
        best = Hypothesis(ids=ids, log_probs=log_probs, score=score, finished=finished)
        results.append(RawResult(ids=ids, log_probs=log_probs, score=score, finished=finished,
                                 stop_reason=reason, attention=attention, n_best=[best]))
    return results


def stop_reason(finished: bool, length: int, cap: int) -> str:
    if finished:
        return "end"
    return "max_length" if length >= cap else "time_limit"
