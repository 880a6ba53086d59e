"""``python -m tf_multvae.reports.table4`` end to end: six tiny one-epoch
runs on conftest's report_dataset."""

from __future__ import annotations

import json
import os

import pytest
from conftest import TINY

from tf_multvae.reports import table4

ONE_EPOCH = ["--epochs", "1", *TINY]
NAMES = [
    f"{model}-{likelihood}"
    for model in ("vae", "dae")
    for likelihood in ("multinomial", "gaussian", "logistic")
]


@pytest.fixture(scope="module")
def table_run(tmp_path_factory, report_dataset):
    """Trains the six runs once; returns (runs_root, data_dir, exit code)."""
    data_dir = report_dataset
    root = str(tmp_path_factory.mktemp("table4") / "runs")
    code = table4.main(
        [
            "--dataset",
            "synthetic",
            "--data-dir",
            data_dir,
            "--runs-root",
            root,
            *ONE_EPOCH,
        ]
    )
    return root, data_dir, code


@pytest.mark.slow
def test_trains_six_runs_and_prints_the_table(table_run):
    root, _, code = table_run
    assert code == 0
    result = json.loads(open(os.path.join(root, "table4.json")).read())
    assert [f"{r['model']}-{r['likelihood']}" for r in result["rows"]] == NAMES
    for row in result["rows"]:
        run_dir = os.path.join(root, f"{row['model']}-{row['likelihood']}")
        config = json.loads(open(os.path.join(run_dir, "config.json")).read())
        assert config["model"]["kind"] == row["model"]
        assert config["model"]["likelihood"] == row["likelihood"]
        assert config["train"]["epochs"] == 1
        metrics = json.loads(open(os.path.join(run_dir, "metrics.json")).read())
        for column in ("recall_at_20", "recall_at_50", "ndcg_at_100"):
            assert row["test"][column] == metrics["test"][column]
    text = open(os.path.join(root, "table4.md")).read()
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[0].split("|")[3:6] == [
        " Recall@20 ",
        " Recall@50 ",
        " NDCG@100 ",
    ]
    assert len(lines) == 1 + 6
    assert lines[1].startswith("| Mult-VAE^PR | multinomial | ")
    assert lines[2].startswith("|  | gaussian | ")
    assert lines[4].startswith("| Mult-DAE | multinomial | ")
    mean = result["rows"][0]["test"]["ndcg_at_100"]["mean"]
    assert f"{mean:.3f} ± " in lines[1]


@pytest.mark.slow
def test_finished_runs_are_collected_not_retrained(table_run, capsys):
    root, data_dir, _ = table_run
    before = {
        n: os.path.getmtime(os.path.join(root, n, "metrics.json"))
        for n in NAMES
    }
    for extra in ([], ["--collect-only"]):
        code = table4.main(
            [
                "--dataset",
                "synthetic",
                "--data-dir",
                data_dir,
                "--runs-root",
                root,
                *ONE_EPOCH,
                *extra,
            ]
        )
        assert code == 0
        assert "training in" not in capsys.readouterr().out
    after = {
        n: os.path.getmtime(os.path.join(root, n, "metrics.json"))
        for n in NAMES
    }
    assert after == before


@pytest.mark.slow
def test_collect_only_reports_missing_runs(table_run, tmp_path, capsys):
    _, data_dir, _ = table_run
    code = table4.main(
        [
            "--dataset",
            "synthetic",
            "--data-dir",
            data_dir,
            "--runs-root",
            str(tmp_path),
            "--collect-only",
        ]
    )
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out.count("not run") == 3 * 6
    assert "not run: vae-multinomial" in captured.err


def test_flags_it_sets_itself_are_refused(tmp_path):
    with pytest.raises(SystemExit) as exit_:
        table4.main(
            [
                "--dataset",
                "synthetic",
                "--runs-root",
                str(tmp_path),
                "--model",
                "dae",
            ]
        )
    assert exit_.value.code == 2
