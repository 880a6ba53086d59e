"""FusedAdam against Keras's own Adam: the same update, step by step."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_multvae.model.optimizers import FusedAdam


def run(cls, w0, grads, **kwargs):
    variable = keras.Variable(w0)
    optimizer = cls(learning_rate=1e-2, epsilon=1e-8, **kwargs)
    optimizer.build([variable])

    @tf.function
    def step(g):
        optimizer.apply([g], [variable])

    for g in grads:
        step(tf.constant(g))
    return variable.numpy(), int(optimizer.iterations.numpy())


@pytest.mark.parametrize("amsgrad", [False, True])
def test_fused_adam_equals_keras_adam(amsgrad):
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(40, 7)).astype(np.float32)
    grads = [rng.normal(size=(40, 7)).astype(np.float32) for _ in range(6)]
    want, n_want = run(keras.optimizers.Adam, w0, grads, amsgrad=amsgrad)
    got, n_got = run(FusedAdam, w0, grads, amsgrad=amsgrad)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert n_got == n_want == 6


def test_fused_adam_matches_the_closed_form():
    """Two steps by hand: m, v, bias-corrected lr_t, epsilon-hat."""
    w0 = np.array([[1.0, -2.0]], np.float32)
    g = np.array([[0.5, -1.0]], np.float32)
    got, _ = run(FusedAdam, w0, [g, g])
    m = v = 0.0
    w = w0.astype(np.float64)
    for t in (1, 2):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        lr_t = 1e-2 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        w = w - lr_t * m / (np.sqrt(v) + 1e-8)
    np.testing.assert_allclose(got, w, rtol=1e-6)


def test_fused_adam_round_trips_through_keras_saving():
    config = keras.optimizers.serialize(FusedAdam(learning_rate=3e-4))
    again = keras.optimizers.deserialize(config)
    assert isinstance(again, FusedAdam)
    assert float(again.learning_rate) == pytest.approx(3e-4)
