"""The fused Adam/AdamW against Keras' own: same trajectory, same slot variables."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from textgen.training.optimizers import FusedAdam, FusedAdamW
from textgen.training.schedules import WarmupCosine


def _model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(50, 8)(inputs)  # sparse (IndexedSlices) gradients
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(5)(x))


def _train(optimizer: keras.optimizers.Optimizer, steps: int = 12) -> tuple[list[np.ndarray], list[np.ndarray]]:
    model = _model(seed=3)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 50, size=(steps * 8, 6)).astype(np.int32)
    y = rng.integers(0, 5, size=(steps * 8,)).astype(np.int32)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return ([w.numpy() for w in model.weights],
            [v.numpy() for v in optimizer.variables])


@pytest.mark.parametrize("fused, reference, settings, reference_settings", [
    (FusedAdamW, keras.optimizers.AdamW, dict(weight_decay=0.1, global_clipnorm=1.0), {}),
    # No clipping: the embedding's gradient reaches the update as IndexedSlices. Adam's v is the
    # square of the summed gradient, as for the dense gradient; Keras squares each duplicate
    # row's slice before summing them, so its reference gets dense gradients (a clip that never
    # clips densifies them).
    (FusedAdam, keras.optimizers.Adam, dict(beta_1=0.8, epsilon=1e-6), dict(global_clipnorm=1e9)),
])
def test_fused_update_follows_keras_step_for_step_with_the_same_state(fused, reference, settings,
                                                                      reference_settings) -> None:
    schedule = WarmupCosine(3e-2, warmup_steps=3, total_steps=12)
    weights, state = _train(fused(learning_rate=schedule, **settings))
    expected_weights, expected_state = _train(reference(learning_rate=schedule, **settings, **reference_settings))
    assert len(state) == len(expected_state)  # the same slots, in the same order: checkpoints interchange
    for got, want in zip(weights + state, expected_weights + expected_state):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    assert not np.allclose(weights[0], _model(seed=3).weights[0].numpy())  # it did train


def test_amsgrad_and_several_replicas_fall_back_to_keras() -> None:
    weights, _ = _train(FusedAdam(learning_rate=1e-2, amsgrad=True))
    expected, _ = _train(keras.optimizers.Adam(learning_rate=1e-2, amsgrad=True))  # sparse gradients both
    for got, want in zip(weights, expected):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    assert tf.distribute.get_strategy().num_replicas_in_sync == 1


def test_the_fused_kernel_is_what_runs() -> None:
    variable = keras.Variable(np.ones((3,), np.float32))
    optimizer = FusedAdamW(learning_rate=0.1)
    optimizer.build([variable])
    step = tf.function(lambda gradient: optimizer.apply([gradient], [variable]))
    graph = step.get_concrete_function(tf.TensorSpec([3], tf.float32)).graph.as_graph_def()
    op_types = {node.op for node in graph.node} | {
        node.op for function in graph.library.function for node in function.node_def}
    assert "ResourceApplyAdam" in op_types
    step(tf.constant([1.0, -1.0, 0.0]))
    # decay: 1 - 0.004 * 0.1; then Adam's first step moves each weight by lr against its gradient's sign
    np.testing.assert_allclose(variable.numpy(), [0.8996, 1.0996, 0.9996], rtol=1e-5)


def test_build_optimizer_decays_matrices_only_and_uses_the_configured_betas() -> None:
    from textgen.training.config import TrainConfig
    from textgen.training.trainer import build_optimizer

    model = _model(seed=5)
    train = TrainConfig(optimizer="adamw", weight_decay=0.5, learning_rate=0.1, schedule="constant",
                        clip_norm=0.0, beta_1=0.8, beta_2=0.99)
    optimizer = build_optimizer(train, total_steps=10, variables=model.trainable_variables)
    assert (float(optimizer.beta_1), float(optimizer.beta_2)) == (0.8, 0.99)
    for variable in model.trainable_variables:  # nonzero biases, so a decay would show
        variable.assign(tf.ones_like(variable))
    before = [v.numpy() for v in model.trainable_variables]
    # Zero gradients: Adam's own step is 0, so what moves is the decoupled decay alone.
    optimizer.apply_gradients([(tf.zeros_like(v), v) for v in model.trainable_variables])
    for variable, old in zip(model.trainable_variables, before):
        if len(variable.shape) >= 2:  # kernels and the embedding: θ ← θ(1 − lr·wd)
            np.testing.assert_allclose(variable.numpy(), old * (1 - 0.1 * 0.5), rtol=1e-6, err_msg=variable.path)
        else:  # biases
            np.testing.assert_array_equal(variable.numpy(), old, err_msg=variable.path)
