"""The HTML report: its contents, hostile text kept as text, robustness, and Chromium offline.

One report is built per module (three demo runs, a run trained on a hostile corpus under a
hostile label, and a run that never trained) and checked by parsing it with html.parser and by
opening it in headless Chromium with no network.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers import copy_home


HOSTILE = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[x](javascript:alert(1))", "\u202e")
HOSTILE_LABEL = "evil " + " ".join(HOSTILE)
NETWORK_ATTRIBUTES = ("src", "href", "action", "formaction", "srcset", "poster", "data", "background")


class Document(HTMLParser):
    """Every element with its attributes, the text of each <script>/<style>, and the page text."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.texts: list[str] = []
        self._inside: str | None = None
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag == "script":
            self._inside = tag
            self.scripts.append("")
        elif tag == "style":
            self._inside = tag
            self.styles.append("")

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag == self._inside:
            self._inside = None

    def handle_data(self, data):
        if self._inside == "script":
            self.scripts[-1] += data
        elif self._inside == "style":
            self.styles[-1] += data
        else:
            self.texts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def find(self, tag: str, **attributes: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.elements if name == tag
                and all(attrs.get(key.replace("_", "-")) == value for key, value in attributes.items())]


def _hostile_corpus(path: Path) -> Path:
    lines = [f"{HOSTILE[i % 4]} {i}\t{HOSTILE[(i + 1) % 4]} {i}" for i in range(40)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def report_runs(trained_home: Path, tmp_path_factory: pytest.TempPathFactory):
    """A copy of trained_home plus a hostile run (trained and evaluated) and an untrained run;
    yields (home, {kind or "hostile" or "untrained": RunRecord})."""
    from textgen.analysis import evaluation
    from textgen.decoding import DecodingConfig
    from textgen.store.database import RunStore
    from textgen.training import jobs, planning

    base = tmp_path_factory.mktemp("report")
    home = copy_home(trained_home, base / "home")
    with RunStore(home) as store:
        runs = {run.kind: run for run in store.list_runs()}
        plan = planning.plan_run(
            store, str(_hostile_corpus(base / "hostile.tsv")), "bahdanau", preset="tiny", label=HOSTILE_LABEL,
            settings={"tokenizer": "char", "epochs": "1", "batch_size": "16", "eval_bleu_examples": "4"})
        hostile = jobs.run_job(store, jobs.submit(store, plan, background=False).id)
        assert hostile.status == "finished", hostile.error
        evaluation.evaluate_run(store, hostile.id, DecodingConfig(max_length=32), bootstrap_samples=50)
        runs["hostile"] = hostile
        runs["untrained"] = store.create_run(label="never trained", kind="gru", config={}, status="stopped")
    return home, runs


@pytest.fixture(scope="module")
def built(report_runs):
    """The report of all five runs, as text, parsed, and written to a file."""
    from textgen.analysis import report
    from textgen.store.database import RunStore

    home, runs = report_runs
    with RunStore(home) as store:
        markup = report.build_report(store, [run.id for run in runs.values()], examples=3)
    path = home.parent / report.report_file_name()
    path.write_text(markup, encoding="utf-8")
    return markup, Document(markup), path


# Figures: validation curves across runs, one curve chart per run with metrics (the untrained
# one has none) and an attention map per attention model (bahdanau, transformer, hostile).
EXPECTED_FIGURES = 1 + 4 + 3


def test_hostile_text_is_only_ever_text(built, report_runs) -> None:
    from textgen.core.text import visible

    markup, document, _ = built
    # Scripts: plotly's config and library (once), then one Plotly.newPlot per figure.
    assert len(document.scripts) == 2 + EXPECTED_FIGURES
    assert sum("plotly.js v" in script[:200] for script in document.scripts) == 1
    assert all("Plotly.newPlot" in script for script in document.scripts[2:])
    assert not [script for script in document.scripts if "alert(1)" in script]
    assert not [attrs for _, attrs in document.elements if "onerror" in attrs]
    assert not [attrs for _, attrs in document.elements if any(key.startswith("on") for key in attrs)]
    tags = {tag for tag, _ in document.elements}
    assert not tags & {"img", "a", "iframe", "object", "embed", "link", "form", "base", "svg", "math"}
    # The hostile strings are there, as text: in the label and in the corpus examples.
    assert visible(HOSTILE_LABEL) in document.text
    for hostile in HOSTILE[:3]:
        assert f"{hostile} " in document.text  # a source or reference cell ("... 7")
    assert "⟨U+202E⟩" in document.text and "\u202e" not in markup


def test_report_loads_nothing_from_the_network(built) -> None:
    from textgen.analysis import report
    from textgen.analysis.report import CONTENT_SECURITY_POLICY

    _, document, _ = built
    for tag, attrs in document.elements:
        for name in NETWORK_ATTRIBUTES:
            assert name not in attrs, (tag, attrs)
    [policy] = [attrs["content"] for attrs in document.find("meta", http_equiv="Content-Security-Policy")]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'none'" and directives["img-src"] == "data:"
    assert directives["style-src"] == "'unsafe-inline'"
    # Scripts: 'unsafe-inline' for old browsers, and for current ones (which then ignore it) the
    # hash of each script in the file, so nothing else could run.
    hashes = ["'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
              for script in document.scripts]
    assert directives["script-src"].split() == ["'unsafe-inline'", *hashes]
    assert policy == report.content_security_policy(document.scripts)
    assert CONTENT_SECURITY_POLICY.replace("'unsafe-inline'", "'unsafe-inline' " + " ".join(hashes), 1) == policy
    first_script = next(i for i, (tag, _) in enumerate(document.elements) if tag == "script")
    meta = next(i for i, (tag, attrs) in enumerate(document.elements)
                if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy")
    assert meta < first_script  # the policy is in force before any script runs
    assert all("url(" not in style and "@import" not in style for style in document.styles)


def test_report_has_every_run_leaderboard_and_figures(built, report_runs) -> None:
    from textgen.core.text import visible

    _, document, _ = built
    _, runs = report_runs
    for run in runs.values():
        assert visible(run.label) in document.text
        assert document.find("article", id=f"run-{run.id}")
    board = [attrs["data-run-id"] for attrs in document.find("tr", **{"class": "leaderboard-row"})]
    assert sorted(board) == sorted(run.id for run in runs.values())
    assert board[-1] == runs["untrained"].id  # no evaluation: listed last, with a sentence
    assert "no stored evaluation" in document.text
    assert "it has no usable configuration" in document.text
    divs = [attrs["id"] for attrs in document.find("div") if "plotly-graph-div" in (attrs.get("class") or "")]
    assert divs == [f"figure-{n}" for n in range(1, EXPECTED_FIGURES + 1)]
    # Leaderboard cells carry the interval: "value [low, high]", for the four evaluated runs.
    assert len(re.findall(r"-?\d+\.\d\d \[-?\d+\.\d\d, -?\d+\.\d\d\]", document.text)) == 4 * 6
    # The configuration of each trained run, as JSON text.
    assert document.text.count('"model": {') == 4


def test_report_of_a_run_without_checkpoint_or_evaluation(store) -> None:
    from textgen.analysis import report
    from textgen.data.samples import catalog
    from textgen.training import planning

    corpus = store.home.parent / "dates.tsv"
    corpus.write_bytes(catalog.sample_bytes("dates", size=60, seed=3))
    plan = planning.plan_run(store, str(corpus), "transformer", preset="tiny", label="planned only",
                             settings={"tokenizer": "char"})
    run = planning.create_run(store, plan)
    document = Document(report.build_report(store, [run.id], examples=2))
    assert "it has no checkpoint yet" in document.text
    assert f"{plan.parameter_count:,}" in document.text
    assert "no stored evaluation" in document.text
    assert document.scripts == []  # no figures, so no plotly.js either
    [policy] = [attrs["content"] for attrs in document.find("meta", http_equiv="Content-Security-Policy")]
    assert "script-src 'none'" in policy
    assert "None of these runs could decode examples" in document.text


def test_build_report_refuses_bad_arguments(store) -> None:
    from textgen.analysis import report
    from textgen.core.errors import ConfigError, StoreError

    run = store.create_run(label="x", kind="gru", config={})
    with pytest.raises(ConfigError, match="at least one run"):
        report.build_report(store, [])
    with pytest.raises(ConfigError, match="from 0 to 64"):
        report.build_report(store, [run.id], examples=65)
    with pytest.raises(StoreError, match="no run with id"):
        report.build_report(store, ["r-000000000000"])
    assert report.report_file_name(datetime.datetime(2025, 1, 31, 15, 30)) == "textgen-report-2025-01-31-1530.html"


def _open_offline(path: Path, figures: int) -> dict:
    """Open a report file in headless Chromium; what it showed and what went wrong."""
    from browser import chromium_page

    seen: dict = {"dialogs": [], "errors": [], "requests": []}
    with chromium_page() as page:
        page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
        page.on("console", lambda message: seen["errors"].append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: seen["errors"].append(str(error)))
        page.on("request", lambda request: seen["requests"].append(request.url))
        page.goto(path.as_uri())
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length === {figures}",
                               timeout=60_000)
        page.wait_for_timeout(500)
        seen["titles"] = page.locator(".gtitle").all_text_contents()
        seen["svgs"] = page.locator(".js-plotly-plot .main-svg").count()
    seen["network"] = [url for url in seen["requests"] if not url.startswith(("file://", "data:"))]
    return seen


@pytest.mark.browser
def test_report_renders_offline_in_chromium(built) -> None:
    _, _, path = built
    seen = _open_offline(path, EXPECTED_FIGURES)
    assert seen["dialogs"] == []
    assert seen["errors"] == []  # a script blocked by the policy would be logged here
    assert seen["network"] == []
    assert seen["svgs"] >= EXPECTED_FIGURES
    # Plotly shows the hostile label as its characters, not as markup or as entities.
    assert any("<script>alert(1)</script>" in title for title in seen["titles"]), seen["titles"]


@pytest.mark.browser
def test_policy_stops_markup_that_slipped_past_escaping(built, tmp_path: Path) -> None:
    """Defence in depth: were a tag ever written unescaped, the policy's script hashes would
    still keep it from running, and its image from loading, while the charts still work."""
    markup, _, _ = built
    tampered = tmp_path / "tampered.html"
    tampered.write_text(markup.replace(
        "<h1>TextGen Lab report</h1>",
        "<h1>TextGen Lab report</h1><img src=x onerror=alert(1)><script>alert(2)</script>", 1),
        encoding="utf-8")
    seen = _open_offline(tampered, EXPECTED_FIGURES)
    assert seen["dialogs"] == []
    assert any("Content Security Policy" in error for error in seen["errors"]), seen["errors"]
    assert seen["network"] == []
