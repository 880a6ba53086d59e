"""What the table commands (Tables 2, 3 and 4) share: flags and the end.

Each table command takes ``--dataset``, ``--data-dir``, ``--runs-root``
and ``--collect-only``, passes every other flag on to ``python -m
tf_multvae.train`` for the rows it trains (:func:`parse`), and ends by
writing ``RUNS_ROOT/STEM.json`` and ``STEM.md``, printing the table and
exiting 1 while a row is missing (:func:`finish`).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from tf_multvae import cli
from tf_multvae import config as cfg
from tf_multvae import rundir

# Flags a table sets itself for each of its rows.
OWN_FLAGS = ("--model", "--run-dir", "--data-dir")


def parse(
    stem: str,
    description: str,
    argv=None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    own_flags: tuple[str, ...] = OWN_FLAGS,
) -> tuple[argparse.Namespace, list[str], str, str]:
    """``(args, train_flags, data_dir, runs_root)`` of a table command.

    Args:
        stem: the table's name (``table2``), its module and file stem.
        add_arguments: adds the table's own flags.
        own_flags: train flags the table sets itself (refused if given).
    """
    p = argparse.ArgumentParser(
        prog=f"python -m tf_multvae.reports.{stem}", description=description
    )
    p.add_argument("--dataset", required=True, choices=sorted(cfg.PRESETS))
    p.add_argument("--data-dir", help="prepared dataset (default data/NAME)")
    p.add_argument("--runs-root", help=f"default runs/{stem}-NAME")
    if add_arguments is not None:
        add_arguments(p)
    p.add_argument(
        "--collect-only", action="store_true", help="read finished runs only"
    )
    cli.add_verbose(p)
    args, train_flags = p.parse_known_args(argv)
    own = [f for f in train_flags if f.split("=")[0] in own_flags]
    if own:
        p.error(f"{stem} sets {', '.join(own)} itself for each of its rows")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    data_dir = args.data_dir or os.path.join("data", args.dataset)
    runs_root = args.runs_root or os.path.join("runs", f"{stem}-{args.dataset}")
    return args, train_flags, data_dir, runs_root


def finish(
    stem: str, result: dict, text: str, runs_root: str, missing: list[str]
) -> int:
    """Writes and prints the table; 1 (naming them) while rows are missing."""
    result["runs_root"] = os.path.abspath(runs_root)
    rundir.write_report(runs_root, stem, result, text)
    print(text)
    if missing:
        print(f"not run: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0
