"""A baseline's hyperparameter grid, chosen on the validation users.

``python -m tf_multvae.baselines --model wmf --grid --data-dir D
--run-dir R`` fits every point of the model's grid (the paper's, Section
4.3: WMF c ∈ {2, 5, 10, 30, 50, 100} × K ∈ {100, 200}; SLIM λ, β ∈ {0.1,
0.5, 1, 5}; EASE λ over a log grid), each in its own run directory
``R/points/NAME`` written by the baselines command, and selects the point
with the best validation NDCG@100 (the same metric code and split that
select the models' best epoch; under the leave-one-out protocol NDCG@10
over the candidates, and a dataset without validation users has no
grid). It writes ``R/grid.json`` and
``R/grid.md`` (every point: hyperparameters, validation and test
NDCG@100, fit seconds) and copies the best point's run directory to
``R/best``.

Resumable: a point whose run directory already holds metrics.json for
the same configuration is read, never fitted again, so the same command
after a kill continues where it stopped.
"""

from __future__ import annotations

import itertools
import os
import shutil

from tf_multvae import metrics
from tf_multvae import rundir

# The paper's grids (Section 4.3 and docs/design.md), per baseline kind.
GRIDS: dict[str, dict[str, tuple]] = {
    "wmf": {"confidence": (2, 5, 10, 30, 50, 100), "factors": (100, 200)},
    "slim": {"l1": (0.1, 0.5, 1.0, 5.0), "l2": (0.1, 0.5, 1.0, 5.0)},
    "ease": {"l2": (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)},
    # CDAE's weight decay λ, a log grid around Mult-DAE's 0.01 / 500; its
    # points are trained (python -m tf_multvae.train --model cdae --grid).
    "cdae": {"weight_decay": (2e-6, 2e-5, 2e-4, 2e-3)},
}
GRID_JSON = "grid.json"
GRID_CONFIG = "grid-config.json"  # the grid asked for, checked on a rerun
GRID_MD = "grid.md"
BEST = "best"
POINTS = "points"


def points(kind: str, fixed: dict | None = None) -> list[dict]:
    """Every point of ``kind``'s grid, each with the ``fixed`` values.

    Raises:
        ValueError: the kind has no grid, or a fixed value is also a
            grid axis.
    """
    if kind not in GRIDS:
        raise ValueError(
            f"--grid: {kind} has no grid (grids: {', '.join(GRIDS)})"
        )
    axes = GRIDS[kind]
    both = sorted(set(axes) & set(fixed or {}))
    if both:
        raise ValueError(
            f"--grid varies {', '.join(both)}; do not also set it by flag"
        )
    names = list(axes)
    return [
        {**(fixed or {}), **dict(zip(names, values))}
        for values in itertools.product(*(axes[n] for n in names))
    ]


def point_name(values: dict) -> str:
    """A run-directory name for a point: ``confidence=10,factors=100``."""
    return ",".join(f"{k}={values[k]:g}" for k in sorted(values))


def _row(values: dict, result: dict, name: str) -> dict:
    """A point's validation ``name`` (NDCG@100, or NDCG@10 under
    leave-one-out): a baseline's one value, a trained model's best
    epoch's (the epoch its run keeps)."""
    finite = [v for v in result["validation"][name] if v is not None]
    return {
        "point": point_name(values),
        "hyperparameters": values,
        "validation": max(finite) if finite else float("-inf"),
        "test": result["test"][name],
        "fit_seconds": result.get(
            "fit_seconds", result.get("train_seconds_this_process")
        ),
    }


def run_grid(
    kind: str,
    data_dir: str,
    run_dir: str,
    fixed: dict | None = None,
    batch_size: int = 500,
    overwrite: bool = False,
    fit=None,
    base: dict | None = None,
    available_bytes: int | None = -1,
) -> dict:
    """Fits (or reads) every grid point; returns grid.json's contents.

    Args:
        fit: ``fit(values, point_dir) -> metrics.json`` for one point;
            default: the baseline's fit (``runner.run``).
        base: what else the points share (a trained model's resolved
            configuration), recorded so that a rerun with other settings
            is refused.
        available_bytes: the memory budget of each point's fit, checked
            for every point before the first runs (see ``runner.run``).

    Raises:
        ValueError, FileNotFoundError: bad flags or data, or a run
            directory holding another grid (without ``overwrite``).
    """
    from tf_multvae import datadir
    from tf_multvae.baselines import runner

    todo = points(kind, fixed)
    selection = metrics.selection_metric(datadir.load_info(data_dir).protocol)
    if not datadir.count_users(data_dir, "validation"):
        raise ValueError(
            f"--grid selects by validation {metrics.label(selection)} but "
            f"{data_dir} has no validation users; fit single points instead"
        )
    if fit is None:
        from tf_multvae import baselines

        for values in todo:  # every point's memory, before anything runs
            model = baselines.make({"kind": kind, **values})
            baselines.check(model, data_dir, available_bytes)

        def fit(values, point_dir):
            return runner.run(
                kind,
                data_dir,
                point_dir,
                batch_size,
                available_bytes=available_bytes,
                **values,
            )

    resolved = {
        "grid": {"kind": kind, "axes": GRIDS[kind], "fixed": fixed or {}},
        "data_dir": os.path.abspath(data_dir),
        "base": base,
    }
    rundir.prepare(run_dir, resolved, overwrite, name=GRID_CONFIG)
    rows = []
    for values in todo:
        point_dir = os.path.join(run_dir, POINTS, point_name(values))
        try:
            result = rundir.read_json(point_dir, rundir.METRICS)
        except FileNotFoundError:
            print(f"== {kind} {point_name(values)}", flush=True)
            result = fit(values, point_dir)
        rows.append(_row(values, result, selection))
    best = max(rows, key=lambda r: r["validation"])
    _copy_best(os.path.join(run_dir, POINTS, best["point"]), run_dir)
    grid = {
        "kind": kind,
        "data_dir": os.path.abspath(data_dir),
        "metric": selection,
        "selected_by": f"validation {selection}",
        "rows": rows,
        "best": best,
    }
    rundir.write_json(os.path.join(run_dir, GRID_JSON), grid)
    with open(os.path.join(run_dir, GRID_MD), "w") as f:
        f.write(markdown(grid) + "\n")
    return grid


def _copy_best(point_dir: str, run_dir: str) -> None:
    """``run_dir/best`` becomes a copy of the best point, atomically."""
    target = os.path.join(run_dir, BEST)
    staging = target + ".tmp"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(point_dir, staging)
    if os.path.exists(target):
        shutil.rmtree(target)
    os.replace(staging, target)


def markdown(grid: dict) -> str:
    """The grid as a markdown table, the best point marked."""
    label = metrics.label(grid.get("metric", metrics.SELECTION_METRIC))
    lines = [
        f"{grid['kind']} grid on {grid['data_dir']}, selected by "
        f"validation {label}",
        "",
        f"| point | validation {label} | test {label} | fit s |",
        "|---|---|---|---|",
    ]
    for row in grid["rows"]:
        mark = " (best)" if row["point"] == grid["best"]["point"] else ""
        test = row["test"]
        lines.append(
            f"| {row['point']}{mark} | {row['validation']:.4f} | "
            f"{test['mean']:.4f} ± {test['stderr']:.4f} | "
            f"{row['fit_seconds'] or 0:.1f} |"
        )
    return "\n".join(lines)
