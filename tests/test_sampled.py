"""The leave-one-out metrics against NCF's evaluate.py, ties included."""

from __future__ import annotations

import numpy as np
import pytest
import references
import tensorflow as tf

from tf_multvae import features
from tf_multvae import metrics
from tf_multvae import sampled

PAD = features.PAD


def _batch(rng, n_users, n_items, n_negatives, ties: bool):
    """Scores, NCF-ordered candidate lists (negatives then the item) and
    held-out items; some users' negatives repeat items or hold their own
    test item, as 156 users' lines of NCF's ML-1M file do."""
    if ties:  # few distinct values: many equal scores
        scores = rng.integers(0, 4, size=(n_users, n_items)).astype(np.float32)
    else:
        scores = rng.normal(size=(n_users, n_items)).astype(np.float32)
    rows, items, negatives = [], [], []
    for u in range(n_users):
        item = int(rng.integers(n_items))
        negs = list(rng.choice(n_items, n_negatives, replace=True))
        if u % 3 == 0:
            negs[int(rng.integers(n_negatives))] = item  # its own negative
        negatives.append(negs)
        items.append(item)
        rows.append(negs + [item])
    width = max(map(len, rows)) + 2
    candidates = np.full((n_users, width), PAD, np.int64)
    for u, row in enumerate(rows):
        candidates[u, : len(row)] = row
    heldout = np.array(items, np.int64)[:, None]
    return scores, candidates, heldout, negatives, items


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("k", [1, 3, 10])
def test_hr_and_ndcg_match_ncfs_evaluate(ties, k):
    rng = np.random.default_rng(7 + k + 100 * ties)
    scores, candidates, heldout, negatives, items = _batch(
        rng, n_users=60, n_items=30, n_negatives=12, ties=ties
    )
    got = sampled.sampled_metrics(
        tf.constant(scores), candidates, heldout, (k,), (k,)
    )
    for u in range(len(items)):
        hit, gain = references.ncf_hit_and_ndcg(
            scores[u], negatives[u], items[u], k
        )
        assert got[metrics.metric_name("hr", k)][u].numpy() == hit, u
        np.testing.assert_allclose(
            got[metrics.metric_name("ndcg", k)][u].numpy(), gain, rtol=1e-6
        )


def test_a_hand_worked_tie():
    # Candidates 3, 1, then the held-out item 2; every score equal but 1's.
    scores = tf.constant([[0.0, 5.0, 1.0, 1.0]])
    candidates = tf.constant([[3, 1, 2]], tf.int64)
    heldout = tf.constant([[2]], tf.int64)
    # 1 scores higher; 3 ties and comes first in NCF's order: rank 2.
    rank = sampled.sampled_rank(scores, candidates, heldout)
    assert rank.numpy().tolist() == [2]
    got = sampled.sampled_metrics(scores, candidates, heldout, (2, 3), (3,))
    assert got["hr_at_2"].numpy().tolist() == [0.0]
    assert got["hr_at_3"].numpy().tolist() == [1.0]
    np.testing.assert_allclose(got["ndcg_at_3"].numpy(), [1 / np.log2(4)])
    # Among its own negatives before the tie, the held-out item wins it.
    candidates = tf.constant([[2, 3, 1, 2]], tf.int64)
    assert sampled.sampled_rank(scores, candidates, heldout).numpy() == [1]


def test_users_without_a_heldout_item_or_candidates_score_zero():
    scores = tf.constant([[1.0, 2.0, 3.0]] * 3)
    candidates = tf.constant([[0, 1, 2], [PAD, PAD, PAD], [0, 2, PAD]])
    heldout = tf.constant([[PAD], [1], [2]], tf.int64)
    assert sampled.has_candidates(candidates, heldout).numpy().tolist() == [
        False,
        False,
        True,
    ]
    got = sampled.sampled_metrics(scores, candidates, heldout)
    assert got["hr_at_10"].numpy().tolist() == [0.0, 0.0, 1.0]
    assert got["ndcg_at_10"].numpy().tolist() == [0.0, 0.0, 1.0]


def test_it_runs_in_a_tf_function_with_any_width():
    spec = tf.TensorSpec([None, None], tf.int64)

    @tf.function(
        input_signature=[tf.TensorSpec([None, 5], tf.float32), spec, spec]
    )
    def ranks(scores, candidates, heldout):
        return sampled.sampled_rank(scores, candidates, heldout)

    scores = tf.constant([[0.5, 0.1, 0.9, 0.3, 0.2]])
    assert ranks(scores, [[1, 4, 3]], [[3]]).numpy().tolist() == [0]
    assert ranks(scores, [[0, 2, 1, 4, 3]], [[3]]).numpy().tolist() == [2]
    empty = tf.zeros([1, 0], tf.int64)
    assert ranks(scores, empty, empty).numpy().tolist() == [0]


def test_names_and_selection_follow_the_protocol():
    assert metrics.metric_names(None, features.LEAVE_ONE_OUT) == (
        "hr_at_10",
        "ndcg_at_10",
    )
    assert metrics.metric_names((5, 20), features.LEAVE_ONE_OUT) == (
        "hr_at_5",
        "hr_at_20",
        "ndcg_at_5",
        "ndcg_at_20",
    )
    assert metrics.metric_names() == metrics.PAPER_METRICS
    assert metrics.selection_metric(features.LEAVE_ONE_OUT) == "ndcg_at_10"
    assert metrics.selection_metric(features.STRONG_GENERALIZATION) == (
        "ndcg_at_100"
    )
    assert metrics.label("hr_at_10") == "HR@10"
    with pytest.raises(ValueError, match="protocol"):
        metrics.cutoffs(None, "random")
