"""A self-contained HTML report of some runs, for sharing a demo after the fact.

One file that opens offline in any browser (TensorBoard.dev, the old way to share curves, shut
down in 2024): per run its label, kind, status, parameter count, configuration, training and
validation curves and an attention map; across runs a leaderboard of stored evaluations with
their 95% intervals, validation curves side by side and a table of test examples decoded by each
run.

Why it is safe to open a report built from someone's corpus:
- Every piece of untrusted text (run labels, corpus sources and references, generated outputs,
  token labels, error messages) goes through `textgen.core.text.visible` (invisible and bidi
  characters shown as ⟨U+XXXX⟩) and is then escaped: `html.escape` in the HTML, numeric
  character references in Plotly labels (`_chart`; Plotly interprets a few tags such as
  <a href> and <b> in labels). Markup therefore only ever comes from this module.
- plotly.js is inlined exactly once (with the first figure), so nothing is fetched, and a
  Content-Security-Policy <meta> forbids any network access: even an injected URL cannot load.
  The only scripts are plotly.js and one `Plotly.newPlot` call per figure (Plotly's JSON escapes
  <, > and /, so a label cannot end its script element either), and the policy lists their
  hashes, so a current browser would run no other script even if markup slipped through.
- File names are ours (`report_file_name`), never taken from user input.

Decoding loads each run's best checkpoint in turn (`artifacts.load_trained`), so building a
report takes seconds per run; runs without a checkpoint or an evaluation get a sentence saying
so instead of failing the report.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _datetime
import hashlib
import html
import json
import re
from typing import Any, Sequence

from textgen.core.errors import ConfigError, TextgenError
from textgen.core.text import chart_text, visible
from textgen.decoding.config import DecodingConfig
from textgen.store.database import RunRecord, RunStore
from textgen.training import artifacts

# No network at all: scripts and styles only inline, images only as data: URLs (Plotly's
# "download as PNG"), no <base> and no form submission. frame-ancestors is not allowed in a
# <meta> policy (browsers ignore it there and log an error), so it is left out.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)
_SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def content_security_policy(scripts: Sequence[str]) -> str:
    """CONTENT_SECURITY_POLICY with the SHA-256 of each script the report holds added to
    script-src. Browsers that know hashes (CSP 2, every current one) then ignore
    'unsafe-inline' and run only those scripts, so even markup that slipped past escaping
    could not run a script or an onerror= handler; older ones fall back to 'unsafe-inline'.
    A report without figures has no scripts and allows none."""
    if not scripts:
        return CONTENT_SECURITY_POLICY.replace("script-src 'unsafe-inline'", "script-src 'none'")
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"
        for script in dict.fromkeys(scripts))
    return CONTENT_SECURITY_POLICY.replace("script-src 'unsafe-inline'", f"script-src 'unsafe-inline' {hashes}")


MAX_EXAMPLES = 64
LEADERBOARD_METRICS = ("bleu", "chrf", "ter", "rouge1", "rouge2", "rougeL")
METRIC_TITLES = {"bleu": "BLEU", "chrf": "chrF", "ter": "TER ↓", "rouge1": "ROUGE-1",
                 "rouge2": "ROUGE-2", "rougeL": "ROUGE-L"}
# Plotly's mode bar without the plotly.com logo link or any "send to cloud" button.
_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "showSendToCloud": False}
_CHART_CHARS = 40
_CELL_CHARS = 300
_TOKEN_CHARS = 16

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1400px; padding: 0 1rem; color: #1f2933; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; }
h2 { border-bottom: 1px solid #d9e2ec; padding-bottom: 0.3rem; margin-top: 2.5rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #d9e2ec; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f0f4f8; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.text { white-space: pre-wrap; word-break: break-word; font-family: ui-monospace, monospace; }
.interval { color: #627d98; font-size: 0.8rem; display: block; }
.table-wrap { overflow-x: auto; }
td.label { min-width: 10rem; max-width: 24rem; }
td.id { white-space: nowrap; font-family: ui-monospace, monospace; }
details > summary { cursor: pointer; font-weight: 600; margin: 0.8rem 0; }
.note { color: #627d98; font-style: italic; }
pre { background: #f0f4f8; padding: 0.8rem; overflow-x: auto; font-size: 0.8rem; }
article.run { border: 1px solid #d9e2ec; border-radius: 6px; padding: 0 1rem 1rem; margin: 1.2rem 0; }
.chart { margin: 0.8rem 0; }
"""


def report_file_name(when: _datetime.datetime | None = None) -> str:
    """The download's file name, e.g. textgen-report-2025-01-31-1530.html: built here from the
    time only, never from a run label or an uploaded file's name."""
    when = when or _datetime.datetime.now()
    return f"textgen-report-{when:%Y-%m-%d-%H%M}.html"


def text(value: Any, max_chars: int | None = _CELL_CHARS) -> str:
    """Untrusted text as HTML text: invisible/bidi characters marked, then escaped."""
    return html.escape(visible(str(value), max_chars), quote=True)


# -- plain data ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LeaderboardRow:
    """A run's latest stored evaluation; `metrics` is empty when it has none."""

    run_id: str
    label: str
    kind: str
    corpus: str  # the corpus's label (untrusted text), or its id when it was deleted
    split: str | None
    strategy: str | None
    metrics: dict[str, tuple[float, float, float]]  # name -> (value, low, high), 0-100 scale


@dataclasses.dataclass(frozen=True)
class RunDecodings:
    """What one run generated for the report's examples, or why it could not (`message`)."""

    run_id: str
    group: tuple | None  # runs with the same group were decoded on the same examples
    sources: list[str]
    references: list[str]
    generations: list[Any]  # textgen.decoding.Generation
    message: str | None = None


def leaderboard_rows(store: RunStore, runs: Sequence[RunRecord]) -> list[LeaderboardRow]:
    """One row per run from its latest evaluation, best BLEU first, runs without one last."""
    rows = []
    for run in runs:
        corpus = _corpus_label(store, run.corpus_id)
        evaluations = store.get_evaluations(run.id)
        if not evaluations:
            rows.append(LeaderboardRow(run.id, run.label, run.kind, corpus, None, None, {}))
            continue
        latest = evaluations[-1]
        metrics = {}
        for name in LEADERBOARD_METRICS:
            entry = latest.metrics.get(name)
            if isinstance(entry, dict) and "value" in entry:
                value = float(entry["value"])
                metrics[name] = (value, float(entry.get("low", value)), float(entry.get("high", value)))
        rows.append(LeaderboardRow(run.id, run.label, run.kind, corpus, latest.split,
                                   str(latest.decoding.get("strategy", "")), metrics))
    return sorted(rows, key=lambda row: (not row.metrics, -row.metrics.get("bleu", (0.0,))[0]))


def _corpus_label(store: RunStore, corpus_id: str | None) -> str:
    if corpus_id is None:
        return "(deleted)"
    try:
        return store.get_corpus(corpus_id).label
    except TextgenError:
        return corpus_id


def run_parameter_count(run: RunRecord) -> int | None:
    """Exact weight count from the stored model config; None when the config is unusable."""
    from textgen.models.size import parameter_count

    try:
        return parameter_count(artifacts.RunConfig.from_dict(run.config).model)
    except (TextgenError, KeyError, TypeError, ValueError, AttributeError):
        return None


def curves(store: RunStore, run_ids: Sequence[str]) -> dict[str, dict[str, tuple[list, list]]]:
    """{run_id: {"train/loss": (steps, values), "valid/loss": ..., "valid/bleu": ...}}."""
    out: dict[str, dict[str, tuple[list, list]]] = {run_id: {} for run_id in run_ids}
    for row in store.get_metrics(run_ids, names=("loss", "bleu")):
        steps, values = out[row.run_id].setdefault(f"{row.split}/{row.name}", ([], []))
        steps.append(row.step)
        values.append(row.value)
    return out


def _example_pairs(store: RunStore, config: artifacts.RunConfig, count: int) -> tuple[list[str], list[str]]:
    """The first `count` test examples of a run's corpus as (sources, references); for language
    models a line's first words are the prompt, as in `evaluation.evaluate_run`."""
    from textgen.analysis.evaluation import LM_PROMPT_WORDS
    from textgen.data import registry

    examples = registry.run_examples(store, config.corpus_id, valid_corpus_id=config.valid_corpus_id,
                                    test_corpus_id=config.test_corpus_id)["test"]
    if config.model.is_decoder_only:
        pairs = [(" ".join(words[:LM_PROMPT_WORDS]), " ".join(words[LM_PROMPT_WORDS:]))
                 for words in (e.target.split() for e in examples) if len(words) > LM_PROMPT_WORDS]
    else:
        pairs = [(e.source, e.target) for e in examples]
    pairs = pairs[:count]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def decode_examples(store: RunStore, run: RunRecord, count: int,
                    decoding: DecodingConfig) -> RunDecodings:
    """Decode the first `count` test examples with the run's best checkpoint (at least one, so
    the attention map has an example). Problems become a message, never an exception."""
    from textgen.decoding import generate

    try:
        config = artifacts.RunConfig.from_dict(run.config)
    except (TextgenError, KeyError, TypeError, ValueError, AttributeError):
        return RunDecodings(run.id, None, [], [], [], "it has no usable configuration.")
    group = (config.corpus_id, config.test_corpus_id, config.model.is_decoder_only)
    run_dir = store.run_dir(run.id)
    try:
        if artifacts.Checkpoints(run_dir).get("best") is None:
            return RunDecodings(run.id, group, [], [], [],
                                "it has no checkpoint yet (one is written at the first evaluation).")
        sources, references = _example_pairs(store, config, max(count, 1))
        if not sources:
            return RunDecodings(run.id, group, [], [], [], "its corpus has no test examples.")
        trained = artifacts.load_trained(run_dir, which="best")
        generations = generate(trained.model, trained.source_tokenizer, trained.target_tokenizer,
                               sources, decoding, max_source_length=trained.config.model.max_source_length)
    except (TextgenError, OSError, ValueError, KeyError) as error:
        return RunDecodings(run.id, group, [], [], [], f"its model could not be used: {error}")
    return RunDecodings(run.id, group, sources, references, generations)


# -- figures ------------------------------------------------------------------------------------


def _chart(value: str, max_chars: int = _CHART_CHARS) -> str:
    return chart_text(value, max_chars)


class _Figures:
    """Turns figures into HTML in document order; plotly.js goes inline with the first only."""

    def __init__(self) -> None:
        self.count = 0

    def html(self, figure, height: int) -> str:
        import plotly.io as pio

        first = self.count == 0
        self.count += 1
        figure.update_layout(height=height, margin={"l": 60, "r": 20, "t": 50, "b": 50})
        return '<div class="chart">' + pio.to_html(
            figure, include_plotlyjs=True if first else False, full_html=False,
            div_id=f"figure-{self.count}", default_height=f"{height}px", config=_PLOTLY_CONFIG,
        ) + "</div>"


def _run_curve_figure(run: RunRecord, series: dict[str, tuple[list, list]]):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(specs=[[{"secondary_y": True}]])
    for key, name, dash in (("train/loss", "training loss", "solid"), ("valid/loss", "validation loss", "dash")):
        if key in series:
            steps, values = series[key]
            figure.add_trace(go.Scatter(x=steps, y=values, name=name, mode="lines+markers",
                                        line={"dash": dash}), secondary_y=False)
    if "valid/bleu" in series:
        steps, values = series["valid/bleu"]
        figure.add_trace(go.Scatter(x=steps, y=values, name="validation BLEU", mode="lines+markers"),
                         secondary_y=True)
        figure.update_yaxes(title_text="BLEU", rangemode="tozero", showgrid=False, secondary_y=True)
    figure.update_layout(title=f"Curves of {_chart(run.label)}")
    figure.update_xaxes(title_text="step")
    figure.update_yaxes(title_text="loss", secondary_y=False)
    return figure


def _comparison_curve_figure(runs: Sequence[RunRecord], series: dict[str, dict[str, tuple[list, list]]]):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=2, subplot_titles=("Validation loss", "Validation BLEU"))
    colors = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880")
    for index, run in enumerate(runs):
        name = f"{_chart(run.label, 30)} ({run.id})"
        shown = False
        for column, key in ((1, "valid/loss"), (2, "valid/bleu")):
            if key in series[run.id]:
                steps, values = series[run.id][key]
                figure.add_trace(go.Scatter(
                    x=steps, y=values, name=name, legendgroup=run.id, showlegend=not shown,
                    mode="lines+markers", line={"color": colors[index % len(colors)]}), row=1, col=column)
                shown = True
    figure.update_xaxes(title_text="step")
    figure.update_yaxes(rangemode="tozero", row=1, col=2)
    return figure


def _attention_figure(run: RunRecord, generation) -> tuple[Any, str] | None:
    """A heatmap of the generation's cross-attention (self-attention for language models),
    mean over the last layer's heads; None when the model has no attention."""
    import numpy as np
    import plotly.graph_objects as go

    from textgen.decoding import attention_matrix

    for key, columns, what in (("cross_attention", generation.source_tokens, "source tokens"),
                               ("self_attention", generation.decoder_input_tokens, "decoder inputs")):
        if key == "self_attention" and not run.kind.endswith("-lm"):
            continue
        matrix = attention_matrix(generation.attention, key)
        if matrix is None:
            continue
        matrix = np.asarray(matrix, dtype=float)
        rows = min(matrix.shape[0], len(generation.tokens))
        width = min(matrix.shape[1], len(columns))
        if rows == 0 or width == 0:
            return None
        matrix = matrix[:rows, :width]
        row_labels = [_chart(token, _TOKEN_CHARS) for token in generation.tokens[:rows]]
        column_labels = [_chart(token, _TOKEN_CHARS) for token in columns[:width]]
        hover = [[f"{row_labels[i]} → {column_labels[j]}" for j in range(width)] for i in range(rows)]
        # Positions, not labels, on the axes: repeated tokens ("a", "a") must stay two columns.
        figure = go.Figure(go.Heatmap(
            z=matrix, x=list(range(width)), y=list(range(rows)), text=hover, colorscale="Blues",
            zmin=0.0, hovertemplate="%{text}<br>weight %{z:.3f}<extra></extra>"))
        figure.update_layout(title=f"{'Cross' if key == 'cross_attention' else 'Self'}-attention of "
                                   f"{_chart(run.label)}")
        figure.update_xaxes(tickmode="array", tickvals=list(range(width)), ticktext=column_labels,
                            title_text=what, tickangle=0 if width <= 30 else -90)
        figure.update_yaxes(tickmode="array", tickvals=list(range(rows)), ticktext=row_labels,
                            title_text="generated tokens", autorange="reversed")
        return figure, key
    return None


# -- HTML pieces --------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], row_attributes: Sequence[str] = ()) -> str:
    """rows hold cells that are already HTML (each built with `text`/`_cell`)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for index, cells in enumerate(rows):
        attributes = row_attributes[index] if index < len(row_attributes) else ""
        body.append(f"<tr{attributes}>" + "".join(cells) + "</tr>")
    return (f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _cell(value: Any, css: str = "", max_chars: int | None = _CELL_CHARS) -> str:
    attribute = f' class="{css}"' if css else ""
    return f"<td{attribute}>{text(value, max_chars)}</td>"


def _metric_cell(score: tuple[float, float, float] | None) -> str:
    if score is None:
        return '<td class="number">–</td>'
    value, low, high = score
    return (f'<td class="number">{value:.2f} <span class="interval">'
            f'[{low:.2f}, {high:.2f}]</span></td>')


def _leaderboard_html(rows: Sequence[LeaderboardRow]) -> str:
    headers = (["#", "run", "id", "model", "corpus", "split", "decoding"]
               + [METRIC_TITLES[m] for m in LEADERBOARD_METRICS])
    cells, attributes, missing = [], [], []
    for rank, row in enumerate(rows, start=1):
        attributes.append(f' class="leaderboard-row" data-run-id="{html.escape(row.run_id)}"')
        if not row.metrics:
            missing.append(row)
            cells.append([_cell("–"), _cell(row.label, "text label", 60), _cell(row.run_id, "id"), _cell(row.kind),
                          _cell(row.corpus, "text", 40),
                          f'<td colspan="{2 + len(LEADERBOARD_METRICS)}" class="note">no stored evaluation</td>'])
            continue
        cells.append([_cell(rank, "number"), _cell(row.label, "text label", 60), _cell(row.run_id, "id"),
                      _cell(row.kind), _cell(row.corpus, "text", 40), _cell(row.split or ""),
                      _cell(row.strategy or "")]
                     + [_metric_cell(row.metrics.get(m)) for m in LEADERBOARD_METRICS])
    parts = [
        "<p>Each run's latest stored evaluation: corpus scores (0-100) with their 95% bootstrap "
        "interval in brackets. TER is an error rate: lower is better. Runs are only comparable "
        "on the same corpus split and decoding.</p>",
        _table(headers, cells, attributes),
    ]
    for row in missing:
        parts.append(f'<p class="note">{text(row.label, 60)} ({html.escape(row.run_id)}) has no stored '
                     f"evaluation; <code>python -m textgen evaluate {html.escape(row.run_id)}</code> "
                     "adds one.</p>")
    return "\n".join(parts)


def _comparison_html(runs: Sequence[RunRecord], decoded: dict[str, RunDecodings], count: int) -> str:
    """One table per group of runs decoded on the same examples: source, reference, outputs."""
    groups: dict[tuple, list[RunRecord]] = {}
    for run in runs:
        result = decoded[run.id]
        if result.message is None:
            groups.setdefault(result.group, []).append(run)
    if not groups:
        return '<p class="note">None of these runs could decode examples (see each run below).</p>'
    parts = []
    for members in groups.values():
        first = decoded[members[0].id]
        if len(groups) > 1:
            names = ", ".join(text(run.label, 60) for run in members)
            parts.append(f"<h3>Runs on the same test examples: {names}</h3>")
        headers = ["#", "source", "reference"] + [f"{visible(run.label, 40)} ({run.id})" for run in members]
        rows = []
        for index, (source, reference) in enumerate(zip(first.sources[:count], first.references[:count])):
            rows.append([_cell(index + 1, "number"), _cell(source, "text"), _cell(reference, "text")]
                        + [_cell(decoded[run.id].generations[index].output, "text") for run in members])
        parts.append(_table(headers, rows))
    return "\n".join(parts)


def _run_html(run: RunRecord, figures: _Figures, series: dict[str, tuple[list, list]],
              result: RunDecodings, parameters: int | None, checkpoint: str, evaluated: bool) -> str:
    details = [
        ("id", run.id), ("model", run.kind), ("status", run.status),
        ("parameters", f"{parameters:,}" if parameters is not None else "unknown"),
        ("best checkpoint", checkpoint),
    ]
    if run.error:
        details.append(("error", run.error))
    summary = "".join(f"<tr><th>{html.escape(k)}</th>{_cell(v, 'text', 500)}</tr>" for k, v in details)
    parts = [f'<article class="run" id="run-{html.escape(run.id)}">',
             f'<h3 class="run-label">{text(run.label, 120)}</h3>',
             f"<table>{summary}</table>"]
    if not evaluated:
        parts.append('<p class="note">This run has no stored evaluation, so the leaderboard has no '
                     "scores for it.</p>")
    parts.append("<h4>Curves</h4>")
    if series:
        parts.append(figures.html(_run_curve_figure(run, series), 360))
    else:
        parts.append('<p class="note">This run has logged no loss or BLEU values yet.</p>')
    parts.append("<h4>Attention</h4>")
    if result.message is not None:
        parts.append(f'<p class="note">No attention map: {text(result.message, 500)}</p>')
    else:
        attention = _attention_figure(run, result.generations[0])
        if attention is None:
            parts.append(f'<p class="note">A {html.escape(run.kind)} model has no attention to show.</p>')
        else:
            parts.append(f'<p>Test example 1, source: <span class="text">{text(result.sources[0])}</span></p>')
            height = max(320, min(900, 140 + 18 * len(result.generations[0].tokens)))
            parts.append(figures.html(attention[0], height))
    parts.append(f"<details><summary>Configuration</summary><pre>"
                 f"{html.escape(json.dumps(run.config, indent=2, sort_keys=True))}</pre></details>")
    parts.append("</article>")
    return "\n".join(parts)


def _checkpoint_text(store: RunStore, run_id: str) -> str:
    try:
        info = artifacts.Checkpoints(store.run_dir(run_id)).get("best")
    except (OSError, ValueError, KeyError):
        return "unreadable"
    if info is None:
        return "none yet"
    metrics = ", ".join(f"{name} {value:.4g}" for name, value in sorted(info.metrics.items()))
    return f"step {info.step}, epoch {info.epoch:g}" + (f" ({metrics})" if metrics else "")


def build_report(store: RunStore, run_ids: Sequence[str], *, examples: int = 8,
                 decoding: DecodingConfig = DecodingConfig(),
                 when: _datetime.datetime | None = None) -> str:
    """The HTML text of a self-contained report of `run_ids` (in that order).

    examples: test examples decoded by each run for the comparison table (0-64; 0 leaves the
    table out, though one example is still decoded for the attention maps). decoding: how they
    are decoded. Raises StoreError for an unknown run id; anything wrong with one run (no
    checkpoint, no evaluation, no metrics) becomes a sentence in its section.
    """
    if not isinstance(examples, int) or isinstance(examples, bool) or not 0 <= examples <= MAX_EXAMPLES:
        raise ConfigError(f"examples must be an integer from 0 to {MAX_EXAMPLES}, got {examples!r}.")
    run_ids = list(dict.fromkeys(run_ids))
    if not run_ids:
        raise ConfigError("a report needs at least one run; pick one or more run ids.")
    runs = [store.get_run(run_id) for run_id in run_ids]
    when = when or _datetime.datetime.now()
    series = curves(store, run_ids)
    board = leaderboard_rows(store, runs)
    decoded = {run.id: decode_examples(store, run, examples, decoding) for run in runs}
    figures = _Figures()

    body = [
        "<h1>TextGen Lab report</h1>",
        f"<p>{len(runs)} run{'s' if len(runs) != 1 else ''}, written {when:%Y-%m-%d %H:%M}. "
        "This file is self-contained: it loads nothing from the network.</p>",
        "<h2>Runs</h2>",
        _table(["run", "id", "model", "status", "parameters"],
               [[_cell(run.label, "text label", 80), _cell(run.id, "id"), _cell(run.kind), _cell(run.status),
                 _cell(f"{count:,}" if (count := run_parameter_count(run)) is not None else "unknown",
                       "number")]
                for run in runs]),
        '<h2 id="leaderboard">Leaderboard</h2>',
        _leaderboard_html(board),
    ]
    if any("valid/loss" in series[run.id] or "valid/bleu" in series[run.id] for run in runs):
        body += ["<h2>Validation curves</h2>", figures.html(_comparison_curve_figure(runs, series), 420)]
    if examples > 0:
        body += ["<h2>Side by side</h2>",
                 f"<p>The first test examples of each corpus, decoded with {html.escape(decoding.strategy)} "
                 "decoding from each run's best checkpoint.</p>",
                 _comparison_html(runs, decoded, examples)]
    body.append("<h2>Each run</h2>")
    evaluated = {row.run_id for row in board if row.metrics}
    for run in runs:
        body.append(_run_html(run, figures, series[run.id], decoded[run.id], run_parameter_count(run),
                              _checkpoint_text(store, run.id), run.id in evaluated))
    return _document("\n".join(body))


def _document(markup: str) -> str:
    """The page around the report's body, with a Content-Security-Policy that allows only the
    scripts in it (every one came from Plotly: untrusted text is escaped, so it cannot open one)."""
    policy = content_security_policy(_SCRIPT.findall(markup))
    head = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{html.escape(policy)}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>TextGen Lab report</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
    ]
    return "\n".join([*head, markup, "</body>", "</html>", ""])
