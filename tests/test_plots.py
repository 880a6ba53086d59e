"""``python -m tf_multvae.reports.plots``: the curves it draws come from the
runs (conftest's vae_run, dae_run and ease_run)."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from tf_multvae import rundir
from tf_multvae.reports import compare
from tf_multvae.reports import plots
from tf_multvae.reports import runs

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def three_runs(vae_run, dae_run, ease_run) -> tuple[str, str, str]:
    return vae_run, dae_run, ease_run


def is_png(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == PNG


def test_plots_cli_writes_validation_and_beta_pictures(
    three_runs, tmp_path, capsys
):
    vae, dae, ease = three_runs
    out = str(tmp_path / "plots")
    code = plots.main(
        [vae, dae, ease, "--out", out, "--labels", "vae,dae,ease"]
    )
    assert code == 0
    assert is_png(os.path.join(out, "validation_ndcg_at_100.png"))
    assert is_png(os.path.join(out, "beta_kl-vae.png"))
    assert not os.path.exists(os.path.join(out, "beta_kl-dae.png"))
    assert "beta_kl-vae.png" in capsys.readouterr().out


def test_the_curves_are_the_runs_numbers(three_runs):
    vae, _, ease = three_runs
    scalars = runs.read_scalars(vae)
    metrics = json.loads(open(os.path.join(vae, rundir.METRICS)).read())
    curve = plots._validation(vae, scalars)
    assert curve == metrics["validation"]["ndcg_at_100"] and len(curve) == 2
    np.testing.assert_allclose(
        scalars["validation/ndcg_at_100"][1], curve, rtol=1e-6
    )
    # β_t logged at update t is min(cap, (t - 1) / total) (config: 20).
    steps, beta = scalars["train/beta"]
    np.testing.assert_array_equal(steps, np.arange(1, steps.size + 1))
    np.testing.assert_allclose(beta, np.minimum(0.2, (steps - 1) / 20))
    assert scalars["train/kl"][0].size == steps.size
    assert len(plots._validation(ease, runs.read_scalars(ease))) == 1


def test_figure3_draws_an_empty_group(tmp_path):
    users = [f"u{i}" for i in range(20)]
    counts = np.array([5] * 12 + list(range(6, 14)))  # ties: empty groups
    table = {
        "user_id": np.array(users),
        "n_fold_in": counts,
        "n_heldout": np.ones(20, np.int64),
        "scored": np.ones(20, bool),
        "ndcg_at_100": np.linspace(0.1, 0.6, 20),
    }
    result = compare.compare(table, table)
    assert any(row["users"] == 0 for row in result["groups"])
    path = plots.figure3(result, ("a", "b"), str(tmp_path / "f.png"))
    assert is_png(path)


def test_without_matplotlib_the_message_says_what_to_install(
    three_runs, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert plots.main([three_runs[0], "--out", str(tmp_path)]) == 2
    assert "pip install 'tf-multvae[report]'" in capsys.readouterr().err


def test_bad_arguments(three_runs, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        plots.main([three_runs[0], "--labels", "a,b"])
    assert exit_.value.code == 2
    assert plots.main([str(tmp_path)]) == 2
    assert "neither metrics.json nor validation logs" in (
        capsys.readouterr().err
    )
