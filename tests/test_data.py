"""The tf.data pipeline: teacher-forcing shift, padding, bucketing, shuffling, LM windows."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from textgen.core.errors import ConfigError, CorpusError  # noqa: E402
from textgen.data.config import TokenizerConfig  # noqa: E402
from textgen.data.pipeline import (  # noqa: E402
    EncodedPairs,
    bucket_boundaries_for,
    encode_pairs,
    lm_dataset,
    lm_num_batches,
    pair_dataset,
    pair_num_batches,
)
from textgen.data.tokenizers import BOS_ID, EOS_ID, PAD_ID, train_tokenizer  # noqa: E402


def make_pairs(n: int = 203, seed: int = 0) -> EncodedPairs:
    """Pairs whose source starts with a unique id (4 + i), so each example can be recognised."""
    rng = np.random.default_rng(seed)
    sources, targets = [], []
    for i in range(n):
        source_length = int(rng.integers(1, 30))
        target_length = int(rng.integers(0, 25))
        sources.append(np.concatenate([[4 + i], rng.integers(4, 50, source_length - 1)]).astype(np.int32))
        targets.append(rng.integers(4, 50, target_length).astype(np.int32))
    return EncodedPairs(sources, targets, 0, 0, max_source_length=30, max_target_length=26)


def batches(dataset):
    return [({k: v.numpy() for k, v in x.items()}, y.numpy()) for x, y in dataset]


def example_ids(batch_list) -> list[int]:
    return [int(row[0]) - 4 for inputs, _ in batch_list for row in inputs["source_ids"]]


@pytest.fixture(scope="module")
def pairs() -> EncodedPairs:
    return make_pairs()


def test_teacher_forcing_is_shifted_by_one_and_padding_is_zero(pairs):
    for inputs, labels in batches(pair_dataset(pairs, batch_size=16, shuffle=True, seed=3)):
        source, target_in = inputs["source_ids"], inputs["target_input_ids"]
        assert source.dtype == target_in.dtype == labels.dtype == np.int32
        assert target_in.shape == labels.shape and source.shape[0] == labels.shape[0]
        for row in range(len(source)):
            i = int(source[row, 0]) - 4
            expected_source, target = pairs.source_ids[i], pairs.target_ids[i]
            n_source, n_target = len(expected_source), len(target) + 1
            # The mask (ids != 0) covers exactly the real tokens; everything after is 0.
            assert (source[row] != PAD_ID).sum() == n_source
            assert (target_in[row] != PAD_ID).sum() == (labels[row] != PAD_ID).sum() == n_target
            np.testing.assert_array_equal(source[row, :n_source], expected_source)
            assert not source[row, n_source:].any() and not labels[row, n_target:].any()
            np.testing.assert_array_equal(target_in[row, :n_target], [BOS_ID, *target])
            np.testing.assert_array_equal(labels[row, :n_target], [*target, EOS_ID])
            np.testing.assert_array_equal(target_in[row, 1:n_target], labels[row, : n_target - 1])


def test_each_example_appears_once_per_epoch_in_batches_of_similar_length(pairs):
    boundaries = bucket_boundaries_for(pairs)
    assert 2 <= len(boundaries) <= 7 and boundaries == sorted(set(boundaries))
    dataset = pair_dataset(pairs, batch_size=8, shuffle=True, seed=1, bucket_boundaries=boundaries)
    lengths = np.array([max(len(s), len(t) + 1) for s, t in zip(pairs.source_ids, pairs.target_ids)])
    for _ in range(2):  # two epochs of the same dataset
        got = batches(dataset)
        assert sorted(example_ids(got)) == list(range(len(pairs)))
        assert len(got) == pair_num_batches(pairs, batch_size=8, bucket_boundaries=boundaries)
        for inputs, _ in got:
            ids = [int(r[0]) - 4 for r in inputs["source_ids"]]
            buckets = set(np.searchsorted(boundaries, lengths[ids], side="right"))
            assert len(buckets) == 1, f"a batch mixed buckets {buckets}"
    assert dataset.cardinality().numpy() == len(got)


def test_batches_are_cut_from_length_sorted_examples_so_padding_is_rare():
    """Inside a bucket, batches hold consecutive examples in (length, source length) order: two
    batches of one bucket never interleave in that order, and on pairs whose target length follows
    the source's, as in translation, few padded positions are left on either side (in random
    order inside the buckets, these pairs filled 87% of them on both sides)."""
    rng = np.random.default_rng(4)
    sources, targets = [], []
    for i in range(400):
        source_length = int(rng.integers(1, 40))
        target_length = max(0, source_length + int(rng.integers(-3, 4)))
        sources.append(np.concatenate([[4 + i], rng.integers(4, 50, source_length - 1)]).astype(np.int32))
        targets.append(rng.integers(4, 50, target_length).astype(np.int32))
    pairs = EncodedPairs(sources, targets, 0, 0)
    boundaries = bucket_boundaries_for(pairs)
    lengths = np.array([max(len(s), len(t) + 1) for s, t in zip(pairs.source_ids, pairs.target_ids)])
    source_lengths = np.array([len(s) for s in pairs.source_ids])
    key = lengths * 100 + source_lengths
    for drop_remainder in (False, True):
        got = batches(pair_dataset(pairs, batch_size=8, shuffle=True, seed=5, bucket_boundaries=boundaries,
                                   drop_remainder=drop_remainder))
        ranges: dict[int, list[tuple[int, int]]] = {}
        real = padded = real_source = padded_source = 0
        for inputs, labels in got:
            ids = [int(r[0]) - 4 for r in inputs["source_ids"]]
            bucket = int(np.searchsorted(boundaries, lengths[ids[0]], side="right"))
            ranges.setdefault(bucket, []).append((int(key[ids].min()), int(key[ids].max())))
            real += int((labels != PAD_ID).sum())
            padded += labels.size
            real_source += int((inputs["source_ids"] != PAD_ID).sum())
            padded_source += inputs["source_ids"].size
        for spans in ranges.values():
            spans.sort()
            assert all(high <= next_low for (_, high), (next_low, _) in zip(spans, spans[1:])), spans
        assert real / padded > 0.9 and real_source / padded_source > 0.9, (real / padded, real_source / padded_source)


def test_same_seed_same_order_and_each_epoch_reshuffles(pairs):
    def order(dataset):
        return example_ids(batches(dataset))

    first = pair_dataset(pairs, batch_size=8, shuffle=True, seed=7)
    again = pair_dataset(pairs, batch_size=8, shuffle=True, seed=7)
    other = pair_dataset(pairs, batch_size=8, shuffle=True, seed=8)
    epoch1, epoch2 = order(first), order(first)
    assert epoch1 == order(again)
    assert epoch1 != epoch2, "a second epoch must be reshuffled"
    assert epoch1 != order(other)
    plain = order(pair_dataset(pairs, batch_size=8, shuffle=False, seed=0))
    assert plain == order(pair_dataset(pairs, batch_size=8, shuffle=False, seed=99))


def test_pad_to_bucket_gives_one_shape_per_bucket(pairs):
    boundaries = [8, 16, 24]
    dataset = pair_dataset(pairs, batch_size=8, shuffle=True, seed=0, bucket_boundaries=boundaries,
                           pad_to_bucket=True)
    shapes = {(x["source_ids"].shape[1], y.shape[1]) for x, y in batches(dataset)}
    # Bucket upper bounds 7, 15, 23, then the caps (max_source_length 30, max_target_length 26).
    assert shapes == {(7, 7), (15, 15), (23, 23), (30, 26)}


def test_drop_remainder_and_repeat(pairs):
    dropped = batches(pair_dataset(pairs, batch_size=16, shuffle=True, seed=0, drop_remainder=True))
    assert all(len(y) == 16 for _, y in dropped)
    assert len(dropped) == pair_num_batches(pairs, batch_size=16, drop_remainder=True)
    ids = example_ids(dropped)
    assert len(ids) == len(set(ids)) < len(pairs)
    per_epoch = pair_num_batches(pairs, batch_size=16)
    repeated = pair_dataset(pairs, batch_size=16, shuffle=True, seed=0, repeat=True)
    ids = example_ids(batches(repeated.take(2 * per_epoch)))
    assert sorted(ids) == sorted(list(range(len(pairs))) * 2)


def test_single_bucket_and_bad_boundaries(pairs):
    got = batches(pair_dataset(pairs, batch_size=64, shuffle=False, seed=0, bucket_boundaries=[]))
    assert [len(y) for _, y in got] == [64, 64, 64, 11]
    with pytest.raises(ValueError, match="strictly increasing"):
        pair_dataset(pairs, batch_size=8, shuffle=False, seed=0, bucket_boundaries=[10, 5])


def test_encode_pairs_truncates_and_counts():
    tokenizer = train_tokenizer(["abcdefgh ijk"], TokenizerConfig(kind="char", vocab_size=50))
    sources = ["abc", "abcdefgh", "abcdefghijk"]
    targets = ["ab", "abcd", "abcdefgh"]
    encoded = encode_pairs(sources, targets, tokenizer, tokenizer, max_source_length=5,
                           max_target_length=5)
    assert [len(s) for s in encoded.source_ids] == [3, 5, 5]
    assert [len(t) for t in encoded.target_ids] == [2, 4, 4]  # room for <s> / </s>
    assert (encoded.num_source_truncated, encoded.num_target_truncated) == (2, 1)
    assert BOS_ID not in encoded.source_ids[0] and EOS_ID not in encoded.source_ids[0]
    assert tokenizer.decode(encoded.target_ids[2]) == "abcd"
    (inputs, labels), = batches(pair_dataset(encoded, batch_size=3, shuffle=False, seed=0,
                                             bucket_boundaries=[]))
    assert inputs["source_ids"].shape == (3, 5) and labels.shape == (3, 5)
    with pytest.raises(ConfigError):
        encode_pairs(sources, targets, tokenizer, tokenizer, max_source_length=5, max_target_length=1)


def test_lm_windows_shift_by_one_and_have_an_empty_source():
    stream = np.arange(4, 4 + 50, dtype=np.int32)
    got = batches(lm_dataset(stream, context_length=8, batch_size=4, shuffle=False, seed=0))
    assert len(got) == lm_num_batches(len(stream), context_length=8, batch_size=4)
    inputs = np.concatenate([x["target_input_ids"] for x, _ in got])
    labels = np.concatenate([y for _, y in got])
    assert all(x["source_ids"].shape == (len(y), 0) for x, y in got)
    assert inputs.shape[1] == labels.shape[1] == 8
    np.testing.assert_array_equal(inputs[:, 1:], labels[:, :-1])
    # Windows of 9 tokens every 8: each token after the first is a label exactly once; the tail
    # window is padded with 0.
    np.testing.assert_array_equal(labels[labels != PAD_ID], stream[1:])
    np.testing.assert_array_equal(inputs[0], stream[:8])
    assert (labels[-1] == PAD_ID).sum() == 8 - (49 % 8)


def test_lm_stride_shuffle_and_short_streams():
    stream = np.arange(4, 4 + 40, dtype=np.int32)
    kwargs = dict(context_length=8, batch_size=3, stride=4)
    a = batches(lm_dataset(stream, shuffle=True, seed=5, **kwargs))
    b = batches(lm_dataset(stream, shuffle=True, seed=5, **kwargs))
    assert len(a) == lm_num_batches(len(stream), **kwargs)
    firsts = sorted(int(x["target_input_ids"][r, 0]) for x, _ in a for r in range(len(x["target_input_ids"])))
    # Full windows of 9 every 4 tokens from the epoch's random offset in [0, 4), then one shorter
    # window if the tail is left (at offset 0: full windows at 0, 4, ..., 28, a short one at 32).
    offset = firsts[0] - 4
    expected = list(range(offset, 40 - 9 + 1, 4))
    expected += [expected[-1] + 4] if expected[-1] + 9 < 40 else []
    assert 0 <= offset < 4 and firsts == [4 + start for start in expected]
    assert all(np.array_equal(x["target_input_ids"], y["target_input_ids"]) for (x, _), (y, _) in zip(a, b))
    (x, labels), = batches(lm_dataset(stream[:5], context_length=8, batch_size=2, shuffle=False, seed=0))
    np.testing.assert_array_equal(labels, [[5, 6, 7, 8, 0, 0, 0, 0]])
    with pytest.raises(CorpusError):
        lm_dataset(stream[:1], context_length=8, batch_size=2, shuffle=False, seed=0)
    with pytest.raises(ConfigError):
        lm_dataset(stream, context_length=8, batch_size=2, shuffle=False, seed=0, stride=9)


def test_lm_training_windows_start_at_a_new_offset_each_epoch():
    """A second epoch must not show the model the same windows again: each epoch's windows start
    at its own random offset (one window start per stride, so no token is a label twice in an
    epoch); validation windows (no shuffle) always start at 0."""
    stream = np.arange(4, 4 + 400, dtype=np.int32)
    per_epoch = lm_num_batches(len(stream), context_length=8, batch_size=1)
    dataset = lm_dataset(stream, context_length=8, batch_size=1, shuffle=True, seed=3, repeat=True)
    starts = [int(x["target_input_ids"][0, 0]) - 4 for (x, _), _ in zip(dataset.as_numpy_iterator(), range(8 * per_epoch))]
    phases = []
    while len(starts) >= per_epoch + 1:
        full = range(starts[0] % 8, 400 - 9 + 1, 8)  # the epoch's full windows, then maybe a tail
        epoch = sorted(starts[: len(full) + (full[-1] + 9 < 400)])
        phases.append(epoch[0] % 8)
        assert len({start % 8 for start in epoch}) == 1 and len(set(epoch)) == len(epoch)
        starts = starts[len(epoch):]
    assert len(set(phases)) > 1, phases
    validation = lm_dataset(stream, context_length=8, batch_size=4, shuffle=False, seed=3)
    assert all(int(x["target_input_ids"][0, 0]) % 8 == 4 for x, _ in validation.as_numpy_iterator())


def test_pipelines_do_not_autotune(pairs):
    # With autotuning, dropping an iterator (Keras does when fit returns) could wait for the
    # autotuner's sleep: 2.7-4.0 s in 4 of 8 trials (textgen/data/pipeline.py, PARALLEL_CALLS).
    stream = np.arange(4, 4 + 50, dtype=np.int32)
    for dataset in (pair_dataset(pairs, batch_size=8, shuffle=True, seed=1, repeat=True),
                    lm_dataset(stream, context_length=8, batch_size=4, shuffle=True, seed=0, repeat=True)):
        assert dataset.options().autotune.enabled is False
        next(iter(dataset))  # and still iterates
