"""Report: one self-contained HTML file of some runs, to share a demo after the fact.

The file (textgen.analysis.report.build_report) holds the runs' configurations, curves, the leaderboard
with intervals, a side-by-side table of test examples and attention maps, and opens offline in
any browser. The run selection and the number of examples live in the URL (`?runs=...&examples=`).
"""

import streamlit as st

from pages import ui
from textgen.analysis import report

st.set_page_config(page_title="Report · TextGen Lab", page_icon="📦", layout="wide")
ui.require_password()

NO_RUNS = ("No runs yet, so there is nothing to report. Train one from the command line, for "
           "example `python -m textgen train --corpus sample:dates --model gru`.")


def _choose_examples() -> int:
    examples = st.number_input(
        "Test examples in the side-by-side table", min_value=0, max_value=report.MAX_EXAMPLES,
        value=ui.query_int("examples", 8, 0, report.MAX_EXAMPLES), step=1, key="report-examples",
        help="Each run decodes this many test examples of its corpus (greedy decoding).",
    )
    ui.set_query(examples=int(examples))
    return int(examples)


def _show_build(chosen: list[str], examples: int) -> None:
    """The Build button, and once clicked, the report's download."""
    if not st.button("Build report", type="primary", disabled=not chosen, key="build-report",
                     icon=":material/summarize:"):
        return
    with st.spinner("Decoding examples and drawing charts…"):
        with ui.open_store() as store:
            document = report.build_report(store, chosen, examples=examples)
    st.success(f"The report of {len(chosen)} run(s) is ready.", icon=":material/check:")
    # The file name is ours (a date), never a run label or an uploaded file's name.
    st.download_button(
        "Download the report (HTML)", data=document.encode("utf-8"),
        file_name=report.report_file_name(), mime="text/html", on_click="ignore",
        key="download-report", icon=":material/download:",
    )


def main() -> None:
    st.title("Report")
    st.write(
        "Export the selected runs as one HTML file: configurations, training and validation curves, "
        "the leaderboard with 95% intervals, test examples decoded by each run side by side, and "
        "attention maps. It loads nothing from the network, so it opens offline in any browser and "
        "can be mailed or attached to an issue."
    )
    with ui.user_errors():
        with ui.page_runs(NO_RUNS) as (_, runs):
            if not runs:
                return
        chosen = ui.pick_runs(runs, key="runs", multiple=True)
        examples = _choose_examples()
        st.caption("Building decodes examples with every selected run's best checkpoint, so it "
                   "takes a few seconds per run.")
        _show_build(chosen, examples)


main()
