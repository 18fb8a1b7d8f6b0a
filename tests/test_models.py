"""The model families honour one interface: shapes, masking, step = teacher forcing, training,
persistence, size estimates and config validation. Tiny configs: the file runs in one to two
minutes on two shared cores (most of it tracing `fit` and the decode loops)."""

from __future__ import annotations

import functools
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import ROOT

from textgen.core.errors import ConfigError, StoreError
from textgen.models import (
    MODEL_KINDS,
    PRESET_NAMES,
    ModelConfig,
    build_model,
    flops_per_token,
    load_model_dir,
    parameter_count,
    preset_config,
    save_model,
)
from textgen.models.losses import MaskedCrossEntropy, MaskedPerplexity, MaskedTokenAccuracy, masked_cross_entropy

BOS, EOS = 2, 3
TINY = dict(source_vocab_size=23, target_vocab_size=29, embedding_dim=16, hidden_units=24,
            num_layers=1, dropout=0.0, num_heads=2, model_dim=16, feed_forward_dim=32,
            max_source_length=12, max_target_length=10)

# Every family, plus variants that switch on the options (bidirectional, LSTM cells, dot score,
# post-norm, learned positions, tied embeddings, two layers).
VARIANTS = {
    "gru": dict(kind="gru"),
    "gru-bi-tied-2l": dict(kind="gru", bidirectional=True, tie_embeddings=True, num_layers=2),
    "lstm-bi-2l": dict(kind="lstm", bidirectional=True, num_layers=2),
    "bahdanau": dict(kind="bahdanau"),
    "bahdanau-lstm-bi-tied-2l": dict(kind="bahdanau", rnn_cell="lstm", bidirectional=True,
                                     tie_embeddings=True, num_layers=2),
    "luong-general": dict(kind="luong"),
    "luong-dot-lstm-bi": dict(kind="luong", luong_score="dot", rnn_cell="lstm", bidirectional=True),
    "transformer": dict(kind="transformer"),
    "transformer-postnorm-learned-tied-2l": dict(kind="transformer", norm_first=False,
                                                 positional="learned", tie_embeddings=True,
                                                 num_layers=2),
    "transformer-lm": dict(kind="transformer-lm", num_layers=2),
    "lstm-lm-tied-2l": dict(kind="lstm-lm", tie_embeddings=True, num_layers=2),
}
ATTENTION_VARIANTS = [name for name, v in VARIANTS.items()
                      if v["kind"] in ("bahdanau", "luong", "transformer")]


def tiny_config(variant: str, **overrides) -> ModelConfig:
    return ModelConfig(**{**TINY, **VARIANTS[variant], **overrides})


@functools.lru_cache(maxsize=None)
def tiny_model(variant: str):
    keras.utils.set_random_seed(1)
    return build_model(tiny_config(variant))


def sample_batch(config: ModelConfig) -> dict[str, np.ndarray]:
    """Three examples of different lengths, padded with 0 at the end."""
    rng = np.random.default_rng(7)
    source = rng.integers(4, config.source_vocab_size, (3, 7)).astype("int32")
    source[1, 3:] = 0
    source[2, 5:] = 0
    target = rng.integers(4, config.target_vocab_size, (3, 6)).astype("int32")
    target[:, 0] = BOS
    target[1, 4:] = 0
    if config.is_decoder_only:
        source = np.zeros((3, 0), "int32")
    return {"source_ids": source, "target_input_ids": target}


ATTENTION_KEYS = {"gru": (), "lstm": (), "lstm-lm": (), "bahdanau": ("cross_attention",),
                  "luong": ("cross_attention",), "transformer": ("cross_attention", "self_attention"),
                  "transformer-lm": ("self_attention",)}


@functools.lru_cache(maxsize=None)
def decoded(variant: str) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
    """The sample batch's target fed token by token through decode_step in a symbolic loop
    inside tf.function (as a decoder runs it): logits (batch, target_len, vocab) and each
    step's attention."""
    model, config = tiny_model(variant), tiny_config(variant)
    inputs, keys = sample_batch(config), ATTENTION_KEYS[config.kind]

    @tf.function
    def run(source_ids, target_ids):
        state = model.encode(source_ids)
        num_steps = tf.shape(target_ids)[1]
        logits = tf.TensorArray(tf.float32, size=num_steps)
        attention = {key: tf.TensorArray(tf.float32, size=num_steps) for key in keys}
        for t in tf.range(num_steps):  # a tf.while_loop: the state must keep its shapes
            step_logits, state, step_attention = model.decode_step(target_ids[:, t], state)
            logits = logits.write(t, step_logits)
            attention = {key: attention[key].write(t, step_attention[key]) for key in keys}
        return logits.stack(), {key: array.stack() for key, array in attention.items()}

    logits, attention = run(tf.constant(inputs["source_ids"]),
                            tf.constant(inputs["target_input_ids"]))
    steps = [{key: attention[key][t].numpy() for key in keys} for t in range(logits.shape[0])]
    return np.transpose(logits.numpy(), (1, 0, 2)), steps  # (batch, target_len, vocab)


def compile_for_training(model, loss=masked_cross_entropy, metrics=(), learning_rate=1e-2):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=list(metrics))
    # Adam's slots created now, not inside fit's first trace, spare fit a second trace.
    model.optimizer.build(model.trainable_variables)


# ---------------------------------------------------------------- shapes and the interface


@pytest.mark.parametrize("variant", VARIANTS)
def test_call_encode_and_decode_step_have_the_documented_shapes(variant):
    model, config = tiny_model(variant), tiny_config(variant)
    inputs = sample_batch(config)
    batch, target_len = inputs["target_input_ids"].shape
    source_len = inputs["source_ids"].shape[1]
    vocab, layers, heads = config.target_vocab_size, config.num_layers, config.num_heads

    logits = model(inputs)
    assert logits.shape == (batch, target_len, vocab) and logits.dtype == tf.float32

    state = model.encode(inputs["source_ids"])
    assert all(t.shape[0] == batch for t in tf.nest.flatten(state))
    step_logits, new_state, attention = model.decode_step(tf.fill([batch], BOS), state)
    assert step_logits.shape == (batch, vocab)
    # Fixed shapes: the new state can feed the next step of the same tf.function trace.
    assert tf.nest.map_structure(lambda t: t.shape, new_state) == \
        tf.nest.map_structure(lambda t: t.shape, state)

    _, full_attention = model.call_with_attention(inputs)
    kind = config.kind
    if kind in ("gru", "lstm", "lstm-lm"):
        assert attention == {} and full_attention == {}
    elif kind in ("bahdanau", "luong"):
        assert {k: v.shape for k, v in attention.items()} == {"cross_attention": (batch, source_len)}
        assert full_attention["cross_attention"].shape == (batch, target_len, source_len)
    else:
        expected = {"self_attention": (batch, layers, heads, config.max_target_length)}
        full = {"self_attention": (batch, layers, heads, target_len, target_len)}
        if kind == "transformer":
            expected["cross_attention"] = (batch, layers, heads, source_len)
            full["cross_attention"] = (batch, layers, heads, target_len, source_len)
            full["encoder_self_attention"] = (batch, layers, heads, source_len, source_len)
        assert {k: tuple(v.shape) for k, v in attention.items()} == expected
        assert {k: tuple(v.shape) for k, v in full_attention.items()} == full


@pytest.mark.parametrize("variant", VARIANTS)
def test_appended_padding_changes_no_real_output(variant):
    model, config = tiny_model(variant), tiny_config(variant)
    inputs = sample_batch(config)
    logits = model(inputs).numpy()
    real = inputs["target_input_ids"] != 0

    padded = {name: np.pad(ids, ((0, 0), (0, 0 if ids.shape[1] == 0 else 3)))
              for name, ids in inputs.items()}
    padded_logits = model(padded).numpy()[:, :logits.shape[1]]
    np.testing.assert_allclose(padded_logits[real], logits[real], atol=1e-5)

    # The short example alone, without any padding, gives what it gave inside the padded batch.
    alone = {"source_ids": inputs["source_ids"][1:2, :3 if not config.is_decoder_only else 0],
             "target_input_ids": inputs["target_input_ids"][1:2, :4]}
    np.testing.assert_allclose(model(alone).numpy()[0], logits[1, :4], atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_step_by_step_decoding_equals_teacher_forcing(variant):
    model, config = tiny_model(variant), tiny_config(variant)
    inputs = sample_batch(config)
    teacher_forced = model(inputs).numpy()
    stepped, _ = decoded(variant)
    real = inputs["target_input_ids"] != 0
    np.testing.assert_allclose(stepped[real], teacher_forced[real], atol=1e-5)


@pytest.mark.parametrize("variant", ["gru-bi-tied-2l", "bahdanau", "luong-general",
                                     "transformer", "transformer-lm", "lstm-lm-tied-2l"])
def test_state_reordered_on_its_batch_axis_follows_the_rows(variant):
    """What beam search does: gather the state by row, then keep decoding."""
    model, config = tiny_model(variant), tiny_config(variant)
    inputs = sample_batch(config)
    inputs["target_input_ids"][:, 3:] = 7  # no padding: every row decodes all steps
    teacher_forced = model(inputs).numpy()
    order = tf.constant([2, 0, 1])
    state = model.encode(inputs["source_ids"])
    for t in range(2):
        _, state, _ = model.decode_step(tf.constant(inputs["target_input_ids"][:, t]), state)
    state = tf.nest.map_structure(lambda tensor: tf.gather(tensor, order), state)
    reordered_tokens = tf.gather(inputs["target_input_ids"][:, 2], order)
    logits, _, _ = model.decode_step(reordered_tokens, state)
    np.testing.assert_allclose(logits.numpy(), teacher_forced[order.numpy(), 2], atol=1e-5)


@pytest.mark.parametrize("variant", ["transformer", "transformer-lm"])
def test_the_cache_grows_with_the_decode_and_survives_overrunning(variant, monkeypatch):
    """encode(max_decode_length=n): a language model's cache holds n positions (a prompt is read
    into it before the search); an encoder-decoder's starts at min(n, INITIAL_CACHE_LENGTH)
    slots and doubles when a step reaches its end. Either way the logits are teacher forcing's,
    each step's self attention is max_target_length wide (zeros past the cache), and a row
    stepped past the context (a stopped row in a batch still running) does not fail."""
    from textgen.models import transformer

    monkeypatch.setattr(transformer, "INITIAL_CACHE_LENGTH", 2)
    model, config = tiny_model(variant), tiny_config(variant)
    inputs = sample_batch(config)
    teacher_forced = model(inputs).numpy()
    steps = inputs["target_input_ids"].shape[1]
    assert steps < config.max_target_length
    state = model.encode(inputs["source_ids"], max_decode_length=steps)
    lengths = [state["self_keys_0"].shape[2]]
    real = inputs["target_input_ids"] != 0
    for t in range(steps):
        logits, state, attention = model.decode_step(tf.constant(inputs["target_input_ids"][:, t]), state)
        np.testing.assert_allclose(logits.numpy()[real[:, t]], teacher_forced[real[:, t], t], atol=1e-5)
        weights = attention["self_attention"].numpy()  # (batch, layers, heads, max_target_length)
        assert weights.shape[-1] == config.max_target_length
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
        assert not weights[..., t + 1:].any()
        lengths.append(state["self_keys_0"].shape[2])
    if config.is_decoder_only:
        assert lengths == [steps] * (steps + 1)
    else:  # 2 slots, then 4 when position 2 is written, then 8 (6 steps)
        assert lengths == [2, 2, 2, 4, 4, 8, 8]
    for _ in range(config.max_target_length - steps + 2):  # past the context: the last slot
        logits, state, _ = model.decode_step(tf.constant(inputs["target_input_ids"][:, -1]), state)
        assert np.isfinite(logits.numpy()).all()
    assert state["self_keys_0"].shape[2] == config.max_target_length
    # Asking for more than the model's context gives the context.
    longest = model.encode(inputs["source_ids"], max_decode_length=10_000)["self_keys_0"].shape[2]
    assert longest == (config.max_target_length if config.is_decoder_only else 2)


# ---------------------------------------------------------------- attention


def _check_distribution(weights: np.ndarray, allowed: np.ndarray) -> None:
    """Weights sum to 1 over the last axis and are exactly 0 where `allowed` is False."""
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
    assert np.all(weights[~np.broadcast_to(allowed, weights.shape)] == 0.0)


@pytest.mark.parametrize("variant", ATTENTION_VARIANTS)
def test_source_attention_sums_to_one_and_is_zero_on_padding(variant):
    model, config = tiny_model(variant), tiny_config(variant)
    inputs = sample_batch(config)
    real_source = inputs["source_ids"] != 0  # (batch, source_len)
    _, full = model.call_with_attention(inputs)
    _, steps = decoded(variant)
    if config.kind == "transformer":
        _check_distribution(full["cross_attention"].numpy(), real_source[:, None, None, None, :])
        _check_distribution(full["encoder_self_attention"].numpy(), real_source[:, None, None, None, :])
        for step in steps:
            _check_distribution(step["cross_attention"], real_source[:, None, None, :])
    else:
        _check_distribution(full["cross_attention"].numpy(), real_source[:, None, :])
        for step in steps:
            _check_distribution(step["cross_attention"], real_source)


@pytest.mark.parametrize("variant", ["transformer", "transformer-lm"])
def test_self_attention_covers_the_prefix_only(variant):
    model, config = tiny_model(variant), tiny_config(variant)
    inputs = sample_batch(config)
    _, full = model.call_with_attention(inputs)
    target_len = inputs["target_input_ids"].shape[1]
    causal = np.tril(np.ones((target_len, target_len), bool))
    _check_distribution(full["self_attention"].numpy(), causal)
    _, steps = decoded(variant)
    for t, step in enumerate(steps):
        prefix = np.arange(config.max_target_length) <= t
        _check_distribution(step["self_attention"], prefix)


# ---------------------------------------------------------------- training


def reversal_task(decoder_only: bool) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """16 pairs: digit sequences (ids 4-13) and their reversal. A language model reads
    "<s> source 14 target" and is scored on the target only (prompt labels are padding)."""
    rng = np.random.default_rng(3)
    sources = [list(rng.integers(4, 14, rng.integers(3, 6))) for _ in range(16)]
    targets = [s[::-1] for s in sources]
    if decoder_only:
        sequences = [s + [14] + t for s, t in zip(sources, targets)]
        width = max(map(len, sequences)) + 1
        inputs = np.zeros((16, width), "int32")
        labels = np.zeros((16, width), "int32")
        for i, (s, sequence) in enumerate(zip(sources, sequences)):
            inputs[i, :len(sequence) + 1] = [BOS] + sequence
            labels[i, len(s) + 1:len(sequence) + 1] = (sequence + [EOS])[len(s) + 1:]
        return {"source_ids": np.zeros((16, 0), "int32"), "target_input_ids": inputs}, labels
    width = max(map(len, sources))
    source = np.zeros((16, width), "int32")
    target_input = np.zeros((16, width + 1), "int32")
    labels = np.zeros((16, width + 1), "int32")
    for i, (s, t) in enumerate(zip(sources, targets)):
        source[i, :len(s)] = s
        target_input[i, :len(t) + 1] = [BOS] + t
        labels[i, :len(t) + 1] = t + [EOS]
    return {"source_ids": source, "target_input_ids": target_input}, labels


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_each_family_overfits_sixteen_pairs_in_seconds(kind):
    keras.utils.set_random_seed(0)
    config = ModelConfig(kind=kind, source_vocab_size=16, target_vocab_size=16, embedding_dim=32,
                         hidden_units=64, num_layers=1, dropout=0.0, num_heads=2, model_dim=32,
                         feed_forward_dim=64, max_source_length=8, max_target_length=16)
    model = build_model(config)
    inputs, labels = reversal_task(config.is_decoder_only)
    dataset = tf.data.Dataset.from_tensors((inputs, labels)).repeat()
    compile_for_training(model, metrics=[MaskedTokenAccuracy(), MaskedPerplexity()])
    started = time.perf_counter()
    history = model.fit(dataset, steps_per_epoch=100, epochs=2, verbose=0, shuffle=False)
    elapsed = time.perf_counter() - started
    logits = model(inputs)
    loss = float(masked_cross_entropy(labels, logits))
    accuracy = MaskedTokenAccuracy()
    accuracy.update_state(labels, logits)
    assert loss < 0.05 or float(accuracy.result()) == 1.0, (loss, float(accuracy.result()))
    assert history.history["perplexity"][-1] < 1.2
    assert elapsed < 60, elapsed


@pytest.mark.parametrize("variant", ["bahdanau", "transformer"])
def test_training_with_dropout_and_label_smoothing_runs(variant):
    """Dropout inside Bahdanau's tf.scan (between two layers) and in every Transformer sublayer."""
    model = build_model(tiny_config(variant, dropout=0.3, num_layers=2))
    inputs = sample_batch(model.config)
    labels = np.roll(inputs["target_input_ids"], -1, axis=1)
    compile_for_training(model, loss=MaskedCrossEntropy(label_smoothing=0.1))
    history = model.fit(inputs, labels, batch_size=3, epochs=2, verbose=0, shuffle=False)
    assert np.all(np.isfinite(history.history["loss"]))
    # Dropout is off outside training: two inference calls agree.
    np.testing.assert_array_equal(model(inputs).numpy(), model(inputs).numpy())


@pytest.mark.parametrize("variant", ["transformer", "transformer-lm"])
def test_activation_dropout_drops_the_feed_forward_hidden_units_only_when_set(variant):
    """With `dropout` 0, a training-mode forward pass is random only through
    `activation_dropout` (the feed-forward network's hidden units), which is off by default."""
    inputs = sample_batch(tiny_config(variant))
    for rate, random in ((0.0, False), (0.5, True)):
        keras.utils.set_random_seed(3)
        model = build_model(tiny_config(variant, activation_dropout=rate))
        first = model(inputs, training=True).numpy()
        second = model(inputs, training=True).numpy()
        assert (not np.array_equal(first, second)) == random, rate
        np.testing.assert_array_equal(model(inputs).numpy(), model(inputs).numpy())
    assert ModelConfig().activation_dropout == 0.0


def test_a_saved_config_from_before_activation_dropout_keeps_its_hidden_dropout():
    """Configs saved before the field existed dropped the hidden units at `dropout`: loading one
    keeps that (a resumed run trains as it started); a config saved now round-trips as is."""
    old = tiny_config("transformer", dropout=0.3).to_dict()
    del old["activation_dropout"]
    assert ModelConfig.from_dict(old).activation_dropout == 0.3
    current = tiny_config("transformer", dropout=0.3)
    assert current.activation_dropout == 0.0
    assert ModelConfig.from_json(current.to_json()) == current
    with pytest.raises(ConfigError, match="activation_dropout must be between 0.0 and 0.9"):
        ModelConfig(activation_dropout=1.0)


# ---------------------------------------------------------------- losses and metrics


def test_masked_loss_and_accuracy_ignore_padding():
    rng = np.random.default_rng(0)
    labels = np.array([[5, 6, 3, 0], [4, 3, 0, 0]], "int32")
    logits = rng.normal(size=(2, 4, 7)).astype("float32")
    loss = float(masked_cross_entropy(labels, logits))

    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    real = labels != 0
    expected = -np.mean(np.take_along_axis(log_probs, labels[..., None], -1)[..., 0][real])
    assert loss == pytest.approx(expected, abs=1e-5)

    changed = logits.copy()
    changed[~real] = rng.normal(size=(int((~real).sum()), 7)) * 100
    assert float(masked_cross_entropy(labels, changed)) == pytest.approx(loss, abs=1e-6)
    assert float(masked_cross_entropy(labels, logits, label_smoothing=0.1)) != pytest.approx(loss)
    assert float(MaskedCrossEntropy(0.1)(labels, logits)) == pytest.approx(
        float(masked_cross_entropy(labels, logits, 0.1)), abs=1e-6)

    # Right on every real token, wrong on every padding position: accuracy 1.
    perfect = np.full((2, 4, 7), -5.0, "float32")
    np.put_along_axis(perfect, labels[..., None], 5.0, axis=-1)
    perfect[~real] = 0.0
    perfect[~real, 1] = 9.0
    accuracy = MaskedTokenAccuracy()
    accuracy.update_state(labels, perfect)
    assert float(accuracy.result()) == 1.0

    perplexity = MaskedPerplexity()
    perplexity.update_state(labels, logits)
    assert float(perplexity.result()) == pytest.approx(np.exp(loss), rel=1e-5)


def test_sparse_cross_entropy_matches_tensorflow_in_values_and_gradients():
    """Our cross-entropy takes a softmax and a gather and writes its gradient by hand; it must
    give TensorFlow's sparse op's values and gradients, also for spread-out logits, for a label
    whose probability underflows float32, and for a diverged model's NaN and inf logits."""
    from textgen.models.losses import sparse_cross_entropy

    rng = np.random.default_rng(5)
    logits = tf.constant(rng.normal(0.0, 6.0, (3, 5, 50)), tf.float32)  # probabilities down to ~1e-15
    labels = tf.constant(rng.integers(0, 50, (3, 5)), tf.int32)
    upstream = tf.constant(rng.normal(size=(3, 5)), tf.float32)  # a weighted sum, not a plain mean
    values = {}
    for name, function in (("ours", sparse_cross_entropy),
                           ("tensorflow", tf.nn.sparse_softmax_cross_entropy_with_logits)):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            per_token = function(labels, logits)
            total = tf.reduce_sum(per_token * upstream)
        values[name] = (per_token.numpy(), tape.gradient(total, logits).numpy())
    np.testing.assert_allclose(values["ours"][0], values["tensorflow"][0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(values["ours"][1], values["tensorflow"][1], atol=1e-5)
    # p(label 2) = e^-400 in the first row, under float32's range: the loss is still 400; a NaN or
    # an inf logit elsewhere in the row makes the loss non-finite, as TensorFlow's op does (a run
    # stops at a non-finite loss).
    extreme = tf.constant([[[0.0, 200.0, -200.0], [0.0, float("nan"), 1.0], [0.0, float("inf"), 1.0]]])
    extreme_labels = tf.constant([[2, 2, 2]])
    ours = sparse_cross_entropy(extreme_labels, extreme).numpy()[0]
    assert ours[0] == pytest.approx(400.0, rel=1e-6)
    assert not np.isfinite(ours[1]) and not np.isfinite(ours[2])
    np.testing.assert_array_equal(
        np.isfinite(tf.nn.sparse_softmax_cross_entropy_with_logits(extreme_labels, extreme).numpy()[0]),
        np.isfinite(ours))


# ---------------------------------------------------------------- persistence


@pytest.mark.parametrize("variant", VARIANTS)
def test_save_and_load_give_identical_outputs(variant, tmp_path):
    model, config = tiny_model(variant), tiny_config(variant)
    inputs = sample_batch(config)
    save_model(model, tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.json", "model.weights.h5"]
    loaded = load_model_dir(tmp_path / "run")
    assert loaded.config == config and type(loaded) is type(model)
    np.testing.assert_array_equal(loaded(inputs).numpy(), model(inputs).numpy())


def test_loading_a_folder_without_a_model_says_so(tmp_path):
    with pytest.raises(StoreError, match="config.json"):
        load_model_dir(tmp_path)


# ---------------------------------------------------------------- size and config


@pytest.mark.parametrize("variant", VARIANTS)
def test_parameter_count_matches_the_built_model(variant):
    assert parameter_count(tiny_config(variant)) == tiny_model(variant).count_params()


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_flops_per_token_are_positive_and_grow_with_width(kind):
    narrow = preset_config(kind, "small", 1000, 1000)
    wide = narrow.with_overrides({"hidden_units": 2 * narrow.hidden_units,
                                  "embedding_dim": 2 * narrow.embedding_dim,
                                  "model_dim": 2 * narrow.model_dim})
    assert 0 < flops_per_token(narrow) < flops_per_token(wide)
    # At least the output projection, counted twice (multiply and add).
    assert flops_per_token(narrow) >= 2 * 1000 * min(narrow.hidden_units, narrow.model_dim)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_every_preset_is_a_valid_config(kind):
    counts = [parameter_count(preset_config(kind, preset, 8000, 8000)) for preset in PRESET_NAMES]
    assert counts == sorted(counts) and counts[0] > 0


@pytest.mark.parametrize("field, value, message", [
    ("kind", "rnn", "kind must be one of gru, lstm"),
    ("hidden_units", 0, "hidden_units must be between 1 and"),
    ("dropout", 0.95, "dropout must be between 0.0 and 0.9"),
    ("num_layers", 2.5, "num_layers must be an integer"),
    ("target_vocab_size", 3, "target_vocab_size must be between 4 and"),
    ("positional", "rotary", "positional must be one of sinusoidal, learned"),
    ("rnn_cell", "rnn", "rnn_cell must be one of gru, lstm"),
    ("bidirectional", "yes", "bidirectional must be true or false"),
])
def test_bad_config_values_are_refused_with_the_valid_range(field, value, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**{field: value})


def test_config_cross_checks_and_round_trip():
    with pytest.raises(ConfigError, match="multiple of num_heads"):
        ModelConfig(kind="transformer", model_dim=30, num_heads=4)
    with pytest.raises(ConfigError, match="source_vocab_size"):
        ModelConfig(kind="luong", source_vocab_size=0)
    assert ModelConfig(kind="lstm-lm", source_vocab_size=0).is_decoder_only
    config = tiny_config("transformer-postnorm-learned-tied-2l")
    assert ModelConfig.from_json(config.to_json()) == config
    assert config.with_overrides({"num_layers": "3"}, from_text=True).num_layers == 3


def test_dense_gradient_has_no_intermediate_larger_than_its_operands() -> None:
    """Our Dense (one Einsum for rank-3 inputs) must differentiate as matmuls: an ellipsis
    einsum's gradient broadcast (batch, len, in, units) intermediates, 19 GB for the base
    Transformer's first training step."""
    import tensorflow as tf

    from textgen.models.layers import Dense

    layer = Dense(256, activation="relu")
    layer.build((None, 64))
    x = tf.random.normal([8, 16, 64])

    @tf.function
    def gradients(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x, layer.kernel, layer.bias])

    largest_operand = max(8 * 16 * 64, 8 * 16 * 256, 64 * 256)
    graph = gradients.get_concrete_function(x).graph
    sizes = [(op.type, t.shape.num_elements()) for op in graph.get_operations() for t in op.outputs
             if t.shape.is_fully_defined()]
    assert sizes and max(size for _, size in sizes) <= largest_operand, max(sizes, key=lambda s: s[1])
    grad_x, grad_kernel, _ = gradients(x)
    with tf.GradientTape() as tape:  # the same values as Keras' own Dense on the same weights
        tape.watch(x)
        reference = tf.nn.relu(tf.tensordot(x, layer.kernel, 1) + layer.bias)
        loss = tf.reduce_sum(reference * reference)
    expected_x, expected_kernel = tape.gradient(loss, [x, layer.kernel])
    assert float(tf.reduce_max(tf.abs(grad_kernel - expected_kernel))) < 1e-3
    assert float(tf.reduce_max(tf.abs(grad_x - expected_x))) < 1e-3


@pytest.mark.parametrize("shape", [(6, 40), (3, 7, 40)])
def test_layer_norm_matches_keras_in_values_and_gradients(shape) -> None:
    """Our LayerNorm writes its gradient by hand; it must equal Keras' LayerNormalization (which
    TensorFlow differentiates) for the input, gamma and beta, with the same weight names."""
    from textgen.models.layers import LayerNorm

    ours, theirs = LayerNorm(epsilon=1e-5, name="norm"), keras.layers.LayerNormalization(epsilon=1e-5, name="norm")
    ours.build(shape)
    theirs.build(shape)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights] == ["gamma", "beta"]
    rng = np.random.default_rng(3)
    gamma, beta = rng.normal(1.0, 0.5, shape[-1]), rng.normal(0.0, 0.5, shape[-1])
    for layer in (ours, theirs):
        layer.set_weights([gamma.astype("float32"), beta.astype("float32")])
    # An offset and a spread, so a missing centring or scaling term would show.
    x = tf.constant(rng.normal(3.0, 4.0, shape), tf.float32)
    upstream = tf.constant(rng.normal(0.0, 1.0, shape), tf.float32)

    @tf.function
    def values_and_gradients(layer, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * upstream) + tf.reduce_sum(tf.sin(y))  # a non-linear loss
        return y, tape.gradient(loss, [x, layer.gamma, layer.beta])

    y_ours, grads_ours = values_and_gradients(ours, x)
    y_theirs, grads_theirs = values_and_gradients(theirs, x)
    np.testing.assert_allclose(y_ours.numpy(), y_theirs.numpy(), atol=1e-5)
    for name, a, b in zip(("x", "gamma", "beta"), grads_ours, grads_theirs):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4, rtol=1e-4, err_msg=f"gradient of {name}")


@pytest.mark.parametrize("variant", ["lstm-bi-2l", "transformer"], ids=["lstm", "transformer"])
def test_a_batch_computed_in_parts_gives_the_same_logits_and_gradients(variant) -> None:
    """batch_parts computes a batch as independent slices; the logits and the gradients must be
    those of the whole batch, for an odd batch and for a single row (no empty slice: an LSTM
    cell refuses one)."""
    keras.utils.set_random_seed(4)
    config = tiny_config(variant, bidirectional=False, num_layers=1)  # one layer: quicker traces
    model = build_model(config)
    inputs = sample_batch(config)
    inputs = {name: np.concatenate([value, value[:2]]) for name, value in inputs.items()}  # 5 rows
    labels = np.concatenate([inputs["target_input_ids"][:, 1:], np.full((5, 1), EOS, "int32")], axis=1)

    @tf.function
    def logits_and_gradients(inputs, labels):
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)
            loss = masked_cross_entropy(labels, logits)
        return logits, tape.gradient(loss, model.trainable_variables)

    for rows, all_parts in ((5, (2, 3)), (1, (2,))):
        batch = {name: tf.constant(value[:rows]) for name, value in inputs.items()}
        model.batch_parts = 1
        expected_logits, expected_gradients = logits_and_gradients(batch, tf.constant(labels[:rows]))
        for parts in all_parts:
            model.batch_parts = parts
            logits_and_gradients = tf.function(logits_and_gradients.python_function)  # a new trace
            logits, gradients = logits_and_gradients(batch, tf.constant(labels[:rows]))
            assert logits.shape == expected_logits.shape
            np.testing.assert_allclose(logits.numpy(), expected_logits.numpy(), atol=1e-5)
            for got, expected in zip(gradients, expected_gradients):
                np.testing.assert_allclose(tf.convert_to_tensor(got).numpy(), tf.convert_to_tensor(expected).numpy(),
                                           atol=1e-5)
        logits_and_gradients = tf.function(logits_and_gradients.python_function)


def _bfloat16(values: np.ndarray) -> np.ndarray:
    """values rounded to the nearest bfloat16 (ties to even), as float64."""
    return tf.cast(tf.cast(values, tf.bfloat16), tf.float64).numpy()


def _float32_accumulation_error(got: np.ndarray, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """How far `got` is from a bfloat16 product accumulated in float32 (x @ kernel over the last
    axis, both rounded to bfloat16, the exact sum rounded once to bfloat16), in units of what
    float32 accumulation may be off: one bfloat16 unit in the last place of the result (a sum
    that float32 rounding puts on the other side of a tie) plus 2^-16 of the sum of |terms|
    (float32's own rounding over up to 256 terms). Above 1: not float32 accumulation."""
    expected = _bfloat16(np.einsum("...i,io->...o", _bfloat16(x), _bfloat16(kernel)))
    magnitude = np.einsum("...i,io->...o", np.abs(_bfloat16(x)), np.abs(_bfloat16(kernel)))
    unit = np.exp2(np.floor(np.log2(np.maximum(np.abs(expected), 1e-30))) - 7)  # 8 significant bits
    return np.abs(got - expected) / (unit + magnitude * 2.0**-16)


def _bfloat16_accumulated(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """x @ kernel with every partial sum rounded to bfloat16: what the test must tell apart."""
    total = np.zeros(x.shape[:-1] + kernel.shape[1:])
    for i in range(x.shape[-1]):
        total = _bfloat16(total + _bfloat16(x[..., i:i + 1]) * _bfloat16(kernel[i]))
    return total


def _bfloat16_projection_inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 3, 64)).astype("float32") * 3
    kernel = rng.normal(size=(64, 24)).astype("float32")
    x[0, 0] = 1.0
    x[0, 0, 0] = 256.0  # 256 + 63 x 1: a bfloat16 accumulator stays at 256
    kernel[:, 0] = 1.0
    return x, kernel


def test_a_bfloat16_projection_rounds_operands_accumulates_in_float32_and_a_decoding_step_stays_float32() -> None:
    """matmul_precision="bfloat16": over several positions a projection's result is the product of
    the bfloat16-rounded input and kernel accumulated in float32 and rounded once to bfloat16, on
    whatever CPU this runs (natively or emulated, `native_bfloat16_matmul`); one position (a
    decoding step) is multiplied in float32 exactly as before."""
    from textgen.models.layers import Dense

    x, kernel = _bfloat16_projection_inputs()
    # The inputs tell the two apart: accumulating in bfloat16 is far outside float32's error.
    assert _float32_accumulation_error(_bfloat16_accumulated(x, kernel), x, kernel).max() > 4
    layer = Dense(24, use_bias=False)
    layer.build((None, 64))
    layer.kernel.assign(kernel)
    inputs = tf.constant(x)
    full = layer(inputs).numpy()
    one_position = layer(inputs[:, :1]).numpy()
    layer.matmul_precision = "bfloat16"
    got = layer(inputs).numpy()
    assert _float32_accumulation_error(got, x, kernel).max() <= 1
    assert got[0, 0, 0] == _bfloat16(np.float64(256 + 63))
    assert np.abs(got - full).max() > 1e-3  # really rounded: float32 differs
    np.testing.assert_allclose(got, full, rtol=0.02, atol=0.1)
    np.testing.assert_array_equal(layer(inputs[:, :1]).numpy(), one_position)
    compiled = tf.function(lambda t: layer(t))(inputs).numpy()  # what a training step traces
    assert _float32_accumulation_error(compiled, x, kernel).max() <= 1


def test_rounding_to_bfloat16_on_the_bits_matches_a_cast_and_keeps_what_is_not_finite_not_finite() -> None:
    """The emulated path's rounding equals TensorFlow's float32 -> bfloat16 -> float32 cast on
    finite values (ties to even, the largest bfloat16), turns every NaN and infinity
    into NaN (never a number), and rounds its gradient the same way."""
    from textgen.models.layers import round_to_bfloat16

    # Halfway cases (subnormals are left out: TensorFlow's CPU threads flush them to zero in any
    # float op, the matmul after the rounding included).
    ties = [1 + 2.0**-8, 1 + 3 * 2.0**-8, -(1 + 2.0**-8), 2.0**100 * (1 + 2.0**-8)]
    special = np.array([0.0, -0.0, 3.3895314e38, -1e-45, 1.0, 12.34], np.float32)
    values = np.concatenate([np.array(ties, np.float32), special,
                             np.random.default_rng(0).normal(size=10_000).astype(np.float32) * 50])
    x = tf.constant(values)
    cast = tf.cast(tf.cast(x, tf.bfloat16), tf.float32).numpy()
    np.testing.assert_array_equal(round_to_bfloat16(x).numpy(), cast)
    assert round_to_bfloat16(tf.constant([1 + 2.0**-8], tf.float32)).numpy()[0] == 1.0  # to even, not up
    payloads = np.array([0x7FC00000, 0x7FFFFFFF, 0xFFFF8000, 0x7F800001, 0x7F800000, 0xFF800000],
                        np.uint32).view(np.float32)  # NaNs whose carry would overflow, then ±inf
    assert np.isnan(round_to_bfloat16(tf.constant(payloads)).numpy()).all()
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = round_to_bfloat16(x)
    upstream = tf.constant(values[::-1].copy())
    np.testing.assert_array_equal(tape.gradient(y, x, output_gradients=upstream).numpy(),
                                  tf.cast(tf.cast(upstream, tf.bfloat16), tf.float32).numpy())


def test_bfloat16_projections_accumulate_in_float32_where_tensorflows_bfloat16_kernel_does_not() -> None:
    """With oneDNN off, TensorFlow multiplies bfloat16 with its Eigen kernel, which rounds partial
    sums to bfloat16 (as on CPUs without native bfloat16): the check finds it out, and the
    projections (a Dense and a tied output projection) still accumulate in float32."""
    code = """
import numpy as np, tensorflow as tf
from textgen.models import layers
x, kernel = np.load("inputs.npy", allow_pickle=False), np.load("kernel.npy", allow_pickle=False)
raw = tf.cast(tf.einsum("bli,io->blo", tf.cast(x, tf.bfloat16), tf.cast(kernel, tf.bfloat16)), tf.float64)
dense = layers.Dense(24, use_bias=False); dense.build((None, 64)); dense.kernel.assign(kernel)
dense.matmul_precision = "bfloat16"
tied = layers.OutputProjection(24, 64, tied_embedding_dim=64); tied.build()
tied.matmul_precision = "bfloat16"
np.save("raw.npy", raw.numpy()); np.save("dense.npy", dense(tf.constant(x)).numpy())
np.save("tied.npy", tied(tf.constant(x), tf.constant(kernel.T)).numpy())
print(layers.native_bfloat16_matmul())
"""
    import os
    import subprocess
    import sys
    import tempfile

    x, kernel = _bfloat16_projection_inputs()
    with tempfile.TemporaryDirectory() as folder:
        np.save(os.path.join(folder, "inputs.npy"), x)
        np.save(os.path.join(folder, "kernel.npy"), kernel)
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2",
               "PYTHONPATH": str(ROOT)}
        result = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        raw, dense, tied = (np.load(os.path.join(folder, f"{name}.npy")) for name in ("raw", "dense", "tied"))
    assert result.stdout.split()[-1] == "False"
    assert _float32_accumulation_error(raw, x, kernel).max() > 1  # the kernel this guards against
    assert _float32_accumulation_error(dense, x, kernel).max() <= 1
    assert _float32_accumulation_error(tied, x, kernel).max() <= 1


@pytest.mark.parametrize("variant", ["transformer", "transformer-postnorm-learned-tied-2l", "bahdanau",
                                     "lstm-lm-tied-2l"])
def test_bfloat16_matmuls_give_close_logits_and_gradients_and_switch_back_exactly(variant) -> None:
    """set_matmul_precision("bfloat16") changes the teacher-forced pass a little (logits and
    gradients close to float32's, not equal), leaves decoding exactly float32, and switching
    back gives float32's logits bit for bit."""
    keras.utils.set_random_seed(5)
    config = tiny_config(variant)
    model = build_model(config)
    inputs = {name: tf.constant(value) for name, value in sample_batch(config).items()}
    labels = tf.concat([inputs["target_input_ids"][:, 1:], tf.fill([3, 1], EOS)], axis=1)

    def logits_and_gradients():
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)
            loss = masked_cross_entropy(labels, logits)
        return logits.numpy(), [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, model.trainable_variables)]

    def first_two_decoding_steps():
        state = model.encode(inputs["source_ids"])
        first, state, _ = model.decode_step(inputs["target_input_ids"][:, 0], state)
        second, _, _ = model.decode_step(inputs["target_input_ids"][:, 1], state)
        return np.concatenate([first.numpy(), second.numpy()])

    logits, gradients = logits_and_gradients()
    steps = first_two_decoding_steps()
    model.set_matmul_precision("bfloat16")
    bf_logits, bf_gradients = logits_and_gradients()
    np.testing.assert_array_equal(first_two_decoding_steps(), steps)  # decoding stays float32
    assert not np.array_equal(bf_logits, logits)
    np.testing.assert_allclose(bf_logits, logits, atol=0.05)
    for got, expected in zip(bf_gradients, gradients):
        np.testing.assert_allclose(got, expected, atol=0.02 + 0.05 * np.abs(expected).max())
    model.set_matmul_precision("float32")
    again, _ = logits_and_gradients()
    np.testing.assert_array_equal(again, logits)
    with pytest.raises(ConfigError, match="matmul_precision must be one of float32, bfloat16; got 'float16'"):
        model.set_matmul_precision("float16")
