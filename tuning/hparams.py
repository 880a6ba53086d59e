"""The HParams dashboard of a search: the experiment and each trial's run.

TensorBoard's HParams plugin reads the experiment (the space's domains
and the metrics shown) from ``LOG_DIR`` and each trial's values and best
validation NDCG@100 from ``LOG_DIR/trial_ID``.
"""

from __future__ import annotations

import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

from tf_multvae import metrics
from tuning.space import RANGES
from tuning.space import SearchSpace

# The trial's best validation NDCG@100, at its best epoch.
BEST_TAG = "best_" + metrics.SELECTION_METRIC


def trial_writer(run_dir: str, values: dict, trial_id: str):
    """A summary writer for a trial's run, its hyperparameters written."""
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        hparams_api.hparams(values, trial_id=f"trial_{trial_id}")
    return writer


def write_best(writer, epoch: int, value: float) -> None:
    """The trial's best validation NDCG@100 (step: its epoch); closes."""
    with writer.as_default(step=epoch):
        tf.summary.scalar(BEST_TAG, value)
    writer.close()


def write_experiment(log_dir: str, space: SearchSpace) -> None:
    """The HParams dashboard's experiment: the space and the metrics."""
    domains = []
    for name in space.names:
        spec = getattr(space, name)
        if name in RANGES:
            low, high = float(spec[0]), float(spec[1])
            domain = hparams_api.RealInterval(low, high)
        else:
            domain = hparams_api.Discrete([int(v) for v in spec])
        domains.append(hparams_api.HParam(name, domain))
    shown = [
        hparams_api.Metric(BEST_TAG, display_name="best validation NDCG@100"),
        hparams_api.Metric(
            metrics.SELECTION_METRIC,
            group="validation",
            display_name="validation NDCG@100 (last epoch)",
        ),
    ]
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        hparams_api.hparams_config(hparams=domains, metrics=shown)
    writer.close()
