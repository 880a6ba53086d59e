"""WMF (tf_multvae.baselines.wmf) against independent references: the
one-step fold-in against a dense numpy solve written from the formula
and against implicit's recalculate_user, the fit against implicit's own,
and one run of python -m tf_multvae.baselines against popularity."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import IN_PROCESS

from data_prep import pipeline
from tf_multvae import baselines
from tf_multvae import rundir
from tf_multvae.baselines import command
from tf_multvae.baselines import wmf
from tf_multvae.reports import evaluation

implicit_als = pytest.importorskip("implicit.cpu.als")
scipy_sparse = pytest.importorskip("scipy.sparse")

K, C, LAMBDA = 4, 5.0, 0.1


def sparse(x: np.ndarray) -> tf.SparseTensor:
    """A dense 0/1 matrix as the float32 SparseTensor fit() is given."""
    return tf.sparse.from_dense(tf.constant(x, tf.float32))


def padded(x: np.ndarray) -> np.ndarray:
    """Each row's non-zero columns, int64 ``[rows, max_len]``, -1 padded."""
    rows = [np.flatnonzero(r) for r in x]
    out = np.full((len(x), max(1, max(map(len, rows)))), -1, np.int64)
    for u, r in enumerate(rows):
        out[u, : len(r)] = r
    return out


def numpy_fold_in(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """u = (YᵀC_uY + λI)⁻¹ YᵀC_u p_u, C_u = diag(1 + (c − 1) p_u)."""
    out = []
    for p_u in p:
        c_u = np.diag(1.0 + (C - 1.0) * p_u)  # [I, I]
        a = y.T @ c_u @ y + LAMBDA * np.eye(y.shape[1])
        out.append(np.linalg.solve(a, y.T @ c_u @ p_u))
    return np.array(out)  # [users, K]


@pytest.fixture(scope="module")
def clicks() -> tuple[np.ndarray, np.ndarray]:
    """60 training users and 7 held-out users (one empty) × 25 items."""
    rng = np.random.default_rng(3)
    popularity = rng.uniform(0.05, 0.5, 25)
    train = (rng.random((60, 25)) < popularity).astype(np.float64)
    heldout = (rng.random((7, 25)) < popularity).astype(np.float64)
    heldout[3] = 0.0
    return train, heldout


@pytest.fixture(scope="module")
def model(clicks) -> wmf.WMF:
    m = wmf.WMF(factors=K, confidence=C, regularization=LAMBDA, seed=7)
    m.fit(sparse(clicks[0]))
    return m


def test_the_fit_is_implicits_als_with_alpha_c(clicks, model):
    als = implicit_als.AlternatingLeastSquares(
        factors=K, regularization=LAMBDA, alpha=C, random_state=7
    )
    als.fit(scipy_sparse.csr_matrix(clicks[0]), show_progress=False)
    assert model.item_factors.shape == (25, K)
    np.testing.assert_allclose(
        model.item_factors, als.item_factors, rtol=1e-4, atol=1e-5
    )


def test_fold_in_is_one_exact_least_squares_step(clicks, model):
    got = model.fold_in(padded(clicks[1]))  # [7, K]
    want = numpy_fold_in(model.item_factors.astype(np.float64), clicks[1])
    assert got.shape == (7, K)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(got[3], 0.0)  # no fold-in items


def test_fold_in_equals_implicits_recalculate_user(clicks, model):
    als = implicit_als.AlternatingLeastSquares(
        factors=K, regularization=LAMBDA, alpha=C
    )
    als.item_factors = model.item_factors
    want = als.recalculate_user(
        np.arange(7), scipy_sparse.csr_matrix(clicks[1], dtype=np.float32)
    )
    got = model.fold_in(tf.constant(padded(clicks[1])))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_scores_are_the_factors_times_item_factors(clicks, model):
    ids = padded(clicks[1])
    y = model.item_factors.astype(np.float64)
    want = numpy_fold_in(y, clicks[1]) @ y.T  # [7, 25]

    # As the evaluation calls it: inside a tf.function, any batch width.
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int64)])
    def traced(item_ids):
        return model.score(item_ids)

    for scores in (model.score(tf.constant(ids)), traced(ids)):
        assert scores.dtype == tf.float32
        assert scores.shape == (7, 25)
        np.testing.assert_allclose(scores.numpy(), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, flag",
    [
        ({"factors": 0}, "--factors must be an integer >= 1, got 0"),
        ({"factors": 2.5}, "--factors"),
        ({"confidence": 0.0}, "--confidence must be > 0, got 0.0"),
        ({"confidence": float("nan")}, "--confidence"),
        ({"regularization": -1.0}, "--regularization must be > 0"),
        ({"iterations": 0}, "--iterations must be an integer >= 1"),
        ({"seed": -1}, "--seed must be an integer >= 0"),
    ],
)
def test_bad_hyperparameters_name_the_flag(kwargs, flag):
    with pytest.raises(ValueError, match=flag):
        wmf.WMF(**kwargs)


def test_config_round_trips_through_make(model):
    assert model.config == {
        "kind": "wmf",
        "factors": K,
        "confidence": C,
        "regularization": LAMBDA,
        "iterations": 15,
        "seed": 7,
    }
    again = baselines.make(model.config)
    assert isinstance(again, wmf.WMF)
    assert again.config == model.config
    assert baselines.make({"kind": "wmf"}).config == {
        "kind": "wmf",
        "factors": 100,
        "confidence": 10.0,
        "regularization": 100.0,
        "iterations": 15,
        "seed": 98765,
    }
    assert model.report() == {}


def test_memory_is_checked_with_the_figure():
    model = wmf.WMF(factors=200)
    # ML-20M: 20,108 items and 10 million clicks need under 3 GB (the
    # user factors counted for 2 million users, at 5 clicks each) ...
    assert wmf.memory_bytes(20_108, 10_000_000, 200) < 3e9
    model.check(20_108, 10_000_000, available_bytes=4_000_000_000)
    model.check(20_108, 10_000_000, available_bytes=None)
    # ... and do not fit in 1 GB.
    with pytest.raises(MemoryError, match=r"up to about 2\.\d\d GB.*1\.00 GB"):
        model.check(20_108, 10_000_000, available_bytes=1_000_000_000)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> str:
    """A synthetic prepared dataset: 600 users, ~200 items."""
    out = str(tmp_path_factory.mktemp("wmf-data") / "synthetic")
    code = pipeline.main(
        ["--dataset", "synthetic", "--synthetic-users", "600",
         "--synthetic-items", "200", "--out", out, *IN_PROCESS]
    )  # fmt: skip
    assert code == 0
    return out


@pytest.mark.slow
def test_command_writes_a_run_that_beats_popularity(tmp_path, dataset):
    run_dir = str(tmp_path / "wmf")
    assert command.main(
        ["--model", "wmf", "--data-dir", dataset, "--run-dir", run_dir,
         "--factors", "50", "--regularization", "1"]
    ) == 0  # fmt: skip
    config = rundir.read_json(run_dir, rundir.CONFIG)
    assert config["model"] == {
        "kind": "wmf",
        "factors": 50,
        "confidence": 10.0,
        "regularization": 1.0,
        "iterations": 15,
        "seed": 98765,
    }
    result = rundir.read_json(run_dir, rundir.METRICS)
    assert set(result["test"]["ndcg_at_100"]) == {"mean", "stderr"}
    with open(tmp_path / "wmf" / "per_user-test.csv") as f:
        assert len(f.readlines()) > 1  # a header and the test users
    popularity = baselines.fit({"kind": "popularity"}, dataset)
    floor = evaluation.evaluate(popularity, dataset, "test")["ndcg_at_100"]
    # Measured: 0.32 against popularity's 0.26 (standard errors 0.03).
    ndcg = result["test"]["ndcg_at_100"]["mean"]
    assert ndcg > floor["mean"] + 0.03, (ndcg, floor)
