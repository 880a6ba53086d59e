"""``python -m tf_multvae.baselines --grid``: every point, the best by
validation NDCG@100, resumable after a kill."""

from __future__ import annotations

import json
import os

import pytest

from tf_multvae import rundir
from tf_multvae.baselines import command
from tf_multvae.baselines import grid


def test_points_are_the_product_of_the_axes():
    wmf = grid.points("wmf")
    assert len(wmf) == 6 * 2
    assert {(p["confidence"], p["factors"]) for p in wmf} == {
        (c, k) for c in (2, 5, 10, 30, 50, 100) for k in (100, 200)
    }
    slim = grid.points("slim", {"max_iter": 7})
    assert len(slim) == 16 and all(p["max_iter"] == 7 for p in slim)
    assert grid.point_name({"l2": 5.0, "l1": 0.1}) == "l1=0.1,l2=5"


@pytest.mark.parametrize(
    "kind,fixed,message",
    [
        ("popularity", None, "popularity has no grid"),
        ("ease", {"l2": 3.0}, "--grid varies l2"),
    ],
)
def test_what_has_no_grid_is_refused(kind, fixed, message):
    with pytest.raises(ValueError, match=message):
        grid.points(kind, fixed)


def _validation(point_dir: str) -> float:
    with open(os.path.join(point_dir, rundir.METRICS)) as f:
        return json.load(f)["validation"]["ndcg_at_100"][-1]


@pytest.mark.slow
def test_grid_selects_by_validation_and_resumes(
    report_dataset, tmp_path, capsys
):
    run_dir = str(tmp_path / "ease-grid")
    argv = ["--model", "ease", "--grid", "--data-dir", report_dataset,
            "--run-dir", run_dir]  # fmt: skip
    assert command.main(argv) == 0
    points_dir = os.path.join(run_dir, grid.POINTS)
    names = sorted(os.listdir(points_dir))
    assert names == sorted(grid.point_name(p) for p in grid.points("ease"))
    # The best point is the arg-max of the points' own validation files.
    scores = {n: _validation(os.path.join(points_dir, n)) for n in names}
    best = max(scores, key=scores.get)
    with open(os.path.join(run_dir, grid.GRID_JSON)) as f:
        table = json.load(f)
    assert table["best"]["point"] == best
    assert {r["point"]: r["validation"] for r in table["rows"]} == scores
    for name in (rundir.CONFIG, rundir.METRICS):
        with open(os.path.join(run_dir, grid.BEST, name)) as a:
            with open(os.path.join(points_dir, best, name)) as b:
                assert json.load(a) == json.load(b)
    assert "(best)" in open(os.path.join(run_dir, grid.GRID_MD)).read()
    capsys.readouterr()

    # Killed before the last point finished: only that point is fitted.
    last = os.path.join(points_dir, names[-1])
    os.remove(os.path.join(last, rundir.METRICS))
    before = {
        n: os.path.getmtime(os.path.join(points_dir, n, rundir.METRICS))
        for n in names[:-1]
    }
    assert command.main(argv) == 0
    assert capsys.readouterr().out.count("== ease") == 1
    for n, mtime in before.items():
        path = os.path.join(points_dir, n, rundir.METRICS)
        assert os.path.getmtime(path) == mtime
    assert _validation(last) == pytest.approx(scores[names[-1]], abs=1e-6)


def test_another_grid_in_the_same_directory_is_refused(
    report_dataset, tmp_path, capsys
):
    run_dir = str(tmp_path / "g")
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, "notes.txt"), "w") as f:
        f.write("mine")
    argv = ["--model", "ease", "--grid", "--data-dir", report_dataset,
            "--run-dir", run_dir]  # fmt: skip
    assert command.main(argv) == 2
    assert "holds no grid-config.json" in capsys.readouterr().err
    assert os.listdir(run_dir) == ["notes.txt"]  # nothing written


@pytest.mark.slow
def test_train_grid_trains_cdae_over_its_weight_decays(
    report_dataset, tmp_path
):
    from tf_multvae import train

    run_dir = str(tmp_path / "cdae-grid")
    argv = ["--dataset", "synthetic", "--model", "cdae", "--grid",
            "--data-dir", report_dataset, "--run-dir", run_dir, "--epochs", "1",
            "--batch-size", "100"]  # fmt: skip
    assert train.main(argv) == 0
    with open(os.path.join(run_dir, grid.GRID_JSON)) as f:
        table = json.load(f)
    decays = [r["hyperparameters"]["weight_decay"] for r in table["rows"]]
    assert decays == list(grid.GRIDS["cdae"]["weight_decay"])
    points_dir = os.path.join(run_dir, grid.POINTS)
    for row in table["rows"]:
        config = rundir.read_json(
            os.path.join(points_dir, row["point"]), rundir.CONFIG
        )
        assert (
            config["model"]["weight_decay"]
            == row["hyperparameters"]["weight_decay"]
        )
        assert row["validation"] == pytest.approx(
            _validation(os.path.join(points_dir, row["point"]))
        )
    best = max(table["rows"], key=lambda r: r["validation"])
    assert table["best"]["point"] == best["point"]
    # A grid dimension set by flag as well is refused by name.
    assert train.main(argv + ["--weight-decay", "0.1"]) == 2
