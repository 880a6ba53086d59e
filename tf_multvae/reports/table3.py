"""``python -m tf_multvae.reports.table3``: the paper's Table 3 for a dataset.

    python -m tf_multvae.reports.table3 --dataset ncf-ml-1m \\
        --data-dir data/ncf-ml-1m --runs-root runs/table3-ncf-ml-1m \\
        [--rows dae,vae,ease,popularity] [--collect-only] [train flags ...]

Table 3 compares Mult-DAE [I -> 200 -> I] with NCF under NCF's protocol on
NCF's own files (a dataset prepared with ``python -m data_prep --dataset
ncf``, or any dataset prepared with ``--protocol leave-one-out``): each
user's held-out item ranked among its candidates, HR@10 and NDCG@10
(``tf_multvae.sampled``). Our rows are run directories under RUNS_ROOT,
made as ``tf_multvae.reports.table2`` makes them (the models by
``python -m tf_multvae.train`` with the dataset's preset, any other train
flag passed on; EASE and popularity by the baselines command). EASE's
grid is fitted where the dataset has validation users; NCF's files have
none, so there EASE keeps its default λ and the models train the preset's
fixed number of epochs. A finished row is collected, not redone.

Prints, as markdown, the quoted rows (NCF's published results, the
paper's Mult-DAE, third-party reruns; ``reports.paper.table3``) and ours
(HR@10, NDCG@10, mean ± standard error), and writes
``RUNS_ROOT/table3.md`` and ``RUNS_ROOT/table3.json``.
"""

from __future__ import annotations

import argparse
import os
import sys

from tf_multvae import cli
from tf_multvae import features
from tf_multvae import metrics
from tf_multvae.reports import paper
from tf_multvae.reports import table2
from tf_multvae.reports import tables

ROWS = ("dae", "vae", "ease", "popularity")
COLUMNS = paper.TABLE3_COLUMNS  # hr_at_10, ndcg_at_10


def collect_or_run(
    dataset: str,
    data_dir: str,
    runs_root: str,
    rows: tuple[str, ...] = ROWS,
    train_flags: list[str] = (),
    collect_only: bool = False,
) -> dict[str, dict]:
    """Each row's ``{"metrics", "run_dir", "why"}`` (``table2``'s).

    Raises:
        ValueError: the dataset is not of the leave-one-out protocol.
    """
    from tf_multvae import datadir

    info = datadir.load_info(data_dir)
    if info.protocol != features.LEAVE_ONE_OUT:
        raise ValueError(
            f"Table 3 is NCF's leave-one-out protocol but {data_dir} was "
            f"prepared for {info.protocol} (prepare it with python -m "
            "data_prep --dataset ncf, or --protocol leave-one-out)"
        )
    validates = datadir.count_users(data_dir, features.VALIDATION) > 0
    return table2.collect_or_run(
        dataset,
        data_dir,
        runs_root,
        rows,
        train_flags,
        use_grid=validates,
        collect_only=collect_only,
    )


def table(results: dict[str, dict], dataset: str) -> dict:
    """The quoted rows and ours, as JSON."""
    ours = []
    for kind, found in results.items():
        test = found["metrics"]["test"] if found["metrics"] else None
        ours.append(
            {
                "model": kind,
                "name": table2.NAMES[kind],
                "run_dir": os.path.abspath(found["run_dir"]),
                "test": {c: test[c] for c in COLUMNS} if test else None,
                "users": test["users"] if test else None,
                "best_epoch": (found["metrics"] or {}).get("best_epoch"),
                "not_run": found["why"],
            }
        )
    return {
        "dataset": dataset,
        "columns": list(COLUMNS),
        "quoted": paper.table3(dataset),
        "rows": ours,
    }


def markdown(result: dict) -> str:
    """Table 3's layout: the quoted rows, then ours, HR@10 and NDCG@10."""
    labels = [metrics.label(c) for c in result["columns"]]
    lines = [
        f"Test {' and '.join(labels)} on {result['dataset']}, NCF's "
        "leave-one-out protocol (ours: mean ± standard error)",
        "",
        "| model | " + " | ".join(labels) + " | source |",
        "|---|" + "---|" * len(labels) + "---|",
    ]
    for row in result["quoted"]:
        cells = [
            "—" if row[c] is None else f"{row[c]:.3f}"
            for c in result["columns"]
        ]
        lines.append(
            f"| {row['name']} | {' | '.join(cells)} | {row['source']} |"
        )
    for row in result["rows"]:
        if row["test"]:
            cells = [
                f"{row['test'][c]['mean']:.3f} ± {row['test'][c]['stderr']:.3f}"
                for c in result["columns"]
            ]
            source = "this package"
        else:
            cells = ["—"] * len(labels)
            source = f"not run: {row['not_run']}"
        cells.append(source)
        lines.append(f"| {row['name']} | {' | '.join(cells)} |")
    return "\n".join(lines)


def _rows(text: str) -> tuple[str, ...]:
    rows = tuple(r.strip() for r in text.split(",") if r.strip())
    if not rows or any(r not in table2.ROWS for r in rows):
        raise argparse.ArgumentTypeError(
            f"--rows takes some of {','.join(table2.ROWS)}, not {text!r}"
        )
    return rows


@cli.command("table3")
def main(argv=None) -> int:
    args, train_flags, data_dir, runs_root = tables.parse(
        "table3",
        "Table 3: Mult-DAE and Mult-VAE^PR under NCF's leave-one-out "
        "protocol, beside NCF's published figures. Other flags go to "
        "python -m tf_multvae.train.",
        argv,
        lambda p: p.add_argument(
            "--rows", type=_rows, default=ROWS, help=",".join(ROWS)
        ),
    )
    results, code = cli.call(
        collect_or_run,
        args.dataset,
        data_dir,
        runs_root,
        args.rows,
        train_flags,
        args.collect_only,
    )
    if code:
        return code
    result = table(results, args.dataset)
    missing = [r["model"] for r in result["rows"] if r["test"] is None]
    return tables.finish("table3", result, markdown(result), runs_root, missing)


if __name__ == "__main__":
    cli.quiet_process("table3")
    sys.exit(cli.end_process(main()))
