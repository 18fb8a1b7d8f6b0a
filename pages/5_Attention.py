"""Attention: where a model looks while it writes each output token.

Pick a run, an input (a test-split example or typed text) and optionally a reference: the page
shows the attention on the tokens the model really generates, or (with a reference) while it
reads the reference under teacher forcing. Transformers get a layer and head picker, a grid of
every head of the layer and their mean, and encoder self, decoder self and cross attention; the
checkpoint slider shows the same input at earlier checkpoints. The whole view (run, input,
kind, layer, head, checkpoint) is in the URL, so the link shows a teammate the same thing.
"""

import streamlit as st

from pages import ui
from pages.ui import heatmaps
from textgen.analysis import attention_views, comparison
from textgen.decoding import DecodingConfig
from textgen.store.database import RunStore

st.set_page_config(page_title="Attention · TextGen Lab", page_icon="🔥", layout="wide")
ui.require_password()

# Typed inputs and references (also read from the URL) are cut to this length.
MAX_INPUT_CHARS = 300
# Test-split examples offered in the example picker.
MAX_EXAMPLES = 200
SOURCES = {"example": "A test-split example", "typed": "Typed text"}
MODES = {"generated": "The output the model generates",
         "teacher_forced": "A reference, read with teacher forcing"}
HEAD_MEAN = -1


def _init(key: str, value) -> None:
    """A widget's first value (from the URL); later runs keep what the user chose."""
    if key not in st.session_state:
        st.session_state[key] = value


@st.cache_data(max_entries=32, ttl=600, show_spinner=False)
def _test_inputs(home: str, run_id: str) -> comparison.InputSet:
    """The run's first test examples (reading and splitting a corpus is not free on reruns)."""
    with RunStore(home) as store:
        return comparison.split_inputs(store, [run_id], limit=MAX_EXAMPLES)


@st.cache_data(max_entries=64, ttl=3600, show_spinner="Running the model…")
def _attention(home: str, run_id: str, checkpoint: str, source: str, reference: str) -> attention_views.AttentionSet:
    """One input's attention, cached per (run, checkpoint, input, reference): choosing another
    kind, layer or head, or a teammate opening the same link, never runs the model again.
    Plain data (numpy arrays and str), so a copy per caller."""
    with RunStore(home) as store:
        with ui.trained_model(store, run_id, checkpoint) as trained:
            return attention_views.attention_for_input(trained, source, reference or None, DecodingConfig())


def _choose_input(store, run_id: str) -> tuple[str, str] | None:
    """(source, reference from the corpus or "") from the example picker or the text box."""
    _init("att-source", "typed" if ui.query_value("input") else "example")
    source_kind = st.radio("Input", list(SOURCES), format_func=SOURCES.__getitem__,
                           horizontal=True, key="att-source")
    if source_kind == "typed":
        _init("att-input", (ui.query_value("input") or "")[:MAX_INPUT_CHARS])
        text = st.text_input("Input text", max_chars=MAX_INPUT_CHARS, key="att-input",
                             placeholder="e.g. 3 September 1987")
        ui.set_query(input=text or None, example=None)
        if not text.strip():
            st.info("Type an input to see the model's attention on it.", icon=":material/keyboard:")
            return None
        return text, ""
    inputs = _test_inputs(str(store.home), run_id)
    if not inputs.sources:
        st.info("This run's test split is empty: type an input instead.", icon=":material/info:")
        return None
    count = len(inputs.sources)
    _init("att-example", ui.query_int("example", 0, 0, count - 1))
    if st.session_state["att-example"] not in range(count):  # a run with a shorter split
        st.session_state["att-example"] = 0
    index = st.selectbox(
        "Example", range(count), key="att-example",
        format_func=lambda i: f"#{i} · {ui.label(inputs.sources[i], 70)}",
        help=f"The first {count} of {inputs.total} examples of the test split.")
    ui.set_query(example=index, input=None)
    return inputs.sources[index], inputs.references[index]


def _choose_reference(corpus_reference: str) -> str | None:
    """The reference for teacher forcing, "" for the generated output; None: nothing to show."""
    _init("att-mode", "teacher_forced" if ui.query_value("mode") == "teacher_forced" else "generated")
    mode = st.radio("Attention on", list(MODES), format_func=MODES.__getitem__, horizontal=True,
                    key="att-mode")
    ui.set_query(mode=mode if mode != "generated" else None)
    if mode == "generated":
        ui.set_query(reference=None)
        return ""
    # A new example brings its own reference, so the box is keyed by it.
    key = f"att-reference-{abs(hash(corpus_reference))}"
    _init(key, (ui.query_value("reference") or corpus_reference)[:MAX_INPUT_CHARS])
    reference = st.text_input("Reference", max_chars=MAX_INPUT_CHARS, key=key,
                              help="The target text the model reads; its attention is shown "
                                   "for each reference token.")
    ui.set_query(reference=reference if reference and reference != corpus_reference else None)
    if not reference.strip():
        st.info("Type a reference, or show the attention on the generated output.",
                icon=":material/keyboard:")
        return None
    return reference


def _choose_checkpoint(run_dir) -> str | None:
    """A checkpoint name from the slider (best by default); None when the run has none."""
    choices = attention_views.checkpoint_choices(run_dir)
    default = attention_views.default_checkpoint(choices)
    if default is None:
        return None
    names = [choice.name for choice in choices]
    titles = {choice.name: choice.title for choice in choices}
    if len(choices) == 1:
        st.caption(f"Checkpoint: {titles[default.name]} (the only one kept).")
        return default.name
    wanted = ui.query_value("checkpoint")
    _init("att-checkpoint", wanted if wanted in titles else default.name)
    if st.session_state["att-checkpoint"] not in titles:  # another run's checkpoint
        st.session_state["att-checkpoint"] = default.name
    name = st.select_slider("Checkpoint", options=names, format_func=titles.__getitem__,
                            key="att-checkpoint",
                            help="The same input at earlier checkpoints: how attention formed "
                                 "during training (best, last and the recent history are kept).")
    ui.set_query(checkpoint=name if name != default.name else None)
    return name


def _show_attention(views: attention_views.AttentionSet, run) -> None:
    kinds = views.kinds
    if not kinds:
        st.info(
            f"This run's model ({run.kind}) has no attention: a plain encoder-decoder passes "
            "the source to the decoder as one vector. Pick a bahdanau, luong or transformer run "
            "to see attention maps.", icon=":material/visibility_off:")
        return
    wanted = ui.query_value("kind")
    _init("att-kind", wanted if wanted in kinds else kinds[0])
    if st.session_state["att-kind"] not in kinds:
        st.session_state["att-kind"] = kinds[0]
    kind = st.selectbox("Attention", kinds, format_func=attention_views.KIND_TITLES.__getitem__,
                        key="att-kind")
    ui.set_query(kind=kind)
    if not views.multi_head:
        st.plotly_chart(heatmaps.attention_heatmap(views.map(kind)), key="att-map")
        return
    layers, heads = views.num_layers(kind), views.num_heads(kind)
    left, right = st.columns(2)
    with left:
        _init("att-layer", ui.query_int("layer", layers - 1, 0, layers - 1))
        st.session_state["att-layer"] = min(max(int(st.session_state["att-layer"]), 0), layers - 1)
        layer = st.selectbox("Layer", range(layers), key="att-layer",
                             format_func=lambda i: f"layer {i}")
    with right:
        head_options = [HEAD_MEAN, *range(heads)]
        _init("att-head", ui.query_int("head", HEAD_MEAN, HEAD_MEAN, heads - 1))
        if st.session_state["att-head"] not in head_options:
            st.session_state["att-head"] = HEAD_MEAN
        head = st.selectbox("Head", head_options, key="att-head",
                            format_func=lambda h: "mean of heads" if h == HEAD_MEAN else f"head {h}")
    ui.set_query(layer=layer, head=head)
    chosen = views.map(kind, layer, None if head == HEAD_MEAN else head)
    st.plotly_chart(heatmaps.attention_heatmap(chosen), key="att-map")
    st.subheader(f"All {heads} heads of layer {layer} and their mean")
    st.plotly_chart(heatmaps.head_grid(views.head_maps(kind, layer)), key="att-grid")


def _choose_run(runs):
    chosen = ui.pick_runs(runs, key="run", multiple=False, label_text="Run")
    return next(r for r in runs if r.id == chosen[0]) if chosen else None


def _show_views(views: attention_views.AttentionSet, run) -> None:
    st.text(f"Input:  {ui.label(views.source, 300)}")
    what = "Reference" if views.mode == "teacher_forced" else "Output"
    st.text(f"{what}: {ui.label(views.output, 300)}")
    _show_attention(views, run)


def main() -> None:
    st.title("Attention")
    st.write(
        "Where a model looks while writing each output token: rows are output tokens, columns the "
        "tokens they attend to; hover a cell for its weight. The view is in the page's URL: copy "
        "it to show a teammate the same map."
    )
    no_runs = ("No trained runs yet: attention maps need a run with a checkpoint. Train one, "
               "for example `python -m textgen train --corpus sample:dates --model bahdanau`.")
    with ui.user_errors(), ui.page_runs(no_runs, trained_only=True) as (store, runs):
        run = _choose_run(runs) if runs else None
        picked = _choose_input(store, run.id) if run else None
        reference = _choose_reference(picked[1]) if picked else None
        checkpoint = _choose_checkpoint(store.run_dir(run.id)) if reference is not None else None
        if picked and reference is not None and checkpoint:
            _show_views(_attention(str(store.home), run.id, checkpoint, picked[0], reference), run)


main()
