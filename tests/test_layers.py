"""Layers against dense numpy references (references.normalized_clicks,
the authors' input) on tiny random inputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import references
import tensorflow as tf

from tf_multvae.model import encoders
from tf_multvae.model import layers

N_ITEMS = 50


def padded_ids(rng: np.random.Generator, n_users: int, max_len: int):
    """int64 [n_users, max_len] distinct items padded with -1; row 1 empty."""
    ids = np.full((n_users, max_len), -1, np.int64)
    for u in range(n_users):
        n = 0 if u == 1 else rng.integers(1, max_len + 1)
        ids[u, :n] = rng.choice(N_ITEMS, n, replace=False)
    return ids


@pytest.mark.parametrize("activation", [None, "tanh"])
def test_sparse_input_dense_matches_dense_reference(activation):
    rng = np.random.default_rng(1)
    ids = padded_ids(rng, 6, 7)
    layer = layers.SparseInputDense(
        N_ITEMS, 16, dropout=0.5, activation=activation, seed=3
    )
    layer.build(ids.shape)
    kernel, bias = (w.numpy() for w in layer.weights)
    assert kernel.shape == (N_ITEMS, 16) and bias.shape == (16,)
    expected = references.normalized_clicks(ids, N_ITEMS) @ kernel + bias
    if activation == "tanh":
        expected = np.tanh(expected)
    got = layer(tf.constant(ids), training=False).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # The empty user gets the bias only.
    np.testing.assert_allclose(got[1], expected[1], atol=1e-7)


def test_sparse_input_dense_uses_a_sparse_product():
    layer = layers.SparseInputDense(N_ITEMS, 4)
    layer.build((None, None))
    spec = tf.TensorSpec([None, None], tf.int64)
    traced = tf.function(lambda ids: layer(ids, training=True))
    graph = traced.get_concrete_function(spec).graph
    op_types = {op.type for op in graph.get_operations()}
    assert "SparseSegmentSumWithNumSegments" in op_types
    assert not op_types & {"ScatterNd", "MatMul", "BatchMatMulV2"}
    # No [batch, n_items] or [batch, max_len, units] intermediate.
    for op in graph.get_operations():
        for out in op.outputs:
            dims = out.shape.as_list() if out.shape.rank else []
            assert N_ITEMS not in dims[1:] and len(dims) < 3, (op.type, dims)


def test_initializers_follow_the_paper():
    layer = layers.SparseInputDense(2000, 300, seed=0)
    layer.build((None, None))
    limit = np.sqrt(6.0 / (2000 + 300))  # Glorot uniform
    kernel = layer.kernel.numpy()
    assert np.abs(kernel).max() <= limit
    assert kernel.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    bias = layer.bias.numpy()
    assert np.abs(bias).max() <= 2 * layers.BIAS_STDDEV  # truncated at 2 std
    assert 0 < bias.std() < layers.BIAS_STDDEV


def identity_layer(dropout: float, seed: int) -> layers.SparseInputDense:
    """x W + b with W = I and b = 0: the output is the dropped-out input."""
    layer = layers.SparseInputDense(N_ITEMS, N_ITEMS, dropout, seed=seed)
    layer.build((None, None))
    layer.set_weights([np.eye(N_ITEMS), np.zeros(N_ITEMS)])
    return layer


def test_dropout_only_in_training_and_at_its_rate():
    rng = np.random.default_rng(2)
    ids = padded_ids(rng, 300, 30)
    x = references.normalized_clicks(ids, N_ITEMS)
    rate = 0.3
    layer = identity_layer(rate, seed=5)
    np.testing.assert_allclose(
        layer(tf.constant(ids), training=False).numpy(), x, atol=1e-6
    )
    got = layer(tf.constant(ids), training=True).numpy()
    nonzero = x > 0
    assert np.all(got[~nonzero] == 0)  # zeros stay zero
    kept = got[nonzero] != 0
    # ~4,500 entries: the kept fraction is within 4 standard errors.
    se = np.sqrt(rate * (1 - rate) / nonzero.sum())
    assert abs(kept.mean() - (1 - rate)) < 4 * se
    # Kept entries are scaled by 1 / (1 - rate), as tf.nn.dropout does.
    np.testing.assert_allclose(
        got[nonzero][kept], x[nonzero][kept] / (1 - rate), rtol=1e-5
    )


def test_dropout_is_deterministic_for_a_seed():
    ids = tf.constant(padded_ids(np.random.default_rng(3), 20, 10))
    a, b = identity_layer(0.5, 7), identity_layer(0.5, 7)
    c = identity_layer(0.5, 8)
    first = a(ids, training=True).numpy()
    np.testing.assert_array_equal(first, b(ids, training=True).numpy())
    assert not np.array_equal(first, c(ids, training=True).numpy())
    # The generator advances: the next step draws a new mask.
    assert not np.array_equal(first, a(ids, training=True).numpy())


def test_sampling_returns_mu_at_prediction_and_samples_in_training():
    rng = np.random.default_rng(4)
    mu = tf.constant(rng.normal(size=(2000, 8)), tf.float32)
    logvar = tf.constant(np.log(np.full((2000, 8), 0.25)), tf.float32)
    sampling = layers.Sampling(seed=1)
    np.testing.assert_array_equal(sampling((mu, logvar)).numpy(), mu.numpy())
    np.testing.assert_array_equal(
        sampling((mu, logvar), training=False).numpy(), mu.numpy()
    )
    eps = (sampling((mu, logvar), training=True).numpy() - mu.numpy()) / 0.5
    assert abs(eps.mean()) < 0.02 and eps.std() == pytest.approx(1, abs=0.02)


def test_encoder_decoder_shapes_and_split():
    ids = tf.constant(padded_ids(np.random.default_rng(5), 4, 6))
    encoder = encoders.Encoder(N_ITEMS, (16,), 8, dropout=0.0, seed=0)
    mu, logvar = encoder(ids)
    assert mu.shape == (4, 8) and logvar.shape == (4, 8)
    assert mu.dtype == tf.float32 and logvar.dtype == tf.float32
    # One head of 2 * latent units, split in two (the authors' layout).
    head = encoder.dense_layers[-1]
    assert head.units == 16 and head.activation is keras.activations.linear
    assert len(encoder.kernels) == 2
    decoder = layers.Decoder(N_ITEMS, (16,))
    assert decoder(mu).shape == (4, N_ITEMS)
    assert len(decoder.kernels) == 2
    hidden, output = decoder.dense_layers
    assert hidden.activation is keras.activations.tanh
    assert output.activation is keras.activations.linear
    dae = encoders.DenoisingEncoder(N_ITEMS, (), 8, dropout=0.5)
    code = dae(ids)
    assert code.shape == (4, 8) and np.all(np.abs(code.numpy()) < 1)  # tanh


@pytest.mark.parametrize(
    "layer",
    [
        layers.SparseInputDense(N_ITEMS, 4, 0.2, "tanh", seed=1),
        encoders.Encoder(N_ITEMS, (16,), 8, 0.5, seed=2),
        encoders.DenoisingEncoder(N_ITEMS, (16,), 8, 0.5, seed=3),
        layers.Sampling(seed=4),
        layers.Decoder(N_ITEMS, (16,), seed=5),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_layer_config_round_trip(layer):
    config = keras.saving.serialize_keras_object(layer)
    assert config["registered_name"] == f"tf_multvae>{type(layer).__name__}"
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is type(layer)
    assert clone.get_config() == layer.get_config()


def test_sparse_input_gradient_matches_dense_reference():
    """dL/dW of the sparse product equals the dense x^T (dL/dy)."""
    rng = np.random.default_rng(6)
    ids = padded_ids(rng, 8, 9)
    layer = layers.SparseInputDense(N_ITEMS, 5, seed=4)
    layer.build(ids.shape)
    upstream = rng.normal(size=(8, 5)).astype(np.float32)
    with tf.GradientTape() as tape:
        out = layer(tf.constant(ids), training=False)
        loss = tf.reduce_sum(out * upstream)
    d_kernel, d_bias = tape.gradient(loss, layer.trainable_weights)
    # A linear layer: dL/dW = x^T upstream and dL/db = sum of upstream.
    np.testing.assert_allclose(
        d_kernel.numpy(),
        references.normalized_clicks(ids, N_ITEMS).T @ upstream,
        atol=1e-5,
    )
    np.testing.assert_allclose(d_bias.numpy(), upstream.sum(0), rtol=1e-5)


@pytest.mark.parametrize("n_users", [1, 3, 8])
def test_row_sums_in_pieces_equal_one_sum_to_the_bit(n_users):
    """segment_rows in 1..5 pieces (more pieces than users too, empty
    users) against a numpy loop, and every piece count against one."""
    from tf_multvae.model import kernels

    rng = np.random.default_rng(n_users)
    ids = padded_ids(rng, n_users, 9)
    kernel = rng.normal(size=(N_ITEMS, 4)).astype(np.float32)
    rows, items, _ = kernels.clicked_entries(tf.constant(ids))
    expected = np.zeros((n_users, 4), np.float32)
    for u, row in enumerate(ids):
        for i in row[row >= 0]:
            expected[u] += kernel[i]
    one = kernels.segment_rows(kernel, rows, items, n_users, 1).numpy()
    np.testing.assert_allclose(one, expected, rtol=1e-6, atol=1e-6)
    for parts in (2, 3, 5):
        got = kernels.segment_rows(kernel, rows, items, n_users, parts)
        np.testing.assert_array_equal(got.numpy(), one)
