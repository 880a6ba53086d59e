"""Evaluating a model on held-out users, per the paper's protocol (§4.2).

Ranks all items by the model's scores after masking each user's fold-in
items with -inf, then scores the held-out items with Recall@20, Recall@50
and NDCG@100 (``tf_multvae.metrics``). Users without held-out items are
excluded and counted. Works through the evaluation set batch by batch, so
only one batch of users × items scores exists at a time.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tf_multvae import data
from tf_multvae import features
from tf_multvae import metrics

METRIC_NAMES = ("recall_at_20", "recall_at_50", "ndcg_at_100")


def report_name(name: str) -> str:
    """``ndcg_at_100`` (logs, tuner) -> ``ndcg@100`` (metrics.json)."""
    return name.replace("_at_", "@")


def per_user_metrics(
    model: keras.Model, data_dir: str, split: str, batch_size: int
) -> dict[str, np.ndarray]:
    """Every user's metrics on ``split``.

    Returns:
        ``user_id`` (bytes ``[n]``), ``scored`` (bool ``[n]``: has held-out
        items), ``n_fold_in`` and ``n_heldout`` (int ``[n]``) and one float
        ``[n]`` array per metric name (0 for users that are not scored).
    """
    ds = data.eval_dataset(data_dir, split, batch_size, with_user_ids=True)

    @tf.function
    def step(fold_in, heldout):
        scores = model.score(fold_in)
        out = metrics.ranking_metrics(scores, fold_in, heldout)
        out["scored"] = metrics.has_heldout(heldout)
        out["n_fold_in"] = tf.reduce_sum(tf.cast(fold_in >= 0, tf.int64), 1)
        out["n_heldout"] = tf.reduce_sum(tf.cast(heldout >= 0, tf.int64), 1)
        return out

    parts: dict[str, list] = {}
    for batch in ds:
        out = step(batch[features.FOLD_IN], batch[features.HELDOUT])
        out["user_id"] = batch[features.USER_ID]
        for key, value in out.items():
            parts.setdefault(key, []).append(value.numpy())
    if not parts:
        raise ValueError(f"{data_dir}: the {split} split has no users")
    return {key: np.concatenate(value) for key, value in parts.items()}


def summarize(per_user: dict[str, np.ndarray]) -> dict:
    """Mean and standard error of each metric over the scored users."""
    scored = per_user["scored"].astype(bool)
    out = {}
    for name in METRIC_NAMES:
        values = per_user[name][scored]
        if values.size:
            mean, stderr = metrics.mean_and_stderr(values)
        else:
            mean, stderr = float("nan"), float("nan")
        out[report_name(name)] = {"mean": mean, "stderr": stderr}
    out["users"] = int(scored.sum())
    out["users_without_heldout"] = int((~scored).sum())
    return out


def evaluate(
    model: keras.Model, data_dir: str, split: str, batch_size: int = 500
) -> dict:
    """Summary metrics of ``model`` on ``split`` (see :func:`summarize`)."""
    return summarize(per_user_metrics(model, data_dir, split, batch_size))
