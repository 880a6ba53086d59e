"""Tests for data_prep.synthetic: file format, determinism, planted taste."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import references

from data_prep import synthetic


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"rating": str})


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    """2,000 users x 500 items, written in many chunks."""
    path = tmp_path_factory.mktemp("synthetic") / "ratings.csv"
    mp = pytest.MonkeyPatch()
    mp.setattr(synthetic, "_ROWS_PER_CHUNK", 20_000)
    stats = synthetic.write_ratings_csv(
        str(path), n_users=2_000, n_items=500, seed=3
    )
    mp.undo()
    return path, stats


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    paths = [tmp_path / f"{i}.csv" for i in range(3)]
    for path, seed in zip(paths, (7, 7, 8)):
        synthetic.write_ratings_csv(
            str(path), n_users=300, n_items=200, clicks_per_user=20, seed=seed
        )
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_layout_matches_movielens(small_csv):
    path, stats = small_csv
    with open(path, "rb") as f:
        assert f.readline() == b"userId,movieId,rating,timestamp\n"
    df = _read(path)
    assert list(df.columns) == ["userId", "movieId", "rating", "timestamp"]
    for col in ("userId", "movieId", "timestamp"):
        assert df[col].dtype == np.int64
    assert set(df["rating"]) <= set(synthetic.RATINGS)
    assert synthetic.RATINGS == tuple(f"{r / 2:.1f}" for r in range(1, 11))
    users = df["userId"].to_numpy()
    assert (np.diff(users) >= 0).all()  # grouped by user, ascending
    assert set(users) == set(range(1, 2_001))
    assert df["movieId"].between(1, 500).all()
    assert not df.duplicated(["userId", "movieId"]).any()
    same_user = np.diff(users) == 0
    assert (np.diff(df["timestamp"].to_numpy())[same_user] > 0).all()
    assert df["timestamp"].between(10**9, 10**10 - 1).all()
    assert stats == {
        "rows": len(df),
        "users": 2_000,
        "items": df["movieId"].nunique(),
        "clicks": int((df["rating"].astype(float) > 3.5).sum()),
    }


def test_filters_and_threshold_matter(small_csv):
    df = _read(small_csv[0])
    df["rating"] = df["rating"].astype(float)
    clicks = df[df["rating"] > 3.5]
    assert 0.3 < len(clicks) / len(df) < 0.7
    per_user = clicks.groupby("userId").size().reindex(range(1, 2_001))
    assert (per_user.fillna(0) < 5).sum() >= 10  # the min-clicks filter bites
    per_item = df.groupby("movieId").size().reindex(range(1, 501))
    assert (per_item.fillna(0) < 5).sum() >= 1  # some items are rare
    assert 45 < len(df) / 2_000 < 65  # ~60 per user, capped at 250


def test_collaborative_model_beats_popularity(small_csv):
    df = _read(small_csv[0])
    df = df[df["rating"].astype(float) > 3.5]
    x = np.zeros((2_000, 500))
    x[df["userId"] - 1, df["movieId"] - 1] = 1.0
    rng = np.random.default_rng(0)
    eligible = np.flatnonzero(x.sum(axis=1) >= 5)
    test_users = rng.choice(eligible, 300, replace=False)
    heldout = {}
    for u in test_users:
        clicked = np.flatnonzero(x[u])
        heldout[u] = set(
            rng.choice(clicked, int(0.2 * clicked.size), replace=False)
        )
        x[u, list(heldout[u])] = 0.0

    # EASE (Steck 2019): B = I - P diag(1 / diag P), P = (X^T X + 100 I)^-1.
    b = references.ease(x, 100.0)
    popularity = x.sum(axis=0)
    ease, pop = [], []
    for u in test_users:
        fold_in = np.flatnonzero(x[u])
        for scores, out in ((x[u] @ b, ease), (popularity, pop)):
            ranked = references.ranking(scores, fold_in)
            out.append(references.ndcg(ranked, heldout[u], 100))
    print(f"NDCG@100 EASE {np.mean(ease):.3f} popularity {np.mean(pop):.3f}")
    assert np.mean(ease) >= 1.5 * np.mean(pop)
