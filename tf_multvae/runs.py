"""Run directories: what they hold, and reading them back for reports.

``python -m tf_multvae.train`` (Mult-VAE^PR, Mult-DAE) and ``python -m
tf_multvae.baselines`` (popularity, EASE) write::

    config.json            the resolved configuration; ["model"]["kind"]
                           is vae, dae, popularity or ease
    metrics.json           {"test": {"ndcg@100": {"mean", "stderr"}, ...,
                           "users": n}, "validation": {"ndcg@100": [...]}}
    best.keras             the best model (trained models only)
    logs/                  TensorBoard scalars (trained models only)

and the report commands add::

    eval-SPLIT.json        python -m tf_multvae.evaluate's summary
    per_user-SPLIT.csv     one row per user: user_id, n_fold_in,
                           n_heldout and each metric (empty where the
                           user has no held-out items)
"""

from __future__ import annotations

import csv
import json
import math
import os
from typing import Sequence

import numpy as np

from tf_multvae import evaluation
from tf_multvae import features

CONFIG = "config.json"
METRICS = "metrics.json"
BEST_MODEL = "best.keras"
LOGS = "logs"
TRAINED_KINDS = ("vae", "dae")  # saved as best.keras; baselines are refit


def summary_path(run_dir: str, split: str) -> str:
    return os.path.join(run_dir, f"eval-{split}.json")


def per_user_path(run_dir: str, split: str) -> str:
    return os.path.join(run_dir, f"per_user-{split}.csv")


def read_json(run_dir: str, name: str) -> dict:
    """``run_dir/name`` as JSON.

    Raises:
        FileNotFoundError: no such file; the message says what a run
            directory is.
    """
    path = os.path.join(run_dir, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{run_dir} is not a finished run directory: it has no {name} "
            "(make one with python -m tf_multvae.train or "
            "python -m tf_multvae.baselines)"
        )
    with open(path) as f:
        return json.load(f)


def _finite(value):
    """NaN and infinities -> None, recursively (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_json(path: str, value) -> None:
    """``value`` as strict JSON (NaN written as null), atomically."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(_finite(value), f, indent=2, allow_nan=False)
    os.replace(tmp, path)


def kind(config: dict) -> str:
    return config["model"]["kind"]


def load_scorer(run_dir: str, data_dir: str | None = None):
    """The run's model: best.keras, or a baseline refit from config.json.

    Args:
        run_dir: a run directory.
        data_dir: the prepared dataset (default: the one in config.json);
            baselines are refit on it.

    Returns:
        (scorer, data_dir): something with ``score`` (see
        ``evaluation.Scorer``) and the dataset directory it belongs to.
    """
    config = read_json(run_dir, CONFIG)
    data_dir = data_dir or config["data_dir"]
    if kind(config) in TRAINED_KINDS:
        import keras

        # Registers the custom classes before loading.
        from tf_multvae import model as _model  # noqa: F401

        path = os.path.join(run_dir, BEST_MODEL)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{run_dir} has no {BEST_MODEL}")
        return keras.saving.load_model(path), data_dir
    from tf_multvae import baselines

    return baselines.fit(config["model"], data_dir), data_dir


def write_per_user(
    path: str, per_user: dict[str, np.ndarray], names: tuple[str, ...]
) -> None:
    """One CSV row per user (see the module docstring); atomic."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [features.USER_ID, *evaluation.COUNT_KEYS]
            + [evaluation.report_name(n) for n in names]
        )
        for u, user in enumerate(per_user["user_id"]):
            scored = bool(per_user["scored"][u])
            writer.writerow(
                [user.decode() if isinstance(user, bytes) else user]
                + [int(per_user[k][u]) for k in evaluation.COUNT_KEYS]
                + [repr(float(per_user[n][u])) if scored else "" for n in names]
            )
    os.replace(tmp, path)


def read_per_user(path: str) -> dict[str, np.ndarray]:
    """A per-user CSV back as arrays.

    Returns:
        ``user_id`` (str ``[n]``), ``n_fold_in``, ``n_heldout`` (int64
        ``[n]``), ``scored`` (bool ``[n]``) and one float64 ``[n]`` per
        metric column under its report name (``ndcg@100``), NaN where the
        user is not scored.
    """
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    columns = list(zip(*rows)) if rows else [()] * len(header)
    out = {}
    for name, column in zip(header, columns):
        if name == features.USER_ID:
            out[name] = np.asarray(column, dtype=str)
        elif name in evaluation.COUNT_KEYS:
            out[name] = np.asarray(column, dtype=np.int64)
        else:
            out[name] = np.array(
                [float(v) if v else np.nan for v in column], np.float64
            )
    out["scored"] = out["n_heldout"] > 0
    return out


def _is_fresh(path: str, run_dir: str) -> bool:
    """The file exists and is not older than the run's metrics.json."""
    if not os.path.isfile(path):
        return False
    metrics_json = os.path.join(run_dir, METRICS)
    return not os.path.exists(metrics_json) or (
        os.path.getmtime(path) >= os.path.getmtime(metrics_json)
    )


def per_user(
    run_dir: str,
    split: str = features.TEST,
    ks: Sequence[int] | None = None,
    data_dir: str | None = None,
    batch_size: int = 500,
) -> dict[str, np.ndarray]:
    """A run's per-user metrics: its per-user file, else evaluated now.

    The file is reused when it is at least as new as metrics.json and has
    every metric asked for; otherwise the run's model is evaluated (the
    paper's cutoffs and ``ks``) and the file written.

    Args:
        ks: cutoffs needed besides the paper's (see
            ``evaluation.cutoffs``).

    Returns:
        As :func:`read_per_user`.
    """
    need = set(evaluation.METRIC_NAMES) | set(
        evaluation.metric_names(ks) if ks else ()
    )
    path = per_user_path(run_dir, split)
    if _is_fresh(path, run_dir):
        table = read_per_user(path)
        if all(evaluation.report_name(n) in table for n in need):
            return table
    scorer, data_dir = load_scorer(run_dir, data_dir)
    every = sorted(
        {k for values in evaluation.PAPER_CUTOFFS.values() for k in values}
        | set(ks or ())
    )
    values = evaluation.per_user_metrics(
        scorer, data_dir, split, batch_size, every
    )
    write_per_user(path, values, evaluation.metric_names(every))
    return read_per_user(path)


def read_scalars(run_dir: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The run's TensorBoard scalars, e.g. ``train/beta``, ``train/kl``.

    A resumed run logs the re-run steps again; the later write wins.

    Returns:
        ``"SUBDIR/TAG"`` -> (steps int64 ``[n]``, values float64 ``[n]``),
        sorted by step; empty when the run has no logs.
    """
    import tensorflow as tf

    found: dict[str, dict[int, tuple[float, float]]] = {}
    log_dir = os.path.join(run_dir, LOGS)
    for root, _, files in sorted(os.walk(log_dir)):
        for name in sorted(files):
            if not name.startswith("events.out.tfevents"):
                continue
            path = os.path.join(root, name)
            for record in tf.data.TFRecordDataset(path):
                event = tf.compat.v1.Event.FromString(record.numpy())
                for value in event.summary.value:
                    tag = f"{os.path.relpath(root, log_dir)}/{value.tag}"
                    number = float(tf.make_ndarray(value.tensor))
                    previous = found.setdefault(tag, {}).get(event.step)
                    if previous is None or previous[0] <= event.wall_time:
                        found[tag][event.step] = (event.wall_time, number)
    out = {}
    for tag, by_step in found.items():
        steps = np.array(sorted(by_step), np.int64)
        values = np.array([by_step[s][1] for s in steps], np.float64)
        out[tag] = (steps, values)
    return out
