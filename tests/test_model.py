"""MultVAE and MultDAE: shapes, objectives against numpy, fit, save/load."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import references
import tensorflow as tf

from tf_multvae import metrics
from tf_multvae.model import MultDAE
from tf_multvae.model import MultVAE
from tf_multvae.model import build_model
from tf_multvae.model import compile_model
from tf_multvae.model import losses
from tf_multvae.model.annealing import kl_beta
from tf_multvae.model.kernels import replica_seed

REPO = pathlib.Path(__file__).resolve().parents[1]
N_ITEMS = 50
EVAL_ITEMS = 120  # ranking needs n_items >= 100 for NDCG@100
TINY = {
    "vae": {"hidden_dims": (16,), "latent_dim": 8},
    "dae": {"latent_dim": 8},
}


def padded_ids(rng, n_users, max_len, n_items=N_ITEMS, min_len=1):
    ids = np.full((n_users, max_len), -1, np.int64)
    for u in range(n_users):
        n = rng.integers(min_len, max_len + 1)
        ids[u, :n] = np.sort(rng.choice(n_items, n, replace=False))
    return ids


def tiny(kind, n_items=N_ITEMS, **hparams):
    model = build_model(kind, n_items, **{**TINY[kind], "seed": 0, **hparams})
    compile_model(model)
    return model


def test_output_shapes():
    ids = tf.constant(padded_ids(np.random.default_rng(0), 5, 7))
    logits, mu, logvar = tiny("vae")(ids)
    assert logits.shape == (5, N_ITEMS) and logits.dtype == tf.float32
    assert mu.shape == (5, 8) and logvar.shape == (5, 8)
    logits = tiny("dae")(ids)
    assert logits.shape == (5, N_ITEMS) and logits.dtype == tf.float32
    assert tiny("vae").score(ids).shape == (5, N_ITEMS)


@pytest.mark.parametrize("kind", ["vae", "dae"])
def test_train_step_changes_weights_and_logs_finite_values(kind):
    model = tiny(kind)
    ids = tf.constant(padded_ids(np.random.default_rng(1), 8, 6))
    before = [w.numpy() for w in model.trainable_weights]
    logs = model.train_step(ids)
    expected = {
        "vae": {"loss", "nll", "kl", "beta"},
        "dae": {"loss", "nll", "l2"},
    }
    assert set(logs) == expected[kind]
    assert all(np.isfinite(v.numpy()) for v in logs.values())
    after = [w.numpy() for w in model.trainable_weights]
    assert all(not np.array_equal(b, a) for b, a in zip(before, after))
    assert int(model.optimizer.iterations) == 1


def test_beta_anneals_with_updates_across_fit_calls():
    cap, total = 0.35, 20
    model = tiny("vae", anneal_cap=cap, total_anneal_steps=total)
    ids = tf.constant(padded_ids(np.random.default_rng(2), 4, 5))
    for t in range(3):
        beta = model.train_step(ids)["beta"].numpy()
        assert beta == pytest.approx(t / total)
        assert beta == pytest.approx(kl_beta(t, cap, total).numpy())
    data = tf.data.Dataset.from_tensors(ids).repeat(3)
    first = model.fit(data, epochs=1, verbose=0, shuffle=False).history["beta"]
    second = model.fit(data, epochs=1, verbose=0, shuffle=False).history["beta"]
    # beta_t of each epoch's last update: t = 5, then t = 8 (capped).
    assert first == [pytest.approx(5 / total)]
    assert second == [pytest.approx(cap)]
    assert int(model.optimizer.iterations) == 9


def test_vae_loss_is_mean_nll_plus_beta_kl():
    model = tiny("vae", dropout=0.0, anneal_cap=1.0, total_anneal_steps=10)
    ids = padded_ids(np.random.default_rng(3), 6, 8)
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(4)  # beta = 0.4
    weights = [w.numpy().astype(np.float64) for w in model.trainable_weights]
    w0, b0, w1, b1, w2, b2, w3, b3 = weights  # encoder 2 layers, decoder 2
    x = references.normalized_clicks(ids, N_ITEMS)  # the encoder's input
    h = np.tanh(x @ w0 + b0) @ w1 + b1
    mu, logvar = h[:, :8], h[:, 8:]
    # Replay the sampling noise of the step from the same generator state.
    generator = model.sampling.seed_generator
    state = generator.state.numpy()
    eps = tf.random.stateless_normal((6, 8), replica_seed(generator)).numpy()
    generator.state.assign(state)
    z = mu + eps * np.exp(0.5 * logvar)
    logits = np.tanh(z @ w2 + b2) @ w3 + b3
    kl = np.mean(0.5 * np.sum(-logvar + np.exp(logvar) + mu**2 - 1, axis=1))
    nll = references.multinomial_nll(logits, ids).mean()

    logs = model.train_step(tf.constant(ids))
    assert logs["beta"].numpy() == pytest.approx(0.4)
    assert logs["kl"].numpy() == pytest.approx(kl, rel=1e-4)
    assert logs["nll"].numpy() == pytest.approx(nll, rel=1e-5)
    assert logs["loss"].numpy() == pytest.approx(nll + 0.4 * kl, rel=1e-5)


def test_dae_loss_is_mean_nll_plus_weight_decay_of_kernels_only():
    lam = 0.05
    model = tiny("dae", hidden_dims=(16,), dropout=0.0, weight_decay=lam)
    ids = padded_ids(np.random.default_rng(4), 6, 8)
    named = {w.path: w.numpy().astype(np.float64) for w in model.weights}
    kernels = [v for path, v in named.items() if path.endswith("kernel")]
    biases = [v for path, v in named.items() if path.endswith("bias")]
    assert len(kernels) == 4 and len(biases) == 4  # I-16-8-16-I
    assert len(model.kernels) == 4
    penalty = lam * sum(np.sum(k**2) for k in kernels)
    w0, b0, w1, b1, w2, b2, w3, b3 = (
        w.numpy().astype(np.float64) for w in model.trainable_weights
    )
    x = references.normalized_clicks(ids, N_ITEMS)  # the encoder's input
    h = np.tanh(np.tanh(x @ w0 + b0) @ w1 + b1)
    logits = np.tanh(h @ w2 + b2) @ w3 + b3
    nll = references.multinomial_nll(logits, ids).mean()

    logs = model.train_step(tf.constant(ids))
    assert logs["l2"].numpy() == pytest.approx(penalty, rel=1e-5)
    assert logs["nll"].numpy() == pytest.approx(nll, rel=1e-5)
    assert logs["loss"].numpy() == pytest.approx(nll + penalty, rel=1e-5)


def eval_batches(rng, n_users=10):
    fold_in = padded_ids(rng, n_users, 12, EVAL_ITEMS)
    heldout = np.full((n_users, 5), -1, np.int64)
    for u in range(n_users):
        if u % 4 == 3:
            continue  # no held-out items: not scored
        pool = np.setdiff1d(np.arange(EVAL_ITEMS), fold_in[u])
        n = rng.integers(1, 6)
        heldout[u, :n] = np.sort(rng.choice(pool, n, replace=False))
    return fold_in, heldout


@pytest.mark.parametrize("kind", ["vae", "dae"])
def test_evaluate_averages_metrics_over_users_with_heldout(kind):
    model = tiny(kind, n_items=EVAL_ITEMS)
    fold_in, heldout = eval_batches(np.random.default_rng(5))
    data = tf.data.Dataset.from_tensor_slices(
        {"fold_in": fold_in, "heldout": heldout}
    ).batch(4)
    got = model.evaluate(data, verbose=0, return_dict=True)
    assert set(got) == {"ndcg_at_100", "recall_at_20", "recall_at_50"}
    scored = metrics.has_heldout(heldout).numpy()
    per_user = metrics.ranking_metrics(
        model.score(tf.constant(fold_in)), fold_in, heldout
    )
    for name, values in per_user.items():
        expected = values.numpy()[scored].mean()
        assert got[name] == pytest.approx(expected, rel=1e-6)
    predicted = model.predict(data, verbose=0)
    assert predicted.shape == (10, EVAL_ITEMS)


@pytest.mark.parametrize("kind", ["vae", "dae"])
def test_save_load_round_trip(kind, tmp_path):
    model = tiny(kind, dropout=0.3)
    ids = tf.constant(padded_ids(np.random.default_rng(6), 5, 6))
    model.train_step(ids)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(
        loaded.score(ids).numpy(), model.score(ids).numpy()
    )
    assert int(loaded.optimizer.iterations) == 1


@pytest.mark.parametrize("likelihood", losses.LIKELIHOODS)
@pytest.mark.parametrize("kind", ["vae", "dae"])
def test_every_likelihood_trains(kind, likelihood):
    model = tiny(kind, likelihood=likelihood)
    ids = padded_ids(np.random.default_rng(7), 4, 5)
    logs = model.train_step(tf.constant(ids))
    assert np.isfinite(logs["loss"].numpy())


def test_unknown_likelihood_and_kind_raise():
    with pytest.raises(ValueError, match="likelihood"):
        MultVAE(N_ITEMS, likelihood="poisson")
    with pytest.raises(ValueError, match="likelihood"):
        MultDAE(N_ITEMS, likelihood="bernoulli")
    with pytest.raises(ValueError, match="kind"):
        build_model("ae", N_ITEMS)


def test_fit_logs_validation_metrics():
    rng = np.random.default_rng(8)
    model = tiny("vae", n_items=EVAL_ITEMS)
    train = tf.data.Dataset.from_tensor_slices(
        padded_ids(rng, 12, 9, EVAL_ITEMS)
    ).padded_batch(4, padding_values=np.int64(-1))
    fold_in, heldout = eval_batches(rng)
    validation = tf.data.Dataset.from_tensor_slices(
        {"fold_in": fold_in, "heldout": heldout}
    ).batch(5)
    history = model.fit(
        train, epochs=2, validation_data=validation, verbose=0, shuffle=False
    )
    names = ("loss", "nll", "kl", "beta", "val_ndcg_at_100", "val_recall_at_20")
    for name in names:
        assert len(history.history[name]) == 2
        assert np.all(np.isfinite(history.history[name]))


def test_mixed_precision_keeps_the_loss_in_float32():
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = tiny("vae")
        ids = tf.constant(padded_ids(np.random.default_rng(9), 4, 5))
        logits, mu, logvar = model(ids)
        assert model.decoder.compute_dtype == "bfloat16"
        assert logits.dtype == mu.dtype == logvar.dtype == tf.float32
        assert model.trainable_weights[0].dtype == "float32"
        assert np.isfinite(model.train_step(ids)["loss"].numpy())
    finally:
        keras.mixed_precision.set_global_policy(policy)


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import keras
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    from tf_multvae.model import build_model, compile_model

    rng = np.random.default_rng(0)
    ids = np.full((8, 6), -1, np.int64)
    for u in range(8):
        n = rng.integers(1, 7)
        ids[u, :n] = rng.choice(50, n, replace=False)
    data = tf.data.Dataset.from_tensors(ids)

    def step(kind, strategy):
        with strategy.scope():
            model = build_model(kind, 50, hidden_dims=(16,), latent_dim=8,
                                dropout=0.0, seed=0)
            compile_model(model)
        if kind == "vae":  # z = mu: the noise differs per replica
            model.sampling.call = lambda inputs, training=False: inputs[0]
        history = model.fit(data, epochs=1, verbose=0, shuffle=False).history
        loss = history["loss"][0]
        return loss, [w.numpy() for w in model.trainable_weights]

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    for kind in ("vae", "dae"):
        loss, weights = step(kind, tf.distribute.get_strategy())
        loss_2, weights_2 = step(kind, mirrored)
        assert abs(loss - loss_2) <= 1e-5 * abs(loss), (kind, loss, loss_2)
        for a, b in zip(weights, weights_2):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        print(kind, loss, loss_2)

    # With dropout and sampling noise it trains, and evaluates, too.
    with mirrored.scope():
        model = build_model("vae", 120, hidden_dims=(16,), latent_dim=8,
                            seed=1)
        compile_model(model)
    heldout = np.where(ids >= 0, (ids + 60) % 120, -1)
    heldout[3] = -1
    validation = tf.data.Dataset.from_tensors(
        {"fold_in": ids, "heldout": heldout}
    )
    history = model.fit(data.repeat(2), epochs=2, verbose=0,
                        validation_data=validation).history
    assert np.all(np.isfinite(history["loss"])), history
    assert len(history["val_ndcg_at_100"]) == 2, history

    # Replicas share the generator state but draw different noise.
    from tf_multvae.model.kernels import replica_seed
    with mirrored.scope():
        generator = keras.random.SeedGenerator(5)
    seeds = mirrored.experimental_local_results(
        mirrored.run(tf.function(lambda: replica_seed(generator)))
    )
    assert not np.array_equal(seeds[0].numpy(), seeds[1].numpy()), seeds
    print("OK")
    """
)


@pytest.mark.slow
def test_mirrored_strategy_matches_the_default_strategy():
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    assert result.stdout.strip().endswith("OK")


@pytest.mark.parametrize("kind", ["vae", "dae"])
def test_score_is_the_output_layer_of_the_latent_code(kind):
    """What a bfloat16 export multiplies: score = output_layer(hidden(
    latent)), the decoder's last layer apart."""
    model = build_model(kind, 40, latent_dim=8, seed=3)
    ids = tf.constant([[1, 5, 7, -1], [2, -1, -1, -1]], tf.int64)
    decoder = model.decoder
    parts = decoder.output_layer(decoder.hidden(model.latent(ids)))
    np.testing.assert_array_equal(parts.numpy(), model.score(ids).numpy())
    assert decoder.output_layer is decoder.dense_layers[-1]
