"""Adam and AdamW whose per-variable update is TensorFlow's fused `ResourceApplyAdam` kernel.

Keras 3 writes Adam's update as about twenty small ops per variable (powers, the bias
correction, two moment updates, the division), each a separate kernel launch and, while the
train step is traced, a separate Python call. With a few dozen weight tensors that is hundreds of
ops per step, a cost of its own on a small model. `ResourceApplyAdam` does the same update in
one kernel:

    m ← m + (g − m)(1 − β₁),  v ← v + (g² − v)(1 − β₂),
    θ ← θ − lr · √(1 − β₂ᵗ) / (1 − β₁ᵗ) · m / (√v + ε)

which is Keras' formula term for term (`keras.optimizers.Adam.update_step`), so the classes
below are drop-in: same constructor, same slot variables (a checkpoint's optimizer state loads
into either), same results up to float rounding (tested). One difference, for an embedding's
sparse gradient when nothing clips it (clipping makes gradients dense): the kernel squares the
summed gradient of a row that occurs twice in a batch, which is Adam's definition and what a
dense gradient gives, where Keras squares each occurrence's slice and sums. AdamW's decoupled weight decay is
applied by the Keras base class before the update, unchanged. Cases the kernel does not cover
(AMSGrad, variables that are not plain float variables, several replicas under a distribution
strategy) take Keras' own update.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def _handle(variable):
    """The resource handle of a Keras or TensorFlow variable, or None."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return getattr(variable, "handle", None)


class _FusedAdamUpdate:
    """Mixin for keras.optimizers.Adam and its subclasses."""

    def update_step(self, gradient, variable, learning_rate):
        handles = None
        if not self.amsgrad and tf.distribute.get_strategy().num_replicas_in_sync == 1:
            index = self._get_variable_index(variable)
            handles = [_handle(v) for v in (variable, self._momentums[index], self._velocities[index])]
        if handles is None or any(handle is None for handle in handles):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        local_step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=handles[0], m=handles[1], v=handles[2],
            beta1_power=tf.pow(beta_1, local_step), beta2_power=tf.pow(beta_2, local_step),
            lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(tf.convert_to_tensor(gradient), dtype),  # sparse (embedding) gradients densified, as Keras does
            use_locking=False)


class FusedAdam(_FusedAdamUpdate, keras.optimizers.Adam):
    """keras.optimizers.Adam with the fused update (see the module docstring)."""


class FusedAdamW(_FusedAdamUpdate, keras.optimizers.AdamW):
    """keras.optimizers.AdamW with the fused update (see the module docstring)."""
