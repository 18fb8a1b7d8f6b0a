"""train_tokens_per_s: our training throughput against a plain tutorial-style reference.

    .venv/bin/python bench/throughput.py [--quick] [--kinds transformer,bahdanau] [--corpora DIR]

Same data (Multi30k En-Fr training pairs, word tokenizers with 8,000 entries trained by our
plan, sources and targets truncated to 64 tokens), same architecture and size, same batch (64):

- ours: a real run through `textgen.training` / `textgen.training.jobs` (what the Train page starts: a job
  in its own process, with its default thread layout), for a time budget; throughput is read from the metrics it logs, steady state only (between the
  first row logged after the warm-up and the last one), in real target tokens (</s> included).
- reference (bench/reference.py): the TensorFlow tutorials' model code, default `fit`, every
  batch padded to the corpus's longest example, no bucketing and no compilation flags; timed
  after its warm-up steps, in the same real target tokens.

Sizes: Transformer 4+4 layers, d_model 128, 8 heads, feed-forward 512 (the tutorial's); Bahdanau
one GRU layer of 256 units, embeddings 128. Target: ours / reference >= 3.

--quick (a smoke check) measures the Transformer pair only, ours for 33 s and the reference for
4 steps; the Bahdanau reference alone needs about 2 minutes to build its unrolled graph.

Outside --quick, ours is also timed with `matmul_precision=bfloat16` (the Transformer only),
recorded against the same float32 reference with no target: the target compares like with like.
"""

from __future__ import annotations

import argparse
import time

import common

SETTINGS = {
    "transformer": {"model_dim": "128", "num_layers": "4", "num_heads": "8", "feed_forward_dim": "512",
                    "dropout": "0.1", "schedule": "inverse_sqrt", "warmup_steps": "4000"},
    "bahdanau": {"embedding_dim": "128", "hidden_units": "256", "num_layers": "1", "dropout": "0.1"},
}
COMMON = {"tokenizer": "word", "vocab_size": "8000", "batch_size": "64", "max_source_length": "64",
          "max_target_length": "64", "eval_bleu_examples": "0", "num_probe_samples": "0",
          "eval_every_steps": "100000", "epochs": "50", "keep_checkpoints": "0"}


def ours_tokens_per_second(store, run_id: str, tokens_per_step: float, warmup_seconds: float) -> tuple[float, int]:
    rows = sorted((m for m in store.get_metrics([run_id], names=["loss"]) if m.split == "train"),
                  key=lambda m: m.step)
    if len(rows) < 3:
        raise SystemExit(f"run {run_id} logged {len(rows)} training rows: too short to measure")
    start = next((m for m in rows if m.time - rows[0].time >= warmup_seconds), rows[1])
    end = rows[-1]
    if end.step <= start.step:
        raise SystemExit(f"run {run_id} logged training rows for {end.time - rows[0].time:.0f} s, not more than "
                         f"its {warmup_seconds} s warm-up: too short to measure; give it a longer budget")
    steps = end.step - start.step
    return steps * tokens_per_step / (end.time - start.time), steps


def reference_tokens_per_second(kind: str, encoded, source_vocab: int, target_vocab: int,
                                warmup_steps: int, timed_steps: int) -> float:
    import keras
    import reference

    from textgen.data.tokenizers import BOS_ID, EOS_ID

    keras.utils.set_random_seed(0)
    dataset, real_tokens = reference.padded_dataset(encoded.source_ids, encoded.target_ids, 64, BOS_ID, EOS_ID)
    tokens_per_step = real_tokens / (len(encoded.source_ids) / 64)
    if kind == "transformer":
        model = reference.TutorialTransformer(num_layers=4, d_model=128, num_heads=8, dff=512,
                                              input_vocab_size=source_vocab, target_vocab_size=target_vocab)
        optimizer = keras.optimizers.Adam(reference.CustomSchedule(128), beta_1=0.9, beta_2=0.98, epsilon=1e-9)
    else:
        model = reference.TutorialBahdanau(input_vocab_size=source_vocab, target_vocab_size=target_vocab,
                                           embedding_dim=128, units=256)
        optimizer = keras.optimizers.Adam()
    model.compile(optimizer=optimizer, loss=reference.masked_loss, metrics=[reference.masked_accuracy])

    class Clock(keras.callbacks.Callback):
        times: dict[int, float] = {}

        def on_train_batch_end(self, batch, logs=None):
            self.times[batch] = time.perf_counter()

    clock = Clock()
    model.fit(dataset, steps_per_epoch=warmup_steps + timed_steps, epochs=1, verbose=0, callbacks=[clock],
              shuffle=False)
    seconds = clock.times[warmup_steps + timed_steps - 1] - clock.times[warmup_steps - 1]
    return timed_steps * tokens_per_step / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--kinds", default=None,
                        help="comma-separated: transformer,bahdanau (the default; transformer alone with --quick)")
    parser.add_argument("--corpora", default=None, help="the shared corpora folder (default ../shared/corpora)")
    args = parser.parse_args()
    corpora_dir = common.corpora_dir(args.corpora)
    # --quick is a smoke check: the Transformer pair only. The Bahdanau reference unrolls its
    # decoder over the longest example's 41 positions, and building that graph and its gradient
    # takes about 2 minutes here before the first step.
    kinds = (args.kinds or ("transformer" if args.quick else "transformer,bahdanau")).split(",")
    if args.quick and not args.kinds:
        common.info("bahdanau: skipped in --quick (its reference's graph takes ~2 minutes to build)")
    ours_minutes = 0.55 if args.quick else 2.5  # in --quick, about 20 s of steady state after the warm-up
    # The reference is timed over 60 steps (about 30 s for the Transformer): over 20 (about 10 s)
    # it read 1,721 and 1,492 tokens/s in two full runs minutes apart, against 3% for ours.
    ref_steps = (2, 4) if args.quick else (3, 60)

    from textgen.data import pipeline, registry
    from textgen.store.database import RunStore
    from textgen.training import planning

    warmup_seconds = 10 if args.quick else 20
    with common.scratch_home() as home, RunStore(home) as store:
        files = common.multi30k_files(corpora_dir, home)

        def train_ours(kind: str, settings: dict[str, str], label: str):
            plan = planning.plan_run(store, str(files["train"]), kind, preset="small", settings=settings,
                                     label=label, valid=str(files["valid"]))
            run = common.train_in_job_process(store, plan, ours_minutes * 60 + 600)
            if run.status != "finished":
                raise SystemExit(f"our run {label!r} ended {run.status}: {run.error}")
            return plan, run

        for kind in kinds:
            settings = {**COMMON, **SETTINGS[kind], "minutes": str(ours_minutes)}
            plan, run = train_ours(kind, settings, f"throughput {kind}")
            parts = registry.run_examples(store, plan.config.corpus_id)
            encoded = pipeline.encode_pairs([e.source for e in parts["train"]], [e.target for e in parts["train"]],
                                        plan.source_tokenizer, plan.target_tokenizer,
                                        max_source_length=64, max_target_length=64)
            tokens_per_step = sum(len(t) + 1 for t in encoded.target_ids) / plan.steps_per_epoch
            ours, steps = ours_tokens_per_second(store, run.id, tokens_per_step, warmup_seconds)
            common.info(f"{kind} ours: {ours:.0f} target tok/s over {steps} steady steps "
                        f"({plan.parameter_count:,} parameters)")
            reference = reference_tokens_per_second(
                kind, encoded, plan.source_tokenizer.vocab_size, plan.target_tokenizer.vocab_size, *ref_steps)
            common.info(f"{kind} reference: {reference:.0f} target tok/s over {ref_steps[1]} steps "
                        "(padded to the longest example)")
            ratio = ours / reference
            common.report(f"train_tokens_per_s_{kind}", ours, "tok/s", "record", None)
            common.report(f"train_tokens_per_s_{kind}_ratio", ratio, "x", ">=3", ratio >= 3,
                          f"reference {reference:.0f} tok/s")
            if kind == "transformer" and not args.quick:
                _, run = train_ours(kind, {**settings, "matmul_precision": "bfloat16"}, f"throughput {kind} bfloat16")
                fast, steps = ours_tokens_per_second(store, run.id, tokens_per_step, warmup_seconds)
                common.info(f"{kind} ours with bfloat16 matmuls: {fast:.0f} target tok/s over {steps} steady steps")
                common.report(f"train_tokens_per_s_{kind}_bfloat16", fast, "tok/s", "record", None)
                common.report(f"train_tokens_per_s_{kind}_bfloat16_ratio", fast / reference, "x", "record", None,
                              f"against the float32 reference, {fast / ours:.2f}x our float32")

if __name__ == "__main__":
    main()
