"""``python -m tf_multvae.reports.table2``: rows run or collected, the
paper's layout, the paper's figures beside ours on its datasets."""

from __future__ import annotations

import json
import os

import pytest

from tf_multvae import rundir
from tf_multvae.reports import table2

TINY = ["--epochs", "1", "--hidden-dims", "16", "--latent-dim", "8",
        "--batch-size", "100"]  # fmt: skip


@pytest.mark.slow
def test_runs_the_rows_then_collects_them(report_dataset, tmp_path, capsys):
    root = str(tmp_path / "t2")
    argv = [
        "--dataset",
        "synthetic",
        "--data-dir",
        report_dataset,
        "--runs-root",
        root,
        "--rows",
        "vae,ease,popularity",
        "--no-grid",
        *TINY,
    ]
    assert table2.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| model | Recall@20 | Recall@50 | NDCG@100 |" in printed
    with open(os.path.join(root, "table2.json")) as f:
        result = json.load(f)
    assert [r["name"] for r in result["rows"]] == [
        "Mult-VAE^PR",
        "EASE",
        "Popularity",
    ]
    for row in result["rows"]:
        own = rundir.read_json(row["run_dir"], rundir.METRICS)["test"]
        for name in ("recall_at_20", "recall_at_50", "ndcg_at_100"):
            assert row["test"][name] == own[name]
            cell = f"{own[name]['mean']:.3f} ± {own[name]['stderr']:.3f}"
            assert cell in printed
    assert open(os.path.join(root, "table2.md")).read().strip() in printed
    # Finished rows are collected, not run again.
    assert table2.main(argv + ["--collect-only"]) == 0
    assert "==" not in capsys.readouterr().out


def test_missing_rows_are_named_and_exit_1(report_dataset, tmp_path, capsys):
    argv = [
        "--dataset",
        "synthetic",
        "--data-dir",
        report_dataset,
        "--runs-root",
        str(tmp_path / "none"),
        "--rows",
        "dae",
        "--collect-only",
    ]
    assert table2.main(argv) == 1
    captured = capsys.readouterr()
    assert "not run: not run yet" in captured.out
    assert "not run: dae" in captured.err


def test_the_papers_figures_stand_beside_ours_on_its_datasets():
    ours = {"mean": 0.41, "stderr": 0.002}
    results = {
        kind: {
            "metrics": {
                "test": {c: ours for c in table2.COLUMNS} | {"users": 10}
            },
            "run_dir": "r",
            "why": None,
        }
        for kind in ("vae", "slim")
    }
    text = table2.markdown(table2.table(results, "msd"))
    # Liang et al., Table 2, MSD: Mult-VAE^PR 0.266 / 0.364 / 0.316;
    # SLIM did not finish there.
    assert (
        "| Mult-VAE^PR | 0.410 ± 0.002 | 0.410 ± 0.002 | 0.410 ± 0.002 | "
        "0.266 | 0.364 | 0.316 |" in text
    )
    assert "| SLIM |" in text and "| — | — | — |" in text
    netflix = table2.markdown(table2.table(results, "netflix"))
    assert "0.351 | 0.444 | 0.386 |" in netflix  # Mult-VAE^PR, Netflix
    assert "(approx.)" in netflix  # SLIM's Netflix row
    assert "paper" not in table2.markdown(table2.table(results, "ml-1m"))


def test_unknown_rows_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        table2.main(["--dataset", "ml-1m", "--rows", "vae,ncf"])
    assert exit_.value.code == 2
    assert "--rows" in capsys.readouterr().err


def test_no_grid_takes_all_rows_or_the_rows_named():
    rows = ("vae", "wmf", "slim", "ease")
    assert table2._gridded(rows, None) == rows
    assert table2._gridded(rows, "all") == ()
    assert table2._gridded(rows, ("slim",)) == ("vae", "wmf", "ease")
