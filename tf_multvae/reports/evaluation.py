"""Evaluating a model on held-out users, per the dataset's protocol.

The paper's (§4.2): ranks all items by the model's scores after masking
each user's fold-in items with -inf, then scores the held-out items with
Recall@20, Recall@50 and NDCG@100 (``tf_multvae.metrics``), or with
Recall@k and NDCG@k at any cutoffs asked for. Users without held-out items
are excluded and counted. Under the leave-one-out protocol (NCF's, the
paper's Table 3) the held-out item is ranked among its candidates instead,
HR@10 and NDCG@10 (``tf_multvae.sampled``), or HR@k and NDCG@k.

Works through the evaluation set one chunk of users at a time (a batch of
``data.eval_dataset``): only ``batch_size`` × n_items scores exist at once,
so an MSD-size test set (50,000 users × 41,140 items) never becomes a dense
users × items matrix. Anything with a ``score`` method is evaluated the
same way: the Keras models and the baselines (``tf_multvae.baselines``).
"""

from __future__ import annotations

from typing import Protocol
from typing import Sequence

import numpy as np
import tensorflow as tf

from tf_multvae import data
from tf_multvae import datadir
from tf_multvae import features
from tf_multvae import metrics
from tf_multvae import sampled

# Per-user arrays besides the metrics (see per_user_metrics).
COUNT_KEYS = ("n_fold_in", "n_heldout")


class Scorer(Protocol):
    """What can be evaluated: a model's ``score`` (e.g. ``MultVAE.score``).

    ``score(item_ids)`` takes int64 ``[batch, max_len]`` fold-in item
    indices padded with -1 and returns float32 ``[batch, n_items]`` scores
    (unmasked; higher ranks first).
    """

    def score(self, item_ids: tf.Tensor) -> tf.Tensor: ...


def per_user_metrics(
    model: Scorer,
    data_dir: str,
    split: str,
    batch_size: int = 500,
    ks: Sequence[int] | None = None,
) -> dict[str, np.ndarray]:
    """Every user's metrics on ``split``, ``batch_size`` users at a time.

    Args:
        model: anything with ``score`` (see :class:`Scorer`).
        data_dir: a prepared dataset directory.
        split: ``"validation"`` or ``"test"``.
        batch_size: users scored at once (memory: batch_size × n_items
            float32 scores).
        ks: cutoffs for both Recall@k and NDCG@k (HR@k and NDCG@k under
            leave-one-out); None: the paper's Recall@20, Recall@50 and
            NDCG@100 (HR@10 and NDCG@10).

    Returns:
        In file order, n = users in the split: ``user_id`` (bytes ``[n]``),
        ``scored`` (bool ``[n]``: has held-out items, and candidates under
        leave-one-out), ``n_fold_in`` and ``n_heldout`` (int64 ``[n]``) and
        one float32 ``[n]`` array per name of
        ``metrics.metric_names(ks, protocol)`` (0 for users that are not
        scored).

    Raises:
        ValueError: a cutoff above the number of items, or an empty split.
    """
    info = datadir.load_info(data_dir)
    per_metric = metrics.cutoffs(ks, info.protocol)
    largest = max(k for values in per_metric.values() for k in values)
    if info.protocol == features.STRONG_GENERALIZATION and (
        largest > info.n_items
    ):
        raise ValueError(
            f"cutoff k={largest} exceeds the {info.n_items} items of {data_dir}"
        )
    ds = data.eval_dataset(data_dir, split, batch_size, with_user_ids=True)
    ids = tf.TensorSpec([None, None], tf.int64)

    def counts(fold_in, heldout) -> dict:
        return {
            "n_fold_in": tf.reduce_sum(tf.cast(fold_in >= 0, tf.int64), 1),
            "n_heldout": tf.reduce_sum(tf.cast(heldout >= 0, tf.int64), 1),
        }

    # One trace for every batch width.
    @tf.function(input_signature=[ids, ids])
    def step(fold_in, heldout):
        scores = model.score(fold_in)  # [batch, n_items]
        out = metrics.ranking_metrics(
            scores, fold_in, heldout, per_metric["recall"], per_metric["ndcg"]
        )
        out["scored"] = metrics.has_heldout(heldout)
        return {**out, **counts(fold_in, heldout)}

    @tf.function(input_signature=[ids, ids, ids])
    def sampled_step(fold_in, heldout, candidates):
        scores = model.score(fold_in)  # [batch, n_items]
        out = sampled.sampled_metrics(
            scores, candidates, heldout, per_metric["hr"], per_metric["ndcg"]
        )
        out["scored"] = sampled.has_candidates(candidates, heldout)
        return {**out, **counts(fold_in, heldout)}

    parts: dict[str, list] = {}
    for batch in ds:
        if info.protocol == features.LEAVE_ONE_OUT:
            out = sampled_step(
                batch[features.FOLD_IN],
                batch[features.HELDOUT],
                batch[features.CANDIDATES],
            )
        else:
            out = step(batch[features.FOLD_IN], batch[features.HELDOUT])
        out["user_id"] = batch[features.USER_ID]
        for key, value in out.items():
            parts.setdefault(key, []).append(value.numpy())
    if not parts:
        raise ValueError(f"{data_dir}: the {split} split has no users")
    order = (
        "user_id",
        "scored",
        *COUNT_KEYS,
        *metrics.metric_names(ks, info.protocol),
    )
    return {key: np.concatenate(parts[key]) for key in order}


def summarize(
    per_user: dict[str, np.ndarray], names: Sequence[str] | None = None
) -> dict:
    """Mean and standard error of each metric over the scored users.

    ``names``: the metrics to summarize; None: every metric that
    ``per_user`` holds (:func:`metric_keys`).

    Returns:
        ``{"recall_at_20": {"mean", "stderr"}, ..., "users": scored users,
        "users_without_heldout": the others}`` (NaN for no scored user).
    """
    scored = per_user["scored"].astype(bool)
    out = {}
    for name in metric_keys(per_user) if names is None else names:
        values = per_user[name][scored]
        if values.size:
            mean, stderr = metrics.mean_and_stderr(values)
        else:
            mean, stderr = float("nan"), float("nan")
        out[name] = {"mean": mean, "stderr": stderr}
    out["users"] = int(scored.sum())
    out["users_without_heldout"] = int((~scored).sum())
    return out


def metric_keys(per_user: dict[str, np.ndarray]) -> tuple[str, ...]:
    """The metric arrays of a :func:`per_user_metrics` result, in order."""
    return tuple(
        key for key in per_user if key not in ("user_id", "scored", *COUNT_KEYS)
    )


def evaluate(
    model: Scorer,
    data_dir: str,
    split: str,
    batch_size: int = 500,
    ks: Sequence[int] | None = None,
) -> dict:
    """Summary metrics of ``model`` on ``split`` (see :func:`summarize`)."""
    per_user = per_user_metrics(model, data_dir, split, batch_size, ks)
    return summarize(per_user)


def format_table(summary: dict, title: str) -> str:
    """A plain-text table of a :func:`summarize` result, one metric a row."""
    names = [k for k, v in summary.items() if isinstance(v, dict)]
    width = max(len(n) for n in names + ["metric"])
    lines = [
        title,
        f"{'metric':<{width}}  {'mean':>7}  {'stderr':>7}",
    ]
    for name in names:
        value = summary[name]
        lines.append(
            f"{name:<{width}}  {value['mean']:7.4f}  {value['stderr']:7.4f}"
        )
    lines.append(
        f"users scored: {summary['users']}, without held-out items: "
        f"{summary['users_without_heldout']}"
    )
    return "\n".join(lines)
