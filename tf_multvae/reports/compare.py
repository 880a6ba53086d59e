"""``python -m tf_multvae.reports.compare RUN_A RUN_B``: the paper's Figure 3.

Splits the test users into five groups by fold-in activity (the number of
items they clicked in the fold-in set; quantile groups 0-20%, ..., 80-100%)
and reports NDCG@100 per group for both runs, with standard errors and a
paired t-test per group (``scipy.stats.ttest_rel`` on the same users'
scores): * p < 0.05, ** p < 0.01, *** p < 0.001, as in the paper's
figure. Writes ``compare.json`` and, with matplotlib installed, a bar chart
``compare.png`` into ``--out`` (default RUN_A/compare-NAME_OF_RUN_B).

Per-user scores come from each run's ``per_user-test.csv``
(``python -m tf_multvae.reports.evaluate`` and ``tf_multvae.baselines``
write it);
a run without one is evaluated first.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from scipy import stats

from tf_multvae import cli
from tf_multvae import metrics
from tf_multvae import rundir

N_GROUPS = 5
METRIC = metrics.SELECTION_METRIC  # ndcg_at_100
STARS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))


def activity_groups(
    n_fold_in: np.ndarray, n_groups: int = N_GROUPS
) -> tuple[np.ndarray, np.ndarray]:
    """Quantile groups of users by fold-in activity.

    Group g holds the users with edges[g] <= n_fold_in < edges[g + 1]
    (the last group also takes n_fold_in == edges[-1]), where edges are
    the 0, 1/n_groups, ..., 1 quantiles (``np.quantile``, linear). Ties
    at an edge go up, so with many equal counts a group can be empty.

    Args:
        n_fold_in: int ``[n_users]``, fold-in items per user.
        n_groups: number of groups (5 in the paper).

    Returns:
        (group, edges): int ``[n_users]`` in 0..n_groups-1 and float
        ``[n_groups + 1]``.
    """
    counts = np.asarray(n_fold_in, dtype=np.float64)
    if counts.size == 0:
        raise ValueError("activity_groups needs at least one user")
    edges = np.quantile(counts, np.linspace(0.0, 1.0, n_groups + 1))
    group = np.searchsorted(edges, counts, side="right") - 1
    return np.clip(group, 0, n_groups - 1), edges


def stars(p: float) -> str:
    """``***`` for p < 0.001, ``**`` < 0.01, ``*`` < 0.05, else ''."""
    for level, mark in STARS:
        if p < level:
            return mark
    return ""


def paired(a: np.ndarray, b: np.ndarray) -> dict:
    """Means, standard errors and the paired t-test of a against b.

    Args:
        a, b: float ``[n]``, the same users' scores under two models.

    Returns:
        ``{"users", "a": {"mean", "stderr"}, "b": ..., "t", "p",
        "stars"}``; t and p are NaN under two users or when every
        difference is equal (no variance to test).
    """
    out = {"users": int(a.size)}
    for name, values in (("a", a), ("b", b)):
        if values.size:
            mean, stderr = metrics.mean_and_stderr(values)
        else:
            mean = stderr = float("nan")
        out[name] = {"mean": mean, "stderr": stderr}
    t = p = float("nan")
    if a.size >= 2 and np.ptp(a - b) > 0:
        test = stats.ttest_rel(a, b)
        t, p = float(test.statistic), float(test.pvalue)
    out.update(t=t, p=p, stars=stars(p) if np.isfinite(p) else "")
    return out


def _aligned(table_a: dict, table_b: dict, metric: str):
    """The scored users' metric in both tables, in table_a's order."""
    for table in (table_a, table_b):
        if metric not in table:
            raise ValueError(f"no {metric} in the per-user metrics")
    scored = table_a["scored"]
    users = table_a["user_id"][scored]
    index_b = {u: i for i, u in enumerate(table_b["user_id"])}
    missing = [u for u in users if u not in index_b]
    same = not missing and int(table_b["scored"].sum()) == users.size
    rows_b = np.array([index_b[u] for u in users]) if same else None
    if not same or np.any(
        table_b["n_fold_in"][rows_b] != table_a["n_fold_in"][scored]
    ):
        raise ValueError(
            "the two runs were evaluated on different users or data (the "
            "paired test needs the same test users with the same fold-in "
            "items)"
        )
    return (
        table_a["n_fold_in"][scored],
        table_a[metric][scored],
        table_b[metric][rows_b],
    )


def compare(
    table_a: dict,
    table_b: dict,
    metric: str = METRIC,
    n_groups: int = N_GROUPS,
) -> dict:
    """Figure 3's numbers from two runs' per-user tables.

    Args:
        table_a, table_b: ``runs.read_per_user`` results on the same test
            users.
        metric: a per-user column, e.g. ``ndcg_at_100``.
        n_groups: activity groups.

    Returns:
        ``{"metric", "groups": [{"group", "quantiles": [lo, hi],
        "fold_in": [edges g, g+1], "fold_in_range": [min, max], **paired},
        ...], "all": paired over every scored user}``.

    Raises:
        ValueError: the tables hold different users or lack ``metric``.
    """
    n_fold_in, a, b = _aligned(table_a, table_b, metric)
    group, edges = activity_groups(n_fold_in, n_groups)
    groups = []
    for g in range(n_groups):
        members = group == g
        counts = n_fold_in[members]
        groups.append(
            {
                "group": g,
                "quantiles": [g / n_groups, (g + 1) / n_groups],
                "fold_in": [float(edges[g]), float(edges[g + 1])],
                "fold_in_range": (
                    [int(counts.min()), int(counts.max())]
                    if counts.size
                    else None
                ),
                **paired(a[members], b[members]),
            }
        )
    return {"metric": metric, "groups": groups, "all": paired(a, b)}


def format_table(result: dict, labels: tuple[str, str]) -> str:
    """Figure 3 as text: one row per activity group, then all users."""
    head = (
        f"{'fold-in activity':<22}{'users':>6}  {labels[0][:18]:>18}  "
        f"{labels[1][:18]:>18}  {'p (paired t)':>12}"
    )
    lines = [f"{result['metric']} by fold-in activity", head]
    rows = [(r, _group_label(r)) for r in result["groups"]]
    for row, label in rows + [(result["all"], "all users")]:
        cells = [f"{row[k]['mean']:.4f} ± {row[k]['stderr']:.4f}" for k in "ab"]
        lines.append(
            f"{label:<22}{row['users']:>6}  {cells[0]:>18}  {cells[1]:>18}"
            f"  {row['p']:>9.2g} {row['stars']:<3}"
        )
    return "\n".join(lines)


def _group_label(row: dict) -> str:
    lo, hi = (round(100 * q) for q in row["quantiles"])
    span = row["fold_in_range"]
    clicks = f"{span[0]}-{span[1]}" if span else "none"
    return f"{lo}-{hi}% ({clicks})"


@cli.command("compare")
def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tf_multvae.reports.compare",
        description="NDCG@100 by user activity for two runs (Figure 3).",
    )
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--out", help="output directory")
    p.add_argument("--labels", help="names of the two runs, A,B")
    p.add_argument("--data-dir", help="prepared dataset (default: RUN_A's)")
    cli.add_verbose(p)
    args = p.parse_args(argv)
    labels = tuple(
        args.labels.split(",")
        if args.labels
        else (
            os.path.basename(os.path.normpath(r))
            for r in (args.run_a, args.run_b)
        )
    )
    if len(labels) != 2:
        p.error(f"--labels takes two names, A,B, not {args.labels!r}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tf_multvae.reports import runs

    try:
        tables = [
            runs.per_user(run, data_dir=args.data_dir)
            for run in (args.run_a, args.run_b)
        ]
        result = compare(*tables)
    except cli.USER_ERRORS as err:
        return cli.fail(err)
    result["runs"] = {
        "a": {"dir": os.path.abspath(args.run_a), "label": labels[0]},
        "b": {"dir": os.path.abspath(args.run_b), "label": labels[1]},
    }
    out = args.out or os.path.join(
        args.run_a, f"compare-{os.path.basename(os.path.normpath(args.run_b))}"
    )
    os.makedirs(out, exist_ok=True)
    rundir.write_json(os.path.join(out, "compare.json"), result)
    print(format_table(result, labels))
    print(f"wrote {os.path.join(out, 'compare.json')}")
    from tf_multvae.reports import plots

    try:
        path = plots.figure3(result, labels, os.path.join(out, "compare.png"))
        print(f"      {path}")
    except ImportError as err:
        print(f"no picture: {err}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    cli.quiet_process("compare")
    sys.exit(cli.end_process(main()))
