"""Decoding strategies, driven by fake step functions with known probabilities, then by the real
tiny model families (untrained: what matters is that decoding computes what the model says)."""

from __future__ import annotations

import dataclasses
import functools
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from textgen.core.errors import ConfigError  # noqa: E402
from textgen.data.config import TokenizerConfig  # noqa: E402
from textgen.decoding import (  # noqa: E402
    DecodingConfig,
    decode_ids,
    filter_logits,
    generate,
    greedy_search,
    length_penalty,
    search,
    teacher_forced_attention,
)
from textgen.decoding.decoder import decoder_prefix  # noqa: E402

PAD, UNK, BOS, EOS = 0, 1, 2, 3
VOCAB = 8


# -- fake step functions ------------------------------------------------------------------------

class TreeStep:
    """Known probabilities per prefix: tree[prefix] = {token: probability}. A prefix not in the
    tree always ends (</s> with probability 1). Attention: one-hot on the node id (mod 5), so the
    attention of a hypothesis tells which prefixes it went through. Records the states it sees."""

    def __init__(self, tree, vocab=VOCAB, source_len=5):
        self.prefixes = [()] + [p for p in tree if p != ()]
        self.index = {p: i for i, p in enumerate(self.prefixes)}
        sink = len(self.prefixes)
        table = np.full((sink + 1, vocab), -30.0, np.float32)
        child = np.full((sink + 1, vocab), sink, np.int32)
        table[sink, EOS] = 0.0
        for prefix, dist in tree.items():
            for token, p in dist.items():
                table[self.index[prefix], token] = np.log(p)
                child[self.index[prefix], token] = self.index.get(prefix + (token,), sink)
        self.table, self.child, self.source_len = tf.constant(table), tf.constant(child), source_len

    def initial_state(self, batch, prefixes=None):
        nodes = [0] * batch if prefixes is None else [self.index[p] for p in prefixes]
        return {"node": tf.constant(nodes, tf.int32)}

    def __call__(self, token_ids, state):
        moved = tf.gather_nd(self.child, tf.stack([state["node"], token_ids], 1))
        node = tf.where(tf.equal(token_ids, BOS), state["node"], moved)  # <s>: stay at the start
        attention = {"cross_attention": tf.one_hot(node % self.source_len, self.source_len)}
        return tf.gather(self.table, node), {"node": node}, attention


class RandomTableStep:
    """A random automaton: logits = table[node], next node = (node * 7 + token) % nodes.
    </s> is unlikely (about one step in 15), so sequences are several tokens long."""

    def __init__(self, seed=0, nodes=23, vocab=12, eos_logit=-1.0):
        rng = np.random.default_rng(seed)
        table = rng.normal(0, 2, (nodes, vocab)).astype(np.float32)
        table[:, EOS] = eos_logit
        self.table, self.nodes = tf.constant(table), nodes

    def initial_state(self, batch):
        return {"node": tf.range(batch, dtype=tf.int32) % self.nodes}

    def __call__(self, token_ids, state):
        node = tf.where(tf.equal(token_ids, BOS), state["node"],
                        (state["node"] * 7 + token_ids) % self.nodes)
        return tf.gather(self.table, node), {"node": node}, {}


def never_ends(token_ids, state):
    """A model that never emits </s>: always token 4 most likely."""
    logits = tf.tile(tf.constant([[0.0, 0.0, 0.0, -1e9, 5.0, 1.0]]), [tf.shape(token_ids)[0], 1])
    return logits, {"count": state["count"] + 1}, {}


def run(step, config, batch=1, state=None, **kwargs):
    state = step.initial_state(batch) if state is None else state
    return search(step, state, tf.fill([batch], BOS), config, **kwargs)


GREEDY = DecodingConfig()
# A tree where greedy's first choice leads to a poor continuation.
TRAP = {(): {4: 0.6, 5: 0.4}, (4,): {EOS: 0.3, 6: 0.35, 7: 0.35}, (5,): {EOS: 0.9, 6: 0.1}}


# -- config ---------------------------------------------------------------------------------------

def test_config_validates_ranges_and_round_trips():
    config = DecodingConfig(strategy="beam", beam_width=5, num_return=3, top_p=0.9)
    assert DecodingConfig.from_dict(config.to_dict()) == config
    assert config.n_best_size == 3 and DecodingConfig(strategy="beam").n_best_size == 4
    assert DecodingConfig(strategy="greedy", num_return=2, beam_width=2).n_best_size == 1
    for bad in (dict(strategy="nucleus"), dict(beam_width=0), dict(temperature=0.0),
                dict(top_p=0.0), dict(top_p=1.5), dict(max_length=0), dict(top_k=-1),
                dict(beam_width=2, num_return=3), dict(time_limit_seconds=-1), dict(batch_size=0),
                dict(beam_stopping="never")):
        with pytest.raises(ConfigError):
            DecodingConfig(**bad)
    assert DecodingConfig().with_overrides({"strategy": "sample", "top_k": "5"},
                                           from_text=True).top_k == 5


def test_length_penalty_is_gnmt():
    assert length_penalty(1, 0.0) == 1.0
    assert length_penalty(1, 1.0) == 1.0
    assert length_penalty(7, 1.0) == pytest.approx(2.0)
    assert float(length_penalty(tf.constant(7), 0.5)) == pytest.approx(2 ** 0.5, rel=1e-6)


# -- greedy ---------------------------------------------------------------------------------------

def test_greedy_follows_the_most_likely_token_with_model_log_probs():
    step = TreeStep(TRAP)
    [result] = run(step, GREEDY)
    assert result.ids.tolist() == [4, 6]  # 6 and 7 tie: the lowest id wins
    np.testing.assert_allclose(result.log_probs, np.log([0.6, 0.35, 1.0]), atol=1e-6)
    assert result.finished and result.stop_reason == "end"
    assert result.score == pytest.approx(np.log(0.6 * 0.35), abs=1e-5)
    # Attention: one row per generated token (</s> included), in the order of the prefixes.
    nodes = [step.index[()], step.index[(4,)], len(step.prefixes)]
    assert result.attention["cross_attention"].argmax(-1).tolist() == [n % 5 for n in nodes]


def test_greedy_runs_the_same_inside_tf_function():
    step = RandomTableStep()
    eager = run(step, GREEDY, batch=4)
    compiled = run(step, GREEDY, batch=4, compile=True)
    for a, b in zip(eager, compiled):
        assert a.ids.tolist() == b.ids.tolist()
        np.testing.assert_allclose(a.log_probs, b.log_probs, atol=1e-6)


def test_finished_rows_emit_pad_with_zero_log_probability_and_attention():
    step = TreeStep({(): {4: 0.6, 5: 0.4}, (4,): {EOS: 0.9, 6: 0.1}, (5,): {6: 0.9, EOS: 0.1},
                     (5, 6): {7: 1.0}, (5, 6, 7): {EOS: 1.0}})
    state = step.initial_state(2, prefixes=[(4,), (5,)])  # row 0 ends at once, row 1 goes on
    outputs = greedy_search(step, state, tf.fill([2], BOS), max_steps=10)
    ids = outputs["ids"].numpy()  # (steps, batch)
    assert ids[:, 0].tolist() == [EOS, PAD, PAD]
    assert ids[:, 1].tolist() == [6, 7, EOS]
    assert outputs["log_probs"].numpy()[1:, 0].tolist() == [0.0] * (len(ids) - 1)
    assert not outputs["attention"]["cross_attention"].numpy()[1:, 0].any()
    assert outputs["lengths"].numpy().tolist() == [1, 3]


def test_a_model_that_never_ends_stops_at_the_cap():
    config = DecodingConfig(max_length=7)
    for strategy in ("greedy", "beam", "sample"):
        results = search(never_ends, {"count": tf.zeros([2], tf.int32)}, tf.fill([2], BOS),
                         dataclasses.replace(config, strategy=strategy, beam_width=2))
        for result in results:
            assert len(result.ids) == 7 and len(result.log_probs) == 7
            assert not result.finished and result.stop_reason == "max_length"
            assert all(not h.finished for h in result.n_best)


def test_time_limit_ends_decoding_early():
    def slow(token_ids, state):
        time.sleep(0.02)
        return never_ends(token_ids, state)

    for strategy in ("greedy", "beam"):
        config = DecodingConfig(strategy=strategy, beam_width=2, max_length=4000,
                                time_limit_seconds=0.3)
        started = time.perf_counter()
        [result] = search(slow, {"count": tf.zeros([1], tf.int32)}, tf.fill([1], BOS), config)
        assert time.perf_counter() - started < 3.0
        assert 1 <= len(result.ids) < 100
        assert not result.finished and result.stop_reason == "time_limit"


def test_inputs_not_started_before_the_deadline_come_back_empty():
    results = decode_ids(object(), np.ones((3, 4), np.int32), GREEDY, deadline=time.time() - 1)
    assert [r.stop_reason for r in results] == ["time_limit"] * 3
    assert all(len(r.ids) == 0 and not r.finished for r in results)


# -- beam search ----------------------------------------------------------------------------------

def test_beam_finds_a_more_likely_sequence_than_greedy():
    step = TreeStep(TRAP)
    [greedy] = run(step, GREEDY)
    [beam] = run(step, DecodingConfig(strategy="beam", beam_width=2, length_penalty=0.0))
    assert greedy.ids.tolist() == [4, 6]
    assert beam.ids.tolist() == [5] and beam.finished
    assert beam.score == pytest.approx(np.log(0.4 * 0.9), abs=1e-5)
    assert beam.score > greedy.score
    np.testing.assert_allclose(beam.log_probs, np.log([0.4, 0.9]), atol=1e-6)
    # The attention is the chosen hypothesis's: it went through the root, then prefix (5,).
    assert beam.attention["cross_attention"].argmax(-1).tolist() == [0, step.index[(5,)] % 5]


def test_n_best_is_sorted_and_complete():
    step = TreeStep(TRAP)
    [result] = run(step, DecodingConfig(strategy="beam", beam_width=3, length_penalty=0.0))
    scores = [h.score for h in result.n_best]
    assert len(result.n_best) == 3 and scores == sorted(scores, reverse=True)
    assert [h.ids.tolist() for h in result.n_best][:2] == [[5], [4, 6]] or \
        [h.ids.tolist() for h in result.n_best][:2] == [[5], [4, 7]]
    assert all(h.finished for h in result.n_best)
    for h in result.n_best:
        assert h.score == pytest.approx(float(h.log_probs.sum()), abs=1e-5)  # alpha 0
    assert result.n_best[0].ids.tolist() == result.ids.tolist()
    [two] = run(step, DecodingConfig(strategy="beam", beam_width=3, num_return=2))
    assert len(two.n_best) == 2


def test_length_penalty_changes_the_winner():
    # [</s>] has log p -0.92; [4 5 6 </s>] has -1.18 in total, but -0.79 per GNMT penalty (alpha 1).
    tree = {(): {EOS: 0.4, 4: 0.6}, (4,): {5: 0.8, EOS: 0.2}, (4, 5): {6: 0.8, EOS: 0.2},
            (4, 5, 6): {EOS: 0.8, 7: 0.2}}
    step = TreeStep(tree)
    [raw] = run(step, DecodingConfig(strategy="beam", beam_width=2, length_penalty=0.0))
    [penalised] = run(step, DecodingConfig(strategy="beam", beam_width=2, length_penalty=1.0))
    assert raw.ids.tolist() == [] and raw.finished
    assert penalised.ids.tolist() == [4, 5, 6] and penalised.finished
    expected = np.log(0.6 * 0.8 * 0.8 * 0.8) / length_penalty(4, 1.0)
    assert penalised.score == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_beam_width_one_is_greedy_on_random_automata(alpha):
    for seed in range(3):
        step = RandomTableStep(seed)
        greedy = run(step, DecodingConfig(max_length=30), batch=6)
        beam = run(step, DecodingConfig(strategy="beam", beam_width=1, length_penalty=alpha,
                                        max_length=30), batch=6)
        for g, b in zip(greedy, beam):
            assert g.ids.tolist() == b.ids.tolist() and g.finished == b.finished
            np.testing.assert_allclose(g.log_probs, b.log_probs, atol=1e-5)


class RecordingStep:
    """A step function that records how many hypotheses each call computes."""

    def __init__(self, step):
        self.step, self.sizes = step, []

    def __call__(self, token_ids, state):
        self.sizes.append(int(token_ids.shape[0]))
        return self.step(token_ids, state)


def test_rows_whose_beam_is_done_leave_the_batch_the_model_computes():
    # Row 1 starts at (5,): </s> (0.9), or 6 into a leaf that ends; its beam is done after 2
    # steps. Row 0 starts at the root and needs 3. The first step computes each row's one
    # live hypothesis once (2), the second both rows' 2 (4), the third row 0's (2).
    tree = TreeStep(TRAP)
    config = DecodingConfig(strategy="beam", beam_width=2, length_penalty=0.0)
    prefixes = [(), (5,)]
    step = RecordingStep(tree)
    together = search(step, tree.initial_state(2, prefixes), tf.fill([2], BOS), config)
    assert step.sizes == [2, 4, 2]
    compiled = search(tree, tree.initial_state(2, prefixes), tf.fill([2], BOS), config,
                      compile=True)
    for row, prefix in enumerate(prefixes):
        [alone] = search(tree, tree.initial_state(1, [prefix]), tf.fill([1], BOS), config)
        for result in (together[row], compiled[row]):
            assert [h.ids.tolist() for h in result.n_best] == [h.ids.tolist() for h in alone.n_best]
            assert [h.score for h in result.n_best] == pytest.approx([h.score for h in alone.n_best])
            np.testing.assert_allclose(result.attention["cross_attention"],
                                       alone.attention["cross_attention"])
    assert together[0].ids.tolist() == [5] and together[1].ids.tolist() == []


def test_beam_stopping_at_the_current_length_can_miss_a_later_winner_that_max_length_finds():
    # alpha 1, beam 2. Step 0: [</s>] (-0.69) fills one pool place, [4] lives. Step 1: [4 </s>]
    # fills the other (-1.80 / 7/6 = -1.55); [4 6] lives at -2.00: ended now it would score -1.72,
    # so "current_length" stops there. Followed to the end, [4 6 7 </s>] costs nothing more
    # and scores -2.00 / 9/6 = -1.34, better than -1.55: "max_length" keeps searching and finds it.
    tree = {(): {EOS: 0.5, 4: 0.3, 5: 0.2}, (4,): {EOS: 0.55, 6: 0.45}, (4, 6): {7: 1.0},
            (4, 6, 7): {EOS: 1.0}}
    lists, sizes = {}, {}
    for stopping in ("current_length", "max_length"):
        step = RecordingStep(TreeStep(tree))
        config = DecodingConfig(strategy="beam", beam_width=2, length_penalty=1.0,
                                beam_stopping=stopping)
        [result] = search(step, step.step.initial_state(1), tf.fill([1], BOS), config)
        lists[stopping] = [(h.ids.tolist(), round(h.score, 3)) for h in result.n_best]
        sizes[stopping] = step.sizes
        assert result.ids.tolist() == [] and result.finished
    assert lists["current_length"] == [([], -0.693), ([4], round(np.log(0.3 * 0.55) / (7 / 6), 3))]
    assert lists["max_length"] == [([], -0.693), ([4, 6, 7], round(np.log(0.3 * 0.45) / 1.5, 3))]
    assert sizes == {"current_length": [1, 2], "max_length": [1, 2, 2, 2]}
    assert DecodingConfig().beam_stopping == "current_length"


def test_beam_returns_unfinished_hypotheses_when_nothing_ends():
    [result] = search(never_ends, {"count": tf.zeros([1], tf.int32)}, tf.fill([1], BOS),
                      DecodingConfig(strategy="beam", beam_width=3, max_length=5))
    assert len(result.n_best) == 3 and result.ids.tolist() == [4] * 5
    scores = [h.score for h in result.n_best]
    assert scores == sorted(scores, reverse=True)


# -- sampling -------------------------------------------------------------------------------------

def _same_outputs(a, b):
    return all(x.ids.tolist() == y.ids.tolist() for x, y in zip(a, b))


@pytest.mark.parametrize("settings", [dict(temperature=1e-4), dict(top_k=1), dict(top_p=1e-4)])
def test_sampling_degenerates_to_greedy(settings):
    step = RandomTableStep(1)
    greedy = run(step, DecodingConfig(max_length=30), batch=8)
    config = DecodingConfig(strategy="sample", seed=5, max_length=30, **settings)
    sampled = run(step, config, batch=8)
    assert _same_outputs(greedy, sampled)


def test_same_seed_same_output_and_seeds_differ_on_a_flat_distribution():
    def flat(token_ids, state):
        logits = tf.zeros([tf.shape(token_ids)[0], VOCAB]) + tf.one_hot(EOS, VOCAB) * -1e9
        return logits, state, {}

    def sample(seed, batch=4, example_ids=None):
        config = DecodingConfig(strategy="sample", seed=seed, max_length=20)
        return search(flat, {"x": tf.zeros([batch])}, tf.fill([batch], BOS), config,
                      example_ids=example_ids)

    first, again, other = sample(1), sample(1), sample(2)
    assert _same_outputs(first, again)
    assert not _same_outputs(first, other)
    assert len({tuple(r.ids.tolist()) for r in first}) == 4  # rows differ too
    # A row's draws depend on its example id, not on its batch: row 2 alone equals row 2 above.
    [alone] = sample(1, batch=1, example_ids=[2])
    assert alone.ids.tolist() == first[2].ids.tolist()
    assert not set(np.concatenate([r.ids for r in first]).tolist()) & {PAD, BOS, EOS}


@pytest.mark.parametrize("settings, expected", [
    (dict(), {4: 0.5, 5: 0.3, 6: 0.15, 7: 0.05}),
    (dict(top_k=2), {4: 0.625, 5: 0.375}),
    (dict(top_p=0.75), {4: 0.625, 5: 0.375}),
    (dict(top_p=0.85), {4: 0.5 / 0.95, 5: 0.3 / 0.95, 6: 0.15 / 0.95}),
    (dict(temperature=2.0), dict(zip((4, 5, 6, 7), np.sqrt([.5, .3, .15, .05])
                                     / np.sqrt([.5, .3, .15, .05]).sum()))),
])
def test_sample_frequencies_match_the_truncated_distribution(settings, expected):
    step = TreeStep({(): {4: 0.5, 5: 0.3, 6: 0.15, 7: 0.05}})
    n = 3000
    results = search(step, step.initial_state(n), tf.fill([n], BOS),
                     DecodingConfig(strategy="sample", seed=3, max_length=2, **settings),
                     compile=True)
    first = np.asarray([r.ids[0] for r in results])
    for token in range(4, 8):
        assert np.mean(first == token) == pytest.approx(expected.get(token, 0.0), abs=0.035)


def test_filter_logits_top_k_and_top_p():
    logits = tf.math.log(tf.constant([[0.1, 0.5, 0.15, 0.25]]))
    kept = lambda **kw: np.isfinite(filter_logits(logits, **kw).numpy()[0]).tolist()  # noqa: E731
    assert kept(top_k=2, use_top_p=False) == [False, True, False, True]
    assert kept(top_p=0.7, use_top_k=False) == [False, True, False, True]
    assert kept(top_p=0.76, use_top_k=False) == [False, True, True, True]
    assert kept(top_k=0, top_p=1.0, use_top_p=False) == [True] * 4


# -- real models ----------------------------------------------------------------------------------

KINDS = ("gru", "lstm", "bahdanau", "luong", "transformer", "transformer-lm", "lstm-lm")
SOURCE_VOCAB, TARGET_VOCAB = 31, 37


@functools.lru_cache(maxsize=None)
def tiny_model(kind):
    from textgen.models import build_model, preset_config

    keras.utils.set_random_seed(7)
    config = preset_config(kind, "tiny", SOURCE_VOCAB, TARGET_VOCAB, max_source_length=12,
                           max_target_length=10, num_layers=1 if kind != "transformer" else 2,
                           hidden_units=24, embedding_dim=16, model_dim=16, feed_forward_dim=32)
    return build_model(config)


def _inputs(kind, lengths=(7, 3, 5)):
    rng = np.random.default_rng(3)
    if kind.endswith("-lm"):
        prompts = [rng.integers(4, TARGET_VOCAB, n - 3).tolist() for n in lengths]  # one empty
        return np.zeros((len(lengths), 0), np.int32), prompts
    source = np.zeros((len(lengths), max(lengths)), np.int32)
    for row, n in enumerate(lengths):
        source[row, :n] = rng.integers(4, SOURCE_VOCAB, n)
    return source, None


@pytest.mark.parametrize("kind", KINDS)
def test_beam_width_one_equals_greedy_for_every_family(kind):
    model = tiny_model(kind)
    source, prompts = _inputs(kind)
    greedy = decode_ids(model, source, DecodingConfig(max_length=8), prompt_ids=prompts)
    beam = decode_ids(model, source, DecodingConfig(strategy="beam", beam_width=1, max_length=8),
                      prompt_ids=prompts)
    for g, b in zip(greedy, beam):
        assert g.ids.tolist() == b.ids.tolist()
        np.testing.assert_allclose(g.log_probs, b.log_probs, atol=1e-4)
        for key in g.attention:
            np.testing.assert_allclose(g.attention[key], b.attention[key], atol=1e-5)


@pytest.mark.parametrize("kind", ["transformer", "bahdanau", "transformer-lm"])
@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_without_attention_the_outputs_are_the_same_and_no_attention_comes_back(kind, strategy):
    """attention=False (scoring) decodes exactly what attention=True does, returning no maps."""
    model = tiny_model(kind)
    source, prompts = _inputs(kind)
    config = DecodingConfig(strategy=strategy, beam_width=3, max_length=6, seed=5)
    with_maps = decode_ids(model, source, config, prompt_ids=prompts)
    text_only = decode_ids(model, source, config, prompt_ids=prompts, attention=False)
    assert all(r.attention for r in with_maps)
    for a, b in zip(with_maps, text_only):
        assert b.attention == {} and all(h.ids.tolist() == g.ids.tolist() for h, g in zip(a.n_best, b.n_best))
        assert (a.ids.tolist(), a.finished, a.stop_reason) == (b.ids.tolist(), b.finished, b.stop_reason)
        np.testing.assert_allclose(a.log_probs, b.log_probs, atol=1e-5)


def _teacher_forced_greedy(model, source_row, decoder_input):
    """argmax (with <pad> and <s> banned) of the teacher-forced logits."""
    logits = model({"source_ids": tf.constant(source_row[None]),
                    "target_input_ids": tf.constant([decoder_input], tf.int32)}).numpy()[0]
    logits[:, [PAD, BOS]] = -np.inf
    return logits.argmax(-1)


@pytest.mark.parametrize("kind", ["transformer", "bahdanau", "transformer-lm", "lstm-lm"])
def test_decoding_computes_what_teacher_forcing_computes(kind):
    model = tiny_model(kind)
    source, prompts = _inputs(kind)
    results = decode_ids(model, source, DecodingConfig(max_length=6), prompt_ids=prompts)
    for row, result in enumerate(results):
        prefix = [BOS] if prompts is None else decoder_prefix(prompts[row])
        generated = result.ids.tolist() + ([EOS] if result.finished else [])
        decoder_input = prefix + generated[:-1]
        source_row = source[row][source[row] != PAD] if source.shape[1] else source[row]
        predicted = _teacher_forced_greedy(model, source_row, decoder_input)
        assert predicted[len(prefix) - 1:].tolist() == generated


@pytest.mark.parametrize("kind", ["bahdanau", "luong", "transformer", "transformer-lm"])
@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_attention_has_one_row_per_generated_token_over_real_positions(kind, strategy):
    model = tiny_model(kind)
    source, prompts = _inputs(kind)
    config = DecodingConfig(strategy=strategy, beam_width=3, max_length=6)
    layers, heads = model.config.num_layers, model.config.num_heads
    for row, result in enumerate(decode_ids(model, source, config, prompt_ids=prompts)):
        n = len(result.log_probs)
        if kind.endswith("-lm"):
            assert set(result.attention) == {"self_attention"}
        else:
            cross = result.attention["cross_attention"]
            source_len = int((source[row] != PAD).sum())
            expected = (n, source_len) if kind != "transformer" else (n, layers, heads, source_len)
            assert cross.shape == expected
            np.testing.assert_allclose(cross.sum(-1), 1.0, atol=1e-5)
        if kind.startswith("transformer"):
            prefix_len = 1 if prompts is None else len(decoder_prefix(prompts[row]))
            self_attention = result.attention["self_attention"]
            assert self_attention.shape == (n, layers, heads, prefix_len + n - 1)
            np.testing.assert_allclose(self_attention.sum(-1), 1.0, atol=1e-5)
            for t in range(n):  # causal: nothing beyond the input read at step t
                assert not self_attention[t, ..., prefix_len + t:].any()


@pytest.mark.parametrize("kind", ["transformer", "bahdanau", "gru", "transformer-lm", "lstm-lm"])
@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_batched_decoding_equals_one_by_one(kind, strategy):
    model = tiny_model(kind)
    source, prompts = _inputs(kind, lengths=(9, 3, 6, 4))
    config = DecodingConfig(strategy=strategy, beam_width=3, max_length=6, seed=4, batch_size=4)
    batched = decode_ids(model, source, config, prompt_ids=prompts)
    for row, together in enumerate(batched):
        width = source.shape[1] and int((source[row] != PAD).sum())
        [alone] = decode_ids(model, source[row:row + 1, :width], config,
                             prompt_ids=None if prompts is None else [prompts[row]],
                             example_ids=[row])
        assert alone.ids.tolist() == together.ids.tolist()
        np.testing.assert_allclose(alone.log_probs, together.log_probs, atol=1e-4)
        assert [h.ids.tolist() for h in alone.n_best] == [h.ids.tolist() for h in together.n_best]


# -- text in, text out ----------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _tokenizers():
    from textgen.data.tokenizers import train_tokenizer

    texts = ["the cat sat on the mat", "a dog ran in the park", "birds sing at dawn",
             "le chat est assis", "un chien court", "les oiseaux chantent"]
    config = TokenizerConfig(kind="word", vocab_size=64)
    return train_tokenizer(texts[:3], config), train_tokenizer(texts[3:], config)


@functools.lru_cache(maxsize=None)
def text_model(kind):
    """A tiny model whose vocabularies are the tokenizers'."""
    from textgen.models import build_model, preset_config

    source, target = _tokenizers()
    keras.utils.set_random_seed(11)
    return build_model(preset_config(kind, "tiny", source.vocab_size, target.vocab_size,
                                     max_source_length=12, max_target_length=10, model_dim=16,
                                     feed_forward_dim=32, num_layers=2))


def test_generate_returns_aligned_plain_data():
    source_tokenizer, target_tokenizer = _tokenizers()
    model = text_model("transformer")
    texts = ["the cat sat", "birds sing at the park", "a dog"]
    calls = []
    config = DecodingConfig(strategy="beam", beam_width=3, max_length=6, batch_size=2)
    generations = generate(model, source_tokenizer, target_tokenizer, texts, config,
                           progress=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 3), (3, 3)]
    for text, g in zip(texts, generations):
        assert g.source == text
        assert g.source_tokens == source_tokenizer.token_labels(source_tokenizer.encode(text))
        assert isinstance(g.output, str) and g.output == target_tokenizer.decode(g.output_ids)
        assert g.output_ids.dtype == np.int32 and g.log_probs.dtype == np.float32
        assert len(g.tokens) == len(g.log_probs) == len(g.attention["cross_attention"])
        assert (g.tokens[-1] == "</s>") == g.finished
        assert g.attention["cross_attention"].shape[-1] == len(g.source_tokens)
        assert g.attention["self_attention"].shape[-1] == len(g.decoder_input_tokens)
        assert len(g.n_best) == 3 and g.n_best[0].text == g.output
        assert all(isinstance(h.text, str) and len(h.tokens) == len(h.log_probs) for h in g.n_best)
        assert g.to_dict()["output"] == g.output


def test_generate_continues_a_prompt_with_a_language_model():
    _, tokenizer = _tokenizers()
    model = text_model("transformer-lm")
    prompts = ["le chat", "un chien court les oiseaux chantent le chat est assis", ""]
    generations = generate(model, None, tokenizer, prompts, DecodingConfig(max_length=20))
    context = model.config.max_target_length
    for prompt, g in zip(prompts, generations):
        prompt_ids = tokenizer.encode(prompt)[-(context - 1):]  # long prompts lose their start
        prefix = decoder_prefix(prompt_ids)
        assert g.source_tokens == tokenizer.token_labels(prompt_ids)
        assert g.decoder_input_tokens[:len(prefix)] == (g.source_tokens or ["<s>"])
        cap = context - len(prefix) + 1  # the context caps the steps
        assert 1 <= len(g.log_probs) <= cap
        if not g.finished:
            assert len(g.log_probs) == min(20, cap) and g.stop_reason == "max_length"
        assert g.attention["self_attention"].shape[-1] == len(g.decoder_input_tokens)
        assert len(g.decoder_input_tokens) == len(prefix) + len(g.log_probs) - 1
        assert g.output == tokenizer.decode(g.output_ids)


def test_rows_that_stop_at_the_end_of_the_context_leave_the_others_decoding():
    """A language model's long prompt leaves little of its context: that row stops at its cap
    while a short prompt's row goes on, so the search keeps stepping the stopped row past the
    end of its position table (its outputs discarded), for every strategy."""
    model = text_model("transformer-lm")
    context = model.config.max_target_length
    never = model.config.target_vocab_size + 1  # no </s>: rows end only at their caps
    prompts = [list(range(4, 4 + context - 1)), [4]]  # the first fills all but one position
    for strategy in ("greedy", "beam", "sample"):
        config = DecodingConfig(strategy=strategy, beam_width=2, max_length=20)
        results = decode_ids(model, np.zeros((2, 0), np.int32), config, eos_id=never, prompt_ids=prompts)
        assert [len(r.log_probs) for r in results] == [2, context], strategy
        assert all(r.stop_reason == "max_length" for r in results), strategy


def test_teacher_forced_attention_shapes():
    source_tokenizer, target_tokenizer = _tokenizers()
    source, reference = "the cat sat on the mat", "le chat est assis"
    n_source = len(source_tokenizer.encode(source))
    n_target = len(target_tokenizer.encode(reference)) + 1  # [<s>] + reference
    attention = teacher_forced_attention(text_model("transformer"), source_tokenizer,
                                         target_tokenizer, source, reference)
    layers, heads = 2, text_model("transformer").config.num_heads
    assert attention["cross_attention"].shape == (n_target, layers, heads, n_source)
    assert attention["self_attention"].shape == (n_target, layers, heads, n_target)
    assert attention["encoder_self_attention"].shape == (n_source, layers, heads, n_source)
    np.testing.assert_allclose(attention["cross_attention"].sum(-1), 1.0, atol=1e-5)
    bahdanau = teacher_forced_attention(text_model("bahdanau"), source_tokenizer,
                                        target_tokenizer, source, reference)
    assert bahdanau["cross_attention"].shape == (n_target, n_source)
    lm = teacher_forced_attention(text_model("transformer-lm"), None, target_tokenizer,
                                  "le chat", "est assis")
    n = len(target_tokenizer.encode("le chat")) + len(target_tokenizer.encode("est assis"))
    assert set(lm) == {"self_attention"} and lm["self_attention"].shape == (n, layers, heads, n)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_a_model_nobody_holds_is_freed_with_its_compiled_searches(kind):
    """The compiled searches are cached per model; they must not keep the model alive once its
    last user (a page's cached run, a job) lets go, or a long-running app never frees a model."""
    import gc
    import weakref

    from textgen.decoding import decoder
    from textgen.models import build_model, preset_config

    config = preset_config(kind, "tiny", SOURCE_VOCAB, TARGET_VOCAB, max_source_length=12, max_target_length=10,
                           num_layers=1, hidden_units=24, embedding_dim=16, model_dim=16, feed_forward_dim=32)
    model = build_model(config)
    source, _ = _inputs(kind)
    for strategy in ("greedy", "beam"):
        decode_ids(model, source, DecodingConfig(strategy=strategy, max_length=6))
    assert len(decoder._COMPILED[model]) == 2
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None
