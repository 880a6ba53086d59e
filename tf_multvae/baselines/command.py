"""``python -m tf_multvae.baselines``: a baseline under the paper's protocol.

    python -m tf_multvae.baselines --model ease --data-dir data/ml-1m \\
        --run-dir runs/ml-1m-ease [--l2 500]

Fits the baseline on the training users and scores the held-out users
(``tf_multvae.baselines.runner``), or with ``--grid`` every point of its
hyperparameter grid (``tf_multvae.baselines.grid``), writing run
directories like ``tf_multvae.train``'s.
"""

from __future__ import annotations

import argparse
import os
import sys

from tf_multvae import baselines
from tf_multvae import cli
from tf_multvae.baselines.runner import run


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


def _budget(args: argparse.Namespace) -> int:
    """--max-memory in bytes; -1 (what the machine has now) if not given.

    Raises:
        ValueError: --max-memory is not > 0.
    """
    if args.max_memory is None:
        return -1
    if args.max_memory <= 0:
        raise ValueError(f"--max-memory must be > 0 GB, got {args.max_memory}")
    return int(args.max_memory * 1e9)


def _too_big(err: MemoryError, args: argparse.Namespace) -> int:
    """The memory refusal, naming --max-memory when it set the budget."""
    if args.max_memory is not None:
        err = MemoryError(f"{err} (--max-memory {args.max_memory:g})")
    return cli.fail(err, cli.FAILED)


def _run_grid(args: argparse.Namespace, fixed: dict, budget: int) -> int:
    from tf_multvae.baselines import grid

    try:
        result, code = cli.call(
            grid.run_grid,
            args.model,
            args.data_dir,
            args.run_dir,
            fixed,
            args.batch_size,
            args.overwrite,
            available_bytes=budget,
        )
    except MemoryError as err:
        return _too_big(err, args)
    if code:
        return code
    print(grid.markdown(result))
    print(f"best point: {os.path.abspath(args.run_dir)}/{grid.BEST}")
    return 0


@cli.command("baselines")
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
    p.add_argument(
        "--grid",
        action="store_true",
        help="fit the model's hyperparameter grid (the paper's) and keep "
        "the point with the best validation NDCG@100 in RUN_DIR/best",
    )
    p.add_argument(
        "--max-memory",
        type=cli.finite_float,
        metavar="GB",
        help="refuse, before any work, a fit whose memory estimate (EASE, "
        "SLIM) exceeds this (default: the memory available now)",
    )
    p.add_argument("--overwrite", action="store_true")
    cli.add_verbose(p)
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    hyperparameters, code = cli.call(_hyperparameters, args)
    if code:
        return code
    budget, code = cli.call(_budget, args)
    if code:
        return code
    if args.grid:
        return _run_grid(args, hyperparameters, budget)
    try:
        result, code = cli.call(
            run,
            args.model,
            args.data_dir,
            args.run_dir,
            args.batch_size,
            args.overwrite,
            budget,
            **hyperparameters,
        )
    except MemoryError as err:  # too big for this machine, not a mistake
        return _too_big(err, args)
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
    cli.quiet_process("baselines")
    sys.exit(cli.end_process(main()))
