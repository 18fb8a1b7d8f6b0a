"""Train page: plan a run (corpus, model family, preset, hyperparameters), start it, manage jobs.

The form is plain widgets, so the figures under it (parameter count, FLOPs per token, steps per
epoch, estimated time) follow every change. Every value goes through `planning.plan_run`, which
validates all configs: a bad value, typed or from a crafted link (`?model=transformer&preset=tiny
&batch_size=0`), is refused with its valid range and no run is created. Start submits a job
(`jobs.submit`: its own process, queued by the store); the job list below polls the store.

The link carries the form's state: `model`, `preset` and `corpus` follow the form; any field name
(`batch_size=32`, `learning_rate=3e-4`, `hidden_units=128`, `tokenizer=char`) prefills it.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import streamlit as st

from pages import ui
from pages.ui import forms
from textgen.core import hardware
from textgen.core.errors import ConfigError, StoreError, TextgenError
from textgen.core.formatting import format_count, format_duration
from textgen.data import registry
from textgen.data.config import TokenizerConfig
from textgen.models.config import (
    DECODER_ONLY_KINDS,
    FAMILY_FIELDS,
    MODEL_KINDS,
    PRESET_NAMES,
    preset_config,
)
from textgen.store.database import ACTIVE_STATUSES, RunStore
from textgen.training import estimates, jobs, planning
from textgen.training.config import TrainConfig
from textgen.training.progress import RunProgress, run_progress

st.set_page_config(page_title="Train · TextGen Lab", page_icon="🏋️", layout="wide")
ui.require_password()

SEQ2SEQ_KINDS = tuple(kind for kind in MODEL_KINDS if kind not in DECODER_ONLY_KINDS)
# Set by the tokenizers, never by hand.
DERIVED_MODEL_FIELDS = ("kind", "source_vocab_size", "target_vocab_size")
MAIN_TRAIN_FIELDS = ("epochs", "batch_size", "learning_rate", "optimizer", "schedule", "warmup_steps", "minutes")
TOKENIZER_FIELDS = ("vocab_size", "min_frequency", "lowercase")
# Query keys that are not settings: the form's own, and Streamlit's.
QUERY_KEYS = ("model", "preset", "corpus", "embed", "embed_options")
MAX_LISTED_RUNS = 30
# With no job active, the job list still polls, this slowly, for jobs started elsewhere.
IDLE_POLL_SECONDS = 10.0
MAX_LINK_PROBLEMS = 8
CONFIRM_KEY = "train-confirm-delete"  # the run id whose deletion awaits a "Yes"


@st.cache_resource(max_entries=8, show_spinner="Planning the run…")
def cached_plan(home: str, corpus_id: str, kind: str, preset: str, settings_json: str):
    """A validated plan, its tokens per epoch and the examples it truncates, for the figures
    shown before Start.

    Shared by sessions and never mutated (Start plans afresh); a ConfigError is not cached.
    """
    with RunStore(home) as store:
        plan = planning.plan_run(store, corpus_id, kind, preset=preset, settings=json.loads(settings_json))
        return plan, estimates.tokens_per_epoch(store, plan), estimates.length_overflow(store, plan)


@st.cache_data(max_entries=256)
def settled_progress(home: str, run_id: str, updated_at: float) -> RunProgress:
    """Progress of a run that is not active: it changes only with `updated_at`."""
    with RunStore(home) as store:
        return run_progress(store, store.get_run(run_id))


def query_settings(model_fields: tuple[str, ...], model_defaults: Any) -> tuple[dict[str, Any], list[str]]:
    """Field values from the link, parsed to the field's type; and what was ignored, and why."""
    defaults: dict[str, Any] = {name: getattr(model_defaults, name) for name in model_fields}
    defaults.update(TrainConfig().to_dict())
    tokenizer_defaults = TokenizerConfig()
    defaults.update({"tokenizer": tokenizer_defaults.kind,
                     **{name: getattr(tokenizer_defaults, name) for name in TOKENIZER_FIELDS}})
    values, problems = {}, []
    for key in st.query_params:
        if key in QUERY_KEYS:
            continue
        if key not in defaults:
            problems.append(f"the link's setting {key!r} is not a field of this model family or of training; "
                            "it was ignored.")
            continue
        try:
            values[key] = planning.parse_setting(key, st.query_params[key])
        except ConfigError as why:
            problems.append(f"{why} It was ignored; the form shows the default.")
    if len(problems) > MAX_LINK_PROBLEMS:
        problems[MAX_LINK_PROBLEMS:] = [f"{len(problems) - MAX_LINK_PROBLEMS} more settings in the link were "
                                        "ignored."]
    return values, problems


def setting(name: str, default: Any, prefill: dict[str, Any], *, key: str) -> Any:
    return forms.setting_input(planning.setting_spec(name), prefill.get(name, default), key=key, label=name.replace("_", " "))


def show_plan(plan: Any, estimate: estimates.TimeEstimate) -> None:
    columns = st.columns(5)
    columns[0].metric("Parameters", format_count(plan.parameter_count),
                      help=f"{plan.parameter_count:,} weights")
    columns[1].metric("FLOPs per token", format_count(plan.flops_per_token),
                      help="Forward pass, per target token; training costs about 3 times this.")
    columns[2].metric("Steps per epoch", f"{plan.steps_per_epoch:,}")
    columns[3].metric("Tokens per epoch", format_count(estimate.tokens_per_epoch))
    columns[4].metric("Estimated time", format_duration(estimate.seconds),
                      help=f"Training plus about {estimates.START_UP_SECONDS:.0f} s of start-up; a queued run waits for "
                           "the run before it.")
    budget = " The time budget ends training before the last epoch." if estimate.limited_by_budget else ""
    st.caption(f"{estimate.basis} About {estimate.tokens_per_second:,.0f} tokens/s; "
               f"{plan.num_train_examples:,} training examples.{budget}")


def job_list() -> None:
    """The runs, newest first, with progress and controls: a fragment that polls the store every
    POLL_SECONDS while a job is active, every IDLE_POLL_SECONDS otherwise (to notice a job started
    elsewhere: another tab, the command line)."""
    with ui.user_errors(), ui.open_store() as store:
        active = bool(store.list_runs(statuses=ACTIVE_STATUSES))  # the fragment reconciles
    st.fragment(run_every=ui.POLL_SECONDS if active else IDLE_POLL_SECONDS)(_job_list)(active)


def _job_list(was_active: bool) -> None:
    with ui.user_errors(), ui.page_runs("No runs yet. Start one above.") as (store, runs):
        if any(run.status in ACTIVE_STATUSES for run in runs) != was_active:
            st.rerun()  # a job started or ended: poll at the other pace
        if not runs:
            return
        if len(runs) > MAX_LISTED_RUNS:
            st.caption(f"The {MAX_LISTED_RUNS} most recent of {len(runs)} runs.")
        for run in runs[:MAX_LISTED_RUNS]:
            _show_job_box(store, run)


def _show_job_box(store: RunStore, run: Any) -> None:
    with st.container(border=True):
        try:
            show_job(store, run)
        except StoreError:  # deleted meanwhile (another tab, the CLI)
            st.text(f"{run.id} was deleted.")


def ask_delete(run_id: str) -> None:
    st.session_state[CONFIRM_KEY] = run_id


def cancel_delete() -> None:
    st.session_state.pop(CONFIRM_KEY, None)


def show_job(store: RunStore, run: Any) -> None:
    active = run.status in ACTIVE_STATUSES
    if active:
        progress = run_progress(store, run)
    else:
        progress = settled_progress(str(store.home), run.id, run.updated_at)
    columns = st.columns([6, 1, 1])
    columns[0].text(ui.run_title(run))
    columns[0].progress(progress.fraction, text=progress.summary)
    figures = [f"{name} {value:.3f}" for name, value in (("train loss", progress.train_loss),
                                                        ("valid loss", progress.valid_loss)) if value is not None]
    if progress.valid_bleu is not None:
        figures.append(f"valid BLEU {progress.valid_bleu:.1f}")
    if run.stop_requested and active:
        figures.append("stopping…")
    if figures:
        columns[0].caption(" · ".join(figures))
    if run.error:
        columns[0].text(f"Error: {ui.label(run.error, 400)}")
    if active and columns[1].button("Stop", key=f"train-stop-{run.id}", icon=":material/stop:",
                                    disabled=run.stop_requested):
        try:
            jobs.request_stop(store, run.id)
            st.toast(f"Stopping {run.id}: it evaluates and keeps a checkpoint first.")
        except TextgenError as problem:
            forms.error(str(problem))
    confirming = st.session_state.get(CONFIRM_KEY) == run.id
    columns[2].button("Delete", key=f"train-delete-{run.id}", icon=":material/delete:", disabled=confirming,
                      on_click=ask_delete, args=(run.id,))
    if confirming and _confirm_delete(store, run.id, active):
        return  # the run is gone: no controls for it
    if run.status in jobs.RESUMABLE:
        with st.expander("Resume"):
            _show_resume(store, run.id)


def _confirm_delete(store: RunStore, run_id: str, active: bool) -> bool:
    """The "Yes, delete" question; True once the run was deleted (or deleting it failed)."""
    st.warning(f"Delete run {run_id} with its checkpoints and metrics? "
               f"{'Its job is stopped first. ' if active else ''}This cannot be undone.",
               icon=":material/warning:")
    yes, no = st.columns([1, 6])
    no.button("Cancel", key=f"train-delete-no-{run_id}", on_click=cancel_delete)
    if not yes.button("Yes, delete", key=f"train-delete-yes-{run_id}", type="primary"):
        return False
    st.session_state.pop(CONFIRM_KEY, None)
    try:
        with st.spinner("Deleting…"):
            jobs.delete(store, run_id)
        st.success(f"Deleted {run_id}.", icon=":material/check_circle:")
    except TextgenError as problem:
        forms.error(str(problem))
    return True


def _show_resume(store: RunStore, run_id: str) -> None:
    columns = st.columns(3)
    more = columns[0].number_input("More epochs", value=5, step=1, key=f"train-resume-epochs-{run_id}")
    rate = columns[1].text_input("Learning rate (empty keeps it)", key=f"train-resume-lr-{run_id}")
    minutes = columns[2].text_input("Time budget in minutes (empty keeps it)",
                                    key=f"train-resume-minutes-{run_id}")
    if not st.button("Resume", key=f"train-resume-{run_id}", icon=":material/play_arrow:"):
        return
    settings = {name: value.strip() for name, value in (("learning_rate", rate), ("minutes", minutes))
                if value.strip()}
    try:
        resumed = jobs.resume(store, run_id, epochs=int(more), settings=settings)
        st.toast(f"Resumed {resumed.id}: {resumed.status}. It "
                 f"{ui.label(jobs.resume_summary(store, resumed.id), 300)}")
    except TextgenError as problem:
        forms.error(str(problem))


class RunChoice(NamedTuple):
    """What the form picked: the corpus, model family, preset, label and every setting."""

    corpus_id: str
    kind: str
    preset: str
    label: str
    settings: dict[str, str]


def _saved_corpora() -> tuple[str, str, dict[str, Any]]:
    """The store's home, the default corpus's id and the saved corpora by id."""
    default_corpus_id = ui.ensure_default_corpus()
    with ui.open_store() as store:
        home = str(store.home)
        saved = {c.id: c for c in store.list_corpora()}
        if default_corpus_id not in saved:  # removed since this server registered it: again
            default_corpus_id = registry.register_reference(store, f"sample:{ui.DEFAULT_SAMPLE}").id
            saved = {c.id: c for c in store.list_corpora()}
    return home, default_corpus_id, saved


def _choose_corpus(saved: dict[str, Any], default_corpus_id: str, warnings: list[str]) -> str:
    ids = list(saved)
    wanted_corpus = ui.query_value("corpus")
    if wanted_corpus and wanted_corpus not in saved:
        warnings.append(f"the link's corpus {wanted_corpus!r} is not a saved corpus; the default is shown.")
        wanted_corpus = None
    start_corpus = wanted_corpus or default_corpus_id
    return st.selectbox(
        "Corpus", ids, index=ids.index(start_corpus) if start_corpus in ids else 0, key="train-corpus",
        format_func=lambda c: f"{ui.label(saved[c].label, 50)} · {saved[c].format} · "
                              f"{saved[c].num_examples:,} examples · {c}",
        help="Save more on the Corpus page.",
    )


def _linked_model(kinds: tuple[str, ...], warnings: list[str]) -> tuple[str | None, str | None]:
    """The link's model family and preset, None (with a warning) where they do not fit."""
    wanted_kind = ui.query_value("model")
    if wanted_kind is not None and wanted_kind not in kinds:
        what = "not a model family" if wanted_kind not in MODEL_KINDS else (
            "a language model for plain text" if wanted_kind in DECODER_ONLY_KINDS else "a seq2seq model for pairs")
        warnings.append(f"the link's model {wanted_kind!r} is {what}; this corpus takes {', '.join(kinds)}. "
                        "It was ignored.")
        wanted_kind = None
    wanted_preset = ui.query_value("preset")
    if wanted_preset is not None and wanted_preset not in PRESET_NAMES:
        warnings.append(f"the link's preset {wanted_preset!r} is not one of {', '.join(PRESET_NAMES)}; "
                        "it was ignored.")
        wanted_preset = None
    return wanted_kind, wanted_preset


def _choose_model(is_text: bool, warnings: list[str]) -> tuple[str, str, str]:
    """Model family, preset and run label."""
    kinds = DECODER_ONLY_KINDS if is_text else SEQ2SEQ_KINDS
    wanted_kind, wanted_preset = _linked_model(kinds, warnings)
    columns = st.columns(3)
    kind = columns[0].selectbox("Model family", kinds, index=kinds.index(wanted_kind) if wanted_kind else 0,
                                key=f"train-kind-{'text' if is_text else 'pairs'}")
    preset = columns[1].selectbox("Preset", PRESET_NAMES,
                                  index=PRESET_NAMES.index(wanted_preset or "tiny"), key="train-preset",
                                  help="tiny trains in seconds on a CPU; small suits a few thousand pairs; "
                                       "base is paper-sized (GPU recommended).")
    run_label = columns[2].text_input("Run label (optional)", key="train-label", max_chars=120)
    return kind, preset, run_label


def _choose_model_settings(kind: str, preset: str, model_fields: tuple[str, ...], model_defaults: Any,
                           prefill: dict[str, Any], settings: dict[str, str]) -> None:
    st.markdown(f"**Model: {kind}, {preset}** (prefilled from the preset)")
    columns = st.columns(4)
    for index, name in enumerate(model_fields):
        with columns[index % 4]:
            value = setting(name, getattr(model_defaults, name), prefill, key=f"train-model-{kind}-{preset}-{name}")
        settings[f"model.{name}"] = forms.as_setting(value)


def _choose_tokenizer_settings(prefill: dict[str, Any], settings: dict[str, str]) -> None:
    st.markdown("**Tokenizer**")
    tokenizer_defaults = TokenizerConfig()
    columns = st.columns(4)
    with columns[0]:
        settings["tokenizer.kind"] = setting("tokenizer", tokenizer_defaults.kind, prefill, key="train-tokenizer-kind")
    for index, name in enumerate(TOKENIZER_FIELDS, start=1):
        with columns[index]:
            value = setting(name, getattr(tokenizer_defaults, name), prefill, key=f"train-tokenizer-{name}")
        settings[f"tokenizer.{name}"] = forms.as_setting(value)


def _choose_train_settings(prefill: dict[str, Any], settings: dict[str, str]) -> None:
    st.markdown("**Training**")
    train_defaults = TrainConfig()
    columns = st.columns(len(MAIN_TRAIN_FIELDS))
    for column, name in zip(columns, MAIN_TRAIN_FIELDS):
        with column:
            value = setting(name, getattr(train_defaults, name), prefill, key=f"train-train-{name}")
        settings[f"train.{name}"] = forms.as_setting(value)
    with st.expander("More training settings"):
        st.caption(hardware.bfloat16_note())
        others = [name for name in TrainConfig.field_names() if name not in MAIN_TRAIN_FIELDS]
        columns = st.columns(4)
        for index, name in enumerate(others):
            with columns[index % 4]:
                value = setting(name, getattr(train_defaults, name), prefill, key=f"train-train-{name}")
            settings[f"train.{name}"] = forms.as_setting(value)


def _choose_run(saved: dict[str, Any], default_corpus_id: str) -> RunChoice:
    """The new-run form: corpus, model and every setting, prefilled from the link; what in the
    link was ignored is shown as warnings."""
    warnings: list[str] = []
    corpus_id = _choose_corpus(saved, default_corpus_id, warnings)
    kind, preset, run_label = _choose_model(saved[corpus_id].format == "text", warnings)
    ui.set_query(corpus=None if corpus_id == default_corpus_id else corpus_id, model=kind, preset=preset)
    model_defaults = preset_config(kind, preset, 8, 8)
    model_fields = tuple(f for f in FAMILY_FIELDS[kind] if f not in DERIVED_MODEL_FIELDS)
    prefill, link_problems = query_settings(model_fields, model_defaults)
    warnings.extend(link_problems)
    for text in warnings:
        forms.warning(text)
    settings: dict[str, str] = {}
    _choose_model_settings(kind, preset, model_fields, model_defaults, prefill, settings)
    _choose_tokenizer_settings(prefill, settings)
    _choose_train_settings(prefill, settings)
    return RunChoice(corpus_id, kind, preset, run_label, settings)


def _show_estimates(home: str, choice: RunChoice) -> Any:
    """The plan's figures, or why these settings cannot train; the plan, or None."""
    try:
        plan, tokens, overflow = cached_plan(home, choice.corpus_id, choice.kind, choice.preset,
                                             json.dumps(choice.settings, sort_keys=True))
        with ui.open_store() as store:
            measured = estimates.measured_flops_rate(store, choice.kind)
        show_plan(plan, estimates.estimate_training_time(plan, tokens, measured))
        st.caption(estimates.estimate_memory(plan.config.model, plan.config.train).summary)
        if overflow.summary:
            forms.warning(overflow.summary)
        return plan
    except TextgenError as problem:
        forms.error(f"These settings cannot train: {problem}")
        st.caption("Fix the value above; no run is created until the settings are valid.")
        return None


def _start_button(choice: RunChoice, disabled: bool) -> None:
    if not st.button("Start training", type="primary", icon=":material/play_arrow:", disabled=disabled,
                     key="train-start"):
        return
    try:
        with ui.open_store() as store:
            fresh = planning.plan_run(store, choice.corpus_id, choice.kind, preset=choice.preset,
                                      settings=choice.settings, label=choice.label.strip() or None)
            run = jobs.submit(store, fresh)
        forms.success(f"Started run {run.id} ({run.status}). Follow it below, or on the other pages.")
    except TextgenError as problem:
        forms.error(str(problem))


def main() -> None:
    st.title("Train")
    st.write("Pick a corpus and a model, check its size and the estimated time, and start it. Jobs run "
             "in their own processes, one after the other: closing the browser does not stop them.")
    with ui.user_errors():
        home, default_corpus_id, saved = _saved_corpora()
        st.subheader("New run")
        choice = _choose_run(saved, default_corpus_id)
        plan = _show_estimates(home, choice)
        _start_button(choice, disabled=plan is None)
        st.subheader("Jobs")
        job_list()


main()
