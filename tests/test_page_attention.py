"""The Attention page (AppTest): empty store, a run without attention, recurrent and Transformer
attention, crafted URLs, the checkpoint slider, teacher forcing and untrusted input text."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, copy_home, open_app

from streamlit.testing.v1 import AppTest

from pages.ui import chart_label

PAGE = str(ROOT / "pages" / "5_Attention.py")


def _page(**query: str) -> AppTest:
    return open_app(PAGE, **query)


def _charts(app: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def _z(trace: dict) -> np.ndarray:
    """A heatmap's values (Plotly may send them as typed binary data)."""
    z = trace["z"]
    if isinstance(z, dict):
        flat = np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.dtype(z["dtype"]))
        return flat.reshape([int(n) for n in str(z["shape"]).split(",")])
    return np.asarray(z, np.float64)


def _selectbox(app: AppTest, label: str):
    return next(box for box in app.selectbox if box.label == label)


@pytest.fixture(scope="module")
def demo_home(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_home(trained_home, tmp_path_factory.mktemp("attention-page") / "home")


@pytest.fixture
def runs(demo_home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    from textgen.store.database import RunStore

    monkeypatch.setenv("TEXTGEN_HOME", str(demo_home))
    with RunStore(demo_home) as store:
        return {run.kind: run.id for run in store.list_runs()}


def test_empty_store_says_what_to_do(home: Path) -> None:
    app = _page()
    assert not app.exception
    assert any("No trained runs yet" in info.value for info in app.info)
    assert not app.get("plotly_chart")


def test_a_run_without_attention_says_so(runs: dict[str, str]) -> None:
    app = _page(run=runs["gru"])
    assert not app.exception
    assert any("has no attention" in info.value for info in app.info)
    assert not app.get("plotly_chart")


def test_recurrent_attention_is_one_heatmap_with_values_on_hover(runs: dict[str, str]) -> None:
    app = _page(run=runs["bahdanau"], example="999", kind="encoder_self_attention")
    assert not app.exception
    assert _selectbox(app, "Example").value == len(_selectbox(app, "Example").options) - 1
    assert _selectbox(app, "Attention").options == ["Cross attention (output → source)"]
    assert not [box for box in app.selectbox if box.label in ("Layer", "Head")]
    (chart,) = _charts(app)
    heatmap = chart["data"][0]
    assert heatmap["type"] == "heatmap" and "weight: %{z" in heatmap["hovertemplate"]
    assert _z(heatmap).shape == (len(heatmap["y"]), len(heatmap["x"]))
    np.testing.assert_allclose(_z(heatmap).sum(axis=1), 1.0, atol=1e-5)
    assert len(set(heatmap["x"])) == len(heatmap["x"])  # repeated tokens keep their own cells
    assert app.query_params["kind"] == "cross_attention"


def test_transformer_layer_and_head_from_a_crafted_link_clamp(runs: dict[str, str]) -> None:
    app = _page(run=runs["transformer"], layer="99", head="-5")
    assert not app.exception
    layer, head = _selectbox(app, "Layer"), _selectbox(app, "Head")
    assert layer.value == len(layer.options) - 1 and head.value == -1  # last layer, mean of heads
    assert app.query_params["layer"] == str(layer.value) and app.query_params["head"] == "-1"
    assert len(_selectbox(app, "Attention").options) == 3  # cross, decoder self, encoder self
    single, grid = _charts(app)
    heads = len(head.options) - 1
    assert len(grid["data"]) == heads + 1  # every head and their mean
    head.set_value(1).run()
    assert not app.exception and app.query_params["head"] == "1"
    np.testing.assert_allclose(_z(_charts(app)[0]["data"][0]), _z(grid["data"][1]))  # head 1
    np.testing.assert_allclose(_z(single["data"][0]), _z(grid["data"][-1]))  # mean of heads
    _selectbox(app, "Attention").set_value("encoder_self_attention").run()
    encoder = _charts(app)[0]["data"][0]
    assert not app.exception and encoder["x"] == encoder["y"]  # source by source
    assert app.query_params["kind"] == "encoder_self_attention"


def test_changing_the_view_or_opening_the_same_link_never_runs_the_model_again(
        runs: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The model runs once per (run, checkpoint, input, reference): another kind, layer or head,
    and a second session opening the same link, reuse it; a new input runs it again."""
    from textgen.analysis import attention_views

    real, calls = attention_views.attention_for_input, []

    def counted(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(attention_views, "attention_for_input", counted)
    link = {"run": runs["transformer"], "input": "14 March 2011 (cache probe)"}
    app = _page(**link)
    assert not app.exception and calls == ["14 March 2011 (cache probe)"]
    _selectbox(app, "Head").set_value(0).run()
    _selectbox(app, "Layer").set_value(0).run()
    _selectbox(app, "Attention").set_value("self_attention").run()
    assert not app.exception and len(calls) == 1
    again = _page(**link)  # a teammate opens the same link
    assert not again.exception and len(calls) == 1
    assert _charts(again)[0] != {} and again.text[-1].value == app.text[-1].value
    again.text_input[0].set_value("15 March 2011 (cache probe)").run()
    assert not again.exception and calls[-1] == "15 March 2011 (cache probe)" and len(calls) == 2


def test_checkpoint_slider_shows_the_same_input_earlier(runs: dict[str, str]) -> None:
    # Teacher-forced on the example's reference, so both checkpoints' maps have the same shape.
    app = _page(run=runs["transformer"], mode="teacher_forced")
    slider = app.select_slider(key="att-checkpoint")
    best = _charts(app)[0]["data"][0]
    earlier = "ckpt-000000011"
    assert "best" in slider.format_func(slider.value)
    slider.set_value(earlier).run()
    assert not app.exception and app.query_params["checkpoint"] == earlier
    then = _charts(app)[0]["data"][0]
    assert (then["x"], then["y"]) == (best["x"], best["y"]) and not np.allclose(_z(then), _z(best))
    # A crafted checkpoint name is ignored: the best is shown.
    app = _page(run=runs["transformer"], checkpoint="../../etc")
    assert not app.exception and "best" in app.select_slider(key="att-checkpoint").format_func(
        app.select_slider(key="att-checkpoint").value)


def test_teacher_forced_attention_on_the_reference(runs: dict[str, str]) -> None:
    app = _page(run=runs["transformer"], mode="teacher_forced", example="1")
    assert not app.exception
    reference = app.text_input[0].value
    assert reference and any(text.value == f"Reference: {reference}" for text in app.text)
    rows = _charts(app)[0]["data"][0]["y"]
    assert len(rows) == len(reference) + 1 and rows[-1] == chart_label(f"{len(reference)} </s>")


def test_typed_input_is_shown_only_as_text(runs: dict[str, str]) -> None:
    app = _page(run=runs["bahdanau"])
    app.radio(key="att-source").set_value("typed").run()
    app.text_input(key="att-input").input("<script>alert(1)</script>").run()
    assert not app.exception
    assert app.query_params["input"] == "<script>alert(1)</script>"
    assert "Input:  <script>alert(1)</script>" in [text.value for text in app.text]
    assert not app.get("html")
    assert not any("<script" in markdown.value for markdown in app.markdown)
    labels = _charts(app)[0]["data"][0]["x"]
    assert labels[0] == chart_label("0 <unk>")  # the char tokenizer does not know "<"
    assert not any("<" in label for label in labels)


def test_a_bogus_run_in_the_link_is_ignored(runs: dict[str, str]) -> None:
    app = _page(run="bogus", layer="x", head="")
    assert not app.exception
    assert _selectbox(app, "Run").value in runs.values()
