"""``python -m tf_multvae.baselines``: a baseline under the paper's protocol.

    python -m tf_multvae.baselines --model ease --data-dir data/ml-1m \\
        --run-dir runs/ml-1m-ease [--l2 500]

Fits the baseline on the training users (through the same data pipeline
as the models), scores both held-out splits with the same code
(``reports.evaluation``: fold-in items masked, Recall@20/50, NDCG@100) and
writes a run directory like ``tf_multvae.train``'s (config.json,
metrics.json) plus the test users' per-user file, so the report commands
(evaluate, compare, plots) take it like any run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from tf_multvae import baselines
from tf_multvae import cli
from tf_multvae import rundir


def run(
    kind: str,
    data_dir: str,
    run_dir: str,
    batch_size: int = 500,
    overwrite: bool = False,
    **hyperparameters,
) -> dict:
    """Fits a baseline, evaluates it on both held-out splits, writes run_dir.

    Returns:
        The contents of metrics.json: ``test`` as ``tf_multvae.train``
        writes it, ``validation`` with one value per metric (one "epoch"),
        the fit's seconds and what the baseline reports (EASE: the solve's
        residual).

    Raises:
        FileNotFoundError, ValueError: bad data directory or arguments, or
            a run directory holding another run (without ``overwrite``).
        MemoryError, FloatingPointError: the fit would not fit in memory,
            or its solve went wrong.
    """
    from tf_multvae import datadir
    from tf_multvae import metrics
    from tf_multvae.reports import evaluation
    from tf_multvae.reports import runs

    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    model = baselines.make({"kind": kind, **hyperparameters})
    info = datadir.load_info(data_dir)
    config = {
        "dataset": info.metadata.get("source", {}).get("dataset"),
        "model": model.config,
        "data_dir": os.path.abspath(data_dir),
        "n_items": info.n_items,
    }
    rundir.prepare(run_dir, config, overwrite)
    started = time.time()
    model = baselines.fit(model.config, data_dir)
    seconds = time.time() - started
    per_user = evaluation.per_user_metrics(model, data_dir, "test", batch_size)
    validation = evaluation.evaluate(model, data_dir, "validation", batch_size)
    result = {
        "test": evaluation.summarize(per_user),
        "validation": {
            name: [value["mean"]]
            for name, value in validation.items()
            if isinstance(value, dict)
        },
        "best_epoch": None,
        "fit_seconds": round(seconds, 2),
        **model.report(),
    }
    rundir.write_json(os.path.join(run_dir, rundir.METRICS), result)
    runs.write_per_user(
        rundir.per_user_path(run_dir, "test"), per_user, metrics.PAPER_METRICS
    )
    return result


def _add_hyperparameter_flags(p: argparse.ArgumentParser) -> None:
    """Each baseline's flags (one flag may serve several baselines)."""
    flags: dict[str, tuple[str, type, list[str]]] = {}
    for kind, cls in baselines.REGISTRY.items():
        for name, (flag, type_, text) in cls.flags.items():
            flags.setdefault(flag, (name, type_, []))[2].append(
                f"{kind}: {text}"
            )
    for flag, (name, type_, texts) in flags.items():
        p.add_argument(
            flag,
            dest=name,
            type=cli.finite_float if type_ is float else type_,
            help="; ".join(texts),
        )


def _hyperparameters(args: argparse.Namespace) -> dict:
    """The chosen baseline's flags that were given.

    Raises:
        ValueError: a flag given that the chosen baseline does not take.
    """
    own = baselines.REGISTRY[args.model].flags
    every = {
        name: flag
        for cls in baselines.REGISTRY.values()
        for name, (flag, _, _) in cls.flags.items()
    }
    for name, flag in every.items():
        if name not in own and getattr(args, name, None) is not None:
            raise ValueError(f"{flag} does not apply to --model {args.model}")
    return {n: getattr(args, n) for n in own if getattr(args, n) is not None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tf_multvae.baselines",
        description="Baselines under the paper's protocol: fit on the "
        "training users, score held-out users from their fold-in items.",
    )
    p.add_argument("--model", required=True, choices=baselines.KINDS)
    p.add_argument("--data-dir", required=True, help="prepared dataset")
    p.add_argument("--run-dir", required=True, help="output directory")
    _add_hyperparameter_flags(p)
    p.add_argument(
        "--batch-size", type=int, default=500, help="users scored at once"
    )
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    hyperparameters, code = cli.call(_hyperparameters, args)
    if code:
        return code
    try:
        result, code = cli.call(
            run,
            args.model,
            args.data_dir,
            args.run_dir,
            args.batch_size,
            args.overwrite,
            **hyperparameters,
        )
    except MemoryError as err:  # too big for this machine, not a mistake
        return cli.fail(err, cli.FAILED)
    if code:
        return code
    from tf_multvae.reports import evaluation

    print(
        evaluation.format_table(
            result["test"],
            f"{args.model} on {args.data_dir}, test users "
            f"(fit {result['fit_seconds']:.1f} s)",
        )
    )
    print(f"run directory: {os.path.abspath(args.run_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
