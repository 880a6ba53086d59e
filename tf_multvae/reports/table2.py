"""``python -m tf_multvae.reports.table2``: the paper's Table 2 for a dataset.

    python -m tf_multvae.reports.table2 --dataset ml-1m --data-dir data/ml-1m \\
        --runs-root runs/table2-ml-1m [--rows vae,dae,wmf] [--collect-only] \\
        [--no-grid [ROWS]] [train flags ...]

Rows, in the paper's order with EASE and popularity after them:
Mult-VAE^PR, Mult-DAE, WMF, SLIM, CDAE, EASE, popularity. Each row is a
run directory under RUNS_ROOT, made the way its own command makes it and
under the same protocol: the two models and CDAE by ``python -m
tf_multvae.train --dataset NAME --model KIND`` with the preset (any other
train flag, e.g. ``--epochs 50``, is passed on to them; CDAE with
``--grid``, its weight decay over a log grid); WMF, SLIM and EASE by
``python -m tf_multvae.baselines --grid`` (the paper's grids, best by
validation NDCG@100; ``--no-grid [ROWS]``: the defaults only, for all or
the rows named) and popularity by
a single fit. A row already finished with the same configuration is
collected, not redone; an interrupted one resumes.

Prints test Recall@20, Recall@50 and NDCG@100 (mean ± standard error) as
markdown, with the paper's figures beside ours when the dataset is one
of the paper's (ml-20m, netflix, msd), and writes ``RUNS_ROOT/table2.md``
and ``RUNS_ROOT/table2.json``. A row that cannot run here (a baseline too
large for the machine's memory, a model kind this package lacks) is
listed as not run, with the reason.
"""

from __future__ import annotations

import argparse
import os
import sys

from tf_multvae import baselines
from tf_multvae import cli
from tf_multvae import config as cfg
from tf_multvae import metrics
from tf_multvae import rundir
from tf_multvae.reports import paper
from tf_multvae.reports import tables

ROWS = ("vae", "dae", "wmf", "slim", "cdae", "ease", "popularity")
NAMES = {
    **cfg.MODEL_NAMES,
    "wmf": "WMF",
    "slim": "SLIM",
    "cdae": "CDAE",
    "ease": "EASE",
    "popularity": "Popularity",
}
COLUMNS = paper.COLUMNS  # recall_at_20, recall_at_50, ndcg_at_100


def _train_row(
    kind, dataset, data_dir, run_dir, train_flags, use_grid, collect_only
):
    from tf_multvae import train
    from tf_multvae.baselines import grid
    from tf_multvae.training import loop

    args = train.parse_args(
        ["--dataset", dataset, "--model", kind, "--data-dir", data_dir,
         "--run-dir", run_dir, *train_flags]
    )  # fmt: skip
    config = train.config_from_args(args)
    if use_grid and kind in grid.GRIDS:  # CDAE's weight decay
        best = os.path.join(run_dir, grid.BEST)
        found = rundir.finished(best, {})
        if found is None and not collect_only:
            print(f"== {NAMES[kind]}: grid in {run_dir}", flush=True)
            train.train_grid(
                config, data_dir, run_dir, args.deterministic, args.overwrite
            )
            found = rundir.finished(best, {})
        return found, best
    found = rundir.finished(run_dir, config.to_json())
    if found is None and not collect_only:
        print(f"== {NAMES[kind]}: training in {run_dir}", flush=True)
        found = loop.run(
            config,
            data_dir,
            run_dir,
            deterministic=args.deterministic,
            overwrite=args.overwrite,
        )
    return found, run_dir


def _baseline_row(kind, data_dir, run_dir, use_grid, collect_only):
    from tf_multvae.baselines import grid
    from tf_multvae.baselines import runner

    if use_grid and kind in grid.GRIDS:
        best = os.path.join(run_dir, grid.BEST)
        found = rundir.finished(best, {})
        if found is None and not collect_only:
            print(f"== {NAMES[kind]}: grid in {run_dir}", flush=True)
            grid.run_grid(kind, data_dir, run_dir)
            found = rundir.finished(best, {})
        return found, best
    defaults = {"model": baselines.make({"kind": kind}).config}
    found = rundir.finished(run_dir, defaults)
    if found is None and not collect_only:
        print(f"== {NAMES[kind]}: fitting in {run_dir}", flush=True)
        found = runner.run(kind, data_dir, run_dir)
    return found, run_dir


def collect_or_run(
    dataset: str,
    data_dir: str,
    runs_root: str,
    rows: tuple[str, ...] = ROWS,
    train_flags: list[str] = (),
    use_grid: bool | tuple[str, ...] = True,
    collect_only: bool = False,
) -> dict[str, dict]:
    """Each row's ``{"metrics": metrics.json | None, "run_dir", "why"}``.

    Raises:
        ValueError, FileNotFoundError: bad flags or data.
        FloatingPointError: a model's loss became NaN.
    """
    out = {}
    for kind in rows:
        gridded = use_grid if isinstance(use_grid, bool) else kind in use_grid
        run_dir = os.path.join(runs_root, kind)
        why = None
        found = None
        try:
            if kind in cfg.MODELS:
                found, run_dir = _train_row(
                    kind, dataset, data_dir, run_dir, train_flags,
                    gridded, collect_only,
                )  # fmt: skip
            elif kind in baselines.REGISTRY:
                found, run_dir = _baseline_row(
                    kind, data_dir, run_dir, gridded, collect_only
                )
            else:
                why = f"{NAMES[kind]} is not part of this package yet"
        except MemoryError as err:  # too large for this machine
            why = str(err)
        if found is None and why is None:
            why = "not run yet" if collect_only else "did not finish"
        out[kind] = {"metrics": found, "run_dir": run_dir, "why": why}
    return out


def table(results: dict[str, dict], dataset: str) -> dict:
    """The rows' test metrics (and the paper's) as JSON."""
    published = paper.table2(dataset) or {}
    rows = []
    for kind, found in results.items():
        test = found["metrics"]["test"] if found["metrics"] else None
        rows.append(
            {
                "model": kind,
                "name": NAMES[kind],
                "run_dir": os.path.abspath(found["run_dir"]),
                "test": {c: test[c] for c in COLUMNS} if test else None,
                "users": test["users"] if test else None,
                "not_run": found["why"],
                "paper": published.get(kind),
                "paper_approximate": (dataset, kind) in paper.APPROXIMATE,
            }
        )
    return {"dataset": dataset, "columns": list(COLUMNS), "rows": rows}


def markdown(result: dict) -> str:
    """Table 2's layout: one row per model, three metrics ± s.e."""
    labels = [metrics.label(c) for c in result["columns"]]
    with_paper = any(row["paper"] for row in result["rows"])
    head = ["model", *labels]
    if with_paper:
        head += [f"paper {label}" for label in labels]
    lines = [
        f"Test metrics on {result['dataset']} (mean ± standard error)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in result["rows"]:
        if row["test"]:
            cells = [
                f"{row['test'][c]['mean']:.3f} ± {row['test'][c]['stderr']:.3f}"
                for c in result["columns"]
            ]
        else:
            cells = [f"not run: {row['not_run']}"] + [""] * (len(labels) - 1)
        if with_paper:
            values = row["paper"]
            mark = " (approx.)" if row["paper_approximate"] else ""
            cells += (
                [f"{values[c]:.3f}{mark}" for c in result["columns"]]
                if values
                else ["—"] * len(labels)
            )
        lines.append("| " + " | ".join([row["name"], *cells]) + " |")
    return "\n".join(lines)


def _rows(text: str) -> tuple[str, ...]:
    rows = tuple(r.strip() for r in text.split(",") if r.strip())
    unknown = [r for r in rows if r not in ROWS]
    if unknown or not rows:
        raise argparse.ArgumentTypeError(
            f"--rows takes some of {','.join(ROWS)}, not {text!r}"
        )
    return rows


def _gridded(rows: tuple[str, ...], no_grid) -> tuple[str, ...]:
    """The rows fitted by their grids: all but those ``--no-grid`` names."""
    if no_grid is None:
        return rows
    return (
        () if no_grid == "all" else tuple(r for r in rows if r not in no_grid)
    )


def _own_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", type=_rows, default=ROWS, help=",".join(ROWS))
    p.add_argument(
        "--no-grid",
        nargs="?",
        const="all",
        type=lambda text: text if text == "all" else _rows(text),
        help="WMF, SLIM, EASE and CDAE (or the rows named, e.g. slim) with "
        "their defaults only",
    )


@cli.command("table2")
def main(argv=None) -> int:
    args, train_flags, data_dir, runs_root = tables.parse(
        "table2",
        "Table 2: Mult-VAE^PR, Mult-DAE, WMF, SLIM, CDAE, EASE and "
        "popularity under the paper's protocol. Other flags go to python "
        "-m tf_multvae.train.",
        argv,
        _own_arguments,
    )
    results, code = cli.call(
        collect_or_run,
        args.dataset,
        data_dir,
        runs_root,
        args.rows,
        train_flags,
        _gridded(args.rows, args.no_grid),
        args.collect_only,
    )
    if code:
        return code
    result = table(results, args.dataset)
    missing = [r["model"] for r in result["rows"] if r["test"] is None]
    return tables.finish("table2", result, markdown(result), runs_root, missing)


if __name__ == "__main__":
    cli.quiet_process("table2")
    sys.exit(cli.end_process(main()))
