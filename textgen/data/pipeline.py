"""The tf.data input pipeline for teacher-forced training.

Every batch is `(inputs, labels)`:

    inputs = {"source_ids": int32 (batch, source_len), "target_input_ids": int32 (batch, target_len)}
    labels = target_output_ids, int32 (batch, target_len)

Padding is id 0 everywhere, so `ids != 0` is the mask.

- Sequence-to-sequence pairs: target_input_ids = [<s>] + target, target_output_ids = target + [</s>]
  (the same length, shifted by one). Source ids carry no <s> or </s>: an encoder reads the whole
  source at once and needs no start or end marker.
- Decoder-only language models: source_ids has shape (batch, 0). Examples are windows of
  context_length + 1 tokens of one token stream; target_input_ids = window[:-1],
  target_output_ids = window[1:], with no <s> or </s> added inside.

How the examples reach TensorFlow: token ids are held as ragged tensors (flat values plus row
lengths); each epoch shuffles and groups *example indices* with a few vectorised ops, and each
batch is one `tf.gather` plus `to_tensor`. Measured on 30,000 pairs of 5-40 tokens, batch 64, two
shared cores (TF 2.21), seconds per epoch: `from_generator` + `padded_batch` 8.3-9.0; ragged
`from_tensor_slices` + `ragged_batch` 1.0-1.2; per-example slicing + `padded_batch` 1.6-2.6;
bucketing with `group_by_window` (what `bucket_by_sequence_length` does inside) over indices then
a batched gather 0.9-1.3; this module (bucketing by sorting shuffled indices) 0.2-0.4, built in
0.3-0.5 s. `lm_dataset` on a 1M-token stream: 0.13 s per epoch.

Bucketing: each example's length is max(len(source), len(target) + 1). Examples go to the bucket
whose range [b[i-1], b[i]) holds that length, and a batch only holds examples of one bucket.
Inside a bucket, batches are cut from the examples sorted by that length and then by the source
length, examples of equal lengths in a new random order each epoch (what fairseq does); the batch
order is random. Padded to each batch's longest example, Multi30k's training pairs (counted in
words and punctuation, batch 64) then fill 99% of the target positions and 97% of the source
positions, against 84% and 74% when examples sat in random order inside 6 buckets: fewer
positions to compute per real token (bench/RESULTS.md). Which examples a drop_remainder epoch leaves out is still random.
With `pad_to_bucket`, a batch is padded to its bucket's upper bound (b[i] - 1, capped at the
maximum source / target length given to `encode_pairs`), so a model compiled with XLA sees one
shape per bucket; pass the training set's boundaries (`bucket_boundaries_for`) when building the
validation set so both use the same shapes.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Sequence

import numpy as np
import tensorflow as tf

from textgen.core.config import check_range
from textgen.core.errors import CorpusError
from textgen.data.tokenizers import BOS_ID, EOS_ID, PAD_ID

if TYPE_CHECKING:
    from textgen.data.tokenizers import Tokenizer

DEFAULT_NUM_BUCKETS = 6

# Batches are assembled by this many parallel calls and prefetched this many ahead, fixed rather
# than autotuned: tf.data's autotuner runs a background thread that sleeps between rounds (the
# period doubling towards a minute), and destroying an iterator can wait for that sleep to end.
# Keras drops the training iterator when `fit` returns (the end of every job) and replaces the
# validation iterator at every evaluation; fixed values made those waits vanish at the same step
# speed (bench/RESULTS.md).
PARALLEL_CALLS = 2
PREFETCH_BATCHES = 2

# The functions handed to tf.data below use no Python control flow on tensors, so AutoGraph's
# rewrite of their source (parsed from the file in every new process) is skipped.
_plain_graph = tf.autograph.experimental.do_not_convert


def _finish(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Prefetch a fixed number of batches; no autotuning (see PARALLEL_CALLS)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(PREFETCH_BATCHES).with_options(options)


@dataclasses.dataclass(frozen=True)
class EncodedPairs:
    """Token ids of source/target pairs, truncated. Targets hold neither <s> nor </s>; the
    pipeline adds them (so a target has at most max_target_length - 1 tokens)."""

    source_ids: list[np.ndarray]
    target_ids: list[np.ndarray]
    num_source_truncated: int
    num_target_truncated: int
    # Caps used by encode_pairs; `pad_to_bucket` never pads past them. None: the longest example.
    max_source_length: int | None = None
    max_target_length: int | None = None

    def __post_init__(self) -> None:
        if len(self.source_ids) != len(self.target_ids):
            raise ValueError(
                f"source_ids and target_ids must be the same length, got "
                f"{len(self.source_ids)} and {len(self.target_ids)}."
            )

    def __len__(self) -> int:
        return len(self.source_ids)


def encode_pairs(
    sources: Sequence[str],
    targets: Sequence[str],
    source_tokenizer: "Tokenizer",
    target_tokenizer: "Tokenizer",
    *,
    max_source_length: int,
    max_target_length: int,
) -> EncodedPairs:
    """Encode and truncate pairs. A source keeps at most max_source_length tokens; a target keeps
    max_target_length - 1, leaving room for <s> (input side) or </s> (output side)."""
    check_range("max_source_length", max_source_length, 1)
    check_range("max_target_length", max_target_length, 2)
    if len(sources) != len(targets):
        raise ValueError(f"got {len(sources)} sources but {len(targets)} targets.")
    target_keep = max_target_length - 1
    source_ids, target_ids = [], []
    source_cut = target_cut = 0
    for ids in source_tokenizer.encode_batch(list(sources)):
        source_cut += len(ids) > max_source_length
        source_ids.append(np.asarray(ids[:max_source_length], dtype=np.int32))
    for ids in target_tokenizer.encode_batch(list(targets)):
        target_cut += len(ids) > target_keep
        target_ids.append(np.asarray(ids[:target_keep], dtype=np.int32))
    return EncodedPairs(
        source_ids, target_ids, int(source_cut), int(target_cut),
        max_source_length=max_source_length, max_target_length=max_target_length,
    )


def _example_lengths(encoded: EncodedPairs) -> np.ndarray:
    source = np.fromiter((len(a) for a in encoded.source_ids), np.int64, len(encoded))
    target = np.fromiter((len(a) + 1 for a in encoded.target_ids), np.int64, len(encoded))
    return np.maximum(source, target)


def bucket_boundaries_for(encoded: EncodedPairs, num_buckets: int = DEFAULT_NUM_BUCKETS) -> list[int]:
    """Up to num_buckets - 1 boundaries at quantiles of the example lengths (fewer when lengths
    repeat; [] when all examples have one length)."""
    check_range("num_buckets", num_buckets, 1, 64)
    lengths = _example_lengths(encoded)
    if lengths.size == 0 or num_buckets == 1:
        return []
    quantiles = np.quantile(lengths, np.linspace(0, 1, num_buckets + 1)[1:-1])
    # +1: a quantile value belongs to the bucket below the boundary (ranges are [low, high)).
    candidates = sorted({int(np.floor(q)) + 1 for q in quantiles})
    return [b for b in candidates if lengths.min() < b <= lengths.max()]


def _check_boundaries(boundaries: Sequence[int]) -> list[int]:
    out = [int(b) for b in boundaries]
    for b in out:
        check_range("bucket boundary", b, 1)
    if any(b >= c for b, c in zip(out, out[1:])):
        raise ValueError(f"bucket_boundaries must be strictly increasing, got {out}.")
    return out


def _bucket_ids(encoded: EncodedPairs, boundaries: Sequence[int]) -> np.ndarray:
    return np.searchsorted(np.asarray(boundaries, np.int64), _example_lengths(encoded), side="right")


def pair_num_batches(
    encoded: EncodedPairs,
    *,
    batch_size: int,
    bucket_boundaries: Sequence[int] | None = None,
    drop_remainder: bool = False,
) -> int:
    """Batches in one epoch of `pair_dataset` with the same arguments (exact; shuffling does not
    change it because every bucket's size is fixed)."""
    if bucket_boundaries is None:
        bucket_boundaries = bucket_boundaries_for(encoded)
    counts = np.bincount(_bucket_ids(encoded, _check_boundaries(bucket_boundaries)))
    if drop_remainder:
        return int(np.sum(counts // batch_size))
    return int(np.sum(-(-counts // batch_size)))


def _ragged(rows: Sequence[np.ndarray]) -> tf.RaggedTensor:
    lengths = np.fromiter((len(r) for r in rows), np.int64, len(rows))
    values = np.concatenate(rows).astype(np.int32) if len(rows) and lengths.sum() else np.zeros(0, np.int32)
    return tf.RaggedTensor.from_row_lengths(values, lengths, validate=False)


def pair_dataset(
    encoded: EncodedPairs,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    bucket_boundaries: Sequence[int] | None = None,
    pad_to_bucket: bool = False,
    drop_remainder: bool = False,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Bucketed, padded teacher-forcing batches of `encoded` (see the module docstring).

    bucket_boundaries None derives them from length quantiles (`bucket_boundaries_for`); [] means
    one bucket. With shuffle, the order is reshuffled every epoch, deterministically from `seed`.
    Without repeat, every example appears exactly once per epoch (drop_remainder drops each
    bucket's last partial batch) and the dataset knows its length (`pair_num_batches`). With
    repeat, epochs follow each other without end.
    """
    check_range("batch_size", batch_size, 1)
    if len(encoded) == 0:
        raise CorpusError("no examples to train on: the training split is empty.")
    if bucket_boundaries is None:
        bucket_boundaries = bucket_boundaries_for(encoded)
    boundaries = _check_boundaries(bucket_boundaries)
    num_batches = pair_num_batches(
        encoded, batch_size=batch_size, bucket_boundaries=boundaries, drop_remainder=drop_remainder
    )
    if num_batches == 0:
        raise CorpusError(
            f"no full batch of {batch_size} examples in any length bucket; lower the batch size."
        )
    stages = _PairBatches.of(encoded, boundaries, batch_size=batch_size, drop_remainder=drop_remainder,
                             num_batches=num_batches, shuffle=shuffle, pad_to_bucket=pad_to_bucket)
    if shuffle:
        # A new seed each time the dataset is iterated (or repeated), the same sequence for `seed`.
        epochs = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    else:
        epochs = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64))
    ds = epochs.flat_map(stages.epoch_batches)
    ds = ds.map(stages.to_batch, num_parallel_calls=PARALLEL_CALLS, deterministic=True)
    ds = ds.apply(tf.data.experimental.assert_cardinality(num_batches))
    if repeat:
        ds = ds.repeat()
    return _finish(ds)


@dataclasses.dataclass(frozen=True)
class _PairBatches:
    """What stays fixed in one `pair_dataset`: the examples as ragged ids, the epoch's batch
    layout (`_batch_layout`) and each bucket's padded widths; one method per stage of an epoch
    (shuffling and bucketing example indices, then gathering and padding a batch)."""

    n: int  # examples
    num_batches: int  # batches per epoch
    shuffle: bool
    pad_to_bucket: bool
    sources: tf.RaggedTensor  # (n, None): source ids
    target_inputs: tf.RaggedTensor  # (n, None): [<s>] + target
    target_outputs: tf.RaggedTensor  # (n, None): target + [</s>]
    source_widths: tf.Tensor  # (num_buckets,): padded widths (used only with pad_to_bucket)
    target_widths: tf.Tensor  # (num_buckets,)
    keep: tf.Tensor  # positions kept in the examples sorted by bucket
    row_lengths: tf.Tensor  # (num_batches,): examples per batch
    batch_buckets: tf.Tensor  # (num_batches,): the bucket of each batch
    bucket_table: tf.Tensor  # (n,): the bucket of each example
    length_key: tf.Tensor  # (n,): the sort key inside a bucket

    @classmethod
    def of(cls, encoded: EncodedPairs, boundaries: list[int], *, batch_size: int,
           drop_remainder: bool, num_batches: int, shuffle: bool, pad_to_bucket: bool) -> "_PairBatches":
        """The tensors of `encoded` for bucket `boundaries` (checked) and the given batching."""
        n = len(encoded)
        bucket_of = _bucket_ids(encoded, boundaries)
        sources = _ragged(encoded.source_ids)
        target_inputs = _ragged([np.concatenate([[BOS_ID], t]) for t in encoded.target_ids])
        target_outputs = _ragged([np.concatenate([t, [EOS_ID]]) for t in encoded.target_ids])
        source_widths, target_widths = _bucket_widths(encoded, boundaries)
        # The epoch's layout is fixed: examples sorted by bucket, each bucket cut into batches.
        # Random: which examples a drop_remainder epoch leaves out, the order of examples of equal
        # lengths, and the batch order.
        keep, row_lengths, batch_buckets = (
            tf.constant(a) for a in _batch_layout(bucket_of, batch_size, drop_remainder)
        )
        bucket_table = tf.constant(bucket_of, tf.int64)
        # Sort key: the bucketing length, then the source length. Bucket ids grow with the first, so
        # sorting by this key keeps every bucket's examples where the layout expects them.
        source_lengths = np.fromiter((len(a) for a in encoded.source_ids), np.int64, n)
        length_key = tf.constant(_example_lengths(encoded) * (int(source_lengths.max()) + 1) + source_lengths)
        return cls(n, num_batches, shuffle, pad_to_bucket, sources, target_inputs, target_outputs,
                   source_widths, target_widths, keep, row_lengths, batch_buckets, bucket_table,
                   length_key)

    @_plain_graph
    def epoch_batches(self, epoch_seed: tf.Tensor) -> tf.data.Dataset:
        """One epoch's (bucket, example indices) batches, shuffled from `epoch_seed`."""
        if self.shuffle:
            example_seed = tf.stack([epoch_seed, tf.constant(0, tf.int64)])
            order = tf.argsort(tf.random.stateless_uniform([self.n], seed=example_seed))  # (n,)
        else:
            order = tf.range(self.n)
        # Stable sort by bucket keeps the random order inside each bucket; `keep` drops a random
        # remainder per bucket; the second stable sort orders the rest by length, ties at random.
        by_bucket = tf.gather(order, tf.argsort(tf.gather(self.bucket_table, order), stable=True))
        kept = tf.gather(by_bucket, self.keep)
        kept = tf.gather(kept, tf.argsort(tf.gather(self.length_key, kept), stable=True))
        batches = tf.RaggedTensor.from_row_lengths(kept, self.row_lengths)
        buckets = self.batch_buckets
        if self.shuffle:
            batch_seed = tf.stack([epoch_seed, tf.constant(1, tf.int64)])
            batch_order = tf.argsort(tf.random.stateless_uniform([self.num_batches], seed=batch_seed))
            batches, buckets = tf.gather(batches, batch_order), tf.gather(buckets, batch_order)
        return tf.data.Dataset.from_tensor_slices((buckets, batches))

    @_plain_graph
    def to_batch(self, bucket: tf.Tensor, indices: tf.Tensor):
        """The padded (inputs, labels) of the examples `indices` of one bucket."""
        src = tf.gather(self.sources, indices)
        tgt_in = tf.gather(self.target_inputs, indices)
        tgt_out = tf.gather(self.target_outputs, indices)
        if self.pad_to_bucket:
            rows = tf.size(indices, tf.int64)
            src = src.to_tensor(PAD_ID, shape=tf.stack([rows, self.source_widths[bucket]]))
            tgt_in = tgt_in.to_tensor(PAD_ID, shape=tf.stack([rows, self.target_widths[bucket]]))
            tgt_out = tgt_out.to_tensor(PAD_ID, shape=tf.stack([rows, self.target_widths[bucket]]))
        else:
            src, tgt_in, tgt_out = (t.to_tensor(PAD_ID) for t in (src, tgt_in, tgt_out))
        return {"source_ids": src, "target_input_ids": tgt_in}, tgt_out


def _bucket_widths(encoded: EncodedPairs, boundaries: list[int]) -> tuple[tf.Tensor, tf.Tensor]:
    """Padded source and target widths per bucket (used only with pad_to_bucket): each bucket's
    upper bound b[i] - 1, capped at the maximum source / target length."""
    # max(): a hand-made EncodedPairs may hold rows longer than its declared caps.
    source_cap = max(encoded.max_source_length or 0, max(len(a) for a in encoded.source_ids))
    target_cap = max(encoded.max_target_length or 0, max(len(a) + 1 for a in encoded.target_ids))
    uppers = np.array([b - 1 for b in boundaries] + [max(source_cap, target_cap)], np.int64)
    return tf.constant(np.minimum(uppers, source_cap)), tf.constant(np.minimum(uppers, target_cap))


def _batch_layout(
    bucket_of: np.ndarray, batch_size: int, drop_remainder: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One epoch's batches as positions in the examples sorted by bucket: (positions kept,
    examples per batch, bucket of each batch)."""
    keep, lengths, buckets = [], [], []
    offset = 0
    for bucket, count in enumerate(np.bincount(bucket_of)):
        usable = count - count % batch_size if drop_remainder else count
        keep.append(np.arange(offset, offset + usable, dtype=np.int64))
        full, rest = divmod(int(usable), batch_size)
        lengths += [batch_size] * full + ([rest] if rest else [])
        buckets += [bucket] * (full + (1 if rest else 0))
        offset += count
    return np.concatenate(keep), np.asarray(lengths, np.int64), np.asarray(buckets, np.int64)


def _lm_window_starts(num_tokens: int, context_length: int, stride: int) -> np.ndarray:
    """Starts of windows of context_length + 1 tokens: every full window at multiples of stride,
    then one shorter window for the tail that no full window reached."""
    window = context_length + 1
    if num_tokens < 2:
        raise CorpusError(
            f"the text is too short for a language model: {num_tokens} token(s), need at least 2."
        )
    starts = list(range(0, num_tokens - window + 1, stride))
    if not starts:
        return np.zeros(1, np.int64)
    if starts[-1] + window < num_tokens:
        starts.append(starts[-1] + stride)
    return np.asarray(starts, np.int64)


def _check_lm_args(context_length: int, stride: int | None) -> int:
    check_range("context_length", context_length, 1)
    stride = context_length if stride is None else stride
    check_range("stride", stride, 1, context_length)
    return stride


def lm_num_batches(
    num_tokens: int,
    *,
    context_length: int,
    batch_size: int,
    stride: int | None = None,
    drop_remainder: bool = False,
) -> int:
    """Batches in one epoch of `lm_dataset` with the same arguments."""
    stride = _check_lm_args(context_length, stride)
    windows = len(_lm_window_starts(num_tokens, context_length, stride))
    return windows // batch_size if drop_remainder else -(-windows // batch_size)


def lm_dataset(
    token_ids: np.ndarray,
    *,
    context_length: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    stride: int | None = None,
    drop_remainder: bool = False,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Windows of a token stream for a decoder-only model (see the module docstring).

    stride (default context_length, 1..context_length) is the step between window starts; with
    the default each token is a label exactly once per epoch. The last window, if shorter, is
    padded with 0 (masked labels). Every batch has shape (batch, context_length).

    With `shuffle`, each epoch also starts its windows at a random offset in [0, stride) (the
    first `offset` tokens are no label that epoch), so a second epoch cuts the text at other
    places instead of showing the model the same windows again; nanoGPT samples every window at
    a random place for the same reason. Without it (validation), windows start at 0.
    """
    check_range("batch_size", batch_size, 1)
    stride = _check_lm_args(context_length, stride)
    stream = np.asarray(token_ids, dtype=np.int32).reshape(-1)
    starts = _lm_window_starts(len(stream), context_length, stride)
    num_batches = len(starts) // batch_size if drop_remainder else -(-len(starts) // batch_size)
    if num_batches == 0:
        raise CorpusError(
            f"the text makes {len(starts)} window(s) of {context_length} tokens, fewer than one "
            f"batch of {batch_size}; lower the batch size or the context length."
        )
    window = context_length + 1
    padded = tf.constant(np.concatenate([stream, np.zeros(window, np.int32)]))
    offsets = tf.range(window, dtype=tf.int64)

    @_plain_graph
    def to_batch(batch_starts: tf.Tensor):
        windows = tf.gather(padded, batch_starts[:, None] + offsets[None, :])  # (B, context + 1)
        source = tf.zeros([tf.shape(windows)[0], 0], tf.int32)  # (B, 0): no source
        return {"source_ids": source, "target_input_ids": windows[:, :-1]}, windows[:, 1:]

    if shuffle and len(stream) >= window + stride:
        ds = _shuffled_window_starts(len(stream), window, stride, seed, repeat)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        ds = ds.map(to_batch, num_parallel_calls=PARALLEL_CALLS, deterministic=True)
        return _finish(ds)
    ds = tf.data.Dataset.from_tensor_slices(starts)
    if shuffle:
        ds = ds.shuffle(len(starts), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(to_batch, num_parallel_calls=PARALLEL_CALLS, deterministic=True)
    if repeat:
        ds = ds.repeat()
    return _finish(ds)


def _shuffled_window_starts(num_tokens: int, window: int, stride: int, seed: int,
                            repeat: bool) -> tf.data.Dataset:
    """Window starts, epoch after epoch: offset + k * stride for a random offset in [0, stride)
    drawn per epoch (plus one shorter tail window, as `_lm_window_starts`), in a random order.
    Needs num_tokens >= window + stride, so every epoch has at least one full window."""

    @_plain_graph
    def epoch_starts(epoch: tf.Tensor) -> tf.data.Dataset:
        epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch])
        offset = tf.random.stateless_uniform([], epoch_seed, minval=0, maxval=stride, dtype=tf.int64)
        num_full = (num_tokens - window - offset) // stride + 1  # >= 1
        starts = offset + stride * tf.range(num_full)  # (num_full,)
        last = starts[-1]
        tail = tf.boolean_mask(tf.reshape(last + stride, [1]), tf.reshape(last + window < num_tokens, [1]))
        starts = tf.concat([starts, tail], axis=0)  # (windows,)
        order = tf.argsort(tf.random.stateless_uniform(tf.shape(starts), epoch_seed + 1))
        return tf.data.Dataset.from_tensor_slices(tf.gather(starts, order))

    epochs = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)
    return epochs.flat_map(epoch_starts)


def pad_batches_to_multiple(dataset: tf.data.Dataset, multiple: int) -> tf.data.Dataset:
    """Pad each batch with all-padding examples until its size is a multiple of `multiple`.

    Under a distribution strategy Keras splits a batch across replicas and, before training,
    reduces the first batch across them, which fails unless every replica gets the same number of
    rows. Padding rows are all 0 (labels too), so the masked loss and accuracy ignore them; a
    replica that receives only padding rows contributes a zero loss for that step.
    """
    if multiple <= 1:
        return dataset

    @_plain_graph
    def pad(inputs, labels):
        size = tf.shape(labels)[0]
        extra = (multiple - size % multiple) % multiple

        def grow(tensor):
            paddings = tf.concat([[[0, extra]], tf.zeros([tf.rank(tensor) - 1, 2], tf.int32)], axis=0)
            return tf.pad(tensor, paddings)

        return tf.nest.map_structure(grow, inputs), grow(labels)

    return dataset.map(pad, num_parallel_calls=PARALLEL_CALLS, deterministic=True)
