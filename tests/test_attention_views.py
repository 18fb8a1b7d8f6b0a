"""textgen.analysis.attention_views: attention maps as plain data, from generations (pure) and from real
trained runs (generated and teacher-forced), and the checkpoints a view can go back to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import copy_home


from textgen.analysis import attention_views
from textgen.analysis.attention_views import AttentionSet, from_generation, from_teacher_forced


def _softmax(values: np.ndarray) -> np.ndarray:
    exp = np.exp(values - values.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def _generation(attention: dict[str, np.ndarray]):
    from textgen.decoding import Generation

    return Generation(
        source="xyxz", source_tokens=["x", "y", "x", "z"], output="aa",
        output_ids=np.asarray([5, 5], np.int32), tokens=["a", "a", "</s>"],
        log_probs=np.zeros(3, np.float32), score=0.0, finished=True, stop_reason="end",
        attention=attention, n_best=[], decoder_input_tokens=["<s>", "a", "a"])


def _transformer_attention(rng: np.random.Generator) -> dict[str, np.ndarray]:
    cross = _softmax(rng.normal(size=(3, 2, 4, 4)))  # (rows, layers, heads, source)
    causal = np.tril(np.ones((3, 3), bool))[:, None, None, :]  # row t reads inputs 0..t
    scores = np.where(causal, rng.normal(size=(3, 2, 4, 3)), -np.inf)
    return {"cross_attention": cross, "self_attention": _softmax(scores)}


def test_transformer_generation_maps_per_layer_head_and_their_mean() -> None:
    rng = np.random.default_rng(0)
    attention = _transformer_attention(rng)
    views = from_generation(_generation(attention))
    assert views.mode == "generated" and views.multi_head
    assert views.kinds == ["cross_attention", "self_attention"]
    assert (views.num_layers("cross_attention"), views.num_heads("cross_attention")) == (2, 4)
    one = views.map("cross_attention", layer=1, head=2)
    np.testing.assert_allclose(one.values, attention["cross_attention"][:, 1, 2])
    assert one.row_labels == ["a", "a", "</s>"] and one.column_labels == ["x", "y", "x", "z"]
    assert (one.layer, one.head) == (1, 2) and "head 2" in one.title
    mean = views.map("cross_attention", layer=-1)
    assert mean.layer == 1 and mean.head is None
    np.testing.assert_allclose(mean.values, attention["cross_attention"][:, 1].mean(axis=1))
    np.testing.assert_allclose(mean.values.sum(axis=1), 1.0, atol=1e-6)
    self_map = views.map("self_attention", 0, 3)
    assert self_map.column_labels == ["<s>", "a", "a"]
    np.testing.assert_allclose(self_map.values.sum(axis=1), 1.0, atol=1e-6)
    assert not np.triu(self_map.values, k=1).any()  # nothing attends to later inputs
    grid = views.head_maps("cross_attention", 0)
    assert [m.head for m in grid] == [0, 1, 2, 3, None]
    np.testing.assert_allclose(np.mean([m.values for m in grid[:-1]], axis=0), grid[-1].values)


def test_recurrent_attention_is_one_map_and_bad_choices_raise() -> None:
    rng = np.random.default_rng(1)
    cross = _softmax(rng.normal(size=(3, 4)))
    views = from_generation(_generation({"cross_attention": cross}))
    assert not views.multi_head and views.kinds == ["cross_attention"]
    assert views.arrays["cross_attention"].shape == (3, 1, 1, 4)
    single = views.map("cross_attention")
    np.testing.assert_allclose(single.values, cross)
    assert (single.layer, single.head) == (None, None)
    with pytest.raises(ValueError, match="layer must be in"):
        views.map("cross_attention", layer=1)
    with pytest.raises(ValueError, match="head must be in"):
        views.map("cross_attention", head=5)
    with pytest.raises(ValueError, match="no self_attention here"):
        views.map("self_attention")
    assert from_generation(_generation({})).kinds == []  # a model without attention
    with pytest.raises(ValueError, match="row labels"):
        AttentionSet(mode="generated", source="", output="",
                     arrays={"cross_attention": np.zeros((2, 1, 1, 3))},
                     row_labels={"cross_attention": ["a"]},
                     column_labels={"cross_attention": ["x", "y", "z"]}, multi_head=False)


def test_labels_stay_distinct_when_tokens_repeat() -> None:
    labels = attention_views.unique_labels(["a", "a", "<b>", "a"])
    assert labels == ["0 a", "1 a", "2 <b>", "3 a"]
    assert len(set(labels)) == 4


def test_teacher_forced_labels_for_seq2seq_and_decoder_only() -> None:
    rng = np.random.default_rng(2)
    forced = {"cross_attention": _softmax(rng.normal(size=(3, 1, 2, 4))),
              "self_attention": _softmax(rng.normal(size=(3, 1, 2, 3))),
              "encoder_self_attention": _softmax(rng.normal(size=(4, 1, 2, 4)))}
    views = from_teacher_forced(forced, source="xyxz", reference="ab",
                                source_tokens=list("xyxz"), reference_tokens=["a", "b"])
    assert views.mode == "teacher_forced" and views.output == "ab"
    assert views.kinds == list(attention_views.KINDS)
    assert views.row_labels["cross_attention"] == ["a", "b", "</s>"]
    assert views.column_labels["self_attention"] == ["<s>", "a", "b"]
    assert views.row_labels["encoder_self_attention"] == views.column_labels["encoder_self_attention"] == list("xyxz")
    lm = from_teacher_forced({"self_attention": _softmax(rng.normal(size=(4, 1, 2, 4)))},
                             source="ab", reference="cd", source_tokens=["a", "b"],
                             reference_tokens=["c", "d"], decoder_only=True)
    assert lm.row_labels["self_attention"] == ["b", "c", "d", attention_views.NEXT_LABEL]
    assert lm.column_labels["self_attention"] == ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def demo_home(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_home(trained_home, tmp_path_factory.mktemp("attention") / "home")


@pytest.fixture(scope="module")
def run_dirs(demo_home: Path) -> dict[str, Path]:
    from textgen.store.database import RunStore

    with RunStore(demo_home) as store:
        return {run.kind: store.run_dir(run.id) for run in store.list_runs()}


def _loaded(run_dir: Path, checkpoint_name: str | None = None):
    from textgen.training import artifacts

    return artifacts.load_trained(run_dir, checkpoint_name=checkpoint_name)


def test_attention_of_trained_runs_on_generated_and_reference_tokens(run_dirs: dict[str, Path]) -> None:
    from textgen.decoding import DecodingConfig

    source, reference = "3 September 1987", "1987-09-03"
    config = DecodingConfig(max_length=12)
    assert attention_views.attention_for_input(_loaded(run_dirs["gru"]), source, None, config).kinds == []

    bahdanau = _loaded(run_dirs["bahdanau"])
    source_tokens = bahdanau.source_tokenizer.token_labels(bahdanau.source_tokenizer.encode(source))
    generated = attention_views.attention_for_input(bahdanau, source, None, config)
    assert generated.kinds == ["cross_attention"] and not generated.multi_head
    cross = generated.map("cross_attention")
    assert cross.column_labels == source_tokens
    assert len(cross.row_labels) == cross.values.shape[0] <= 12
    np.testing.assert_allclose(cross.values.sum(axis=1), 1.0, atol=1e-5)

    transformer = _loaded(run_dirs["transformer"])
    generated = attention_views.attention_for_input(transformer, source, "", config)
    assert generated.mode == "generated" and generated.kinds == list(attention_views.KINDS)
    encoder = generated.arrays["encoder_self_attention"]
    assert encoder.shape[0] == encoder.shape[3] == len(source_tokens)
    for kind in generated.kinds:
        np.testing.assert_allclose(generated.arrays[kind].sum(axis=-1), 1.0, atol=1e-5)
    forced = attention_views.attention_for_input(transformer, source, reference)
    reference_tokens = transformer.target_tokenizer.token_labels(transformer.target_tokenizer.encode(reference))
    assert forced.mode == "teacher_forced"
    assert forced.row_labels["cross_attention"] == reference_tokens + ["</s>"]
    assert forced.column_labels["self_attention"] == ["<s>"] + reference_tokens
    layers, heads = forced.num_layers("cross_attention"), forced.num_heads("cross_attention")
    assert forced.arrays["cross_attention"].shape == (len(reference_tokens) + 1, layers, heads,
                                                      len(source_tokens))
    # The encoder reads only the source: the same encoder attention whatever the target.
    np.testing.assert_allclose(forced.arrays["encoder_self_attention"], encoder, atol=1e-5)


def test_checkpoints_to_go_back_to(run_dirs: dict[str, Path], tmp_path: Path) -> None:
    choices = attention_views.checkpoint_choices(run_dirs["transformer"])
    assert len(choices) == 2  # the tiny runs keep both epochs' checkpoints
    assert [c.step for c in choices] == sorted(c.step for c in choices)
    assert sum(c.is_best for c in choices) == 1 and choices[-1].is_last
    best = attention_views.default_checkpoint(choices)
    assert best.is_best and "best" in best.title and f"step {best.step}" in best.title
    # The same input at the two checkpoints: different weights, different attention.
    maps = [attention_views.attention_for_input(_loaded(run_dirs["transformer"], c.name),
                                                "3 September 1987", "1987-09-03")
            for c in choices]
    assert maps[0].arrays["cross_attention"].shape == maps[1].arrays["cross_attention"].shape
    assert not np.allclose(maps[0].arrays["cross_attention"], maps[1].arrays["cross_attention"])
    fresh = tmp_path / "r-fresh"
    fresh.mkdir()
    assert not attention_views.has_checkpoint(fresh)
    assert attention_views.checkpoint_choices(fresh) == []
    assert attention_views.default_checkpoint([]) is None
    assert list(fresh.iterdir()) == []  # looking did not create a checkpoints folder
