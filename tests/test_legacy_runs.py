"""What users have on disk keeps working: a store, a run of every model family and a bundle
written before the package move (tests/fixtures/legacy, see its README) open, load and generate
the same tokens with the same scores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from textgen.decoding import DecodingConfig, generate
from textgen.models import MODEL_KINDS
from textgen.runs import bundle
from textgen.store.database import RunStore
from textgen.training import artifacts

LEGACY = Path(__file__).resolve().parent / "fixtures" / "legacy"
EXPECTED = json.loads((LEGACY / "expected.json").read_text())


def _assert_generates_as_recorded(trained, recorded: dict) -> None:
    for strategy in ("greedy", "beam"):
        outputs = generate(trained.model, trained.source_tokenizer, trained.target_tokenizer, recorded["sources"],
                           DecodingConfig(strategy=strategy, beam_width=3, max_length=12))
        assert [[int(i) for i in o.output_ids] for o in outputs] == recorded[strategy]["tokens"], strategy
        assert [o.output for o in outputs] == recorded[strategy]["text"], strategy
        np.testing.assert_allclose([o.score for o in outputs], recorded[strategy]["score"], rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def legacy_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shutil.copytree(LEGACY / "home", tmp_path_factory.mktemp("legacy") / "home")


def test_a_store_written_before_the_move_opens_with_every_run_and_corpus(legacy_home: Path) -> None:
    with RunStore(legacy_home) as store:
        runs = store.list_runs()
        assert sorted(run.kind for run in runs) == sorted(MODEL_KINDS)
        assert {run.id for run in runs} == set(EXPECTED["runs"])
        assert all(run.status == "finished" for run in runs)
        assert len(store.list_corpora()) == 2
        assert all(store.get_metrics([run.id]) for run in runs)


@pytest.mark.parametrize("run_id", sorted(EXPECTED["runs"]), ids=lambda r: EXPECTED["runs"][r]["kind"])
def test_a_checkpoint_of_every_family_written_before_the_move_generates_as_it_did(legacy_home: Path,
                                                                                   run_id: str) -> None:
    with RunStore(legacy_home) as store:
        trained = artifacts.load_trained(store.run_dir(run_id), "best")
    assert trained.config.model.kind == EXPECTED["runs"][run_id]["kind"]
    _assert_generates_as_recorded(trained, EXPECTED["runs"][run_id])


def test_a_bundle_exported_before_the_move_imports_and_generates_as_it_did(tmp_path: Path) -> None:
    with RunStore(tmp_path / "home") as store:
        run = bundle.import_bundle(store, (LEGACY / "bahdanau-bundle.zip").read_bytes())
        trained = artifacts.load_trained(store.run_dir(run.id), "best")
    assert run.kind == "bahdanau"
    _assert_generates_as_recorded(trained, EXPECTED["runs"][EXPECTED["bundle_run"]])
