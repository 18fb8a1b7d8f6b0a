"""decode_speedup: our cached Transformer decoding against re-running the full model per token.

    .venv/bin/python bench/decode_speed.py [--quick] [--batch 1]

The baseline is what the TensorFlow Transformer tutorial's `Translator` does: inside a
`tf.function`, for every output token, run the whole model (encoder included) on the source and
the prefix so far and keep the last position's arg-max. Ours is `textgen.decoding.decode_ids`
(greedy): the encoder once, then one `decode_step` per token over a preallocated key/value cache,
the whole loop in one `tf.function`, returning the text only as the baseline does
(`attention=False`, what evaluation uses; the figure with every step's attention recorded, as
the Attention page needs, is printed beside it). Both decode exactly N tokens (no end token can stop them:
the end id is set to one that never wins) with the same randomly initialised model (speed does
not depend on the weights), and the benchmark checks that both produce the same tokens.

Model: the tutorial's size (4+4 layers, d_model 128, 8 heads, feed-forward 512), vocabulary 8,000,
sources of 20 tokens, batch 1 (the tutorial translates one sentence at a time). Target: at least
5x faster at 128 tokens.
"""

from __future__ import annotations

import argparse
import time

import common


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--corpora", default=None, help="unused (no corpus needed); accepted for bench/run.py")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    from textgen.decoding import DecodingConfig, decode_ids
    from textgen.decoding.common import BANNED_IDS, BOS_ID
    from textgen.models.config import ModelConfig
    from textgen.models.registry import build_model

    lengths = (32, 64, 128)
    vocab = 8000
    never = vocab + 1  # an end id no arg-max can return: every row decodes the full length
    config = ModelConfig(kind="transformer", source_vocab_size=vocab, target_vocab_size=vocab,
                         model_dim=128, num_heads=8, feed_forward_dim=512, num_layers=4, dropout=0.0,
                         max_source_length=64, max_target_length=max(lengths))
    keras_seed = 0
    tf.keras.utils.set_random_seed(keras_seed)
    model = build_model(config)
    rng = np.random.default_rng(0)
    source = rng.integers(4, vocab, size=(args.batch, 20)).astype(np.int32)
    banned = tf.constant([[i in BANNED_IDS for i in range(vocab)]])  # (1, vocab)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([], tf.int32)])
    def full_rerun(source_ids, steps):
        """The tutorial's loop: the whole model on the prefix, every token."""
        batch = tf.shape(source_ids)[0]
        output = tf.fill([batch, 1], BOS_ID)  # (batch, 1)
        for _ in tf.range(steps):
            tf.autograph.experimental.set_loop_options(
                shape_invariants=[(output, tf.TensorShape([None, None]))])
            logits = model({"source_ids": source_ids, "target_input_ids": output}, training=False)
            last = tf.where(banned, -np.inf, logits[:, -1, :])  # (batch, vocab)
            next_ids = tf.argmax(last, axis=-1, output_type=tf.int32)  # (batch,)
            output = tf.concat([output, next_ids[:, None]], axis=1)  # (batch, t + 1)
        return output[:, 1:]

    def ours(steps: int, attention: bool = False):
        decoding = DecodingConfig(strategy="greedy", max_length=steps, batch_size=args.batch,
                                  time_limit_seconds=0)
        return decode_ids(model, source, decoding, eos_id=never, attention=attention)

    def ours_with_attention(steps: int):
        return ours(steps, attention=True)

    def baseline(steps: int):
        return full_rerun(tf.constant(source), tf.constant(steps, tf.int32)).numpy()

    repeats = 2 if args.quick else 5
    common.info(f"transformer 4+4 layers, d_model 128, vocab {vocab}, batch {args.batch}, "
                f"source 20 tokens; best of {repeats} runs each")
    # Trace both once (ours traces once for every length; the baseline too, via the signature).
    ours(4), ours_with_attention(4), baseline(4)
    speedup = {}
    for steps in lengths:
        times = {}
        for name, fn in (("cached", ours), ("cached_with_attention", ours_with_attention), ("full_rerun", baseline)):
            best = float("inf")
            for _ in range(repeats):
                started = time.perf_counter()
                result = fn(steps)
                best = min(best, time.perf_counter() - started)
            times[name] = best
            if name == "cached":
                ours_ids = np.stack([r.ids for r in result])
            elif name == "cached_with_attention":
                with_attention_ids = np.stack([r.ids for r in result])
            else:
                baseline_ids = result
        if not np.array_equal(ours_ids, with_attention_ids):
            raise SystemExit(f"decoding with and without attention disagree at {steps} tokens")
        if ours_ids.shape != baseline_ids.shape or not np.array_equal(ours_ids, baseline_ids):
            same = float(np.mean(ours_ids == baseline_ids)) if ours_ids.shape == baseline_ids.shape else 0.0
            raise SystemExit(f"the two decoders disagree at {steps} tokens ({same:.0%} of tokens equal): "
                             "the benchmark would compare different work")
        speedup[steps] = times["full_rerun"] / times["cached"]
        common.info(f"{steps} tokens: cached {times['cached'] * 1000 / steps:.2f} ms/token "
                    f"({times['cached_with_attention'] * 1000 / steps:.2f} recording every step's attention, "
                    f"{times['full_rerun'] / times['cached_with_attention']:.1f}x), "
                    f"full re-run {times['full_rerun'] * 1000 / steps:.2f} ms/token (same tokens)")
        target = ">=5" if steps == 128 else "record"
        common.report(f"decode_speedup_{steps}", speedup[steps], "x", target,
                      speedup[steps] >= 5 if steps == 128 else None)


if __name__ == "__main__":
    main()
