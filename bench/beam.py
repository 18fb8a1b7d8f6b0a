"""beam_throughput: beam search (width 5) over the 1,000 Multi30k En-Fr test2016 sources.

    .venv/bin/python bench/beam.py [--home DIR --run RUN] [--quick] [--corpora DIR]

With --home/--run (bench/run.py passes the run trained by bench/quality.py) the trained model
decodes; without, a `small` Transformer trained here for a short budget (2 minutes; so its
outputs have sensible lengths). The baseline measured in the same run is greedy decoding of the
same sources with the same model. Target: all 1,000 sentences in under 60 s (16.7 sentences/s).
--quick trains for 30 s and decodes the first 200 sources: a smoke check. That model's beam
outputs are 6-14 tokens on average (about 14 after 2 minutes), so its rate is rough; the full
run's figure is the one to record. (20 s was tried: the model then ended most outputs at once.)
A model whose beam outputs average under 3 tokens gets a warning: its rate measures little.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import common


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=None)
    parser.add_argument("--run", default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--corpora", default=None)
    args = parser.parse_args()
    corpora_dir = common.corpora_dir(args.corpora)
    sources = (corpora_dir / "multi30k-en-fr" / "test_2016_flickr.en").read_text(encoding="utf-8").splitlines()
    if args.quick:
        sources = sources[:200]

    from textgen.decoding import DecodingConfig, generate
    from textgen.store.database import RunStore
    from textgen.training import artifacts, planning

    def measure(home: Path, run_id: str) -> None:
        os.environ["TEXTGEN_HOME"] = str(home)
        with RunStore(home) as store:
            trained = artifacts.load_trained(store.run_dir(run_id))
        common.info(f"model: run {run_id} ({trained.config.model.kind}, {trained.config.model.num_layers} layers, "
                    f"d_model {trained.config.model.model_dim}); {len(sources)} sources")
        figures = {}
        for strategy in ("greedy", "beam"):
            config = DecodingConfig(strategy=strategy, beam_width=5, max_length=64, batch_size=32,
                                    time_limit_seconds=0)
            generate(trained.model, trained.source_tokenizer, trained.target_tokenizer, sources[:8], config, attention=False)  # trace
            started = time.perf_counter()
            outputs = generate(trained.model, trained.source_tokenizer, trained.target_tokenizer, sources, config,
                               attention=False)
            seconds = time.perf_counter() - started
            lengths = [len(g.tokens) for g in outputs]
            figures[strategy] = len(sources) / seconds
            if strategy == "beam" and sum(lengths) < 3 * len(lengths):
                common.info("warning: beam outputs average under 3 tokens (the model ends them at once); "
                            "this rate measures little; train longer")
            common.info(f"{strategy}: {seconds:.1f} s, {figures[strategy]:.1f} sentences/s, "
                        f"mean output {sum(lengths) / len(lengths):.1f} tokens, "
                        f"{sum(g.stop_reason == 'max_length' for g in outputs)} hit the length cap")
        common.report("beam_throughput", figures["beam"], "sent/s", ">=16.7", figures["beam"] >= 1000 / 60,
                      f"greedy {figures['greedy']:.1f} sent/s; 1,000 sentences in {1000 / figures['beam']:.0f} s")

    if args.home and args.run:
        measure(Path(args.home), args.run)
        return
    with common.scratch_home() as home, RunStore(home) as store:
        files = common.multi30k_files(corpora_dir, home)
        plan = planning.plan_run(store, str(files["train"]), "transformer", preset="small", settings={
            "tokenizer": "bpe", "vocab_size": "8000", "minutes": "0.5" if args.quick else "2", "epochs": "100", "eval_every_steps": "100000",
            "eval_bleu_examples": "0", "num_probe_samples": "0", "max_target_length": "64"},
            valid=str(files["valid"]), label="beam benchmark model")
        run = common.train_in_job_process(store, plan, 900)
        if run.status != "finished":
            raise SystemExit(f"the beam benchmark's model run ended {run.status}: {run.error}")
        measure(home, run.id)


if __name__ == "__main__":
    main()
