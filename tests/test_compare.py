"""Figure 3 (``python -m tf_multvae.reports.compare``): grouping, paired t-tests
and the command end to end, against numpy and scipy references."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import references
from scipy import stats

from tf_multvae import rundir
from tf_multvae.reports import compare
from tf_multvae.reports import runs


def table(users, n_fold_in, ndcg, n_heldout=None) -> dict:
    """A per-user table as runs.read_per_user returns it."""
    n = len(users)
    n_heldout = np.ones(n, np.int64) if n_heldout is None else n_heldout
    return {
        "user_id": np.asarray(users, str),
        "n_fold_in": np.asarray(n_fold_in, np.int64),
        "n_heldout": np.asarray(n_heldout, np.int64),
        "scored": np.asarray(n_heldout) > 0,
        "ndcg_at_100": np.asarray(ndcg, np.float64),
    }


@pytest.mark.parametrize("seed", [0, 1])
def test_activity_groups_are_a_numpy_quantile_split(seed):
    rng = np.random.default_rng(seed)
    counts = rng.geometric(0.05, size=301)  # many ties, a long tail
    group, edges = compare.activity_groups(counts)
    np.testing.assert_array_equal(group, references.quantile_groups(counts))
    np.testing.assert_array_equal(
        edges, np.quantile(counts, [0, 0.2, 0.4, 0.6, 0.8, 1])
    )
    # Distinct counts: five groups of a fifth of the users each.
    group, _ = compare.activity_groups(rng.permutation(100))
    np.testing.assert_array_equal(np.bincount(group), [20] * 5)


def test_paired_t_test_matches_scipy_on_hand_made_scores():
    a = np.array([0.50, 0.40, 0.30, 0.62, 0.55, 0.45, 0.70, 0.38])
    b = np.array([0.45, 0.41, 0.20, 0.50, 0.52, 0.40, 0.61, 0.30])
    got = compare.paired(a, b)
    want = stats.ttest_rel(a, b)
    assert got["t"] == pytest.approx(want.statistic)
    assert got["p"] == pytest.approx(want.pvalue)
    d = a - b  # and by hand: mean(d) / (sd(d) / sqrt(n))
    assert got["t"] == pytest.approx(
        d.mean() / (d.std(ddof=1) / np.sqrt(d.size))
    )
    assert got["a"]["mean"] == pytest.approx(a.mean())
    assert got["a"]["stderr"] == pytest.approx(a.std() / np.sqrt(a.size))
    assert got["stars"] == compare.stars(want.pvalue) == "**"  # p = 0.0036
    assert [compare.stars(p) for p in (0.0009, 0.009, 0.049, 0.05)] == [
        "***",
        "**",
        "*",
        "",
    ]
    same = compare.paired(a, a)  # no variance: no test
    assert np.isnan(same["p"]) and same["stars"] == ""


def test_users_are_paired_by_id_not_by_position():
    rng = np.random.default_rng(3)
    users = [f"u{i}" for i in range(50)]
    counts = rng.integers(5, 60, 50)
    a_scores, b_scores = rng.random(50), rng.random(50)
    order = rng.permutation(50)
    a = table(users, counts, a_scores)
    b = table(np.array(users)[order], counts[order], b_scores[order])
    got = compare.compare(a, b)
    want = compare.compare(a, table(users, counts, b_scores))
    assert got == want
    group = references.quantile_groups(counts)
    for g, row in enumerate(got["groups"]):
        members = group == g
        assert row["users"] == members.sum()
        want_t = stats.ttest_rel(a_scores[members], b_scores[members])
        assert row["p"] == pytest.approx(want_t.pvalue)
    with pytest.raises(ValueError, match="different users"):
        compare.compare(a, table(users[:-1], counts[:-1], b_scores[:-1]))


def test_users_without_heldout_items_are_left_out():
    heldout = np.array([1, 0, 2, 3, 0, 1, 1, 2, 1, 1, 4, 2])
    a = table(
        [f"u{i}" for i in range(12)],
        np.arange(12) + 5,
        np.linspace(0, 1, 12),
        heldout,
    )
    got = compare.compare(a, a)
    assert got["all"]["users"] == 10
    assert sum(row["users"] for row in got["groups"]) == 10


@pytest.fixture(scope="module")
def two_runs(vae_run, popularity_run) -> tuple[str, str]:
    return vae_run, popularity_run


def test_compare_cli_end_to_end(two_runs, tmp_path, capsys):
    vae, popularity = two_runs
    out = str(tmp_path / "figure3")
    code = compare.main(
        [vae, popularity, "--out", out, "--labels", "Mult-VAE,popularity"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "all users" in printed and "Mult-VAE" in printed
    result = json.loads(open(os.path.join(out, "compare.json")).read())
    with open(os.path.join(out, "compare.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # Recomputed from the two per-user files with numpy and scipy.
    a = runs.read_per_user(rundir.per_user_path(vae, "test"))
    b = runs.read_per_user(rundir.per_user_path(popularity, "test"))
    assert list(a["user_id"]) == list(b["user_id"])
    scored = a["scored"]
    group = references.quantile_groups(a["n_fold_in"][scored])
    for g, row in enumerate(result["groups"]):
        members = group == g
        x = a["ndcg_at_100"][scored][members]
        y = b["ndcg_at_100"][scored][members]
        assert row["users"] == members.sum()
        assert row["a"]["mean"] == pytest.approx(x.mean())
        assert row["b"]["stderr"] == pytest.approx(y.std() / np.sqrt(y.size))
        assert row["p"] == pytest.approx(stats.ttest_rel(x, y).pvalue)
    assert result["all"]["users"] == scored.sum()
    assert result["runs"]["a"]["label"] == "Mult-VAE"


def test_a_run_without_per_user_file_is_evaluated_first(two_runs, tmp_path):
    vae, popularity = two_runs
    os.remove(rundir.per_user_path(vae, "test"))
    assert compare.main([vae, popularity, "--out", str(tmp_path)]) == 0
    assert os.path.exists(rundir.per_user_path(vae, "test"))


def test_not_a_run_directory(two_runs, tmp_path, capsys):
    assert compare.main([two_runs[0], str(tmp_path)]) == 2
    assert "not a finished run directory" in capsys.readouterr().err
