"""Evaluate: a leaderboard of runs (BLEU, chrF, TER, ROUGE with 95% confidence intervals), paired
significance between the selected runs, per-sentence score distributions, CSV/JSON downloads,
and a form to evaluate runs now.

Everything shown comes from stored evaluations (`evaluation.save_evaluation`: scores in the store,
per-example outputs beside the run). The URL holds the view (`?runs=...&split=...&metric=...`).
Evaluating decodes inside this script run (it is inference, bounded by "at most N examples"),
never training.
"""

import functools

import pandas as pd
import streamlit as st

from pages import ui
from pages.ui import charts
from textgen.analysis import evaluation, leaderboard
from textgen.core.errors import TextgenError
from textgen.decoding import DecodingConfig
from textgen.store.database import RunStore

st.set_page_config(page_title="Evaluate · TextGen Lab", page_icon="🏆", layout="wide")
ui.require_password()

SIGNIFICANCE_METHODS = {"bs": "paired bootstrap resampling", "ar": "approximate randomisation"}
SIGNIFICANCE_SAMPLES = (200, 1000, 5000)


@st.cache_data(max_entries=64, show_spinner=False)
def cached_examples(home: str, run_id: str, evaluation_id: int) -> leaderboard.EvaluationExamples:
    """An evaluation's per-example file never changes once written (ids are never reused)."""
    with RunStore(home) as store:
        records = [r for r in store.get_evaluations(run_id) if r.id == evaluation_id]
        if not records:
            raise TextgenError(f"evaluation {evaluation_id} of run {run_id} no longer exists.")
        return leaderboard.load_examples(store, records[0])


@st.cache_data(max_entries=16, show_spinner="Running paired significance tests…")
def cached_significance(home: str, systems: tuple[tuple[str, int], ...], method: str,
                        n_samples: int) -> dict[str, leaderboard.SignificanceMatrix]:
    examples = {run_id: cached_examples(home, run_id, evaluation_id) for run_id, evaluation_id in systems}
    return leaderboard.significance_matrices(examples, method=method, n_samples=n_samples)


def evaluate_now(run_ids: list[str], labels: dict[str, str], split: str, config: DecodingConfig,
                 max_examples: int, bootstrap_samples: int) -> None:
    """Decode and score each run in turn, with a progress bar; a run that cannot be evaluated
    (no checkpoint yet, empty split) gets a message and the others go on."""
    done = 0
    for run_id in run_ids:
        # Progress text renders Markdown: the label goes through ui.message.
        name = ui.message(ui.label(labels[run_id], 40))
        bar = st.progress(0.0, text=f"Decoding with {name}…")

        def report(finished: int, total: int, bar=bar, name=name) -> None:
            bar.progress(min(finished / total, 1.0) if total else 1.0,
                         text=f"Decoding with {name}: {finished}/{total}")

        try:
            with ui.open_store() as store:
                evaluation.evaluate_run(store, run_id, config, split=split, max_examples=max_examples,
                                        bootstrap_samples=bootstrap_samples, progress=report)
            bar.progress(1.0, text=f"{name}: scored")
            done += 1
        except TextgenError as error:
            bar.empty()
            ui.error(f"{ui.label(labels[run_id], 40)}: {error}")
    if done:
        ui.success(f"Evaluated {done} run{'s' if done > 1 else ''} on the {split} split; "
                   "the leaderboard below includes the new scores.")


NO_RUNS = ("No runs yet, so nothing to evaluate. Train one on the Train page or with "
           "`python -m textgen train --corpus sample:dates --model gru`, then evaluate it here "
           "or with `python -m textgen evaluate RUN`.")


def _show_evaluate_form(selected: list[str], labels: dict[str, str]) -> None:
    """The form that evaluates the selected runs now, in this script run."""
    with st.expander("Evaluate the selected runs now"):
        with st.form("evaluate-form"):
            first, second, third = st.columns(3)
            eval_split = first.selectbox("Split", ("test", "valid"), key="eval-split",
                                         help="The held-out part of each run's corpus: test or validation.")
            strategy = second.selectbox("Decoding", ("greedy", "beam"), key="eval-strategy")
            beam_width = third.number_input("Beam width (beam search)", 1, 16, 4, key="eval-beam")
            max_examples = first.number_input(
                "At most this many examples", 1, 100_000, 200, key="eval-max",
                help="Fewer examples score faster but give wider confidence intervals.")
            bootstrap = second.number_input("Bootstrap resamples", 100, 5000, 1000, step=100,
                                            key="eval-bootstrap")
            submitted = st.form_submit_button("Evaluate", disabled=not selected, type="primary")
        if submitted:
            config = DecodingConfig(strategy=strategy, beam_width=int(beam_width))
            evaluate_now(selected, labels, eval_split, config, int(max_examples), int(bootstrap))


def _choose_split(runs: list) -> str | None:
    """A split some run was evaluated on (from the URL), or None after saying there is none."""
    with ui.open_store() as store:
        splits = leaderboard.splits_evaluated(store, {run.id: run for run in runs})
    if not splits:
        st.info("No evaluations yet. Evaluate the selected runs above, or run "
                "`python -m textgen evaluate RUN`.", icon=":material/leaderboard:")
        return None
    wanted_split = ui.query_value("split", splits[0])
    split = st.selectbox("Evaluated on", splits,
                         index=splits.index(wanted_split) if wanted_split in splits else 0,
                         key="board-split")
    ui.set_query(split=split)
    return split


def _show_leaderboard(runs: list, titles: dict[str, str], split: str) -> None:
    st.subheader("Leaderboard")
    with ui.open_store() as store:
        rows = leaderboard.leaderboard_rows(store, runs, split)
    table = pd.DataFrame([
        {"run": titles[row["run_id"]], "id": row["run_id"], "model": row["model"],
         "decoding": row["decoding"],
         **{column: row[f"{name}{suffix}"]
            for name, title in leaderboard.METRIC_TITLES.items()
            for suffix, column in (("", title), ("_low", f"{title} low"), ("_high", f"{title} high"))},
         "evaluated": row["evaluated_at"]}
        for row in rows
    ])
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={column: st.column_config.NumberColumn(format="%.2f")
                                for column in table.columns
                                if any(column.startswith(t) for t in leaderboard.METRIC_TITLES.values())})
    st.caption("Latest evaluation of each run and decoding setup; low–high is the 95% bootstrap "
               "interval. Higher is better except TER. Click a column to sort.")
    left, right = st.columns(2)
    left.download_button("Leaderboard (.csv)", leaderboard.to_csv(rows), file_name=f"leaderboard-{split}.csv",
                         mime="text/csv", key="board-csv", on_click="ignore", icon=":material/download:")
    right.download_button("Leaderboard (.json)", leaderboard.to_json(rows),
                          file_name=f"leaderboard-{split}.json", mime="application/json",
                          key="board-json", on_click="ignore", icon=":material/download:")


def _selected_examples(home: str, selected: list[str], split: str,
                       titles: dict[str, str]) -> dict[str, leaderboard.EvaluationExamples]:
    """The per-example scores of each selected run's latest evaluation on the split (at most
    MAX_SIGNIFICANCE_SYSTEMS runs), by run id; what is missing is said."""
    with ui.open_store() as store:
        records = leaderboard.latest_per_run(store, selected, split)
    missing = [run_id for run_id in selected if run_id not in records]
    if missing:
        st.caption(ui.message("Not evaluated on this split yet: " + ", ".join(titles[r] for r in missing)))
    if len(records) > leaderboard.MAX_SIGNIFICANCE_SYSTEMS:
        st.warning(f"Comparing the first {leaderboard.MAX_SIGNIFICANCE_SYSTEMS} of the selected runs.")
        records = dict(list(records.items())[: leaderboard.MAX_SIGNIFICANCE_SYSTEMS])
    if not records:
        st.info("Select runs evaluated on this split to compare them.")
    examples = {}
    for run_id, record in records.items():
        try:
            examples[run_id] = cached_examples(home, run_id, record.id)
        except TextgenError as error:  # e.g. a per-example file removed by hand
            ui.warning(str(error))
    return examples


def _choose_significance() -> tuple[str, str, int]:
    """Metric, test and number of resamples for the paired tests."""
    metrics = list(leaderboard.SIGNIFICANCE_METRICS)
    wanted_metric = ui.query_value("metric", "bleu")
    first, second, third = st.columns(3)
    metric = first.selectbox("Metric", metrics, index=metrics.index(wanted_metric)
                             if wanted_metric in metrics else 0,
                             format_func=leaderboard.METRIC_TITLES.__getitem__, key="sig-metric")
    method = second.selectbox("Test", list(SIGNIFICANCE_METHODS),
                              format_func=SIGNIFICANCE_METHODS.__getitem__, key="sig-method")
    n_samples = third.selectbox("Resamples", SIGNIFICANCE_SAMPLES, index=1, key="sig-samples")
    ui.set_query(metric=metric)
    return metric, method, int(n_samples)


def _show_significance(home: str, examples: dict, labels: dict[str, str]) -> None:
    """Paired tests between the runs (a heatmap of p-values and deltas) on the chosen metric."""
    st.markdown("**Paired significance**")
    if len(examples) < 2:
        st.info("Select at least two runs evaluated on this split for paired tests.")
        return
    metric, method, n_samples = _choose_significance()
    try:
        leaderboard.check_shared_examples(examples)
    except TextgenError as error:
        ui.warning(f"{error} Sentence distributions below still apply.")
        return
    systems = tuple((run_id, data.evaluation_id) for run_id, data in examples.items())
    matrices = cached_significance(home, systems, method, n_samples)
    matrix = matrices[metric]
    st.plotly_chart(
        charts.significance_heatmap(matrix.systems, matrix.p_values,
                                    matrix.deltas, titles=labels,
                                    metric_title=leaderboard.METRIC_TITLES[metric]),
        key="significance")
    st.caption(
        f"Each cell tests whether the column run and the row run differ in "
        f"{leaderboard.METRIC_TITLES[metric]} on the same {len(next(iter(examples.values())))} "
        f"sentences ({SIGNIFICANCE_METHODS[method]}, {n_samples} resamples; sacreBLEU's "
        "paired tests). Δ is the column's score minus the row's"
        + (" (lower TER is better)." if metric == "ter" else "."))


def _show_sentence_scores(examples: dict, labels: dict[str, str], titles: dict[str, str], split: str) -> None:
    """How sentence scores spread per run, which evaluations they come from, and downloads."""
    st.markdown("**Per-sentence scores**")
    first, second = st.columns(2)
    sentence_metric = first.selectbox(
        "Sentence metric", list(leaderboard.SENTENCE_METRIC_TITLES),
        format_func=leaderboard.SENTENCE_METRIC_TITLES.__getitem__, key="dist-metric")
    kind = second.radio("Chart", ("box", "histogram"), horizontal=True, key="dist-kind")
    st.plotly_chart(
        charts.score_distribution_figure(
            {run_id: data.sentence_scores[sentence_metric] for run_id, data in examples.items()},
            titles=labels, colors=charts.run_colors(list(examples)),
            metric_title=leaderboard.SENTENCE_METRIC_TITLES[sentence_metric], kind=kind),
        key="distribution")
    st.dataframe(
        pd.DataFrame([
            {"run": titles[run_id], "decoding": leaderboard.decoding_summary(data.decoding),
             "examples": len(data), "evaluation": data.evaluation_id}
            for run_id, data in examples.items()
        ]),
        hide_index=True, width="stretch")
    sentence_rows = leaderboard.example_rows(examples)
    left, right = st.columns(2)
    left.download_button("Per-sentence scores (.csv)",
                         functools.partial(leaderboard.to_csv, sentence_rows),
                         file_name=f"sentences-{split}.csv", mime="text/csv", key="sentences-csv",
                         on_click="ignore", icon=":material/download:")
    right.download_button("Per-sentence scores (.json)",
                          functools.partial(leaderboard.to_json, sentence_rows),
                          file_name=f"sentences-{split}.json", mime="application/json",
                          key="sentences-json", on_click="ignore", icon=":material/download:")


def main() -> None:
    st.title("Evaluate")
    st.caption(
        "Scores of trained runs on their corpus's held-out split: BLEU, chrF and TER (sacreBLEU) and "
        "ROUGE-1/2/L, each with a 95% bootstrap confidence interval; paired significance tests "
        "between runs, and how scores spread over sentences. The address bar holds this view."
    )
    with ui.user_errors():
        with ui.page_runs(NO_RUNS, icon=":material/leaderboard:") as (store, runs):
            home = str(store.home)
        if not runs:
            return
        labels = {run.id: run.label for run in runs}  # untrusted: ui.label / chart_label where shown
        titles = {run.id: ui.label(run.label, 40) for run in runs}
        selected = ui.pick_runs(runs, key="runs", label_text="Runs to compare")
        _show_evaluate_form(selected, labels)
        split = _choose_split(runs)
        if split is None:
            return
        _show_leaderboard(runs, titles, split)
        st.subheader("Selected runs")
        examples = _selected_examples(home, selected, split, titles)
        if examples:
            _show_significance(home, examples, labels)
            _show_sentence_scores(examples, labels, titles, split)


main()
