"""Ranking metrics of the paper's evaluation (Section 4.2), as pure functions.

A held-out user's fold-in items go through the model; the held-out items are
the targets (docs/design.md, "The paper's protocol"). Two rules follow the
paper and the authors' notebook:

* Fold-in items are masked with -inf before ranking (:func:`mask_fold_in`),
  so items the user already clicked are never recommended and never count.
* Recall@R divides the hits in the top R by min(R, number of held-out
  items), not by the number of held-out items, so it reaches 1 for a
  perfect ranking. NDCG@R normalizes by the ideal DCG of min(R, n) hits.

Ties: items are ranked in ``tf.math.top_k`` order, so among equal scores the
lower item index ranks first (``np.argsort(-scores, kind="stable")`` gives
the same order).

Item lists are dense int64 ``[batch, max_len]`` tensors padded with
:data:`tf_multvae.features.PAD` (-1). Metrics are per user (``[batch]``,
float32, computed in float32 whatever the scores' dtype); users without
held-out items get 0 and :func:`has_heldout` False, and must be left out of
averages. All TF functions keep static shapes, so they run inside
``tf.function`` and replica contexts of ``tf.distribute``.

Names: a metric has one spelling everywhere, ``recall_at_20``,
``ndcg_at_100`` (:func:`metric_name`): Keras logs (``val_ndcg_at_100``),
TensorBoard tags, metrics.json, per-user CSV columns, the tuner's
objective and the docs. :func:`label` gives the paper's way of writing it
for tables and plots (``NDCG@100``). The leave-one-out protocol's
names are here too; its ranking among candidates is ``tf_multvae.sampled``.

The module is longer than 300 lines because every metric's docstring
states its definition from the paper next to the code that computes it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from tf_multvae import features
from tf_multvae import ranking

_INT64_MAX = np.iinfo(np.int64).max
# The metric families; names via metric_name. "hr" (hit ratio) is the
# leave-one-out protocol's, where NDCG is over the sampled candidates.
METRICS = ("recall", "ndcg", "hr")
_LABELS = {"recall": "Recall", "ndcg": "NDCG", "hr": "HR"}


def metric_name(metric: str, k: int) -> str:
    """The one spelling of a metric's name: ``("ndcg", 100)`` ->
    ``"ndcg_at_100"``.

    Raises:
        ValueError: ``metric`` is not one of :data:`METRICS`.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
    return f"{metric}_at_{int(k)}"


def label(name: str) -> str:
    """``"ndcg_at_100"`` -> ``"NDCG@100"``, for tables and plots."""
    metric, _, k = name.partition("_at_")
    return f"{_LABELS[metric]}@{k}"


# The paper's cutoffs (Section 4.2): Recall@20, Recall@50, NDCG@100, and the
# metric that selects the best epoch (and that the tuner maximizes).
PAPER_CUTOFFS = {"recall": (20, 50), "ndcg": (100,)}
PAPER_METRICS = tuple(
    metric_name(metric, k) for metric, ks in PAPER_CUTOFFS.items() for k in ks
)
SELECTION_METRIC = metric_name("ndcg", 100)
VALIDATION_PREFIX = "val_"  # Keras's prefix of validation logs

# The leave-one-out protocol's (NCF's; the paper's Table 3): HR@10 and
# NDCG@10 of the one held-out item ranked among its candidates, NDCG@10
# also selecting the epoch.
SAMPLED_CUTOFFS = {"hr": (10,), "ndcg": (10,)}
SAMPLED_METRICS = tuple(
    metric_name(metric, k) for metric, ks in SAMPLED_CUTOFFS.items() for k in ks
)
SAMPLED_SELECTION_METRIC = metric_name("ndcg", 10)


def cutoffs(
    ks: Sequence[int] | None, protocol: str = features.STRONG_GENERALIZATION
) -> dict[str, tuple[int, ...]]:
    """Cutoffs per metric family of ``protocol``: the paper's for None,
    else each k for both (Recall and NDCG, or HR and NDCG).

    Raises:
        ValueError: an empty ``ks``, a cutoff below 1, or an unknown
            protocol.
    """
    if protocol not in features.PROTOCOLS:
        raise ValueError(
            f"protocol must be one of {features.PROTOCOLS}, not {protocol!r}"
        )
    paper = (
        SAMPLED_CUTOFFS if protocol == features.LEAVE_ONE_OUT else PAPER_CUTOFFS
    )
    if ks is None:
        return dict(paper)
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise ValueError(f"cutoffs k must be >= 1, got {list(ks)}")
    return {metric: ks for metric in paper}


def metric_names(
    ks: Sequence[int] | None = None,
    protocol: str = features.STRONG_GENERALIZATION,
) -> tuple[str, ...]:
    """``recall_at_k`` (``hr_at_k`` under leave-one-out) for every k, then
    ``ndcg_at_k`` (see cutoffs)."""
    return tuple(
        metric_name(metric, k)
        for metric, values in cutoffs(ks, protocol).items()
        for k in values
    )


def selection_metric(protocol: str) -> str:
    """The metric that selects the best epoch (and grid point) under
    ``protocol``: NDCG@100, or NDCG@10 over the candidates."""
    cutoffs(None, protocol)  # checks the name
    if protocol == features.LEAVE_ONE_OUT:
        return SAMPLED_SELECTION_METRIC
    return SELECTION_METRIC


def _is_item(item_ids: tf.Tensor) -> tf.Tensor:
    """bool [batch, max_len]: True where ``item_ids`` holds an item."""
    return item_ids != features.PAD


def has_heldout(heldout_ids: tf.Tensor) -> tf.Tensor:
    """Which users have at least one held-out item.

    Only these users are scored (Section 4.2; users with under 5 clicks get
    no targets in preprocessing; docs/design.md, "The paper's protocol").

    Args:
        heldout_ids: int64 ``[batch, max_len]``, held-out item indices padded
            with -1.

    Returns:
        bool ``[batch]``.
    """
    return tf.reduce_any(_is_item(heldout_ids), axis=-1)


def mask_fold_in(scores: tf.Tensor, fold_in_ids: tf.Tensor) -> tf.Tensor:
    """Set the scores of the fold-in items to -inf before ranking.

    Section 4.2: items the user already interacted with are excluded from
    the ranking.

    Args:
        scores: float32 or bfloat16 ``[batch, n_items]``, e.g. the logits.
        fold_in_ids: int64 ``[batch, max_len]``, fold-in item indices padded
            with -1 (padding is ignored).

    Returns:
        float32 ``[batch, n_items]``: ``scores`` with -inf at the fold-in
        items.
    """
    scores = tf.cast(scores, tf.float32)
    fold_in_ids = tf.cast(fold_in_ids, tf.int64)
    is_item = _is_item(fold_in_ids)
    # Padding adds 0 at item 0: every shape stays static, and one pass
    # over the scores does it (x + -inf = -inf for every finite x).
    columns = tf.where(is_item, fold_in_ids, tf.zeros_like(fold_in_ids))
    updates = tf.where(is_item, tf.constant(-np.inf, tf.float32), 0.0)
    return ranking.add_at(scores, columns, updates)


def top_k_items(scores: tf.Tensor, k: int) -> tf.Tensor:
    """Indices of the k highest scores per user, best first.

    Section 4.2 ranks all items by score. Ties: lower item index first
    (:func:`tf_multvae.ranking.top_k`, ``tf.math.top_k``'s result).

    Args:
        scores: float32 or bfloat16 ``[batch, n_items]``, already masked
            with :func:`mask_fold_in`.
        k: number of items to return.

    Returns:
        int64 ``[batch, k]`` item indices.

    Raises:
        ValueError: ``k`` < 1, or ``k`` exceeds the (static) number of
            items.
    """
    n_items = scores.shape[-1]
    if k < 1 or (n_items is not None and k > n_items):
        raise ValueError(f"k={k} must be in [1, n_items={n_items}]")
    _, indices = ranking.top_k(tf.cast(scores, tf.float32), k)
    return tf.cast(indices, tf.int64)


def _top_k_hits(
    top_items: tf.Tensor, heldout_ids: tf.Tensor, k: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Hits of the first k ranked items, and the held-out counts.

    Membership is a binary search in each user's sorted held-out list, so it
    costs O(batch * k * log max_len) without a dense [batch, n_items] mask
    or a [batch, k, max_len] comparison.

    Returns:
        float32 ``[batch, k]`` (1 where the item at rank r is held out) and
        int32 ``[batch]`` (number of held-out items).
    """
    if top_items.shape[-1] is not None and k > top_items.shape[-1]:
        raise ValueError(
            f"k={k} exceeds the {top_items.shape[-1]} ranked items given"
        )
    if k < 1:
        raise ValueError(f"k={k} must be >= 1")
    top_items = tf.cast(top_items[:, :k], tf.int64)  # [batch, k]
    heldout_ids = tf.cast(heldout_ids, tf.int64)
    is_item = _is_item(heldout_ids)
    n_heldout = tf.reduce_sum(tf.cast(is_item, tf.int32), axis=-1)
    # Padding becomes +max and sorts last; one more +max column keeps the
    # list non-empty when max_len is 0.
    sentinel = tf.fill([tf.shape(heldout_ids)[0], 1], tf.constant(_INT64_MAX))
    keys = tf.where(is_item, heldout_ids, tf.constant(_INT64_MAX))
    keys = tf.sort(tf.concat([keys, sentinel], axis=-1), axis=-1)
    position = tf.searchsorted(keys, top_items, side="left")  # [batch, k]
    found = tf.gather(keys, position, axis=1, batch_dims=1)  # [batch, k]
    return tf.cast(found == top_items, tf.float32), n_heldout


def recall_at_k(
    top_items: tf.Tensor, heldout_ids: tf.Tensor, k: int
) -> tf.Tensor:
    """Recall@k with the paper's min(k, n) denominator.

    Section 4.2: Recall@R = sum_{r<=R} 1[item at r is held out] /
    min(R, |held-out items|).

    Args:
        top_items: int64 ``[batch, >=k]``, ranked item indices, best first
            (from :func:`top_k_items`); only the first k are used.
        heldout_ids: int64 ``[batch, max_len]``, held-out item indices
            padded with -1.
        k: the cutoff R.

    Returns:
        float32 ``[batch]``, per user, in [0, 1]; 0 for users without
        held-out items. Not reduced over users.
    """
    hits, n_heldout = _top_k_hits(top_items, heldout_ids, k)
    denominator = tf.cast(tf.minimum(n_heldout, k), tf.float32)
    return tf.math.divide_no_nan(tf.reduce_sum(hits, axis=-1), denominator)


def ndcg_at_k(
    top_items: tf.Tensor, heldout_ids: tf.Tensor, k: int
) -> tf.Tensor:
    """Truncated NDCG@k with binary relevance.

    Section 4.2: DCG@R = sum_{r<=R} 1[item at r is held out] / log2(r + 1),
    NDCG@R = DCG@R / IDCG@R, where IDCG@R is the DCG of min(R, n) hits at
    the top ranks.

    Args:
        top_items: int64 ``[batch, >=k]``, ranked item indices, best first
            (from :func:`top_k_items`); only the first k are used.
        heldout_ids: int64 ``[batch, max_len]``, held-out item indices
            padded with -1.
        k: the cutoff R.

    Returns:
        float32 ``[batch]``, per user, in [0, 1]; 0 for users without
        held-out items. Not reduced over users.
    """
    hits, n_heldout = _top_k_hits(top_items, heldout_ids, k)
    ranks = tf.range(1, k + 1, dtype=tf.float32)  # r = 1..k
    discounts = 1.0 / (tf.math.log(ranks + 1.0) / tf.math.log(2.0))  # [k]
    dcg = tf.reduce_sum(hits * discounts, axis=-1)
    ideal = tf.range(k)[None, :] < tf.minimum(n_heldout, k)[:, None]
    idcg = tf.reduce_sum(tf.cast(ideal, tf.float32) * discounts, axis=-1)
    return tf.math.divide_no_nan(dcg, idcg)


def ranking_metrics(
    scores: tf.Tensor,
    fold_in_ids: tf.Tensor,
    heldout_ids: tf.Tensor,
    ks_recall: Sequence[int] = (20, 50),
    ks_ndcg: Sequence[int] = (100,),
) -> dict[str, tf.Tensor]:
    """The paper's metrics for a batch of held-out users (Section 4.2).

    Masks the fold-in items, ranks once to the largest cutoff, and scores
    every cutoff from that one ranking.

    Args:
        scores: float32 or bfloat16 ``[batch, n_items]``, e.g. the logits.
        fold_in_ids: int64 ``[batch, max_len]``, fold-in items padded with
            -1.
        heldout_ids: int64 ``[batch, max_len]``, held-out items padded with
            -1.
        ks_recall: cutoffs R of Recall@R.
        ks_ndcg: cutoffs R of NDCG@R.

    Returns:
        ``{"recall_at_{k}": ..., "ndcg_at_{k}": ...}``, each float32
        ``[batch]`` per user (0 for users without held-out items). Average
        over the users where :func:`has_heldout` is True.

    Raises:
        ValueError: no cutoff given, or a cutoff larger than n_items.
    """
    ks = tuple(ks_recall) + tuple(ks_ndcg)
    if not ks:
        raise ValueError("ranking_metrics needs at least one cutoff")
    top_items = top_k_items(mask_fold_in(scores, fold_in_ids), max(ks))
    results = {}
    for k in ks_recall:
        results[metric_name("recall", k)] = recall_at_k(
            top_items, heldout_ids, k
        )
    for k in ks_ndcg:
        results[metric_name("ndcg", k)] = ndcg_at_k(top_items, heldout_ids, k)
    return results


def mean_and_stderr(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of per-user metric values.

    The paper reports test metrics with their standard errors (Section 4,
    the results tables). As in the authors' notebook,
    ``np.std(values) / np.sqrt(n)``: the population standard deviation
    (ddof=0) over sqrt(n).

    Args:
        values: float ``[n_users]``, one value per scored user (users
            without held-out items already removed).

    Returns:
        (mean, standard error) as Python floats (0.0 for a single user).

    Raises:
        ValueError: ``values`` is empty.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    n = values.size
    if n == 0:
        raise ValueError("mean_and_stderr needs at least one value")
    return float(values.mean()), float(values.std() / np.sqrt(n))
