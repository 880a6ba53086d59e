"""Reading a run back for the reports: its scorer, per-user metrics, curves.

The run directory's files and names are ``tf_multvae.rundir``'s; this
module loads what the report commands need from one: the model to score
with (:func:`load_scorer`: ``best.keras``, or a baseline refit from its
config.json), the per-user CSV (written and read here, evaluated when
missing or stale) and the TensorBoard scalars.
"""

from __future__ import annotations

import csv
import os
from typing import Sequence

import numpy as np

from tf_multvae import config as cfg
from tf_multvae import features
from tf_multvae import metrics
from tf_multvae import rundir
from tf_multvae.reports import evaluation


def check_dataset(
    run_dir: str, data_dir: str | None = None, config: dict | None = None
) -> str:
    """The run's dataset directory, refused if not the one it trained on.

    The dataset must be a prepared one (``datadir.load_info``) with the
    fingerprint that the run's config.json records (runs written before
    fingerprints: the same number of items).

    Args:
        data_dir: the dataset (default: the one in config.json).
        config: the run's config.json, when already read.

    Raises:
        FileNotFoundError, ValueError: naming the run and the dataset.
    """
    from tf_multvae import datadir

    config = config or rundir.read_json(run_dir, rundir.CONFIG)
    data_dir = data_dir or config.get("data_dir")
    if not data_dir:
        raise ValueError(f"{run_dir}/{rundir.CONFIG} names no data_dir")
    info = datadir.load_info(data_dir)
    wanted = config.get(rundir.FINGERPRINT)
    if wanted is not None and wanted != datadir.fingerprint(data_dir):
        raise ValueError(
            f"the dataset {data_dir} was prepared again since the run "
            f"{run_dir} trained on it (its metadata.json or items.txt "
            "differ from the fingerprint in the run's config.json); use "
            "the dataset the run trained on, or train the run again"
        )
    n_items = config.get("n_items")
    if n_items is not None and n_items != info.n_items:
        raise ValueError(
            f"the run {run_dir} was trained on {n_items} items but the "
            f"dataset {data_dir} has {info.n_items}: not the dataset it "
            "trained on"
        )
    return data_dir


def load_scorer(run_dir: str, data_dir: str | None = None):
    """The run's model: best.keras, or a baseline refit from config.json.

    Args:
        run_dir: a run directory.
        data_dir: the prepared dataset (default: the one in config.json);
            baselines are refit on it.

    Returns:
        (scorer, data_dir): something with ``score`` (see
        ``evaluation.Scorer``) and the dataset directory it belongs to.

    Raises:
        FileNotFoundError, ValueError: not a run, or not the dataset it
            trained on (:func:`check_dataset`).
    """
    config = rundir.read_json(run_dir, rundir.CONFIG)
    data_dir = check_dataset(run_dir, data_dir, config)
    if rundir.kind(config) in cfg.MODELS:
        import keras

        # Registers the custom classes before loading.
        from tf_multvae import model as _model  # noqa: F401

        path = os.path.join(run_dir, rundir.BEST_MODEL)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{run_dir} has no {rundir.BEST_MODEL}")
        return keras.saving.load_model(path), data_dir
    from tf_multvae import baselines
    from tf_multvae import datadir

    with datadir.reading(data_dir):
        return baselines.fit(config["model"], data_dir), data_dir


def write_per_user(
    path: str, per_user: dict[str, np.ndarray], names: tuple[str, ...]
) -> None:
    """One CSV row per user (see the module docstring); atomic."""
    tmp = path + rundir.TMP
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([features.USER_ID, *evaluation.COUNT_KEYS, *names])
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
        metric column under its name (``ndcg_at_100``; files written
        before the one spelling, with ``ndcg@100`` columns, read the same),
        NaN where the user is not scored.
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
            out[name.replace("@", "_at_")] = np.array(
                [float(v) if v else np.nan for v in column], np.float64
            )
    out["scored"] = out["n_heldout"] > 0
    return out


def _is_fresh(path: str, run_dir: str) -> bool:
    """The file exists and is not older than the run's metrics.json."""
    if not os.path.isfile(path):
        return False
    metrics_json = os.path.join(run_dir, rundir.METRICS)
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
            ``metrics.cutoffs``).

    Returns:
        As :func:`read_per_user`.
    """
    need = set(metrics.PAPER_METRICS) | set(
        metrics.metric_names(ks) if ks else ()
    )
    from tf_multvae import datadir

    path = rundir.per_user_path(run_dir, split)
    if _is_fresh(path, run_dir):
        table = read_per_user(path)
        if all(n in table for n in need):
            check_dataset(run_dir, data_dir)
            return table
    scorer, data_dir = load_scorer(run_dir, data_dir)
    every = sorted(
        {k for values in metrics.PAPER_CUTOFFS.values() for k in values}
        | set(ks or ())
    )
    with datadir.reading(data_dir):
        values = evaluation.per_user_metrics(
            scorer, data_dir, split, batch_size, every
        )
    write_per_user(path, values, metrics.metric_names(every))
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
    log_dir = os.path.join(run_dir, rundir.LOGS)
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
