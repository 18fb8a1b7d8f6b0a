"""Compare: several runs on the same inputs, side by side, against a pinned baseline.

Pick runs (any number), inputs (drawn from the runs' shared test split, or typed) and decoding
settings. The table shows every run's output with its differences from the baseline's marked as
text ([-removed-]{+added+}), per-example sentence scores and deltas against the baseline; sort it
by a delta to find where a model wins or loses. Pick an example (click its row) to see the
outputs, scores and cross attention of every run together. Runs, baseline, inputs, metric and
example live in the URL, so the link reproduces the view.
"""

import pandas as pd
import streamlit as st

from pages import ui
from pages.ui import heatmaps
from textgen.analysis import attention_views, comparison
from textgen.analysis.comparison import METRIC_TITLES, METRICS
from textgen.decoding import BEAM_STOPPING, STRATEGIES, DecodingConfig
from textgen.store.database import RunStore

st.set_page_config(page_title="Compare · TextGen Lab", page_icon="⚖️", layout="wide")
ui.require_password()

INPUT_KINDS = {"test": "Test split of the runs' corpus", "typed": "Typed inputs"}
# Typed inputs (also read from the URL) are cut to this many characters in all.
MAX_TYPED_CHARS = 2000
MAX_TEST_INPUTS = 50
# Runs shown side by side in the example view before wrapping to a new row.
DETAIL_COLUMNS = 3


def _init(key: str, value) -> None:
    """A widget's first value (from the URL); later runs keep what the user chose."""
    if key not in st.session_state:
        st.session_state[key] = value


@st.cache_data(max_entries=64, ttl=3600, show_spinner="Generating…")
def _run_outputs(home: str, run_id: str, checkpoint: str, sources: tuple[str, ...],
                 decoding: str) -> list[comparison.RunOutput]:
    """One run's outputs, cached per (run, checkpoint, inputs, settings): sorting, choosing an
    example or a new baseline never decodes again. Plain data, so a copy per caller."""
    with RunStore(home) as store:
        with ui.trained_model(store, run_id, checkpoint) as trained:
            return comparison.generate_outputs(trained, sources, DecodingConfig.from_json(decoding))


@st.cache_data(max_entries=32, ttl=600, show_spinner=False)
def _split_inputs(home: str, run_ids: tuple[str, ...], start: int, limit: int) -> comparison.InputSet:
    """Examples of the runs' shared test split (reading and splitting a corpus is not free)."""
    with RunStore(home) as store:
        return comparison.split_inputs(store, list(run_ids), start=start, limit=limit)


def _choose_inputs(store, run_ids: list[str]) -> tuple[list[str], list[str | None]] | None:
    _init("cmp-inputs", "typed" if ui.query_value("inputs") == "typed" else "test")
    kind = st.radio("Inputs", list(INPUT_KINDS), format_func=INPUT_KINDS.__getitem__,
                    horizontal=True, key="cmp-inputs")
    ui.set_query(inputs=kind if kind == "typed" else None)
    if kind == "typed":
        left, right = st.columns(2)
        _init("cmp-typed", (ui.query_value("input") or "")[:MAX_TYPED_CHARS])
        _init("cmp-typed-refs", (ui.query_value("reference") or "")[:MAX_TYPED_CHARS])
        text = left.text_area("Inputs, one per line", max_chars=MAX_TYPED_CHARS, key="cmp-typed",
                              placeholder="3 September 1987\nMon, 26 Aug 2030")
        refs = right.text_area("References (optional), one per line in the same order",
                               max_chars=MAX_TYPED_CHARS, key="cmp-typed-refs",
                               help="With references, each output gets sentence scores and "
                                    "deltas against the baseline.")
        ui.set_query(input=text or None, reference=refs or None, n=None, start=None)
        sources = [line for line in text.splitlines() if line.strip()]
        if not sources:
            st.info("Type one input per line to compare the runs' outputs.", icon=":material/keyboard:")
            return None
        ref_lines = refs.splitlines() if refs.strip() else []
        references = [(ref_lines[i].strip() or None) if i < len(ref_lines) else None
                      for i in range(len(sources))]
        return sources[:comparison.MAX_INPUTS], references[:comparison.MAX_INPUTS]
    left, right = st.columns(2)
    _init("cmp-n", ui.query_int("n", 5, 1, MAX_TEST_INPUTS))
    _init("cmp-start", ui.query_int("start", 0, 0, 1_000_000))
    count = left.number_input("Examples", 1, MAX_TEST_INPUTS, step=1, key="cmp-n")
    start = right.number_input("Starting at example", 0, 1_000_000, step=1, key="cmp-start")
    ui.set_query(n=int(count), start=int(start) or None, input=None, reference=None)
    drawn = _split_inputs(str(store.home), tuple(run_ids), int(start), int(count))
    if not drawn.sources:
        st.info("The runs' test split is empty: type inputs instead.", icon=":material/info:")
        return None
    st.caption(f"Examples {int(start)}–{int(start) + len(drawn.sources) - 1} of the "
               f"{drawn.total} in the test split of corpus {drawn.corpus_id}.")
    return drawn.sources, list(drawn.references)


_STOPPING_LABELS = {"current_length": "if it ended now (faster)",
                    "max_length": "at any length up to the cap (exhaustive)"}


def _choose_decoding() -> DecodingConfig:
    with st.expander("Decoding settings"):
        cols = st.columns(4)
        strategy = cols[0].selectbox("Strategy", STRATEGIES, key="cmp-strategy")
        max_length = cols[1].number_input("Max output tokens", 1, 512, 64, step=1, key="cmp-max-length")
        beam_width = cols[2].number_input("Beam width", 1, 16, 4, step=1, key="cmp-beam",
                                          disabled=strategy != "beam")
        length_penalty = cols[3].number_input("Length penalty α", 0.0, 5.0, 0.6, step=0.1,
                                              key="cmp-alpha", disabled=strategy != "beam")
        cols = st.columns(4)
        temperature = cols[0].number_input("Temperature", 0.05, 10.0, 1.0, step=0.05,
                                           key="cmp-temperature", disabled=strategy != "sample")
        top_k = cols[1].number_input("Top-k (0 = off)", 0, 1000, 0, step=1, key="cmp-top-k",
                                     disabled=strategy != "sample")
        top_p = cols[2].number_input("Top-p", 0.01, 1.0, 1.0, step=0.05, key="cmp-top-p",
                                     disabled=strategy != "sample")
        seed = cols[3].number_input("Seed", 0, 2**31 - 1, 0, step=1, key="cmp-seed",
                                    disabled=strategy != "sample")
        stopping = st.selectbox(
            "Beam stops when no live hypothesis can win", BEAM_STOPPING, key="cmp-beam-stopping",
            format_func=_STOPPING_LABELS.get, disabled=strategy != "beam",
            help="Once a beam has its n-best list: stop when no live hypothesis would beat the "
                 "list's worst if it ended now (the usual rule, faster), or only when none could "
                 "at any length up to the cap (never misses a later winner).")
    return DecodingConfig(strategy=strategy, max_length=int(max_length), beam_width=int(beam_width),
                          length_penalty=float(length_penalty), beam_stopping=stopping,
                          temperature=float(temperature), top_k=int(top_k), top_p=float(top_p),
                          seed=int(seed))


def _select_row() -> None:
    """A click on a table row picks that example in the example view."""
    state = st.session_state.get("cmp-table")
    rows = state.selection.rows if state is not None else []
    order = st.session_state.get("cmp-order", [])
    if rows and 0 <= rows[0] < len(order):
        st.session_state["cmp-example"] = order[rows[0]]


def _show_example(table: comparison.ComparisonTable, index: int, runs_by_id: dict, metric: str) -> None:
    row = table.rows[index]
    st.text(f"Input:     {ui.label(row.source, 300)}")
    st.text(f"Reference: {ui.label(row.reference, 300)}" if row.reference is not None
            else "Reference: (none: no scores)")
    title = METRIC_TITLES[metric]
    for begin in range(0, len(table.run_ids), DETAIL_COLUMNS):
        chunk = table.run_ids[begin:begin + DETAIL_COLUMNS]
        for column, run_id in zip(st.columns(DETAIL_COLUMNS), chunk):
            with column:
                _show_run_output(table, row.results[run_id], run_id, runs_by_id[run_id], metric, title)


def _show_run_output(table: comparison.ComparisonTable, result, run_id: str, run, metric: str,
                     title: str) -> None:
    """One run's output of the example: the text, its difference from the baseline, its score and
    its cross attention."""
    baseline = " (baseline)" if run_id == table.baseline else ""
    st.text(ui.run_title(run) + baseline)
    st.code(ui.label(result.output.output, 500) or "(empty)", language=None)
    if result.output.note:
        st.caption(result.output.note)
    if run_id != table.baseline:
        marked = comparison.render_diff(result.diff, table.joiner)
        st.text("vs baseline: " + ui.label(marked, 500))
    if result.scores:
        delta = result.deltas.get(metric) if run_id != table.baseline else None
        st.metric(title, f"{result.scores[metric]:.1f}",
                  delta=None if delta is None else f"{delta:+.1f}")
    views = result.output.attention
    if views is not None and views.kinds:
        # Cross attention (output by source); a language model has only self attention.
        attention_map = views.map(views.kinds[0], -1, None)
        st.plotly_chart(heatmaps.attention_heatmap(
            attention_map, title=f"{run_id} · {attention_map.title}"),
            key=f"cmp-attention-{run_id}")
    else:
        st.caption("This model has no attention (a plain encoder-decoder).")


def _compare(store, runs) -> None:
    runs_by_id = {run.id: run for run in runs}
    run_ids = ui.pick_runs(runs, key="runs", multiple=True, default_count=3,
                           label_text="Runs to compare")
    if not run_ids:
        st.info("Pick one or more runs to compare.", icon=":material/checklist:")
        return
    if len(run_ids) > comparison.MAX_RUNS:
        st.warning(f"Comparing the first {comparison.MAX_RUNS} runs picked.", icon=":material/warning:")
        run_ids = run_ids[:comparison.MAX_RUNS]
    wanted = ui.query_value("baseline")
    _init("cmp-baseline", wanted if wanted in run_ids else run_ids[0])
    if st.session_state["cmp-baseline"] not in run_ids:
        st.session_state["cmp-baseline"] = run_ids[0]
    baseline = st.selectbox("Baseline (pinned)", run_ids, key="cmp-baseline",
                            format_func=lambda r: ui.run_title(runs_by_id[r]),
                            help="Deltas and differences are against this run.")
    ui.set_query(baseline=baseline if baseline != run_ids[0] else None)
    picked = _choose_inputs(store, run_ids)
    config = _choose_decoding()
    if picked is None:
        return
    sources, references = comparison.check_inputs(*picked)
    outputs = {}
    for run_id in run_ids:
        checkpoint = attention_views.default_checkpoint(
            attention_views.checkpoint_choices(store.run_dir(run_id)))
        outputs[run_id] = _run_outputs(str(store.home), run_id, checkpoint.name, tuple(sources),
                                       config.to_json())
    table = comparison.build_table(run_ids, sources, references, outputs, baseline)

    _init("cmp-metric", ui.query_value("metric") if ui.query_value("metric") in METRICS else METRICS[0])
    metric = st.selectbox("Score", METRICS, format_func=METRIC_TITLES.__getitem__, key="cmp-metric",
                          help="Sentence scores (sacreBLEU chrF and BLEU, rouge-score ROUGE-L) "
                               "of each output against its reference.")
    ui.set_query(metric=metric if metric != METRICS[0] else None)
    names = {run_id: f"{run_id} ({runs_by_id[run_id].kind})" for run_id in run_ids}
    st.subheader("Summary")
    _show_summary(table, runs_by_id, names, metric)
    st.subheader("Examples")
    _show_table(table, names, metric)
    count = len(table.rows)
    _init("cmp-example", ui.query_int("example", 0, 0, count - 1))
    if st.session_state["cmp-example"] not in range(count):
        st.session_state["cmp-example"] = 0
    index = st.selectbox("Example", range(count), key="cmp-example",
                         format_func=lambda i: f"#{i} · {ui.label(table.rows[i].source, 70)}")
    ui.set_query(example=index)
    _show_example(table, index, runs_by_id, metric)


def _show_summary(table: comparison.ComparisonTable, runs_by_id: dict, names: dict, metric: str) -> None:
    """Per run: mean score, mean delta against the baseline, outputs that differ from it."""
    title = f"mean {METRIC_TITLES[metric]}"
    means, mean_deltas = table.mean_scores(metric), table.mean_deltas(metric)
    summary = pd.DataFrame([
        {"run": names[run_id], "label": ui.label(runs_by_id[run_id].label, 60),
         "baseline": run_id == table.baseline, title: means[run_id],
         "mean Δ": None if run_id == table.baseline else mean_deltas[run_id],
         "outputs differing from baseline": sum(row.results[run_id].changed > 0 for row in table.rows)}
        for run_id in table.run_ids])
    st.dataframe(summary, hide_index=True, placeholder="—",
                 column_config={title: st.column_config.NumberColumn(format="%.1f"),
                                "mean Δ": st.column_config.NumberColumn(format="%+.1f")})
    if not table.has_scores:
        st.caption("No references, so no scores: add references to see deltas.")


def _show_table(table: comparison.ComparisonTable, names: dict, metric: str) -> None:
    """One row per input, sortable by a run's delta; clicking a row picks the example below."""
    title = METRIC_TITLES[metric]
    others = [run_id for run_id in table.run_ids if run_id != table.baseline]
    sort_options = ["input"] + [f"{run_id}:{way}" for run_id in others for way in ("asc", "desc")]

    def sort_title(option: str) -> str:
        if option == "input":
            return "input order"
        run_id, way = option.split(":")
        return f"Δ {title} of {names[run_id]}, " + ("losses first" if way == "asc" else "wins first")

    sort = st.selectbox("Sort by", sort_options, key="cmp-sort", format_func=sort_title)
    if sort == "input":
        rows = table.sorted_rows()
    else:
        run_id, way = sort.split(":")
        rows = table.sorted_rows(run_id, metric, descending=way == "desc")
    frame = pd.DataFrame(table.records(metric, names=names, rows=rows))
    text_columns = [c for c in frame.columns if c in ("source", "reference") or "output" in c]
    for column in text_columns:
        frame[column] = frame[column].map(lambda text: ui.label(text, 200))
    formats = {c: "%+.1f" for c in frame.columns if c.startswith("Δ")}
    formats.update({c: "%.1f" for c in frame.columns if c.endswith(f" {title}") and c not in formats})
    # The callback maps a clicked row (a position in this order) back to its example.
    st.session_state["cmp-order"] = [row.index for row in rows]
    st.caption("Outputs of the other runs mark their differences from the baseline's: "
               "`[-baseline only-]{+this run only+}`. Click a column header to sort, a row to "
               "see it below.")
    st.dataframe(frame, hide_index=True, placeholder="—", key="cmp-table", on_select=_select_row,
                 selection_mode="single-row",
                 column_config={c: st.column_config.NumberColumn(format=f) for c, f in formats.items()})


def main() -> None:
    st.title("Compare")
    st.write(
        "Several runs on the same inputs, side by side: differences from a pinned baseline, "
        "per-example scores and deltas. The view is in the page's URL: copy it to share it."
    )
    no_runs = ("No trained runs yet: a comparison needs runs with a checkpoint. Train some, "
               "for example `python -m textgen train --corpus sample:dates --model gru`.")
    with ui.user_errors(), ui.page_runs(no_runs, trained_only=True) as (store, runs):
        if runs:
            _compare(store, runs)


main()
