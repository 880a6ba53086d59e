"""The KL beta schedule of Section 2.2.2."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tf_multvae.model.annealing import kl_beta


@pytest.mark.parametrize(
    "step, expected",
    [
        (0, 0.0),  # start of training
        (10_000, 0.05),  # on the ramp: 10,000 / 200,000
        (40_000, 0.2),  # reaches the cap
        (150_000, 0.2),  # past the cap: clipped
        (400_000, 0.2),  # past total_anneal_steps
    ],
)
def test_paper_schedule(step, expected):
    beta = kl_beta(step, anneal_cap=0.2, total_anneal_steps=200_000)
    assert beta.dtype == tf.float32 and beta.shape == ()
    np.testing.assert_allclose(beta, expected, rtol=1e-6)


def test_zero_total_steps_means_cap_from_the_start():
    for step in (0, 1, 10**6):
        np.testing.assert_allclose(kl_beta(step, 0.2, 0), 0.2)


def test_int_tensor_step_inside_tf_function():
    step = tf.Variable(0, dtype=tf.int64)
    beta = tf.function(lambda: kl_beta(step, 1.0, 100))
    values = []
    for _ in range(3):
        values.append(float(beta()))
        step.assign_add(50)
    np.testing.assert_allclose(values, [0.0, 0.5, 1.0])


def test_negative_total_steps_rejected():
    with pytest.raises(ValueError, match="-1"):
        kl_beta(0, 0.2, -1)
