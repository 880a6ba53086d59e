"""``python -m data_prep``'s flags, and the PrepConfig they make.

:func:`parse_args` splits the command line into this command's flags and
Beam's pipeline options (the unknown ones); :func:`config_from_args`
applies the flags that were given to the dataset's preset
(:data:`data_prep.config.PRESETS`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math

from data_prep.config import CSV
from data_prep.config import PRESETS
from data_prep.config import PrepConfig
from data_prep.errors import DataPrepError
from tf_multvae import cli
from tf_multvae import features

_SEPARATORS = {
    "\\t": "\t",
    "tab": "\t",
    "TAB": "\t",
    "comma": ",",
    "space": " ",
}


def parse_args(
    argv: list[str] | None = None,
) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep",
        description="Prepare a Mult-VAE dataset (Liang et al. 2018, §4.1) "
        "with Apache Beam. Unknown flags are Beam pipeline options.",
    )
    parser.add_argument(
        "--dataset", required=True, choices=sorted([*PRESETS, "ncf"])
    )
    parser.add_argument(
        "--raw",
        help="raw ratings: a file, a directory or a glob (optional for "
        "synthetic, which then generates its own)",
    )
    parser.add_argument("--out", required=True, help="dataset directory")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing --out"
    )
    parser.add_argument(
        "--threshold",
        help="a rating is a click iff rating > threshold; 'none': every row",
    )
    parser.add_argument("--min-user-clicks", type=int)
    parser.add_argument("--min-item-users", type=int)
    parser.add_argument("--heldout-users", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--on-bad-lines", choices=("error", "skip"))
    parser.add_argument(
        "--protocol",
        choices=features.PROTOCOLS,
        help="the split to prepare: the paper's strong generalization "
        "(default) or NCF's leave-one-out (every user trains; each user's "
        "latest item is its test item, the latest one left its validation "
        "item; needs a time column; every row is a click unless "
        "--threshold is given)",
    )
    parser.add_argument(
        "--negatives",
        type=int,
        help="leave-one-out: items each held-out item is ranked against, "
        "drawn per user from those it never clicked (default 99)",
    )
    parser.add_argument(
        "--ncf-validation",
        action="store_true",
        help="--dataset ncf: hold out one random training item per user "
        "(seeded by --seed) as a validation split; NCF's files have none",
    )
    csv = parser.add_argument_group("csv layout")
    csv.add_argument("--sep", help="field separator; '\\t' or 'tab' for tab")
    csv.add_argument("--header", action=argparse.BooleanOptionalAction)
    csv.add_argument(
        "--columns",
        help="comma-separated field names; user and item are required, "
        "rating optional (without it every row is a click), others ignored",
    )
    synth = parser.add_argument_group("synthetic data")
    synth.add_argument("--synthetic-users", type=int, default=10_000)
    synth.add_argument("--synthetic-items", type=int, default=3_000)
    synth.add_argument(
        "--synthetic-clicks-per-user", type=cli.finite_float, default=60.0
    )
    synth.add_argument("--synthetic-seed", type=int, default=0)
    parser.add_argument(
        "--chunk-mb",
        type=int,
        default=64,
        help="raw files are read in byte ranges of about this size",
    )
    cli.add_verbose(parser)
    parser.add_argument(
        "--log-file",
        help="write Beam's log and its workers' here, and keep it (default: "
        "a file in the system's temporary directory, removed when the run "
        "succeeds and named when it fails)",
    )
    return parser.parse_known_args(argv)


def _threshold(value: str) -> float | None:
    if value.lower() == "none":
        return None
    try:
        threshold = float(value)
    except ValueError:
        threshold = float("nan")
    if not math.isfinite(threshold):
        raise DataPrepError(
            f"--threshold must be a finite number or 'none', not {value!r}"
        )
    return threshold


def config_from_args(args: argparse.Namespace) -> PrepConfig:
    """The dataset's preset with every flag that was given applied."""
    config = PRESETS[args.dataset]
    layout = config.layout
    layout_changes = {}
    if args.sep is not None:
        layout_changes["sep"] = _SEPARATORS.get(args.sep, args.sep)
    if args.header is not None:
        layout_changes["header"] = args.header
    if args.columns is not None:
        layout_changes["columns"] = tuple(
            c.strip() for c in args.columns.split(",")
        )
    if layout_changes:
        if layout.kind != "delimited" or args.dataset != "csv":
            names = ", ".join("--" + k for k in layout_changes)
            raise DataPrepError(f"{names} apply to --dataset csv only")
        try:
            layout = dataclasses.replace(CSV, **layout_changes)
        except ValueError as err:
            raise DataPrepError(str(err)) from None
    changes = {"layout": layout}
    if args.threshold is not None:
        changes["threshold"] = _threshold(args.threshold)
    elif not layout.has_rating:
        changes["threshold"] = None
    for name in (
        "min_user_clicks",
        "min_item_users",
        "heldout_users",
        "seed",
        "on_bad_lines",
        "protocol",
        "negatives",
    ):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if changes.get("protocol", config.protocol) == features.LEAVE_ONE_OUT:
        # NCF makes every rating an interaction, and holds out every user
        # (a --heldout-users given is refused by PrepConfig, by name).
        if args.threshold is None:
            changes["threshold"] = None
        changes.setdefault("heldout_users", None)
    try:
        return dataclasses.replace(config, **changes)
    except ValueError as err:
        raise DataPrepError(str(err)) from None
