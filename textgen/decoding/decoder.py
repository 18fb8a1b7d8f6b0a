"""Decoding a model: `decode_ids` (ids in, `RawResult`s out), `generate` (text in, `Generation`s
out), `teacher_forced_attention`, and `search` (any step function, for tests and tools).

The whole search loop (encode, prompt prefill, every step, the stopping tests including the
time limit) runs as one `tf.function` with a `tf.while_loop`, traced once per model and static
setting (strategy, beam width, n-best size, whether top-k / top-p are on; batch, source length,
prompt length and the numeric settings are dynamic, so there is no retracing between batches).

Measured (TF 2.21 CPU, 2 shared cores; tiny Transformer, model_dim 64, 1 layer, vocabulary
1,000; batch 16, source 20, 32 greedy steps, two runs):
    tf.while_loop inside one tf.function       1.64-1.68 ms per step   (chosen)
    Python loop calling a tf.function step     2.0-3.1 ms per step    (bare step + argmax +
                                               .numpy(), no finished-row bookkeeping)
    eager loop                                 30-62 ms per step
    first call (tracing)                       2.5-5 s per model and static setting
    beam width 4: 2.4-4.0 ms per step; sampling with top-k and top-p: 3.6-4.9 ms per step.

Token conventions: generated <pad>/<s> are impossible (see common.py); `output_ids` exclude
</s>; `tokens`, `log_probs` and attention rows include it when it was generated.
"""

from __future__ import annotations

import dataclasses
import math
import time
import weakref
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from textgen.decoding.beam import beam_search, collect_beam
from textgen.decoding.common import (
    BANNED_IDS,
    BOS_ID,
    EOS_ID,
    PAD_ID,
    Hypothesis,
    RawResult,
    State,
    StepFunction,
    any_length,
    collect_single,
    keep_rows,
)
from textgen.decoding.config import DecodingConfig
from textgen.decoding.greedy import greedy_search
from textgen.decoding.sampling import sample_search

# Decoder-only models are trained on windows of a raw token stream with no <s> (data.py), so a
# prompt is read as it is, from position 0; only an empty prompt starts from <s> (base.py: the
# token at step 0). True would put <s> before every prompt.
PROMPT_STARTS_WITH_BOS = False
# Source lengths are padded up to a multiple of this (fewer distinct shapes; padding is masked).
_SOURCE_LENGTH_MULTIPLE = 8


@dataclasses.dataclass(frozen=True)
class Generation:
    """One decoded input, as plain data for the UI.

    attention[key]: one row per generated token (axis 0, </s> included), then
      "cross_attention": (source_len,) per row for bahdanau/luong, (num_layers, num_heads,
          source_len) for transformer; real (non-pad) source tokens only, matching source_tokens.
      "self_attention": (num_layers, num_heads, num_inputs): over the decoder inputs
          `decoder_input_tokens` (seq2seq: [<s>] + tokens[:-1]; decoder-only: prompt +
          tokens[:-1], or [<s>] + tokens[:-1] for an empty prompt); row t is 0 beyond the input
          read at step t.
    For beam search, the attention of the best hypothesis (n_best[0]).
    """

    source: str  # the source text (decoder-only models: the prompt)
    source_tokens: list[str]  # token labels of the source / prompt as encoded (no <s>, </s>)
    output: str  # detokenised output (decoder-only models: the continuation only)
    output_ids: np.ndarray  # int32, generated ids without </s>
    tokens: list[str]  # labels of generated tokens, "</s>" last when finished
    log_probs: np.ndarray  # float32, one per entry of tokens
    score: float  # beam: length-penalised score of the best hypothesis; else sum(log_probs)
    finished: bool  # ended with </s>
    stop_reason: str  # "end", "max_length" or "time_limit"
    attention: dict[str, np.ndarray]
    n_best: list[Hypothesis]  # beam: the n-best list (text, ids, tokens, score, log_probs)
    decoder_input_tokens: list[str]  # labels of the self-attention columns
    # Source (prompt) tokens dropped to fit the model's maximum length: 0 when the whole input was read.
    source_truncated: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (arrays as lists)."""
        def plain(value):
            if isinstance(value, np.ndarray):
                return value.tolist()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            if dataclasses.is_dataclass(value):
                return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
            return value
        return plain(self)


# -- one search over a step function -------------------------------------------------------------

def run_strategy(step_fn: StepFunction, state: State, start_ids, config: DecodingConfig, *,
                 max_steps, eos_id: int = EOS_ID, deadline=None, example_ids=None,
                 banned_ids=BANNED_IDS, max_lengths=None) -> dict:
    """The strategy `config.strategy` on a step function; tensors out (graph or eager)."""
    if config.strategy == "greedy":
        return greedy_search(step_fn, state, start_ids, max_steps=max_steps, eos_id=eos_id,
                             deadline=deadline, banned_ids=banned_ids, max_lengths=max_lengths)
    if config.strategy == "beam":
        return beam_search(step_fn, state, start_ids, beam_width=config.beam_width,
                           num_return=config.n_best_size, alpha=config.length_penalty,
                           max_steps=max_steps, eos_id=eos_id, deadline=deadline,
                           banned_ids=banned_ids, max_lengths=max_lengths,
                           stopping=config.beam_stopping)
    return sample_search(
        step_fn, state, start_ids, max_steps=max_steps, seed=config.seed,
        example_ids=example_ids, temperature=config.temperature, top_k=config.top_k,
        top_p=config.top_p,
        use_top_k=config.top_k > 0, use_top_p=config.top_p < 1.0, eos_id=eos_id,
        deadline=deadline, banned_ids=banned_ids, max_lengths=max_lengths)


def collect(outputs: dict, config: DecodingConfig, *, max_steps,
            eos_id: int = EOS_ID) -> list[RawResult]:
    """RawResults from a strategy's outputs (tensors or numpy); max_steps: one cap or one per
    row (it tells "max_length" from "time_limit")."""
    outputs = tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, outputs)
    if config.strategy == "beam":
        return collect_beam(outputs, beam_width=config.beam_width, alpha=config.length_penalty,
                            max_steps=max_steps, eos_id=eos_id)
    return collect_single(outputs, max_steps=max_steps, eos_id=eos_id)


def search(step_fn: StepFunction, initial_state: State, start_ids, config: DecodingConfig, *,
           max_steps: int | None = None, eos_id: int = EOS_ID, deadline: float | None = None,
           example_ids=None, banned_ids=BANNED_IDS, compile: bool = False) -> list[RawResult]:
    """Decode with any step function (fake ones in tests). max_steps defaults to
    config.max_length; deadline (epoch seconds) defaults to now + config.time_limit_seconds.
    compile=True runs the loop in a fresh `tf.function` (eager otherwise), traced without
    AutoGraph: the step function branches with TensorFlow ops, never with Python on tensors."""
    max_steps = int(config.max_length if max_steps is None else max_steps)
    if deadline is None and config.time_limit_seconds > 0:
        deadline = time.time() + config.time_limit_seconds
    start_ids = tf.convert_to_tensor(start_ids, tf.int32)

    def run():
        return run_strategy(step_fn, initial_state, start_ids, config, max_steps=max_steps,
                            eos_id=eos_id, deadline=deadline, example_ids=example_ids,
                            banned_ids=banned_ids)

    outputs = tf.function(run, autograph=False)() if compile else run()
    return collect(outputs, config, max_steps=max_steps, eos_id=eos_id)


# -- models ----------------------------------------------------------------------------------------

def prefill(step_fn: StepFunction, state: State, prompt_ids: tf.Tensor,
            prompt_lengths: tf.Tensor) -> tuple[State, tf.Tensor]:
    """Feed each row's prompt but its last token through step_fn (rows of different lengths:
    a row's state stops changing after its own prompt). Returns the state and the start ids
    (each prompt's last token) for the search. prompt_ids (batch, prompt_len), right-padded.
    The state must keep its shapes through the prompt (a cache must hold it from the start:
    the Transformer language model's is sized to the prompt and the search together)."""
    num_columns = tf.shape(prompt_ids)[1]

    def body(i, state):
        _, new_state, _ = step_fn(prompt_ids[:, i], state)
        return i + 1, keep_rows(i >= prompt_lengths - 1, state, new_state)

    _, state = tf.while_loop(lambda i, _: i < num_columns - 1, body, (tf.constant(0), state),
                             shape_invariants=(None, any_length(state)))
    return state, tf.gather(prompt_ids, prompt_lengths - 1, batch_dims=1)


_COMPILED: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def _compiled_search(model, config: DecodingConfig, eos_id: int, attention: bool = True) -> Callable:
    """The tf.function decoding a batch with `model` (arguments: _RUN_SIGNATURE), cached per
    model and static settings. attention False: the step's attention is dropped before the
    search sees it, so nothing is recorded and the graph prunes what only attention needed."""
    key = _SearchKey.of(model, config, eos_id, attention)
    try:
        per_model = _COMPILED.setdefault(model, {})
        model_ref = weakref.ref(model)  # the cache entry must not keep its own key alive
    except TypeError:  # not weak-referenceable: no cache
        per_model = {}
        model_ref = lambda: model  # noqa: E731
    if key in per_model:
        return per_model[key]
    # autograph=False: the loop is tf.while_loop and every branch on a tensor is a TensorFlow op,
    # so AutoGraph would only re-parse our source (and the model's) in each new process: about
    # 5 s before a job's first decode, and converted copies left in /tmp by jobs.
    run = tf.function(_BatchSearch(model_ref, key).run, input_signature=_RUN_SIGNATURE,
                      autograph=False)
    per_model[key] = run
    return run


# What the compiled search takes: everything that changes between batches, as tensors (dynamic
# shapes: no retracing between batches).
_RUN_SIGNATURE = [
    tf.TensorSpec([None, None], tf.int32),  # source_ids
    tf.TensorSpec([None, None], tf.int32),  # prompt_ids: decoder_prefix (seq2seq: [<s>])
    tf.TensorSpec([None], tf.int32),  # prompt_lengths
    tf.TensorSpec([None], tf.int64),  # example_ids (sampling seeds)
    tf.TensorSpec([], tf.int32),  # max_steps
    tf.TensorSpec([None], tf.int32),  # max_lengths: each row's cap
    tf.TensorSpec([], tf.float64),  # deadline, epoch seconds
    tf.TensorSpec([], tf.float32),  # length_penalty alpha
    tf.TensorSpec([], tf.float32),  # temperature
    tf.TensorSpec([], tf.int32),  # top_k
    tf.TensorSpec([], tf.float32),  # top_p
    tf.TensorSpec([], tf.int64),  # seed
]


@dataclasses.dataclass(frozen=True)
class _SearchKey:
    """The static settings a compiled search is traced for (its cache key, per model)."""

    strategy: str
    beam_width: int  # 0 unless beam search
    n_best: int
    use_top_k: bool  # sampling with top_k > 0
    use_top_p: bool  # sampling with top_p < 1
    eos_id: int
    decoder_only: bool
    attention: bool
    beam_stopping: str  # "" unless beam search

    @classmethod
    def of(cls, model, config: DecodingConfig, eos_id: int, attention: bool) -> "_SearchKey":
        """The key of `config` (what a strategy does not read is left out) for `model`."""
        beam, sample = config.strategy == "beam", config.strategy == "sample"
        return cls(config.strategy, config.beam_width if beam else 0, config.n_best_size,
                   sample and config.top_k > 0, sample and config.top_p < 1.0, eos_id,
                   _is_decoder_only(model), attention, config.beam_stopping if beam else "")


@dataclasses.dataclass(frozen=True)
class _BatchSearch:
    """What stays fixed in one compiled search: the model (held weakly: the search is cached with
    the model as its key, and must let it go) and the static settings; `run` is the function
    traced, one method per stage."""

    model_ref: Callable[[], Any]
    key: _SearchKey

    @property
    def model(self) -> Any:
        return self.model_ref()

    def run(self, source_ids, prompt_ids, prompt_lengths, example_ids, max_steps, max_lengths,
            deadline, alpha, temperature, top_k, top_p, seed):
        """Encode, read the prompt, search (arguments: _RUN_SIGNATURE); the strategy's outputs."""
        state, start_ids = self.start(source_ids, prompt_ids, prompt_lengths, max_steps)
        return self.search(state, start_ids, example_ids, max_steps, max_lengths, deadline,
                           alpha, temperature, top_k, top_p, seed)

    def step_fn(self, token_ids, state):
        """The model's decode step, its attention dropped unless the key records it."""
        logits, new_state, step_attention = self.model.decode_step(token_ids, state)
        return logits, new_state, step_attention if self.key.attention else {}

    def start(self, source_ids, prompt_ids, prompt_lengths, max_steps):
        """The state before the first step and the start ids (batch,): after encoding, and after
        the prompt for decoder-only models (seq2seq: prompt_ids is [<s>])."""
        # The cache holds the prompt and every step: a search capped at 64 steps need not
        # carry (copy, attend over) the model's whole max_target_length.
        state = self.model.encode(source_ids, max_decode_length=tf.shape(prompt_ids)[1] + max_steps)
        if self.key.decoder_only:
            return prefill(self.step_fn, state, prompt_ids, prompt_lengths)
        return state, prompt_ids[:, 0]

    def search(self, state, start_ids, example_ids, max_steps, max_lengths, deadline, alpha,
               temperature, top_k, top_p, seed):
        """The key's strategy from `state` and `start_ids`."""
        key, eos_id = self.key, self.key.eos_id
        if key.strategy == "greedy":
            return greedy_search(self.step_fn, state, start_ids, max_steps=max_steps,
                                 eos_id=eos_id, deadline=deadline, max_lengths=max_lengths)
        if key.strategy == "beam":
            return beam_search(self.step_fn, state, start_ids, beam_width=key.beam_width,
                               num_return=key.n_best, alpha=alpha, max_steps=max_steps,
                               eos_id=eos_id, deadline=deadline, max_lengths=max_lengths,
                               stopping=key.beam_stopping)
        return sample_search(self.step_fn, state, start_ids, max_steps=max_steps, seed=seed,
                             example_ids=example_ids, temperature=temperature, top_k=top_k,
                             top_p=top_p, use_top_k=key.use_top_k, use_top_p=key.use_top_p,
                             eos_id=eos_id, deadline=deadline, max_lengths=max_lengths)


def _is_decoder_only(model) -> bool:
    config = getattr(model, "config", None)
    return bool(config is not None and str(getattr(config, "kind", "")).endswith("-lm"))


def _max_target_length(model) -> int | None:
    config = getattr(model, "config", None)
    return getattr(config, "max_target_length", None)


def decoder_prefix(prompt_ids: Sequence[int], bos_id: int = BOS_ID) -> list[int]:
    """What a decoder-only model reads before generating: the prompt, or [<s>] when it is empty
    (or always [<s>] + prompt with PROMPT_STARTS_WITH_BOS)."""
    prompt = [int(i) for i in prompt_ids]
    return [bos_id] + prompt if PROMPT_STARTS_WITH_BOS or not prompt else prompt


def _empty_result() -> RawResult:
    empty = Hypothesis(ids=np.zeros(0, np.int32), log_probs=np.zeros(0, np.float32), score=0.0,
                       finished=False)
    return RawResult(ids=empty.ids, log_probs=empty.log_probs, score=0.0, finished=False,
                     stop_reason="time_limit", attention={}, n_best=[empty])


def decode_ids(
    model,
    source_ids: np.ndarray,
    config: DecodingConfig,
    *,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
    prompt_ids: Sequence[Sequence[int]] | None = None,
    example_ids: Sequence[int] | None = None,
    deadline: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    attention: bool = True,
) -> list[RawResult]:
    """Decode many inputs, config.batch_size at a time, one `RawResult` per row.

    source_ids: int32 (num_inputs, source_len), right-padded with 0 (decoder-only models:
    (num_inputs, 0)). prompt_ids (decoder-only models): each input's prompt ids (no <s>; see
    `decoder_prefix`).
    example_ids key sampling randomness (default: row numbers). deadline: epoch seconds
    (default now + config.time_limit_seconds); inputs not started by then come back empty with
    stop_reason "time_limit". Attention is cut to each row's real source tokens and to the
    decoder inputs actually read; attention=False returns none (faster: for scoring, where
    only the text counts).
    """
    source_ids = np.asarray(source_ids, np.int32)
    if source_ids.ndim != 2:
        raise ValueError(
            f"source_ids must be 2-D (batch, source_len), got shape {source_ids.shape}.")
    count = source_ids.shape[0]
    if deadline is None and config.time_limit_seconds > 0:
        deadline = time.time() + config.time_limit_seconds
    prompts, example_ids = _prompts_and_example_ids(count, prompt_ids, example_ids, bos_id)
    source_lengths = (source_ids != PAD_ID).sum(axis=1)
    run = _compiled_search(model, config, eos_id, attention)
    capacity = _max_target_length(model)
    results: list[RawResult] = []
    for begin in range(0, count, config.batch_size):
        rows = slice(begin, min(begin + config.batch_size, count))
        batch_prompts = prompts[rows]
        caps = _row_caps(config, capacity, batch_prompts)
        if deadline is not None and time.time() >= deadline:
            results.extend(_empty_result() for _ in batch_prompts)
        else:
            results.extend(_decode_batch(run, config, source_ids[rows], source_lengths[rows],
                                         batch_prompts, example_ids[rows], caps, deadline, eos_id))
        if progress is not None:
            progress(len(results), count)
    return results


def _prompts_and_example_ids(count: int, prompt_ids, example_ids, bos_id: int):
    """Each input's decoder prefix (seq2seq: [<s>]) and example id (default: row numbers),
    checked to be one per source."""
    example_ids = np.arange(count) if example_ids is None else np.asarray(example_ids, np.int64)
    prompts = ([[bos_id]] * count if prompt_ids is None
               else [decoder_prefix(p, bos_id) for p in prompt_ids])
    if len(prompts) != count or len(example_ids) != count:
        raise ValueError(f"got {count} sources but {len(prompts)} prompts / "
                         f"{len(example_ids)} example ids.")
    return prompts, example_ids


def _row_caps(config: DecodingConfig, capacity: int | None, prompts: list[list[int]]) -> np.ndarray:
    """Each row's cap on generated tokens, int32 (batch,): config.max_length, less what the
    prompt takes of the model's context. The first generated step reads position
    len(prompt) - 1, the last readable position is max_target_length - 1."""
    caps = np.asarray([config.max_length if capacity is None
                       else min(config.max_length, capacity - len(p) + 1)
                       for p in prompts], np.int32)
    if caps.min() < 1:
        longest_prompt = max(len(p) for p in prompts)
        raise ValueError(f"a prompt of {longest_prompt - 1} tokens leaves no room to generate "
                         f"in a context of {capacity}.")
    return caps


def _decode_batch(run: Callable, config: DecodingConfig, source_ids: np.ndarray,
                  source_lengths: np.ndarray, prompts: list[list[int]], example_ids: np.ndarray,
                  caps: np.ndarray, deadline: float | None, eos_id: int) -> list[RawResult]:
    """One batch through the compiled search `run`: its RawResults, attention cut to each row's
    source and prompt."""
    longest_prompt = max(len(p) for p in prompts)
    max_steps = int(caps.max())
    batch_sources = _trim_padding(source_ids)
    prompt_array = np.zeros((len(prompts), longest_prompt), np.int32)
    for i, p in enumerate(prompts):
        prompt_array[i, :len(p)] = p
    outputs = run(
        tf.constant(batch_sources), tf.constant(prompt_array),
        tf.constant([len(p) for p in prompts], tf.int32),
        tf.constant(example_ids, tf.int64), tf.constant(max_steps, tf.int32),
        tf.constant(caps),
        tf.constant(math.inf if deadline is None else deadline, tf.float64),
        tf.constant(config.length_penalty, tf.float32),
        tf.constant(config.temperature, tf.float32), tf.constant(config.top_k, tf.int32),
        tf.constant(config.top_p, tf.float32), tf.constant(config.seed, tf.int64))
    batch_results = collect(outputs, config, max_steps=caps, eos_id=eos_id)
    return [_cut_attention(result, int(source_length), len(prompt))
            for result, source_length, prompt in zip(batch_results, source_lengths, prompts)]


def _trim_padding(source_ids: np.ndarray) -> np.ndarray:
    """Drop pad columns at the end, keeping a multiple of _SOURCE_LENGTH_MULTIPLE (fewer shapes)."""
    if source_ids.shape[1] == 0:
        return source_ids
    longest = int((source_ids != PAD_ID).sum(axis=1).max(initial=0))
    multiple = _SOURCE_LENGTH_MULTIPLE
    width = min(source_ids.shape[1], max(multiple, -(-longest // multiple) * multiple))
    return np.ascontiguousarray(source_ids[:, :width])


def _cut_attention(result: RawResult, source_length: int, prompt_length: int) -> RawResult:
    generated = len(result.log_probs)
    attention = {}
    for key, value in result.attention.items():
        if key == "cross_attention":
            value = value[..., :source_length]
        elif key == "self_attention":  # decoder inputs read: prompt (with <s>) + generated[:-1]
            value = value[..., :prompt_length - 1 + generated]
        attention[key] = np.ascontiguousarray(value)
    return dataclasses.replace(result, attention=attention)


# -- text ------------------------------------------------------------------------------------------

def generate(
    model,
    source_tokenizer,
    target_tokenizer,
    sources: Sequence[str],
    config: DecodingConfig,
    *,
    max_source_length: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    attention: bool = True,
) -> list[Generation]:
    """Decode texts. Each text is tokenised (the tokenizer normalises it), inputs are sorted by
    length into batches (less padding; results come back in input order), decoded and
    detokenised. Decoder-only models (`model.config.kind` ends with "-lm"): the text is the
    prompt, encoded with the target tokenizer and truncated from the left to fit the context;
    `output` is the continuation. source_tokenizer may be None for them. attention=False: the
    generations carry no attention (see `decode_ids`)."""
    sources = list(sources)
    decoder_only = _is_decoder_only(model)
    model_config = getattr(model, "config", None)
    if decoder_only:
        limit = getattr(model_config, "max_target_length", None)
        keep = None if limit is None else max(0, limit - 1)  # leaves room for 2 new tokens
        if max_source_length is not None:
            keep = max_source_length if keep is None else min(keep, max_source_length)
        full = target_tokenizer.encode_batch(sources)
        encoded = [ids[len(ids) - keep:] if keep is not None and len(ids) > keep else ids for ids in full]
        if keep == 0:
            encoded = [[] for _ in encoded]
        label_tokenizer = target_tokenizer
    else:
        limit = max_source_length or getattr(model_config, "max_source_length", None)
        full = source_tokenizer.encode_batch(sources)
        encoded = [ids[:limit] if limit else ids for ids in full]
        label_tokenizer = source_tokenizer
    dropped = [len(whole) - len(kept) for whole, kept in zip(full, encoded)]
    order = sorted(range(len(sources)), key=lambda i: len(encoded[i]))
    if decoder_only:
        source_ids = np.zeros((len(sources), 0), np.int32)
        prompt_ids = [encoded[i] for i in order]
    else:
        width = max((len(e) for e in encoded), default=0)
        source_ids = np.zeros((len(sources), max(width, 1)), np.int32)
        for row, i in enumerate(order):
            source_ids[row, :len(encoded[i])] = encoded[i]
        prompt_ids = None
    raw = decode_ids(model, source_ids, config, prompt_ids=prompt_ids, example_ids=order,
                     progress=progress, attention=attention)
    by_input: list[Generation | None] = [None] * len(sources)
    for result, i in zip(raw, order):
        by_input[i] = dataclasses.replace(
            _to_generation(result, sources[i], encoded[i], label_tokenizer, target_tokenizer, decoder_only),
            source_truncated=dropped[i])
    return by_input  # type: ignore[return-value]


def _labels(tokenizer, ids, finished: bool) -> list[str]:
    labels = tokenizer.token_labels([int(i) for i in ids])
    return labels + ["</s>"] if finished else labels


def _to_generation(result: RawResult, source: str, source_ids, label_tokenizer, target_tokenizer,
                   decoder_only: bool) -> Generation:
    n_best = [dataclasses.replace(h, text=target_tokenizer.decode(h.ids),
                                  tokens=_labels(target_tokenizer, h.ids, h.finished))
              for h in result.n_best]
    tokens = _labels(target_tokenizer, result.ids, result.finished)
    if decoder_only:
        prefix = decoder_prefix(source_ids)
        inputs = ["<s>"] * (len(prefix) - len(source_ids)) + target_tokenizer.token_labels(
            list(source_ids)) + tokens[:-1]
    else:
        inputs = ["<s>"] + tokens[:-1]
    return Generation(
        source=source, source_tokens=label_tokenizer.token_labels(list(source_ids)),
        output=target_tokenizer.decode(result.ids), output_ids=result.ids, tokens=tokens,
        log_probs=result.log_probs, score=result.score, finished=result.finished,
        stop_reason=result.stop_reason, attention=result.attention, n_best=n_best,
        decoder_input_tokens=inputs)


def teacher_forced_attention(model, source_tokenizer, target_tokenizer, source: str,
                             reference: str) -> dict[str, np.ndarray]:
    """Attention while the model reads `reference` as the target (teacher forcing).

    Row t of every array is the decoder position that predicts label t: labels are the
    reference tokens then </s>; decoder inputs are [<s>] + reference tokens. Arrays are
    query-first: "cross_attention" (target_len, source_len) or (target_len, num_layers,
    num_heads, source_len); "self_attention" (target_len, num_layers, num_heads, target_len);
    "encoder_self_attention" (source_len, num_layers, num_heads, source_len). Decoder-only
    models read source (the prompt) + reference as one sequence (`decoder_prefix`), and rows
    cover all of it.
    Sequences are truncated to the model's max_source_length / max_target_length.
    """
    config = model.config
    if _is_decoder_only(model):
        source_ids = np.zeros((1, 0), np.int32)
        prompt = target_tokenizer.encode(source)
        inputs = decoder_prefix(prompt + target_tokenizer.encode(reference))
    else:
        ids = source_tokenizer.encode(source)[:config.max_source_length]
        source_ids = np.asarray([ids or [PAD_ID]], np.int32)
        inputs = [BOS_ID] + target_tokenizer.encode(reference)
    target_input = np.asarray([inputs[:config.max_target_length]], np.int32)
    _, attention = model.call_with_attention(
        {"source_ids": tf.constant(source_ids), "target_input_ids": tf.constant(target_input)},
        training=False)
    out = {}
    for key, value in attention.items():
        value = np.asarray(value)[0]
        out[key] = np.moveaxis(value, 2, 0) if value.ndim == 4 else value
    return out


def attention_matrix(attention: dict[str, np.ndarray], key: str = "cross_attention", *,
                     layer: int = -1, head: int | None = None) -> np.ndarray | None:
    """One 2-D map (rows: generated tokens, columns: the attended tokens) from a Generation's
    attention: RNN attention as is; Transformer attention at `layer`, one `head` or (None) the
    mean over heads. None when the model has no such attention."""
    value = attention.get(key)
    if value is None:
        return None
    if value.ndim == 2:  # (out_len, source_len)
        return value
    selected = value[:, layer]  # (out_len, heads, columns)
    return selected.mean(axis=1) if head is None else selected[:, head]
