"""Corpus page: upload a file or pick a built-in sample, check it, save it; the saved registry.

"Check" reads, validates and splits the corpus in memory and shows the report (counts, warnings,
rejected lines, length histograms, vocabulary and tokenizer OOV, a preview, the split) without
saving anything. "Save corpus" registers it in the store (`registry.register`), which validates
again and writes nothing for an unusable file. The uploaded file's name is a label only, never
a path; corpus text is shown through `ui.label` (tables) and `forms.message` (message boxes).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pages import ui
from pages.ui import forms
from textgen.core.errors import TextgenError
from textgen.data import corpus_check, registry
from textgen.data.config import CorpusConfig, TokenizerConfig
from textgen.data.samples import catalog

st.set_page_config(page_title="Corpus · TextGen Lab", page_icon="📄", layout="wide")
ui.require_password()

UPLOAD, SAMPLE = "Upload a file", "Built-in sample"
FIELD_FORMATS = ("csv", "jsonl")


@st.cache_data(max_entries=8, show_spinner="Checking the corpus…")
def check_corpus(digest: str, config_json: str, tokenizer_json: str, _data: bytes) -> corpus_check.CorpusCheck:
    """The report of some bytes under a config, cached by the bytes' sha256 and the configs (the
    bytes themselves are not hashed again nor kept in session state)."""
    return corpus_check.check_corpus(_data, CorpusConfig.from_json(config_json), TokenizerConfig.from_json(tokenizer_json))


@st.cache_data(max_entries=2, show_spinner="Generating the sample…")
def sample_bytes(name: str, size: int, seed: int) -> bytes:
    return catalog.sample_bytes(name, size=size, seed=seed)


def show_report(check: corpus_check.CorpusCheck) -> None:
    st.subheader("Report")
    _show_counts(check.report, check.is_pairs)
    _show_rejected(check.report)
    _show_lengths(check.report, check.is_pairs)
    _show_vocabulary(check, check.is_pairs)
    _show_preview(check, check.is_pairs)
    _show_split(check.report, check.is_pairs)


def _show_counts(report: dict, pairs: bool) -> None:
    """Headline figures, the fields read, notes and warnings."""
    columns = st.columns(6)
    columns[0].metric("Format", report["format"])
    columns[1].metric("Encoding", report["encoding"])
    columns[2].metric("Examples" if pairs else "Lines", f"{report['num_examples']:,}")
    columns[3].metric("Rejected lines", f"{report['num_rejected']:,}")
    columns[4].metric("Duplicates", f"{report['num_duplicates']:,}")
    columns[5].metric("Size", f"{report['num_bytes'] / 1024:,.1f} KB")
    if pairs and report["source_field"] is not None:
        st.text(f"Source: {ui.label(str(report['source_field']), 40)} · target: "
                f"{ui.label(str(report['target_field']), 40)}")
    for note in report["notes"]:
        st.text(ui.label(note, 300))
    for text in report["warnings"]:
        forms.warning(text)
    if not report["warnings"]:
        st.success("No problems found.", icon=":material/check_circle:")


def _show_rejected(report: dict) -> None:
    if not report["rejected"]:
        return
    st.markdown("**Rejected lines** (left out of the corpus)")
    st.dataframe(
        pd.DataFrame([{"line": r["line"], "reason": ui.label(r["reason"], 300)} for r in report["rejected"]]),
        hide_index=True, width="stretch", height=min(400, 38 + 35 * len(report["rejected"])),
    )
    if report["num_rejected"] > len(report["rejected"]):
        st.caption(f"The first {len(report['rejected']):,} of {report['num_rejected']:,} are listed.")


def _show_lengths(report: dict, pairs: bool) -> None:
    """A length histogram per side, in words or characters."""
    st.markdown("**Lengths**")
    unit = st.radio("Length in", ("words", "characters"), horizontal=True, key="corpus-length-unit")
    sides = [("Source", report["source_length"]), ("Target", report["target_length"])] if pairs else [
        ("Line", report["target_length"])]
    for column, (side, lengths) in zip(st.columns(len(sides)), sides):
        summary = lengths[unit]
        bins = corpus_check.histogram_bins(summary)
        figure = go.Figure(go.Bar(x=[b["bin"] for b in bins], y=[b["count"] for b in bins],
                                  hovertemplate=f"%{{x}} {unit}: %{{y}}<extra></extra>"))
        figure.update_layout(title=f"{side} length ({unit})", xaxis_title=unit, yaxis_title="examples",
                             height=300, margin=dict(l=10, r=10, t=40, b=10), bargap=0.05)
        figure.update_xaxes(type="category")
        column.plotly_chart(figure, width="stretch", key=f"corpus-hist-{side}-{unit}")
        column.caption(f"min {summary['min']} · median {summary['median']:g} · mean {summary['mean']:g} · "
                       f"95th percentile {summary['p95']:g} · max {summary['max']}")


def _show_vocabulary(check: corpus_check.CorpusCheck, pairs: bool) -> None:
    """Vocabulary sizes and the tokenizer's out-of-vocabulary rates."""
    report = check.report
    st.markdown("**Vocabulary**")
    vocabulary = report["vocabulary_size"]
    tokenizer = check.tokenizer
    columns = st.columns(3)
    if pairs:
        columns[0].metric("Source words", f"{vocabulary['source']:,}")
        columns[1].metric("Target words", f"{vocabulary['target']:,}")
        columns[2].metric("Combined", f"{vocabulary['combined']:,}")
    else:
        columns[0].metric("Distinct words", f"{vocabulary['target']:,}")
        columns[1].metric("Characters", f"{report['num_characters'] or 0:,}")
        columns[2].metric("Distinct characters", f"{report['num_distinct_characters'] or 0:,}")
    st.dataframe(
        pd.DataFrame([
            {"side": side, "vocabulary": tokenizer[side]["vocabulary_size"],
             "OOV valid %": round(100 * tokenizer[side]["oov_rate_valid"], 3),
             "OOV test %": round(100 * tokenizer[side]["oov_rate_test"], 3)}
            for side in ("source", "target", "text") if side in tokenizer
        ]),
        hide_index=True,
    )
    st.caption(f"A {tokenizer['kind']} tokenizer (at most {tokenizer['vocab_size_cap']:,} tokens) trained on "
               "the training split; OOV is the share of validation/test tokens it maps to <unk>.")


def _show_preview(check: corpus_check.CorpusCheck, pairs: bool) -> None:
    st.markdown(f"**Preview** (first {len(check.preview)} examples, invisible characters marked)")
    st.dataframe(
        pd.DataFrame([
            {"line": row["line"], **({"source": ui.label(row["source"], 200)} if pairs else {}),
             ("target" if pairs else "text"): ui.label(row["target"], 200)}
            for row in check.preview
        ]),
        hide_index=True, width="stretch",
    )


def _show_split(report: dict, pairs: bool) -> None:
    split = report["split"]
    if not split:
        return
    st.markdown("**Split**")
    columns = st.columns(5)
    columns[0].metric("Train", f"{split['train']:,}")
    columns[1].metric("Validation", f"{split['valid']:,}")
    columns[2].metric("Test", f"{split['test']:,}")
    what = "sources" if pairs else "lines"
    columns[3].metric(f"Valid {what} in train", f"{split['valid_sources_in_train']:,}")
    columns[4].metric(f"Test {what} in train", f"{split['test_sources_in_train']:,}")
    st.caption(f"Split seed {split['seed']}: the same file, settings and seed always give the same split.")


def corpus_config(format_: str, source_field: str, target_field: str) -> CorpusConfig:
    """The reading settings from the widgets (ConfigError says which one is out of range)."""
    return CorpusConfig(
        format=format_,
        source_field=source_field.strip() or None,
        target_field=target_field.strip() or None,
        valid_fraction=float(st.session_state["corpus-valid"]),
        test_fraction=float(st.session_state["corpus-test"]),
        split_seed=int(st.session_state["corpus-seed"]),
        deduplicate=bool(st.session_state["corpus-dedupe"]),
    )


@dataclasses.dataclass
class Picked:
    """The corpus the widgets picked: its bytes (None until there are some) and how to read it."""

    data: bytes | None = None
    origin: str = "upload"
    label: str = ""
    format: str = "auto"
    source_field: str = ""
    target_field: str = ""


def _choose_upload(max_bytes: int) -> Picked:
    uploaded = st.file_uploader(
        f"Corpus file: UTF-8 text, TSV, CSV or JSONL, at most {max_bytes // 2**20} MB",
        key="corpus-upload",
        help="The format is detected from the content; the file name is only a label.",
    )
    picked = Picked()
    columns = st.columns(3)
    with columns[0]:
        picked.format = forms.setting_input(CorpusConfig.field_spec("format"), "auto", key="corpus-format",
                                            label="Format")
    if picked.format in FIELD_FORMATS:
        picked.source_field = columns[1].text_input(
            "Source column" if picked.format == "csv" else "Source key", key="corpus-source-field",
            help="Empty picks an obvious one (source, input, question, ...).")
        picked.target_field = columns[2].text_input(
            "Target column" if picked.format == "csv" else "Target key", key="corpus-target-field",
            help="Empty picks an obvious one (target, output, answer, ...).")
    if uploaded is None:
        return picked
    picked.label = ui.label(uploaded.name)
    st.text(f"File: {picked.label} ({uploaded.size:,} bytes)")
    if uploaded.size > max_bytes:
        forms.error(f"the file is {uploaded.size / 2**20:.1f} MB, over the {max_bytes // 2**20} MB cap; "
                    "split it into smaller files, or train from the command line.")
    else:
        picked.data = uploaded.getvalue()
    return picked


def _choose_sample() -> Picked:
    columns = st.columns(3)
    name = columns[0].selectbox("Sample", catalog.sample_names(), key="corpus-sample")
    spec = catalog.SAMPLES[name]
    low, high = catalog.PAIRS_SIZE_RANGE if spec.kind == "pairs" else catalog.TEXT_SIZE_RANGE
    size = int(columns[1].number_input(
        "Examples" if spec.kind == "pairs" else "Stories", min_value=low, max_value=high,
        value=spec.default_size, step=100 if spec.kind == "pairs" else 10, key=f"corpus-sample-size-{name}"))
    seed = int(columns[2].number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1,
                                       key="corpus-sample-seed"))
    st.caption(spec.description)
    return Picked(data=sample_bytes(name, size, seed), origin=f"sample:{name}",
                  label=f"{name} ({size:,} {'examples' if spec.kind == 'pairs' else 'stories'}, seed {seed})")


def _choose_settings() -> tuple[str, int]:
    """The split settings (read back by `corpus_config`); the tokenizer kind and vocabulary size
    for the OOV figures."""
    defaults = CorpusConfig()
    columns = st.columns(4)
    for column, (name, key, label) in zip(columns, [("valid_fraction", "corpus-valid", "Validation fraction"),
                                                     ("test_fraction", "corpus-test", "Test fraction"),
                                                     ("split_seed", "corpus-seed", "Split seed"),
                                                     ("deduplicate", "corpus-dedupe", "Remove duplicates")]):
        with column:
            forms.setting_input(CorpusConfig.field_spec(name), getattr(defaults, name), key=key, label=label)
    with st.expander("Tokenizer for the OOV figures"):
        columns = st.columns(2)
        with columns[0]:
            tokenizer_kind = forms.setting_input(TokenizerConfig.field_spec("kind"), "word", key="corpus-tokenizer",
                                                 label="Tokenizer")
        with columns[1]:
            vocab_size = int(forms.setting_input(TokenizerConfig.field_spec("vocab_size"), TokenizerConfig().vocab_size,
                                                 key="corpus-vocab", label="Vocabulary size"))
    return tokenizer_kind, vocab_size


def _check_and_save(picked: Picked, tokenizer_choice: tuple[str, int], max_bytes: int, save: bool) -> None:
    """Save the corpus when asked, then show its report once Check or Save was clicked."""
    try:
        config = corpus_config(picked.format, picked.source_field, picked.target_field)
        tokenizer = TokenizerConfig(kind=tokenizer_choice[0], vocab_size=tokenizer_choice[1])
        if save:
            with ui.open_store() as store:
                record = registry.register(store, picked.data, config.with_overrides({"max_bytes": max_bytes}),
                                           origin=picked.origin, label=picked.label)
            forms.success(f"Saved corpus {record.id} ({record.num_examples:,} examples) as "
                          f"{record.label!r}. Train on it from the Train page.")
        if st.session_state.get("corpus-show-report"):
            digest = hashlib.sha256(picked.data).hexdigest()
            check = check_corpus(digest, config.with_overrides({"max_bytes": max_bytes}).to_json(),
                                 tokenizer.to_json(), picked.data)
            show_report(check)
    except TextgenError as problem:
        forms.error(str(problem))
        st.caption("Nothing was saved. Fix the file or the settings above and check again.")


def _show_saved() -> None:
    st.subheader("Saved corpora")
    with ui.open_store() as store:
        saved = store.list_corpora()
    st.dataframe(
        pd.DataFrame(
            [
                {"id": c.id, "label": ui.label(c.label, 60), "origin": c.origin, "format": c.format,
                 "examples": c.num_examples,
                 "created": datetime.datetime.fromtimestamp(c.created_at).strftime("%Y-%m-%d %H:%M")}
                for c in saved
            ],
            columns=["id", "label", "origin", "format", "examples", "created"],
        ),
        hide_index=True,
        width="stretch",
    )


def main() -> None:
    st.title("Corpus")
    st.write("Upload a corpus or pick a built-in one, check what is in it, and save it for training. "
             "Pairs (TSV, CSV, JSONL) train seq2seq models; plain text trains language models.")
    with ui.user_errors():
        ui.ensure_default_corpus()
        upload_cap_mb = int(st.get_option("server.maxUploadSize"))
        max_bytes = min(CorpusConfig().max_bytes, upload_cap_mb * 1024 * 1024)
        source = st.radio("Source", (UPLOAD, SAMPLE), horizontal=True, key="corpus-source")
        picked = _choose_upload(max_bytes) if source == UPLOAD else _choose_sample()
        tokenizer_choice = _choose_settings()
        columns = st.columns([1, 1, 4])
        check_clicked = columns[0].button("Check", icon=":material/fact_check:", disabled=picked.data is None,
                                          key="corpus-check")
        save_clicked = columns[1].button("Save corpus", type="primary", icon=":material/save:",
                                         disabled=picked.data is None, key="corpus-save")
        if check_clicked or save_clicked:
            st.session_state["corpus-show-report"] = True
        if picked.data is not None:
            _check_and_save(picked, tokenizer_choice, max_bytes, save_clicked)
        del picked  # the bytes stay with the uploader widget only
        _show_saved()


main()
