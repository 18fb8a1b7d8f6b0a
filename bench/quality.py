"""translation_quality: the `base` Transformer trained on Multi30k En-Fr for a fixed budget,
sacreBLEU on test2016. A figure for the record (no target), with its learning curve.

    .venv/bin/python bench/quality.py [--minutes 30] [--preset base] [--keep DIR] [--corpora DIR]

A real run through `textgen.training`: byte-level BPE tokenizers (8,000 entries a side),
Multi30k's own validation file for the curve, test2016 held out; then `evaluate_run` decodes
test2016 with beam search (width 5) from the best checkpoint and scores detokenised, cased
output with sacreBLEU (13a) and chrF, with 95% bootstrap intervals. --keep DIR keeps the run's
TEXTGEN_HOME (bench/run.py hands it to the beam benchmark).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import common

SETTINGS = {"tokenizer": "bpe", "vocab_size": "8000", "batch_size": "64", "max_source_length": "64",
            "max_target_length": "64", "schedule": "inverse_sqrt", "warmup_steps": "1000",
            "learning_rate": "7e-4", "label_smoothing": "0.1", "eval_every_steps": "150",
            "eval_bleu_examples": "100", "num_probe_samples": "4", "epochs": "100"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--preset", default="base")
    parser.add_argument("--quick", action="store_true", help="a 2-minute budget, test on 100 pairs")
    parser.add_argument("--keep", default=None, help="keep the TEXTGEN_HOME here (a new folder)")
    parser.add_argument("--corpora", default=None)
    args = parser.parse_args()
    corpora_dir = common.corpora_dir(args.corpora)
    minutes = 2.0 if args.quick else args.minutes

    from textgen.analysis import evaluation
    from textgen.decoding import DecodingConfig
    from textgen.store.database import RunStore
    from textgen.training import planning

    home = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="textgen-bench-quality-"))
    os.environ["TEXTGEN_HOME"] = str(home)
    try:
        with RunStore(home) as store:
            files = common.multi30k_files(corpora_dir, home)
            plan = planning.plan_run(store, str(files["train"]), "transformer", preset=args.preset,
                                     settings={**SETTINGS, "minutes": str(minutes)},
                                     label=f"{args.preset} transformer, Multi30k En-Fr, {minutes:g} min",
                                     valid=str(files["valid"]), test=str(files["test"]))
            common.info(f"{args.preset} transformer: {plan.parameter_count:,} parameters, "
                        f"{plan.steps_per_epoch} steps per epoch; budget {minutes:g} min")
            started = time.time()
            run = common.train_in_job_process(store, plan, minutes * 60 + 1800)
            common.info(f"run {run.id} {run.status} after {time.time() - started:.0f} s")
            rows = store.get_metrics([run.id], names=["loss", "bleu"])
            curve: dict[int, dict[str, float]] = {}
            for m in rows:
                if m.split == "valid":
                    curve.setdefault(m.step, {})[m.name] = m.value
            for step in sorted(curve):
                common.info(f"curve step {step:5d}  valid loss {curve[step].get('loss', float('nan')):.3f}  "
                            f"valid BLEU (100 pairs, greedy) {curve[step].get('bleu', float('nan')):.1f}")
            decoding = DecodingConfig(strategy="beam", beam_width=5, max_length=64, batch_size=32,
                                      time_limit_seconds=0)
            started = time.time()
            result, _, _ = evaluation.evaluate_run(store, run.id, decoding, split="test",
                                                   max_examples=100 if args.quick else None,
                                                   bootstrap_samples=200)
            common.info(f"test2016: {len(result)} pairs decoded (beam 5) and scored in {time.time() - started:.0f} s; "
                        f"{result.signature.splitlines()[0] if result.signature else ''}")
            bleu, chrf = result.metrics["bleu"], result.metrics["chrf"]
            common.report("translation_quality_bleu", bleu.value, "BLEU", "record", None,
                          f"95% CI {bleu.low:.1f}-{bleu.high:.1f}; chrF {chrf.value:.1f}; "
                          f"{args.preset}, {minutes:g} min, En-Fr test2016, cased, detokenised, 13a")
            (home / "quality.json").write_text(json.dumps({"run_id": run.id, "bleu": bleu.value, "chrf": chrf.value,
                                                           "curve": curve}), encoding="utf-8")
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
