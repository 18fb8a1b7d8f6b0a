"""Runs: live training curves of several runs overlaid, each run's probe samples, config and
size, and rename, delete and export.

The view lives in the URL (`?runs=...&metrics=...&x=...&log=1&smooth=...&run=...&example=...`),
so a copied link shows a teammate the same curves. While a selected run is training, the charts
and the probe table re-read the store every `ui.POLL_SECONDS` in fragments (only those parts
rerun); once nothing selected is active, polling stops.
"""

import functools

import pandas as pd
import streamlit as st

from pages import ui
from pages.ui import charts
from textgen.analysis import curves
from textgen.core.errors import TextgenError
from textgen.runs import bundle, manage
from textgen.store.database import ACTIVE_STATUSES, RunStore
from textgen.training import jobs

st.set_page_config(page_title="Runs · TextGen Lab", page_icon="📈", layout="wide")
ui.require_password()

FLASH_KEY = "runs-flash"
# Points per line sent to the browser each tick (a long run logs one training loss per second).
MAX_CHART_POINTS = 1500


def live_fragment(function, live: bool):
    """The function as a fragment that reruns every POLL_SECONDS while something is training,
    or called once as part of the page when nothing is."""
    return st.fragment(run_every=ui.POLL_SECONDS)(function) if live else function


def curves_view(run_ids: list[str], labels: dict[str, str], metric_keys: list[str], x_axis: str,
                log_y: bool, smoothing: float, live: bool) -> None:
    """The charts and latest values: the part of the page that changes while runs train.
    labels: run id -> label as stored (untrusted; escaped where shown)."""
    with ui.user_errors():
        read = _read_curves(run_ids, metric_keys, live)
        if read is None:
            return
        run_ids, statuses, rows, latest = read
        if live and not any(status in ACTIVE_STATUSES for status in statuses.values()):
            st.rerun()  # training ended: redraw the page once, without polling
        latest_columns = {"train loss": "train/loss", "valid loss": "valid/loss",
                          "valid BLEU": "valid/bleu", "valid chrF": "valid/chrf"}
        st.dataframe(
            pd.DataFrame([
                {"run": ui.label(labels[run_id], 40), "status": statuses[run_id],
                 **{column: latest[run_id].get(key) for column, key in latest_columns.items()}}
                for run_id in run_ids
            ]),
            hide_index=True, width="stretch",
            column_config={column: st.column_config.NumberColumn(format="%.4g") for column in latest_columns},
        )
        starts = curves.start_times(rows)
        colors = charts.run_colors(run_ids)
        columns = st.columns(2)
        for index, key in enumerate(metric_keys):
            metric = curves.CURVE_METRICS[key]
            series = curves.build_curves(rows, key, x_axis, smoothing=smoothing, starts=starts,
                                         run_ids=run_ids, max_points=MAX_CHART_POINTS)
            column = columns[index % 2]
            if not series:
                column.caption(f"No {metric.title} logged yet for these runs.")
                continue
            column.plotly_chart(
                charts.curve_figure(series, titles=labels, colors=colors, metric_title=metric.title,
                                    x_title=curves.X_AXIS_TITLES[x_axis], log_y=log_y),
                key=f"curve-{key}")


def _read_curves(run_ids: list[str], metric_keys: list[str], live: bool):
    """(run ids still there, their statuses, metric rows, latest values); None when none is left."""
    with ui.open_store() as store:
        if live:
            jobs.reconcile(store)
        existing = {run.id: run for run in store.list_runs()}
        gone = [run_id for run_id in run_ids if run_id not in existing]
        if gone:  # deleted by another session or the CLI while this one shows it
            ui.warning(f"Run {', '.join(gone)} no longer exists: it was deleted. Pick other runs.")
            run_ids = [run_id for run_id in run_ids if run_id in existing]
            if not run_ids:
                return None
        statuses = {run_id: existing[run_id].status for run_id in run_ids}
        rows = store.get_metrics(run_ids, names=curves.stored_names(metric_keys))
        latest = {run_id: store.latest_metrics(run_id) for run_id in run_ids}
    return run_ids, statuses, rows, latest


def probe_view(run_id: str, example_index: int) -> None:
    """One probe sentence's output at each evaluation of the run, newest last."""
    with ui.open_store() as store:
        samples = [s for s in store.get_samples(run_id) if s.example_index == example_index]
    if not samples:
        st.caption("No output for this example yet.")
        return
    st.dataframe(
        pd.DataFrame([
            {"step": s.step, "epoch": s.epoch, "output": ui.label(s.output, 300),
             "exact match": s.output == s.reference}
            for s in samples
        ]),
        hide_index=True, width="stretch",
        column_config={"epoch": st.column_config.NumberColumn(format="%.2f")},
    )


def rename_run(run_id: str) -> None:
    """Button callback (runs before the script, so the pickers show the new label at once)."""
    try:
        with ui.open_store() as store:
            manage.rename_run(store, run_id, st.session_state.get(f"rename-{run_id}", ""))
        st.session_state[FLASH_KEY] = ("success", "Renamed.")
    except TextgenError as error:
        st.session_state[FLASH_KEY] = ("error", str(error))


def delete_run(run_id: str) -> None:
    """Button callback: stops the job if it is active, deletes the run and its folder, and
    forgets it in the pickers (their state would otherwise name a run that is gone)."""
    try:
        with ui.open_store() as store:
            jobs.delete(store, run_id)
        for key in ("pick-runs", "pick-run", f"confirm-delete-{run_id}"):
            st.session_state.pop(key, None)
        st.session_state[FLASH_KEY] = ("success", f"Deleted run {run_id}.")
    except TextgenError as error:
        st.session_state[FLASH_KEY] = ("error", str(error))


def import_uploaded() -> None:
    """Button callback: import the uploaded bundle as a new run (checked; nothing in it is run)."""
    upload = st.session_state.get("import-bundle")
    if upload is None:
        st.session_state[FLASH_KEY] = ("error", "Choose a bundle (.zip) first.")
        return
    try:
        if upload.size > bundle.BUNDLE_MAX_BYTES:
            raise TextgenError(f"the file is {upload.size:,} bytes, over the {bundle.BUNDLE_MAX_BYTES:,} a bundle may be.")
        with ui.open_store() as store:
            run = bundle.import_bundle(store, upload.getvalue())
        st.session_state[FLASH_KEY] = ("success", f"Imported run {run.id} ({run.kind}).")
    except TextgenError as error:
        st.session_state[FLASH_KEY] = ("error", str(error))


def bundle_bytes(home: str, run_id: str) -> bytes:
    """Built when the download is clicked, in Streamlit's own thread: its own store handle."""
    with RunStore(home) as store:
        return bundle.export_bundle(store, run_id)


def metrics_text(home: str, run_id: str) -> str:
    with RunStore(home) as store:
        return manage.metrics_csv(store, [run_id])


NO_RUNS = ("No runs yet. Start one on the Train page, or from the command line: "
           "`python -m textgen train --corpus sample:dates --model gru`.")


def _show_flash() -> None:
    """The message a button callback left for this run of the page."""
    flash = st.session_state.pop(FLASH_KEY, None)
    # Always one container here, message or not: Streamlit knows the expander below by its position,
    # and a message that came and went moved it, which closed it (after a failed import, choosing the
    # next file closed "Import a bundle" over its Import button).
    with st.container():
        if flash:
            (ui.success if flash[0] == "success" else ui.error)(flash[1])


def _show_import() -> None:
    with st.expander("Import a bundle"):
        st.caption("A bundle exported by TextGen (.zip): only its JSON config, .weights.h5 and JSON tokenizers "
                   "are read, each checked; the model is rebuilt by our code, so nothing in the file runs.")
        chosen = st.file_uploader("Bundle (.zip)", type=["zip"], key="import-bundle")
        # The server has the file only once its upload finished: until then Import is disabled, and
        # the size below says it arrived (the name is shown by the uploader itself).
        if chosen is not None:
            st.caption(f"{chosen.size:,} bytes received, ready to import.")
        st.button("Import", key="import-button", on_click=import_uploaded, icon=":material/upload:",
                  disabled=chosen is None)


def _choose_curves() -> tuple[list[str], str, bool, int]:
    """Metrics, x axis, log scale and smoothing (percent), from and back to the URL."""
    wanted_metrics = [key for key in ui.query_list("metrics") if key in curves.CURVE_METRICS]
    left, middle, right = st.columns([3, 2, 2])
    metric_keys = left.multiselect(
        "Metrics", list(curves.CURVE_METRICS), default=wanted_metrics or list(curves.DEFAULT_METRICS),
        format_func=lambda key: curves.CURVE_METRICS[key].title, key="curve-metrics")
    wanted_x = ui.query_value("x", "step")
    x_axis = middle.radio("X axis", curves.X_AXES, horizontal=True, key="curve-x",
                          index=curves.X_AXES.index(wanted_x) if wanted_x in curves.X_AXES else 0)
    log_y = middle.toggle("Log scale (y)", value=ui.query_value("log") == "1", key="curve-log")
    smoothing_percent = right.slider(
        "Smoothing: half-life, % of the x range", 0, 30, ui.query_int("smooth", 5, 0, 30),
        key="curve-smooth",
        help="An exponential moving average over the x axis: a point's weight halves every "
             "half-life. It depends on x, not on the number of points, so logging more often "
             "does not change the curve. The faint line is the raw data.")
    ui.set_query(metrics=metric_keys, x=x_axis if x_axis != "step" else None,
                 log="1" if log_y else None, smooth=smoothing_percent)
    return metric_keys, x_axis, log_y, smoothing_percent


def _show_curves(runs: list, by_id: dict, labels: dict[str, str]) -> list[str]:
    """The overlaid curves of the runs picked; returns their ids."""
    st.subheader("Curves")
    selected = ui.pick_runs(runs, key="runs", label_text="Runs to overlay")
    metric_keys, x_axis, log_y, smoothing_percent = _choose_curves()
    if not selected:
        st.info("Pick one or more runs to see their curves.")
    elif not metric_keys:
        st.info("Pick one or more metrics.")
    else:
        live = any(by_id[run_id].status in ACTIVE_STATUSES for run_id in selected)
        if live:
            st.caption(f"Live: updates every {ui.POLL_SECONDS:g} s while a selected run is training.")
        live_fragment(curves_view, live)(selected, labels, metric_keys, x_axis, log_y,
                                         smoothing_percent / 100, live)
    return selected


def _show_probes(run, samples: list) -> None:
    examples = {}
    for sample in samples:
        examples.setdefault(sample.example_index, sample)
    if not examples:
        st.info("No probe samples yet: they are decoded at each evaluation.")
        return
    indices = sorted(examples)
    wanted = ui.query_int("example", indices[0], min(indices), max(indices))
    example_index = st.selectbox(
        "Probe example", indices, index=indices.index(wanted) if wanted in indices else 0,
        format_func=lambda i: f"#{i}: {ui.label(examples[i].source, 70)}", key=f"probe-{run.id}")
    ui.set_query(example=example_index)
    st.text(f"Source:    {ui.label(examples[example_index].source, 300)}")
    st.text(f"Reference: {ui.label(examples[example_index].reference, 300)}")
    live_fragment(probe_view, run.status in ACTIVE_STATUSES)(run.id, example_index)


def _show_config(run, overview, corpus_label: str | None) -> None:
    first, second = st.columns(2)
    first.metric("Parameters", "unknown" if overview.parameter_count is None
                 else f"{overview.parameter_count:,}")
    second.metric("Model", run.kind)
    if run.corpus_id:
        st.text(f"Corpus: {ui.label(corpus_label or '(deleted)', 80)} ({run.corpus_id})")
    if overview.checkpoints:
        st.dataframe(
            pd.DataFrame([
                {"checkpoint": c.name, "step": c.step, "epoch": c.epoch,
                 "best": c.is_best, "last": c.is_last,
                 **{f"valid {k}": v for k, v in c.metrics.items()}}
                for c in overview.checkpoints
            ]),
            hide_index=True, width="stretch")
    st.json(overview.config, expanded=1)


def _show_manage(home: str, run, overview) -> None:
    """Rename, export (bundle, metrics) and delete."""
    st.text_input("Label", value=run.label, max_chars=manage.LABEL_MAX_CHARS, key=f"rename-{run.id}")
    st.button("Rename", key=f"rename-button-{run.id}", on_click=rename_run, args=(run.id,))

    st.markdown("**Export**")
    has_checkpoint = any(c.is_best for c in overview.checkpoints)
    export_left, export_right = st.columns(2)
    export_left.download_button(
        "Bundle (.zip): config, best weights, tokenizers, metrics",
        data=functools.partial(bundle_bytes, home, run.id),
        file_name=bundle.bundle_file_name(run.id), mime="application/zip",
        disabled=not has_checkpoint, key=f"bundle-{run.id}", on_click="ignore",
        icon=":material/download:")
    if not has_checkpoint:
        export_left.caption("No checkpoint yet: one is written at the first evaluation.")
    export_right.download_button(
        "Metrics (.csv)", data=functools.partial(metrics_text, home, run.id),
        file_name=f"{run.id}-metrics.csv", mime="text/csv", key=f"metrics-{run.id}",
        on_click="ignore", icon=":material/download:")

    st.markdown("**Delete**")
    confirmed = st.checkbox(
        "Delete this run, its checkpoints and its evaluations for good"
        + (" (the job is stopped first)" if run.status in ACTIVE_STATUSES else ""),
        key=f"confirm-delete-{run.id}")
    st.button("Delete run", type="primary", disabled=not confirmed, key=f"delete-{run.id}",
              on_click=delete_run, args=(run.id,))


def _show_run(home: str, run) -> None:
    """One run in tabs: its probe samples, its configuration, and what can be done with it."""
    st.text(f"{ui.label(run.label, 80)} · {run.kind} · {run.status}")
    if run.error:
        st.text(f"Error: {ui.label(run.error, 400)}")
    probes_tab, config_tab, manage_tab = st.tabs(["Probe samples", "Configuration", "Rename, delete, export"])
    with ui.open_store() as store:
        samples = store.get_samples(run.id)
        overview = manage.run_overview(store, run)
        try:
            corpus_label = store.get_corpus(run.corpus_id).label if run.corpus_id else None
        except TextgenError:
            corpus_label = None  # the corpus was deleted; the run keeps its id
    with probes_tab:
        _show_probes(run, samples)
    with config_tab:
        _show_config(run, overview, corpus_label)
    with manage_tab:
        _show_manage(home, run, overview)


def main() -> None:
    st.title("Runs")
    st.caption(
        "Training curves of several runs at once (they update while a run trains), each run's probe "
        "samples, its configuration and size, and rename, delete or export. The address bar holds "
        "this view: copy it to share exactly what you see."
    )
    _show_flash()
    _show_import()
    with ui.user_errors():
        with ui.page_runs(NO_RUNS) as (store, runs):
            home = str(store.home)
        if not runs:
            return
        by_id = {run.id: run for run in runs}
        labels = {run.id: run.label for run in runs}
        selected = _show_curves(runs, by_id, labels)
        st.divider()
        st.subheader("One run")
        # The overlaid runs first, so the detail view starts on one of them.
        ordered = [by_id[run_id] for run_id in selected] + [run for run in runs if run.id not in selected]
        chosen = ui.pick_runs(ordered, key="run", multiple=False, label_text="Run")
        if chosen:
            _show_run(home, by_id[chosen[0]])


main()
