"""Fitting one baseline under the paper's protocol into a run directory.

:func:`run` fits the baseline on the training users (through the same
data pipeline as the models), scores both held-out splits with the same
code (``reports.evaluation``: fold-in items masked, Recall@20/50,
NDCG@100) and writes a run directory like ``tf_multvae.train``'s
(config.json, metrics.json) plus the test users' per-user file, so the
report commands (evaluate, compare, plots) take it like any run. The
command (``tf_multvae.baselines.command``) and the grid
(``tf_multvae.baselines.grid``) both fit through it.
"""

from __future__ import annotations

import os
import time

from tf_multvae import baselines
from tf_multvae import rundir


def run(
    kind: str,
    data_dir: str,
    run_dir: str,
    batch_size: int = 500,
    overwrite: bool = False,
    available_bytes: int | None = -1,
    **hyperparameters,
) -> dict:
    """Fits a baseline, evaluates it on both held-out splits, writes run_dir.

    Args:
        available_bytes: the memory budget the fit must stay within (its
            estimate is checked before anything is written); -1: what
            the machine has available now; None: do not check.

    Returns:
        The contents of metrics.json: ``test`` as ``tf_multvae.train``
        writes it, ``validation`` with one value per metric (one "epoch"),
        the fit's seconds and what the baseline reports (EASE: the solve's
        residual).

    Raises:
        FileNotFoundError, ValueError: bad data directory or arguments, or
            a run directory holding another run (without ``overwrite``);
            a shard found corrupt as it is read (``datadir.CorruptShard``)
            leaves the run directory as it was.
        MemoryError, FloatingPointError: the fit would not fit in memory,
            or its solve went wrong.
    """
    from tf_multvae import datadir

    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    model = baselines.make({"kind": kind, **hyperparameters})
    info = datadir.load_info(data_dir)
    baselines.check(model, data_dir, available_bytes)  # before writing
    config = {
        "dataset": info.metadata.get("source", {}).get("dataset"),
        "model": model.config,
        "data_dir": os.path.abspath(data_dir),
        "n_items": info.n_items,
        rundir.FINGERPRINT: datadir.fingerprint(data_dir),
    }
    with rundir.unchanged_on(run_dir, (datadir.CorruptShard,)):
        with datadir.reading(data_dir):
            rundir.prepare(run_dir, config, overwrite)
            return _fit_and_write(model, data_dir, run_dir, batch_size)


def _fit_and_write(model, data_dir: str, run_dir: str, batch_size: int):
    from tf_multvae import datadir
    from tf_multvae.reports import evaluation
    from tf_multvae.reports import runs

    started = time.time()
    model = baselines.fit(model.config, data_dir)
    seconds = time.time() - started
    per_user = evaluation.per_user_metrics(model, data_dir, "test", batch_size)
    validation = {}  # none where the dataset has no validation users
    if datadir.count_users(data_dir, "validation"):
        validation = evaluation.evaluate(
            model, data_dir, "validation", batch_size
        )
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
        rundir.per_user_path(run_dir, "test"),
        per_user,
        evaluation.metric_keys(per_user),
    )
    return result
