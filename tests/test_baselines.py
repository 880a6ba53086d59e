"""Popularity and EASE (tf_multvae.baselines, tf_multvae.ease) against
numpy references (references.ease, references.paper_metrics), on the
small synthetic report_dataset and on the real ML-1M."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import references
from conftest import IN_PROCESS
from conftest import shared_file

from data_prep import notebook_reference
from data_prep import pipeline
from tf_multvae import baselines
from tf_multvae import datadir
from tf_multvae import rundir
from tf_multvae.baselines import command
from tf_multvae.baselines import ease
from tf_multvae.reports import evaluation
from tf_multvae.reports import runs

PAPER_KEYS = ("recall_at_20", "recall_at_50", "ndcg_at_100")


@pytest.fixture(scope="module")
def train_x(report_dataset) -> np.ndarray:
    """The training clicks, read without tf_multvae.data, float64 dense."""
    records = references.read_split(report_dataset, "train")
    return references.clicks(
        [r["items"] for r in records],
        datadir.load_info(report_dataset).n_items,
    )


def test_popularity_scores_are_the_training_counts(report_dataset, train_x):
    model = baselines.fit({"kind": "popularity"}, report_dataset)
    np.testing.assert_array_equal(model.counts.numpy(), train_x.sum(axis=0))
    scores = model.score(np.array([[0, 3, -1], [-1, -1, -1]], np.int64))
    np.testing.assert_array_equal(scores.numpy()[1], train_x.sum(axis=0))


def test_ease_matches_the_closed_form_in_float64(report_dataset, train_x):
    model = baselines.fit({"kind": "ease", "l2": 50.0}, report_dataset)
    want = references.ease(train_x, 50.0)
    got = model.weights.numpy()
    assert got.dtype == np.float32
    np.testing.assert_array_equal(np.diag(got), 0.0)
    np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max())
    assert 0 <= model.residual <= ease.RESIDUAL_TOLERANCE
    # Scores are x_u B for the fold-in clicks x_u.
    ids = np.array([[1, 5, 9], [2, -1, -1]], np.int64)
    x = np.zeros((2, got.shape[0]))
    x[0, [1, 5, 9]] = x[1, 2] = 1
    np.testing.assert_allclose(model.score(ids).numpy(), x @ got, atol=1e-5)


def test_ease_in_blocks_equals_one_block(report_dataset, train_x, monkeypatch):
    """Blocks of 16 columns (as at MSD size) give the one-block answer."""
    x = baselines.train_matrix(report_dataset)
    whole, _ = ease.ease_weights(x, 50.0, None)
    monkeypatch.setattr(ease, "_TEMP_BYTES", 16 * 4 * max(x.dense_shape))
    blocks, _ = ease.ease_weights(x, 50.0, None)
    np.testing.assert_allclose(blocks.numpy(), whole.numpy(), atol=1e-6)


def test_memory_is_checked_before_reading_the_data(report_dataset, monkeypatch):
    # MSD: 41,140 items fit a 24 GB machine ...
    assert ease.memory_bytes(41_140, 33_600_000) < 20e9
    with pytest.raises(MemoryError, match=r"41,140 items needs about 1\d"):
        ease.check_memory(41_140, 33_600_000, available_bytes=8_000_000_000)

    # ... and a dataset that does not fit fails before any work.
    def never(*args):
        raise AssertionError("read the data before checking memory")

    monkeypatch.setattr(baselines, "train_matrix", never)
    with pytest.raises(MemoryError, match="GB is available"):
        baselines.fit({"kind": "ease", "l2": 500.0}, report_dataset, 1000)


def test_baselines_cli_writes_a_run_directory_like_train(
    tmp_path_factory, report_dataset, train_x, capsys
):
    run_dir = str(tmp_path_factory.mktemp("ease") / "run")
    code = command.main(
        [
            "--model",
            "ease",
            "--data-dir",
            report_dataset,
            "--run-dir",
            run_dir,
            "--l2",
            "50",
        ]
    )
    assert code == 0
    assert "ndcg_at_100" in capsys.readouterr().out
    result = rundir.read_json(run_dir, rundir.METRICS)
    for key in PAPER_KEYS:
        assert set(result["test"][key]) == {"mean", "stderr"}
        assert len(result["validation"][key]) == 1
    config = rundir.read_json(run_dir, rundir.CONFIG)
    assert config["model"] == {"kind": "ease", "l2": 50.0}
    # The test metrics equal numpy loops on numpy EASE scores.
    records = references.read_split(report_dataset, "test")
    n_items = datadir.load_info(report_dataset).n_items
    x = references.clicks([r["fold_in"] for r in records], n_items)
    want = references.paper_metrics(x @ references.ease(train_x, 50.0), records)
    table = runs.read_per_user(rundir.per_user_path(run_dir, "test"))
    for key in PAPER_KEYS:
        np.testing.assert_allclose(
            table[key][table["scored"]], want[key], atol=1e-5
        )
        assert result["test"][key]["mean"] == pytest.approx(
            want[key].mean(), abs=1e-6
        )
    # Another configuration in the same directory is refused.
    code = command.main(
        [
            "--model",
            "popularity",
            "--data-dir",
            report_dataset,
            "--run-dir",
            run_dir,
        ]
    )
    assert code == 2
    assert "holds a run with another configuration" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--l2", "0"], "--l2 must be > 0"),
        (["--data-dir", "/no/such/dir"], "--data-dir /no/such/dir does not"),
    ],
)
def test_bad_arguments_are_named(
    report_dataset, tmp_path, capsys, flags, message
):
    argv = [
        "--model",
        "ease",
        "--data-dir",
        report_dataset,
        "--run-dir",
        str(tmp_path / "r"),
    ]
    assert command.main(argv + flags) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_ml1m_numbers_match_an_independent_numpy_implementation(
    tmp_path_factory,
):
    """On the real ML-1M split (threshold 3.5, >= 5 clicks,
    600/600 held-out users, seed 98765) EASE (λ = 500) reaches test
    NDCG@100 0.423 ± 0.007 and popularity 0.216 ± 0.006, as a numpy
    implementation on the authors' split (pandas transcription) does."""
    path = shared_file("ml-1m/ratings_dense.tsv")
    out = tmp_path_factory.mktemp("ml1m") / "ml-1m"
    code = pipeline.main(
        [
            "--dataset",
            "csv",
            "--raw",
            str(path),
            "--sep",
            "tab",
            "--header",
            "--columns",
            "user,item,rating",
            "--heldout-users",
            "600",
            "--out",
            str(out),
            *IN_PROCESS,
        ]
    )
    assert code == 0
    raw = pd.read_csv(path, sep="\t")
    ref = notebook_reference.notebook_split(raw, 3.5, 5, 0, 600, 98765)
    items = {item: i for i, item in enumerate(sorted(ref["items"]))}

    def matrix(frame, users):
        row = {u: r for r, u in enumerate(users)}
        x = np.zeros((len(users), len(items)))
        x[frame["user"].map(row), frame["item"].map(items)] = 1.0
        return x

    train = matrix(ref["train_plays"], sorted(set(ref["train_plays"]["user"])))
    test_users = sorted(set(ref["test_fold_in"]["user"]))
    fold_in = matrix(ref["test_fold_in"], test_users)
    heldout = matrix(ref["test_heldout"], test_users)
    records = [
        {"fold_in": list(np.flatnonzero(f)), "heldout": list(np.flatnonzero(h))}
        for f, h in zip(fold_in, heldout)
    ]
    wanted = {
        "ease": references.paper_metrics(
            fold_in @ references.ease(train, 500.0), records
        ),
        "popularity": references.paper_metrics(
            np.broadcast_to(train.sum(0), fold_in.shape), records
        ),
    }
    expected = {"ease": (0.423, 0.007), "popularity": (0.216, 0.006)}
    for kind, config in (
        ("ease", {"kind": "ease", "l2": 500.0}),
        ("popularity", {"kind": "popularity"}),
    ):
        model = baselines.fit(config, str(out))
        ours = evaluation.evaluate(model, str(out), "test")
        want = wanted[kind]["ndcg_at_100"]
        mean = ours["ndcg_at_100"]["mean"]
        stderr = ours["ndcg_at_100"]["stderr"]
        assert ours["users"] == want.size == 600
        assert mean == pytest.approx(want.mean(), abs=5e-4)
        assert round(mean, 3) == expected[kind][0]
        assert round(stderr, 3) == expected[kind][1]
