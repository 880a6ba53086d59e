"""``python -m tf_multvae.reports.plots RUN [RUN ...]``: the curves as PNGs.

    python -m tf_multvae.reports.plots runs/ml-1m-vae runs/ml-1m-dae \\
        runs/ml-1m-ease

writes, into ``--out`` (default FIRST_RUN/plots):

* ``validation_ndcg_at_100.png``: validation NDCG@100 per epoch of every
  run (a baseline, fitted once, as a dashed line), the best epoch marked;
* ``beta_kl-LABEL.png`` for each Mult-VAE^PR run (LABEL without
  characters unsafe in file names): the KL weight β_t and
  the KL term (the epoch's running mean, as logged) against the update
  count, from the run's TensorBoard logs.

TensorBoard shows the same scalars live; these are for a README or a
report. matplotlib is an optional dependency (``pip install
'tf-multvae[report]'``); pictures are drawn on a bare Figure, so no
display or pyplot state is involved. ``figure3`` draws the picture of
``tf_multvae.reports.compare``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import numpy as np

from tf_multvae import cli
from tf_multvae import rundir

VALIDATION_METRIC = "ndcg_at_100"  # metrics.SELECTION_METRIC
_HINT = "pip install 'tf-multvae[report]' (or: pip install matplotlib)"


def _figure(**kwargs):
    """A matplotlib Figure, or ImportError saying how to install it."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(f"the pictures need matplotlib: {_HINT}") from None
    return Figure(**kwargs)


def _save(fig, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def figure3(result: dict, labels: tuple[str, str], path: str) -> str:
    """Bars of two runs per activity group, error bars, significance stars.

    Args:
        result: ``compare.compare``'s result.
        labels: names of run a and run b.
        path: the PNG to write.

    Returns:
        ``path``.
    """
    fig = _figure(figsize=(7, 4))
    ax = fig.subplots()
    groups = result["groups"]
    x = np.arange(len(groups))
    width = 0.38
    tops = []
    for offset, key, label in ((-1, "a", labels[0]), (1, "b", labels[1])):
        means = [g[key]["mean"] for g in groups]
        errors = [g[key]["stderr"] for g in groups]
        ax.bar(
            x + offset * width / 2,
            means,
            width,
            yerr=errors,
            capsize=3,
            label=label,
        )
        tops.append(np.nan_to_num(np.add(means, errors)))
    top = np.max(tops, axis=0)
    for i, group in enumerate(groups):
        if group["stars"]:
            ax.text(i, top[i] * 1.02, group["stars"], ha="center")
    ax.set_xticks(x)
    ax.set_xticklabels(
        [
            f"{round(100 * g['quantiles'][0])}-"
            f"{round(100 * g['quantiles'][1])}%\n"
            + (
                "{}-{} items".format(*g["fold_in_range"])
                if g["fold_in_range"]
                else "none"
            )
            for g in groups
        ]
    )
    ax.set_xlabel("users by fold-in activity (quantiles)")
    metric = result["metric"]
    ax.set_ylabel(metric.replace("ndcg", "NDCG").replace("recall", "Recall"))
    ax.set_ylim(0, max(top.max() * 1.12, 1e-3))
    ax.set_title("* p<0.05  ** p<0.01  *** p<0.001 (paired t-test)", fontsize=9)
    ax.legend(loc="upper left")
    return _save(fig, path)


def validation_curves(
    curves: dict[str, list[float]], path: str, metric: str = VALIDATION_METRIC
) -> str:
    """Validation ``metric`` per epoch, one line per run.

    Args:
        curves: label -> the value after each epoch; a single value (a
            baseline) is drawn as a dashed horizontal line.
        path: the PNG to write.
    """
    fig = _figure(figsize=(7, 4))
    ax = fig.subplots()
    styles = iter([("--", "black"), (":", "black"), ("-.", "gray")] * 9)
    for label, values in curves.items():
        values = np.asarray(values, np.float64)
        if values.size == 1:
            style, color = next(styles)
            ax.axhline(
                values[0],
                linestyle=style,
                linewidth=1,
                color=color,
                label=f"{label} (fitted once)",
            )
            continue
        epochs = np.arange(1, values.size + 1)
        (line,) = ax.plot(epochs, values, label=label)
        best = int(np.nanargmax(values))
        ax.plot(epochs[best], values[best], "o", color=line.get_color())
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {metric}")
    ax.legend(loc="lower right")
    return _save(fig, path)


def beta_kl(
    beta: tuple[np.ndarray, np.ndarray],
    kl: tuple[np.ndarray, np.ndarray] | None,
    path: str,
    title: str = "",
) -> str:
    """β_t and the KL term against the update count, on two y axes.

    Args:
        beta: (updates ``[n]``, β ``[n]``), from ``train/beta``.
        kl: (updates ``[m]``, KL ``[m]``), from ``train/kl``, or None.
        path: the PNG to write.
    """
    fig = _figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.plot(*beta, color="tab:blue")
    ax.set_xlabel("update t")
    ax.set_ylabel("β_t = min(β_cap, t / total_anneal_steps)", color="tab:blue")
    if kl is not None:
        other = ax.twinx()
        other.plot(*kl, color="tab:red", linewidth=0.8)
        other.set_ylabel("KL(q(z|x) ‖ N(0, I)), per user", color="tab:red")
    ax.set_title(title)
    return _save(fig, path)


def _slug(label: str) -> str:
    """A file-name-safe form of a label: ``Mult-VAE^PR`` -> ``Mult-VAEPR``."""
    return re.sub(r"[^A-Za-z0-9._-]", "", label) or "run"


def _validation(run_dir: str, scalars: dict) -> list[float]:
    """Validation NDCG@100 per epoch: metrics.json's, else the logs'."""
    try:
        values = rundir.read_json(run_dir, rundir.METRICS)["validation"]
        return list(values[VALIDATION_METRIC])
    except (FileNotFoundError, KeyError):
        pass
    tag = "validation/" + VALIDATION_METRIC
    if tag in scalars:
        return list(scalars[tag][1])
    raise FileNotFoundError(
        f"{run_dir} has neither metrics.json nor validation logs"
    )


@cli.command("plots")
def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tf_multvae.reports.plots",
        description="Validation NDCG@100 per epoch and β with the KL, as PNG.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN")
    p.add_argument("--out", help="output directory (default FIRST_RUN/plots)")
    p.add_argument("--labels", help="comma-separated names of the runs")
    cli.add_verbose(p)
    args = p.parse_args(argv)
    labels = (
        args.labels.split(",")
        if args.labels
        else [os.path.basename(os.path.normpath(r)) for r in args.run_dirs]
    )
    if len(labels) != len(args.run_dirs):
        p.error(f"--labels names {len(labels)} runs, not {len(args.run_dirs)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tf_multvae.reports import runs

    out = args.out or os.path.join(args.run_dirs[0], "plots")
    try:
        _figure()
        scalars = [runs.read_scalars(r) for r in args.run_dirs]
        curves = {
            label: _validation(run, logs)
            for label, run, logs in zip(labels, args.run_dirs, scalars)
        }
    except (ImportError, FileNotFoundError) as err:
        return cli.fail(err)
    os.makedirs(out, exist_ok=True)
    name = f"validation_{VALIDATION_METRIC}.png"
    print(f"wrote {validation_curves(curves, os.path.join(out, name))}")
    for label, logs in zip(labels, scalars):
        if "train/beta" in logs:
            path = os.path.join(out, f"beta_kl-{_slug(label)}.png")
            beta_kl(logs["train/beta"], logs.get("train/kl"), path, label)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    cli.quiet_process("plots")
    sys.exit(cli.end_process(main()))
