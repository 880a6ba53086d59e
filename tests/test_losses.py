"""Losses against loop-based numpy references (references.*_nll) on tiny
random inputs."""

from __future__ import annotations

import numpy as np
import pytest
import references
import tensorflow as tf

from tf_multvae.model import losses

N_ITEMS = 7


def _random_ids(batch: int, n_items: int, max_len: int) -> np.ndarray:
    """int64 [batch, max_len]: distinct items per row, padded with -1."""
    ids = np.full((batch, max_len), -1, np.int64)
    for u in range(batch):
        n = np.random.randint(0, max_len + 1)  # includes empty rows
        ids[u, :n] = np.random.choice(n_items, n, replace=False)
    ids[0, :] = np.random.choice(n_items, max_len, replace=False)  # full row
    return ids


@pytest.fixture
def batch() -> tuple[np.ndarray, np.ndarray]:
    logits = np.random.normal(size=(5, N_ITEMS)).astype(np.float32) * 3
    return logits, _random_ids(5, N_ITEMS, 4)


@pytest.mark.parametrize(
    "name, reference",
    [
        ("multinomial", references.multinomial_nll),
        ("gaussian", references.gaussian_nll),
        ("logistic", references.logistic_nll),
    ],
)
def test_likelihoods_match_loops(batch, name, reference):
    logits, ids = batch
    direct = getattr(losses, f"{name}_nll")(logits, ids)
    dispatched = losses.negative_log_likelihood(name, logits, ids)
    assert direct.dtype == tf.float32 and direct.shape == (5,)
    np.testing.assert_allclose(direct, reference(logits, ids), rtol=1e-5)
    np.testing.assert_allclose(dispatched, direct)


def test_likelihoods_in_tf_function(batch):
    logits, ids = batch

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.float32),
            tf.TensorSpec([None, None], tf.int64),
        ]
    )
    def all_nll(f, x):
        return [
            losses.negative_log_likelihood(n, f, x) for n in losses.LIKELIHOODS
        ]

    for name, value in zip(losses.LIKELIHOODS, all_nll(logits, ids)):
        eager = losses.negative_log_likelihood(name, logits, ids)
        np.testing.assert_allclose(value, eager, rtol=1e-6)


def test_multinomial_hand_example():
    # Uniform logits over 4 items: each clicked item costs log 4.
    logits = np.zeros((2, 4), np.float32)
    ids = np.array([[2, 0, -1], [-1, -1, -1]], np.int64)
    np.testing.assert_allclose(
        losses.multinomial_nll(logits, ids), [2 * np.log(4.0), 0.0], rtol=1e-6
    )


def test_padding_on_item_zero_is_not_a_click():
    # Padding must neither add item 0 nor cancel a real click of item 0.
    logits = np.array([[1.0, -2.0, 0.5]], np.float32)
    with_zero = np.array([[0, -1, -1]], np.int64)
    without = np.array([[2, -1, -1]], np.int64)
    for ids in (with_zero, without):
        for name, ref in [
            ("gaussian", references.gaussian_nll),
            ("logistic", references.logistic_nll),
        ]:
            np.testing.assert_allclose(
                losses.negative_log_likelihood(name, logits, ids),
                ref(logits, ids),
                rtol=1e-6,
            )


@pytest.mark.parametrize("dtype", [tf.bfloat16, tf.float16])
def test_low_precision_logits_give_float32(batch, dtype):
    logits, ids = batch
    low = tf.cast(logits, dtype)
    rounded = tf.cast(low, tf.float32).numpy()  # the values the loss sees
    for name, ref in [
        ("multinomial", references.multinomial_nll),
        ("gaussian", references.gaussian_nll),
        ("logistic", references.logistic_nll),
    ]:
        value = losses.negative_log_likelihood(name, low, ids)
        assert value.dtype == tf.float32
        np.testing.assert_allclose(value, ref(rounded, ids), rtol=1e-5)


def test_logistic_is_stable_for_large_logits():
    logits = np.array([[100.0, -100.0, 100.0]], np.float32)
    ids = np.array([[0, 1]], np.int64)
    # Item 0: clicked, f=100 -> ~0; item 1: clicked, f=-100 -> 100;
    # item 2: not clicked, f=100 -> 100.
    np.testing.assert_allclose(
        losses.logistic_nll(logits, ids), [200.0], rtol=1e-6
    )


def test_multinomial_is_exact_where_a_clicked_probability_underflows():
    """A clicked item 200 nats below the best has softmax 0 in float32
    (exp(-200) < 1e-45); its log-probability must still be exact, and the
    large-scale logits of a trained model must not lose the others'."""
    logits = np.array(
        [[200.0, 0.0, 199.0, -5.0], [1e4, 1e4 - 3.0, 9e3, 1e4 - 1.0]],
        np.float32,
    )
    ids = np.array([[1, 2, -1], [1, 2, 3]], np.int64)
    np.testing.assert_allclose(
        losses.multinomial_nll(logits, ids),
        references.multinomial_nll(logits, ids),
        rtol=1e-6,
    )


def test_multinomial_gradient_is_finite_and_dense_free():
    logits = tf.Variable(np.random.normal(size=(3, N_ITEMS)), dtype=tf.float32)
    ids = tf.constant(_random_ids(3, N_ITEMS, 3))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(losses.multinomial_nll(logits, ids))
    grad = tape.gradient(loss, logits)
    # d/df of -sum_{i in items} log softmax(f)_i = n_u * softmax(f) - x_u.
    x = references.clicks(ids.numpy(), N_ITEMS)
    soft = np.exp(logits.numpy())
    soft /= soft.sum(axis=1, keepdims=True)
    expected = (x.sum(axis=1, keepdims=True) * soft - x) / 3
    np.testing.assert_allclose(tf.convert_to_tensor(grad), expected, atol=1e-6)


@pytest.mark.parametrize("bad", ["poisson", "Multinomial", ""])
def test_dispatcher_rejects_unknown_likelihood(batch, bad):
    logits, ids = batch
    with pytest.raises(ValueError, match=repr(bad)):
        losses.negative_log_likelihood(bad, logits, ids)


def test_gaussian_kl_matches_closed_form_loop():
    mu = np.random.normal(size=(4, 3)).astype(np.float32)
    logvar = np.random.normal(size=(4, 3)).astype(np.float32)
    expected = np.zeros(4)
    for u in range(4):
        for k in range(3):
            var = np.exp(np.float64(logvar[u, k]))
            # KL(N(m, s^2) || N(0, 1)) = log(1/s) + (s^2 + m^2) / 2 - 1/2.
            expected[u] += -0.5 * logvar[u, k] + 0.5 * (var + mu[u, k] ** 2)
            expected[u] -= 0.5
    value = losses.gaussian_kl(mu, logvar)
    assert value.dtype == tf.float32 and value.shape == (4,)
    np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_gaussian_kl_is_zero_at_the_prior():
    zeros = np.zeros((2, 5), np.float32)
    np.testing.assert_allclose(losses.gaussian_kl(zeros, zeros), [0.0, 0.0])


def test_l2_penalty_sums_squares():
    a = np.random.normal(size=(3, 2)).astype(np.float32)
    b = tf.Variable(np.random.normal(size=(2, 4)).astype(np.float32))
    expected = sum(v**2 for v in a.ravel()) + sum(
        v**2 for v in b.numpy().ravel()
    )
    value = losses.l2_penalty([a, b])
    assert value.dtype == tf.float32 and value.shape == ()
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    np.testing.assert_allclose(losses.l2_penalty([]), 0.0)


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
def test_multinomial_gradient_weights_each_user(dtype):
    """The written-out gradient scales by each user's upstream gradient."""
    raw = np.random.normal(size=(4, N_ITEMS)).astype(np.float32)
    ids = _random_ids(4, N_ITEMS, 5)
    weights = np.array([0.5, -2.0, 1.0, 3.0], np.float32)
    logits = tf.Variable(tf.cast(raw, dtype))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(weights * losses.multinomial_nll(logits, ids))
    grad = tf.cast(tape.gradient(loss, logits), tf.float32).numpy()
    rounded = tf.cast(tf.cast(raw, dtype), tf.float32).numpy()
    x = references.clicks(ids, N_ITEMS)
    soft = np.exp(rounded - rounded.max(1, keepdims=True))
    soft /= soft.sum(axis=1, keepdims=True)
    expected = weights[:, None] * (x.sum(1, keepdims=True) * soft - x)
    tolerance = 1e-5 if dtype == tf.float32 else 0.05
    np.testing.assert_allclose(grad, expected, atol=tolerance)
