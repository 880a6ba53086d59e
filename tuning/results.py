"""What a finished search leaves in its output directory.

``best_hyperparameters.json`` (the best trial's values, score and the
command that retrains them), ``trials.csv`` and ``trials.md`` (every
trial: values, best validation NDCG@100, epochs, time) and ``retrain.sh``
(that command, runnable). Everything is read from the oracle's trials, so
the files are the same whether one process ran the trials or many workers
did for a chief.
"""

from __future__ import annotations

import csv
import json
import os
import shlex

from tf_multvae import config as cfg
from tuning import hypermodel as hm
from tuning import space

METRICS = (
    hm.OBJECTIVE,
    "val_recall_at_20",
    "val_recall_at_50",
    "best_epoch",
    "epochs",
    "seconds",
)
_INTS = ("best_epoch", "epochs")


def trial_rows(oracle, names: tuple[str, ...]) -> list[dict]:
    """One row per trial, in trial id order: id, status, values, metrics.

    Args:
        oracle: a KerasTuner oracle (holding every trial: the chief's, or
            the one of a search in one process).
        names: the hyperparameters, as columns.
    """
    rows = []
    for trial_id in sorted(oracle.trials, key=int):
        trial = oracle.trials[trial_id]
        row = {"trial": trial_id, "status": trial.status}
        row.update({n: trial.hyperparameters.values.get(n) for n in names})
        for metric in METRICS:
            value = None
            if trial.metrics.exists(metric):
                value = trial.metrics.get_last_value(metric)
                value = int(value) if metric in _INTS else float(value)
            row[metric] = value
        rows.append(row)
    return rows


def best_row(rows: list[dict]) -> dict | None:
    """The completed trial with the highest validation NDCG@100."""
    done = [
        r
        for r in rows
        if r["status"] == "COMPLETED" and r[hm.OBJECTIVE] is not None
    ]
    return max(done, key=lambda r: r[hm.OBJECTIVE]) if done else None


def retrain_command(
    config: cfg.RunConfig,
    names: tuple[str, ...],
    data_dir: str,
    run_dir: str,
    extra: dict | None = None,
) -> str:
    """``python -m tf_multvae.train`` flags that train ``config``.

    Args:
        config: the best trial's configuration.
        names: the hyperparameters the search set (the others are the
            preset's, which train applies itself).
        extra: further train flags and values (batch size, seed, epochs).
    """
    m = config.model
    args = [
        "python",
        "-m",
        "tf_multvae.train",
        "--dataset",
        config.dataset,
        "--model",
        m.kind,
        "--data-dir",
        data_dir,
        "--run-dir",
        run_dir,
    ]
    for name in names:
        field = space.CONFIG_FIELDS.get(name, name)
        section = m if field in cfg.MODEL_FLAGS else config.train
        args += [cfg.flag(field), cfg.flag_value(getattr(section, field))]
    for flag, value in (extra or {}).items():
        args += [flag, str(value)]
    return " ".join(shlex.quote(a) for a in args)


def _cell(column: str, value) -> str:
    if value is None:
        return ""
    if column == "seconds":
        return f"{value:.0f}"
    if isinstance(value, float):
        return f"{value:.4f}" if column in METRICS else f"{value:.4g}"
    return str(value)


def write(out: str, rows: list[dict], names, best: dict | None) -> None:
    """trials.csv, trials.md, and (when a trial completed) the best's files.

    Args:
        out: the search's output directory.
        rows: :func:`trial_rows`.
        names: the hyperparameter columns.
        best: ``{"trial", "hyperparameters", "val_ndcg_at_100", ...,
            "command"}`` or None.
    """
    columns = ["trial", "status", *names, *METRICS]
    with open(os.path.join(out, "trials.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    headers = {
        hm.OBJECTIVE: "val NDCG@100",
        "val_recall_at_20": "val R@20",
        "val_recall_at_50": "val R@50",
        "best_epoch": "best epoch",
    }
    lines = [
        "| " + " | ".join(headers.get(c, c) for c in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        cells = [_cell(c, row[c]) for c in columns]
        if best is not None and row["trial"] == best["trial"]:
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    with open(os.path.join(out, "trials.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    if best is None:
        return
    with open(os.path.join(out, "best_hyperparameters.json"), "w") as f:
        json.dump(best, f, indent=2)
    with open(os.path.join(out, "retrain.sh"), "w") as f:
        f.write("#!/bin/sh\n# The best trial's configuration, retrained.\n")
        f.write(best["command"] + "\n")
