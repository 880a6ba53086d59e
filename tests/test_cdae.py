"""CDAE (Wu et al. 2016) as the third model kind: its loss, its per-user
vectors, the held-out users' fold-in, saving, and the training command.

The references are numpy, written from the formulas of
tf_multvae/model/cdae.py's docstring (tanh layers, V_u added at the
bottleneck, c-weighted squares, weight decay, K gradient steps of size
1 / L_u), not from its code.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_multvae import config as cfg
from tf_multvae import data
from tf_multvae import datadir
from tf_multvae import features
from tf_multvae import train
from tf_multvae.model import CDAE
from tf_multvae.model import build_model
from tf_multvae.model import compile_model

N_ITEMS = 40
N_USERS = 12
LATENT = 6
EVAL_ITEMS = 120  # NDCG@100 needs at least 100 items


def padded_ids(rng, n_users, max_len, n_items=N_ITEMS):
    ids = np.full((n_users, max_len), -1, np.int64)
    for u in range(n_users):
        n = rng.integers(1, max_len + 1)
        ids[u, :n] = np.sort(rng.choice(n_items, n, replace=False))
    return ids


def tiny(n_items=N_ITEMS, **hparams) -> CDAE:
    hparams = {
        "n_users": N_USERS,
        "latent_dim": LATENT,
        "seed": 0,
        **hparams,
    }
    model = build_model("cdae", n_items, **hparams)
    compile_model(model)
    return model


def weights(model) -> dict[str, np.ndarray]:
    return {w.path: w.numpy() for w in model.weights}


def network(model):
    """(V, W, b, W', b') in float64."""
    named = {w.path.split("/", 1)[1]: w.numpy() for w in model.weights}
    keys = (
        "user_factors",
        "encoder/kernel",
        "encoder/bias",
        "decoder/logits/kernel",
        "decoder/logits/bias",
    )
    return [named[k].astype(np.float64) for k in keys]


def np_clicks(ids, n_items=N_ITEMS):
    x = np.zeros((len(ids), n_items))
    for u, row in enumerate(ids):
        x[u, row[row >= 0]] = 1.0
    return x


def np_forward(ids, v, w, b, w2, b2, n_items=N_ITEMS):
    """(f before its tanh, h) with the L2-normalized input, no dropout."""
    x = np_clicks(ids, n_items)
    x_tilde = x / np.sqrt(np.maximum(x.sum(1, keepdims=True), 1))
    h = np.tanh(x_tilde @ w + b + v)
    return h @ w2 + b2, h


def np_user_loss(ids, v, w, b, w2, b2, c_neg, lam, n_items=N_ITEMS):
    """Each user's sum_i c_ui (x_ui - f_ui)^2 + lam ||v_u||^2."""
    x = np_clicks(ids, n_items)
    f = np.tanh(np_forward(ids, v, w, b, w2, b2, n_items)[0])
    c = np.where(x > 0, 1.0, c_neg)
    return (c * (x - f) ** 2).sum(1) + lam * (v**2).sum(1)


def np_grad_v(ids, v, w, b, w2, b2, c_neg, lam, n_items=N_ITEMS):
    """d np_user_loss / d v by the chain rule (checked by differences)."""
    x = np_clicks(ids, n_items)
    logits, h = np_forward(ids, v, w, b, w2, b2, n_items)
    f = np.tanh(logits)
    c = np.where(x > 0, 1.0, c_neg)
    d_logits = 2 * c * (f - x) * (1 - f**2)
    return (d_logits @ w2.T) * (1 - h**2) + 2 * lam * v


def np_fold_in(ids, steps, w, b, w2, b2, c_neg, lam, n_items=N_ITEMS):
    """``steps`` gradient steps of size 1 / L_u from v = 0."""
    x = np_clicks(ids, n_items)
    top = np.linalg.eigvalsh(w2 @ w2.T).max()
    clicked = x @ (w2**2).sum(0)
    lipschitz = 2 * (c_neg * top + (1 - c_neg) * clicked + lam)
    v = np.zeros((len(ids), w.shape[1]))
    for _ in range(steps):
        grad = np_grad_v(ids, v, w, b, w2, b2, c_neg, lam, n_items)
        v = v - grad / lipschitz[:, None]
    return v


def test_the_reference_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    model = tiny()
    _, w, b, w2, b2 = network(model)
    ids = padded_ids(rng, 3, 5)
    v = rng.normal(0, 0.3, (3, LATENT))
    grad = np_grad_v(ids, v, w, b, w2, b2, 0.2, 0.05)
    eps = 1e-6
    for k in range(LATENT):
        step = np.zeros_like(v)
        step[:, k] = eps
        up = np_user_loss(ids, v + step, w, b, w2, b2, 0.2, 0.05)
        down = np_user_loss(ids, v - step, w, b, w2, b2, 0.2, 0.05)
        np.testing.assert_allclose(
            (up - down) / (2 * eps), grad[:, k], rtol=1e-5, atol=1e-8
        )


def test_the_loss_of_a_batch_matches_numpy():
    lam, c_neg = 0.03, 0.2
    model = tiny(dropout=0.0, weight_decay=lam, negative_weight=c_neg)
    rng = np.random.default_rng(1)
    model.user_factors.assign(rng.normal(0, 0.5, (N_USERS, LATENT)))
    ids = padded_ids(rng, 5, 7)
    users = np.array([3, 0, 11, 7, 5])
    v_all, w, b, w2, b2 = network(model)
    v = v_all[users]
    x = np_clicks(ids)
    f = np.tanh(np_forward(ids, v, w, b, w2, b2)[0])
    square = (np.where(x > 0, 1.0, c_neg) * (x - f) ** 2).sum(1).mean()
    l2 = lam * ((w**2).sum() + (w2**2).sum() + (v**2).sum(1).mean())

    batch = {"items": tf.constant(ids), "user": tf.constant(users)}
    logs = model.train_step(batch)
    assert set(logs) == {"loss", "nll", "l2"}
    assert logs["nll"].numpy() == pytest.approx(square, rel=1e-5)
    assert logs["l2"].numpy() == pytest.approx(l2, rel=1e-5)
    assert logs["loss"].numpy() == pytest.approx(square + l2, rel=1e-5)


def test_a_step_moves_only_the_batch_users_vectors_and_every_weight():
    model = tiny()
    rng = np.random.default_rng(2)
    ids = padded_ids(rng, 4, 6)
    users = np.array([1, 4, 6, 9])
    before = network(model)
    model.train_step({"items": tf.constant(ids), "user": tf.constant(users)})
    after = network(model)
    others = np.setdiff1d(np.arange(N_USERS), users)
    np.testing.assert_array_equal(after[0][others], before[0][others])
    assert np.all(np.any(after[0][users] != before[0][users], axis=1))
    for old, new in zip(before[1:], after[1:]):
        assert not np.array_equal(old, new)
    assert int(model.optimizer.iterations) == 1


def test_training_without_user_indices_is_refused():
    model = tiny()
    ids = tf.constant(padded_ids(np.random.default_rng(3), 2, 3))
    with pytest.raises(ValueError, match="with_user_index"):
        model.train_step(ids)


def test_fold_in_is_k_gradient_steps_and_changes_no_weight():
    lam, c_neg, steps = 0.02, 0.1, 7
    model = tiny(weight_decay=lam, negative_weight=c_neg, fold_in_steps=steps)
    rng = np.random.default_rng(4)
    # Trained-looking weights: a few updates (V and Adam's state too).
    for _ in range(3):
        batch = {
            "items": tf.constant(padded_ids(rng, 6, 8)),
            "user": tf.constant(rng.choice(N_USERS, 6, replace=False)),
        }
        model.train_step(batch)
    ids = padded_ids(rng, 5, 8)
    before = weights(model)
    before_optimizer = [v.numpy() for v in model.optimizer.variables]
    scores = model.score(tf.constant(ids)).numpy()
    for path, value in weights(model).items():
        np.testing.assert_array_equal(value, before[path], err_msg=path)
    for old, new in zip(before_optimizer, model.optimizer.variables):
        np.testing.assert_array_equal(new.numpy(), old)

    _, w, b, w2, b2 = network(model)
    v = np_fold_in(ids, steps, w, b, w2, b2, c_neg, lam)
    np.testing.assert_allclose(
        model.user_vectors(tf.constant(ids)).numpy(), v, rtol=1e-4, atol=1e-6
    )
    expected = np_forward(ids, v, w, b, w2, b2)[0]
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)
    # Each step lowers each user's objective from its value at v = 0.
    zero = np_user_loss(ids, 0 * v, w, b, w2, b2, c_neg, lam)
    fitted = np_user_loss(ids, v, w, b, w2, b2, c_neg, lam)
    assert np.all(fitted < zero)
    got = model.fold_in_loss(tf.constant(ids), tf.constant(v, tf.float32))
    np.testing.assert_allclose(got.numpy(), fitted, rtol=1e-5)


def test_zero_scores_with_v_zero_and_fit_runs_in_a_tf_function():
    rng = np.random.default_rng(5)
    fit = tiny(fold_in_steps=4)
    zero = tiny(heldout="zero")
    zero.set_weights(fit.get_weights())
    ids = padded_ids(rng, 4, 6)
    _, w, b, w2, b2 = network(zero)
    expected = np_forward(ids, np.zeros((4, LATENT)), w, b, w2, b2)[0]
    got = zero.score(tf.constant(ids)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        got, tiny(fold_in_steps=0).score(tf.constant(ids)).numpy()
    )
    graph = tf.function(fit.score)(tf.constant(ids)).numpy()
    np.testing.assert_allclose(
        graph, fit.score(tf.constant(ids)).numpy(), rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(graph, got)  # fit moved V_u


def test_evaluate_fits_the_fold_in_inside_test_step():
    from tf_multvae import metrics

    model = tiny(n_items=EVAL_ITEMS)
    rng = np.random.default_rng(6)
    fold_in = padded_ids(rng, 8, 6, EVAL_ITEMS)
    heldout = np.full((8, 3), -1, np.int64)
    for u in range(8):
        pool = np.setdiff1d(np.arange(EVAL_ITEMS), fold_in[u])
        heldout[u] = np.sort(rng.choice(pool, 3, replace=False))
    ds = tf.data.Dataset.from_tensor_slices(
        {"fold_in": fold_in, "heldout": heldout}
    ).batch(4)
    got = model.evaluate(ds, verbose=0, return_dict=True)
    per_user = metrics.ranking_metrics(
        model.score(tf.constant(fold_in)), fold_in, heldout
    )
    for name, values in per_user.items():
        assert got[name] == pytest.approx(values.numpy().mean(), rel=1e-5)


def test_keras_round_trip_gives_identical_scores(tmp_path):
    model = tiny(dropout=0.3, fold_in_steps=3)
    rng = np.random.default_rng(7)
    model.train_step(
        {
            "items": tf.constant(padded_ids(rng, 5, 6)),
            "user": tf.constant(np.arange(5)),
        }
    )
    ids = tf.constant(padded_ids(rng, 4, 6))
    path = tmp_path / "cdae.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is CDAE
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(
        loaded.user_factors.numpy(), model.user_factors.numpy()
    )
    np.testing.assert_array_equal(
        loaded.score(ids).numpy(), model.score(ids).numpy()
    )
    assert int(loaded.optimizer.iterations) == 1


def test_the_training_batches_carry_each_users_index(small_dataset):
    plain = [
        row
        for batch in data.train_dataset(small_dataset, 256, 0, shuffle=False)
        for row in batch.numpy()
    ]
    n_users = len(plain)
    ds = data.train_dataset(
        small_dataset, 256, 3, epochs=(0, 2), with_user_index=True
    )
    seen = []
    for batch in ds:
        users = batch[data.USER_INDEX].numpy()
        items = batch[features.ITEMS].numpy()
        assert batch[data.USER_INDEX].dtype == tf.int64
        for user, row in zip(users, items):
            width = min(len(row), len(plain[user]))
            np.testing.assert_array_equal(row[:width], plain[user][:width])
            assert np.all(row[width:] == -1) and np.all(
                plain[user][width:] == -1
            )
        seen.append(users)
    seen = np.concatenate(seen)
    for epoch in (seen[:n_users], seen[n_users:]):
        np.testing.assert_array_equal(np.sort(epoch), np.arange(n_users))
    assert not np.array_equal(seen[:n_users], np.arange(n_users))  # shuffled
    # The shuffle is the one without indices: the same users in order.
    unindexed = data.train_dataset(small_dataset, 256, 3, epochs=(0, 1))
    first = np.concatenate([b.numpy()[:, 0] for b in unindexed])
    np.testing.assert_array_equal(first, [plain[u][0] for u in seen[:n_users]])


def test_config_defaults_and_validation():
    model = cfg.cdae_defaults(cfg.PRESETS["ml-1m"].model)
    assert (model.kind, model.hidden_dims, model.latent_dim) == (
        "cdae",
        (),
        200,
    )
    assert model.likelihood == "gaussian"
    assert model.weight_decay == cfg.CDAE_WEIGHT_DECAY
    assert (model.cdae_heldout, model.cdae_fold_in_steps) == ("fit", 10)
    assert cfg.MODEL_NAMES["cdae"] == "CDAE" and "cdae" in cfg.MODELS
    run = cfg.RunConfig("ml-1m", model)
    assert cfg.RunConfig.from_json(json.loads(json.dumps(run.to_json()))) == run
    old = cfg.RunConfig("ml-1m").to_json()  # a config.json of before CDAE
    for field in ("cdae_negative_weight", "cdae_heldout", "cdae_fold_in_steps"):
        del old["model"][field]
    assert cfg.RunConfig.from_json(old) == cfg.RunConfig("ml-1m")


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--cdae-fold-in-steps", "-1"], "--cdae-fold-in-steps must be >= 0"),
        (["--cdae-heldout", "maybe"], "--cdae-heldout must be one of"),
        (["--cdae-negative-weight", "2"], "--cdae-negative-weight must be in"),
        (["--likelihood", "multinomial"], "--likelihood must be gaussian"),
        (["--hidden-dims", "16"], "--hidden-dims must be empty"),
    ],
)
def test_bad_cdae_flags_are_named(tmp_path, capsys, flags, message):
    code = train.main(
        ["--dataset", "synthetic", "--model", "cdae", "--data-dir",
         str(tmp_path), "--run-dir", str(tmp_path / "r"), *flags]
    )  # fmt: skip
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_train_writes_a_cdae_run(small_dataset, tmp_path):
    from tf_multvae.reports import runs

    run_dir = tmp_path / "cdae"
    code = train.main(
        ["--dataset", "synthetic", "--data-dir", small_dataset, "--run-dir",
         str(run_dir), "--model", "cdae", "--epochs", "2", "--latent-dim",
         "16", "--batch-size", "100", "--cdae-fold-in-steps", "3",
         "--weight-decay", "0.001"]
    )  # fmt: skip
    assert code == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0 < metrics["test"]["ndcg_at_100"]["mean"] <= 1
    assert len(metrics["validation"]["ndcg_at_100"]) == 2
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"]["kind"] == "cdae"
    assert config["model"]["cdae_heldout"] == "fit"
    assert config["model"]["cdae_fold_in_steps"] == 3
    assert config["model"]["weight_decay"] == 0.001
    model, _ = runs.load_scorer(str(run_dir))
    assert type(model) is CDAE
    assert model.n_users == datadir.count_users(small_dataset, "train")
