"""Table 3's protocol end to end: prepare, train, select, report.

ML-100k (../shared/data) with ``--protocol leave-one-out``: Mult-DAE
trained a few epochs, selected by validation NDCG@10 over the candidates,
beats popularity's HR@10 and NDCG@10 under the same protocol. Tiny NCF
files (no validation split): a fixed number of epochs, the last kept.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import IN_PROCESS
from conftest import shared_file

from data_prep import pipeline
from tf_multvae import train
from tf_multvae.reports import table3

EPOCHS = 8


@pytest.fixture(scope="module")
def ml100k(tmp_path_factory) -> str:
    raw = shared_file("ml-100k/u.data")
    out = tmp_path_factory.mktemp("loo") / "ml-100k"
    code = pipeline.main(
        ["--dataset", "ml-100k", "--raw", str(raw), "--protocol",
         "leave-one-out", "--out", str(out), *IN_PROCESS]
    )  # fmt: skip
    assert code == 0
    return str(out)


@pytest.fixture(scope="module")
def report(ml100k, tmp_path_factory) -> dict:
    runs_root = tmp_path_factory.mktemp("table3") / "runs"
    code = table3.main(
        ["--dataset", "synthetic", "--data-dir", ml100k, "--runs-root",
         str(runs_root), "--rows", "dae,popularity", "--epochs",
         str(EPOCHS), "--batch-size", "100"]
    )  # fmt: skip
    assert code == 0
    with open(runs_root / "table3.json") as f:
        return json.load(f)


@pytest.mark.slow  # trains on the real ML-100K
def test_dae_beats_popularity_on_ml100k(report):
    rows = {row["model"]: row for row in report["rows"]}
    assert report["columns"] == ["hr_at_10", "ndcg_at_10"]
    for column in report["columns"]:
        dae = rows["dae"]["test"][column]["mean"]
        popularity = rows["popularity"]["test"][column]["mean"]
        assert dae > popularity + 0.02, (column, dae, popularity)
    assert rows["dae"]["users"] == rows["popularity"]["users"] == 943


@pytest.mark.slow  # trains on the real ML-100K
def test_the_best_epoch_is_the_best_validation_ndcg_at_10(report):
    run_dir = {r["model"]: r["run_dir"] for r in report["rows"]}["dae"]
    with open(os.path.join(run_dir, "metrics.json")) as f:
        result = json.load(f)
    history = result["validation"]["ndcg_at_10"]
    assert len(history) == EPOCHS
    assert set(result["validation"]) == {"ndcg_at_10", "hr_at_10"}
    assert result["best_epoch"] == int(np.argmax(history)) + 1


@pytest.mark.slow  # trains on the real ML-100K
def test_the_report_lists_what_it_ran(report, ml100k):
    text = open(os.path.join(report["runs_root"], "table3.md")).read()
    assert "HR@10" in text and "| Mult-DAE |" in text
    assert report["quoted"] == []  # not one of NCF's datasets
    quoted = table3.paper.table3("ncf-ml-1m")
    assert [(q["hr_at_10"], q["ndcg_at_10"]) for q in quoted[:3]] == [
        (0.705, 0.426),
        (0.730, 0.447),
        (0.722, 0.446),
    ]


def test_table3_refuses_a_strong_generalization_dataset(
    small_dataset, tmp_path, capsys
):
    code = table3.main(
        ["--dataset", "synthetic", "--data-dir", small_dataset,
         "--runs-root", str(tmp_path / "runs")]
    )  # fmt: skip
    assert code == 2
    assert "leave-one-out" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "runs")


def _ncf_files(directory) -> str:
    """Six users over twelve items in NCF's three-file layout."""
    rng = np.random.default_rng(3)
    train, test, negatives = [], [], []
    for user in range(6):
        items = rng.choice(12, 6, replace=False)
        train += [f"{user}\t{i}\t4\t0" for i in sorted(items[1:])]
        test.append(f"{user}\t{items[0]}\t5\t0")
        others = sorted(set(range(12)) - set(items.tolist()))
        negatives.append(
            f"({user},{items[0]})\t" + "\t".join(map(str, others[:4]))
        )
    prefix = os.path.join(directory, "tiny")
    for suffix, lines in (
        ("train.rating", train),
        ("test.rating", test),
        ("test.negative", negatives),
    ):
        with open(f"{prefix}.{suffix}", "w") as f:
            f.write("\n".join(lines) + "\n")
    return prefix


def test_without_validation_the_last_of_fixed_epochs_is_kept(tmp_path):
    data_dir = str(tmp_path / "data")
    argv = ["--dataset", "ncf", "--raw", _ncf_files(tmp_path), "--out",
            data_dir, *IN_PROCESS]  # fmt: skip
    assert pipeline.main(argv) == 0
    run_dir = tmp_path / "dae"
    code = train.main(
        ["--dataset", "ncf-ml-1m", "--model", "dae", "--data-dir", data_dir,
         "--run-dir", str(run_dir), "--epochs", "3", "--latent-dim", "4"]
    )  # fmt: skip
    assert code == 0
    result = json.loads((run_dir / "metrics.json").read_text())
    assert result["best_epoch"] == 3 and result["validation"] == {}
    assert result["test"]["users"] == 6
    assert set(result["test"]) >= {"hr_at_10", "ndcg_at_10"}
    # Five candidates each: every held-out item is within the top 10.
    assert result["test"]["hr_at_10"]["mean"] == 1.0
