"""``python -m tf_multvae.reports.table4``: the paper's Table 4 (likelihoods).

    python -m tf_multvae.reports.table4 --dataset ml-1m --data-dir data/ml-1m \\
        --runs-root runs/table4 [--collect-only] [train flags ...]

Trains (or collects) Mult-VAE^PR and Mult-DAE with the multinomial,
Gaussian and logistic likelihoods, six runs in ``RUNS_ROOT/MODEL-
LIKELIHOOD``, each exactly as ``python -m tf_multvae.train --dataset NAME
--model MODEL --likelihood LIKELIHOOD`` would train it (any other train
flag, e.g. ``--epochs 50``, is passed on to all six). A run already
finished with the same configuration is collected, not retrained; an
interrupted one resumes. Prints the test Recall@20, Recall@50 and
NDCG@100 in the paper's layout as markdown and writes it as
``RUNS_ROOT/table4.md`` and ``RUNS_ROOT/table4.json``.

``--collect-only`` trains nothing: it reads whatever runs have finished
and exits with 1 when some are missing.
"""

from __future__ import annotations

import os
import sys

from tf_multvae import cli
from tf_multvae import config as cfg
from tf_multvae import metrics as metric_names
from tf_multvae import rundir
from tf_multvae import train
from tf_multvae.config import LIKELIHOODS
from tf_multvae.reports import tables
from tf_multvae.training import loop

COLUMNS = metric_names.PAPER_METRICS  # the paper's order
_OWN_FLAGS = ("--model", "--likelihood", "--run-dir", "--data-dir")


def run_name(model: str, likelihood: str) -> str:
    return f"{model}-{likelihood}"


def _finished(run_dir: str, config: cfg.RunConfig) -> dict | None:
    """metrics.json of a finished run of ``config`` in run_dir, else None."""
    try:
        previous = rundir.read_json(run_dir, rundir.CONFIG)
        metrics = rundir.read_json(run_dir, rundir.METRICS)
    except FileNotFoundError:
        return None
    wanted = config.to_json()
    other = set(previous) - set(wanted)  # data_dir, n_items, ...
    if rundir.differences(previous, wanted, ignore=other):
        return None
    return metrics


def collect_or_train(
    dataset: str,
    data_dir: str,
    runs_root: str,
    train_flags: list[str] = (),
    collect_only: bool = False,
) -> dict[str, dict | None]:
    """metrics.json of each of the six runs (None: not there).

    Args:
        dataset: a preset of ``tf_multvae.config.PRESETS``.
        data_dir: the prepared dataset.
        runs_root: the six runs go to ``runs_root/MODEL-LIKELIHOOD``.
        train_flags: further ``python -m tf_multvae.train`` flags.
        collect_only: never train.

    Raises:
        ValueError, FileNotFoundError: bad flags or data (from train).
        FloatingPointError: a run's loss became NaN.
    """
    results = {}
    for model in cfg.LIKELIHOOD_MODELS:
        for likelihood in LIKELIHOODS:
            name = run_name(model, likelihood)
            run_dir = os.path.join(runs_root, name)
            args = train.parse_args(
                [
                    "--dataset",
                    dataset,
                    "--model",
                    model,
                    "--likelihood",
                    likelihood,
                    "--data-dir",
                    data_dir,
                    "--run-dir",
                    run_dir,
                    *train_flags,
                ]
            )
            config = train.config_from_args(args)
            found = _finished(run_dir, config)
            if found is None and not collect_only:
                print(f"== {name}: training in {run_dir}", flush=True)
                found = loop.run(
                    config,
                    data_dir,
                    run_dir,
                    deterministic=args.deterministic,
                    overwrite=args.overwrite,
                )
            results[name] = found
    return results


def table(results: dict[str, dict | None], dataset: str) -> dict:
    """The six runs' test metrics as JSON, in the paper's row order."""
    rows = []
    for model in cfg.LIKELIHOOD_MODELS:
        for likelihood in LIKELIHOODS:
            metrics = results.get(run_name(model, likelihood))
            row = {"model": model, "likelihood": likelihood, "test": None}
            if metrics:
                row.update(
                    test={c: metrics["test"][c] for c in COLUMNS},
                    users=metrics["test"]["users"],
                    best_epoch=metrics.get("best_epoch"),
                )
            rows.append(row)
    return {"dataset": dataset, "columns": list(COLUMNS), "rows": rows}


def markdown(result: dict) -> str:
    """Table 4's layout: a block of likelihoods per model, three metrics."""
    head = ["", "likelihood"] + [
        metric_names.label(c) for c in result["columns"]
    ]
    lines = [
        f"Test metrics on {result['dataset']} (mean ± standard error)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    previous = None
    for row in result["rows"]:
        model = (
            cfg.MODEL_NAMES[row["model"]] if row["model"] != previous else ""
        )
        previous = row["model"]
        cells = [
            f"{row['test'][c]['mean']:.3f} ± {row['test'][c]['stderr']:.3f}"
            if row["test"]
            else "not run"
            for c in result["columns"]
        ]
        lines.append(
            "| " + " | ".join([model, row["likelihood"], *cells]) + " |"
        )
    return "\n".join(lines)


@cli.command("table4")
def main(argv=None) -> int:
    args, train_flags, data_dir, runs_root = tables.parse(
        "table4",
        "Table 4: Mult-VAE^PR and Mult-DAE with the multinomial, Gaussian "
        "and logistic likelihoods. Other flags go to python -m "
        "tf_multvae.train.",
        argv,
        own_flags=_OWN_FLAGS,
    )
    results, code = cli.call(
        collect_or_train,
        args.dataset,
        data_dir,
        runs_root,
        train_flags,
        args.collect_only,
    )
    if code:
        return code
    result = table(results, args.dataset)
    missing = [name for name, metrics in results.items() if metrics is None]
    return tables.finish("table4", result, markdown(result), runs_root, missing)


if __name__ == "__main__":
    cli.quiet_process("table4")
    sys.exit(cli.end_process(main()))
