"""Adam through TensorFlow's fused kernel.

Keras 3's Adam updates a variable in about six separate passes over it
(momentum, velocity, the step, each a full read and write). At ML-20M
shape two 20,108 × 600 matrices and their moments are touched every step,
and those passes cost about a third of the step here. ``FusedAdam`` does
the same update in one ``ResourceApplyAdam`` kernel, the op behind the
authors' TF1 ``tf.train.AdamOptimizer``:

    lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    m = beta_1 m + (1 - beta_1) g;  v = beta_2 v + (1 - beta_2) g^2
    w = w - lr_t m / (sqrt(v) + epsilon)

which is Keras's Adam exactly (tests/test_optimizers.py). It falls back to
Keras's own update for AMSGrad, sparse gradients and inside replicas of a
distribution strategy.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def _handle(variable):
    """The resource handle of a tf.Variable or of a Keras variable."""
    if isinstance(variable, tf.Variable):
        return variable.handle
    return variable.value.handle


@keras.saving.register_keras_serializable(package="tf_multvae")
class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam, one fused kernel per variable update."""

    def update_step(self, gradient, variable, learning_rate):
        if (
            self.amsgrad
            or isinstance(gradient, tf.IndexedSlices)
            or tf.distribute.in_cross_replica_context()
            and tf.distribute.get_strategy().num_replicas_in_sync > 1
        ):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        m = self._momentums[index]
        v = self._velocities[index]
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(m),
            v=_handle(v),
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
        )
