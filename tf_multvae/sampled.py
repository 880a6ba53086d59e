"""The leave-one-out protocol's metrics: one held-out item among candidates.

NCF's protocol (He et al., WWW 2017; the paper's Table 3): each user's one
held-out item is ranked among its candidates, itself and sampled items
the user never interacted with (``features.CANDIDATES``), by the model's
scores from the user's training items; HR@k and NDCG@k over users
(docs/design.md, "Table 3"). Names (``hr_at_10``, ``ndcg_at_10``) and
cutoffs are ``tf_multvae.metrics``'s; the full-ranking metrics of the
strong-generalization protocol are there too.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from tf_multvae import features
from tf_multvae.metrics import has_heldout
from tf_multvae.metrics import metric_name


def _is_item(item_ids: tf.Tensor) -> tf.Tensor:
    return item_ids != features.PAD


def has_candidates(
    candidate_ids: tf.Tensor, heldout_ids: tf.Tensor
) -> tf.Tensor:
    """bool ``[batch]``: users with a held-out item and candidates (the
    users the leave-one-out protocol scores)."""
    return tf.logical_and(
        tf.reduce_any(_is_item(candidate_ids), axis=-1),
        has_heldout(heldout_ids),
    )


def sampled_rank(
    scores: tf.Tensor, candidate_ids: tf.Tensor, heldout_ids: tf.Tensor
) -> tf.Tensor:
    """0-based rank of each user's held-out item among its candidates.

    NCF's evaluate.py (He et al. 2017) scores the candidates in a dict
    keyed by item, the negatives in file order and the held-out item
    last, and ranks with ``heapq.nlargest``, which keeps that order among
    equal scores. So a repeated candidate counts once, and the held-out
    item ranks below every other candidate with a higher score and below
    the equal-scored ones that come before it in the dict (all of them
    unless it is among its own negatives). This is that rule.

    Args:
        scores: float32 or bfloat16 ``[batch, n_items]`` (not masked: the
            candidates are items the user did not train on).
        candidate_ids: int64 ``[batch, L]``, each user's candidates in
            NCF's order (``features.CANDIDATES``), padded with -1.
        heldout_ids: int64 ``[batch, >=1]``, the held-out item first,
            padded with -1.

    Returns:
        int32 ``[batch]``: how many distinct candidates rank above the
        held-out item (0: it ranks first); 0 for users without held-out
        item or candidates (see :func:`has_candidates`).
    """
    scores = tf.cast(scores, tf.float32)
    candidate_ids = tf.cast(candidate_ids, tf.int64)
    valid = _is_item(candidate_ids)  # [batch, L]
    safe = tf.where(valid, candidate_ids, tf.zeros_like(candidate_ids))
    target = tf.cast(heldout_ids, tf.int64)[:, :1]  # [batch, 1]
    target = tf.concat([target, tf.zeros_like(candidate_ids[:, :1])], axis=1)[
        :, :1
    ]  # width 1 even when the batch has no held-out item
    safe_target = tf.maximum(target, 0)
    s = tf.gather(scores, safe, axis=1, batch_dims=1)  # [batch, L]
    s_target = tf.gather(scores, safe_target, axis=1, batch_dims=1)
    length = tf.shape(candidate_ids)[1]
    # first[j]: candidate j's item does not occur at an earlier position.
    same = candidate_ids[:, :, None] == candidate_ids[:, None, :]
    earlier = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0)
    earlier = tf.logical_and(earlier, ~tf.eye(length, dtype=tf.bool))
    first = ~tf.reduce_any(tf.logical_and(same, earlier[None]), axis=-1)
    is_target = candidate_ids == target
    # The first place of the held-out item; not among them: NCF appends
    # it last.
    places = tf.where(is_target, tf.range(length)[None, :], length)
    position = tf.minimum(tf.reduce_min(places, axis=-1), length)  # [batch]
    before = tf.range(length)[None, :] < position[:, None]
    above = tf.logical_or(s > s_target, tf.logical_and(s == s_target, before))
    counted = valid & first & ~is_target & above
    rank = tf.reduce_sum(tf.cast(counted, tf.int32), axis=-1)
    return tf.where(has_candidates(candidate_ids, heldout_ids), rank, 0)


def sampled_metrics(
    scores: tf.Tensor,
    candidate_ids: tf.Tensor,
    heldout_ids: tf.Tensor,
    ks_hr: Sequence[int] = (10,),
    ks_ndcg: Sequence[int] = (10,),
) -> dict[str, tf.Tensor]:
    """HR@k and NDCG@k of the leave-one-out protocol, per user.

    With one relevant item at 0-based rank r among the candidates
    (:func:`sampled_rank`): HR@k = 1[r < k] and NDCG@k = 1[r < k] /
    log2(r + 2), NCF's getHitRatio and getNDCG.

    Returns:
        ``{"hr_at_{k}": ..., "ndcg_at_{k}": ...}``, each float32
        ``[batch]`` (0 for users :func:`has_candidates` leaves out).
    """
    if not tuple(ks_hr) + tuple(ks_ndcg):
        raise ValueError("sampled_metrics needs at least one cutoff")
    rank = tf.cast(sampled_rank(scores, candidate_ids, heldout_ids), tf.float32)
    scored = tf.cast(has_candidates(candidate_ids, heldout_ids), tf.float32)
    gain = scored * tf.math.log(2.0) / tf.math.log(rank + 2.0)
    results = {}
    for k in ks_hr:
        hit = tf.cast(rank < k, tf.float32) * scored
        results[metric_name("hr", k)] = hit
    for k in ks_ndcg:
        results[metric_name("ndcg", k)] = tf.where(rank < k, gain, 0.0)
    return results
