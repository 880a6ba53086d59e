"""Ranking metrics against loop-based numpy references (Section 4.2;
references.ranking, recall, ndcg)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import references
import tensorflow as tf

from tf_multvae import metrics

PAD = -1


def _pad(rows: list[list[int]]) -> np.ndarray:
    width = max([len(r) for r in rows] + [0])
    out = np.full((len(rows), width), PAD, np.int64)
    for u, row in enumerate(rows):
        out[u, : len(row)] = row
    return out


def _random_users(batch: int, n_items: int):
    """Scores with many ties, disjoint fold-in / held-out lists.

    User 0 has no held-out items and user 1 has a single one (fewer than
    any cutoff), so both denominators' edge cases are always present.
    """
    scores = np.random.randint(0, 4, size=(batch, n_items)) / 4.0
    fold_in, heldout = [], []
    for u in range(batch):
        items = list(np.random.permutation(n_items))
        n_fold = np.random.randint(1, n_items // 2)
        n_held = {0: 0, 1: 1}.get(u, np.random.randint(1, n_items // 2))
        fold_in.append([int(i) for i in items[:n_fold]])
        heldout.append([int(i) for i in items[n_fold : n_fold + n_held]])
    return scores.astype(np.float32), fold_in, heldout


def test_hand_worked_example():
    # Items 0..5. Item 0 is fold-in with the top score; items 2 and 3 tie.
    scores = np.array([[0.9, 0.1, 0.8, 0.8, 0.3, 0.5]], np.float32)
    fold_in = _pad([[0]])
    heldout = _pad([[3, 5, 1]])
    masked = metrics.mask_fold_in(scores, fold_in)
    assert masked.dtype == tf.float32 and np.isneginf(masked[0, 0])
    top = metrics.top_k_items(masked, 4)
    # 0.8 (item 2) before 0.8 (item 3): lower index first among ties.
    np.testing.assert_array_equal(top, [[2, 3, 5, 4]])
    # Top 2 = [2, 3]: one hit of min(2, 3) = 2 possible.
    np.testing.assert_allclose(metrics.recall_at_k(top, heldout, 2), [0.5])
    # DCG = 1/log2(3) = 0.63093; IDCG = 1 + 1/log2(3) = 1.63093.
    np.testing.assert_allclose(
        metrics.ndcg_at_k(top, heldout, 2), [0.63093 / 1.63093], rtol=1e-4
    )
    # Top 4 = [2, 3, 5, 4]: hits at ranks 2 and 3 of min(4, 3) = 3.
    np.testing.assert_allclose(
        metrics.recall_at_k(top, heldout, 4), [2 / 3], rtol=1e-6
    )
    # DCG = 1/log2(3) + 1/log2(4) = 1.13093; IDCG = 1 + 0.63093 + 0.5.
    np.testing.assert_allclose(
        metrics.ndcg_at_k(top, heldout, 4), [1.13093 / 2.13093], rtol=1e-4
    )


def test_fold_in_item_with_top_score_does_not_count():
    scores = np.array([[0.9, 0.1, 0.8, 0.8, 0.3, 0.5]], np.float32)
    heldout = _pad([[3, 5, 1]])
    unmasked = metrics.top_k_items(scores, 2)  # [0, 2]: no hit
    np.testing.assert_allclose(metrics.recall_at_k(unmasked, heldout, 2), [0])
    result = metrics.ranking_metrics(
        scores, _pad([[0]]), heldout, ks_recall=(1, 2), ks_ndcg=(1,)
    )
    # Masked: item 0 is gone and rank 1 is item 2 (not held out).
    np.testing.assert_allclose(result["recall_at_1"], [0.0])
    np.testing.assert_allclose(result["recall_at_2"], [0.5])
    np.testing.assert_allclose(result["ndcg_at_1"], [0.0])


def test_fold_in_padding_does_not_mask_item_zero():
    scores = np.array([[5.0, 1.0, 2.0], [5.0, 1.0, 2.0]], np.float32)
    fold_in = _pad([[1], [0, 1]])  # row 0 carries padding
    masked = metrics.mask_fold_in(scores, fold_in).numpy()
    np.testing.assert_array_equal(
        masked, [[5.0, -np.inf, 2.0], [-np.inf, -np.inf, 2.0]]
    )


@pytest.mark.parametrize("k", [1, 3, 5, 10, 30])
def test_recall_and_ndcg_match_loops(k):
    scores, fold_in, heldout = _random_users(8, 30)
    top = metrics.top_k_items(metrics.mask_fold_in(scores, _pad(fold_in)), k)
    recall = metrics.recall_at_k(top, _pad(heldout), k)
    ndcg = metrics.ndcg_at_k(top, _pad(heldout), k).numpy()
    assert recall.dtype == tf.float32 and recall.shape == (8,)
    recall, top = recall.numpy(), top.numpy()
    for u in range(8):
        ranking = references.ranking(scores[u], fold_in[u])
        np.testing.assert_array_equal(top[u], ranking[:k])
        want_recall = references.recall(ranking, heldout[u], k)
        want_ndcg = references.ndcg(ranking, heldout[u], k)
        assert recall[u] == pytest.approx(want_recall)
        assert ndcg[u] == pytest.approx(want_ndcg)


def test_min_k_n_denominator():
    # One held-out item, ranked first: Recall@5 = 1 / min(5, 1) = 1.
    scores = np.array([[0.0, 3.0, 2.0, 1.0, 0.5, 0.2]], np.float32)
    top = metrics.top_k_items(scores, 5)
    heldout = _pad([[1]])
    np.testing.assert_allclose(metrics.recall_at_k(top, heldout, 5), [1.0])
    np.testing.assert_allclose(metrics.ndcg_at_k(top, heldout, 5), [1.0])
    # Same item at rank 2: NDCG = (1/log2(3)) / 1.
    heldout = _pad([[2]])
    np.testing.assert_allclose(metrics.recall_at_k(top, heldout, 5), [1.0])
    np.testing.assert_allclose(
        metrics.ndcg_at_k(top, heldout, 5), [1 / math.log2(3)], rtol=1e-6
    )


def test_users_without_heldout_are_zero_and_excluded():
    scores, fold_in, heldout = _random_users(8, 30)
    heldout[5] = []  # a second user without targets
    result = metrics.ranking_metrics(
        scores, _pad(fold_in), _pad(heldout), ks_recall=(5, 10), ks_ndcg=(10,)
    )
    assert sorted(result) == ["ndcg_at_10", "recall_at_10", "recall_at_5"]
    scored = metrics.has_heldout(_pad(heldout)).numpy()
    np.testing.assert_array_equal(scored, [len(h) > 0 for h in heldout])
    assert not scored[0] and not scored[5] and scored.sum() == 6
    for name, value in result.items():
        value = value.numpy()
        assert value.shape == (8,) and value.dtype == np.float32
        assert value[0] == 0.0 and value[5] == 0.0
        k = int(name.rsplit("_", 1)[1])
        kind = "recall" if name.startswith("recall") else "ndcg"
        ref = getattr(references, kind)
        expected = [
            ref(references.ranking(scores[u], fold_in[u]), heldout[u], k)
            for u in range(8)
            if heldout[u]
        ]
        mean, _ = metrics.mean_and_stderr(value[scored])
        assert mean == pytest.approx(np.mean(expected))
        # Averaging over every user would count the two zeros.
        assert np.mean(value) == pytest.approx(np.mean(expected) * 6 / 8)


def test_empty_heldout_batch():
    scores, fold_in, _ = _random_users(3, 30)
    heldout = np.zeros((3, 0), np.int64)
    result = metrics.ranking_metrics(
        scores, _pad(fold_in), heldout, ks_recall=(5,), ks_ndcg=(30,)
    )
    for value in result.values():
        np.testing.assert_array_equal(value, np.zeros(3))
    assert not metrics.has_heldout(heldout).numpy().any()


def test_default_names_and_bfloat16_scores():
    scores, fold_in, heldout = _random_users(6, 120)
    scores = scores + np.random.normal(size=scores.shape).astype(np.float32)
    low = tf.cast(scores, tf.bfloat16)  # rounding makes extra ties
    seen = tf.cast(low, tf.float32).numpy()
    result = metrics.ranking_metrics(low, _pad(fold_in), _pad(heldout))
    assert list(result) == ["recall_at_20", "recall_at_50", "ndcg_at_100"]
    for name, value in result.items():
        assert value.dtype == tf.float32
        value = value.numpy()
        k = int(name.rsplit("_", 1)[1])
        kind = "recall" if name.startswith("recall") else "ndcg"
        ref = getattr(references, kind)
        for u in range(6):
            ranking = references.ranking(seen[u], fold_in[u])
            assert value[u] == pytest.approx(ref(ranking, heldout[u], k))


def test_inside_tf_function_with_dynamic_shapes():
    scores, fold_in, heldout = _random_users(5, 30)
    spec = tf.TensorSpec([None, None], tf.int64)

    @tf.function(
        input_signature=[tf.TensorSpec([None, None], tf.float32), spec, spec]
    )
    def evaluate(s, f, h):
        return metrics.ranking_metrics(s, f, h, ks_recall=(5,), ks_ndcg=(7,))

    graph = evaluate(scores, _pad(fold_in), _pad(heldout))
    eager = metrics.ranking_metrics(
        scores, _pad(fold_in), _pad(heldout), ks_recall=(5,), ks_ndcg=(7,)
    )
    for name in eager:
        np.testing.assert_allclose(graph[name], eager[name])


def test_under_distribution_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    scores, fold_in, heldout = _random_users(4, 30)
    args = (
        tf.constant(scores),
        tf.constant(_pad(fold_in)),
        tf.constant(_pad(heldout)),
    )

    @tf.function
    def step(s, f, h):
        return strategy.run(
            lambda s, f, h: metrics.ranking_metrics(s, f, h, (5,), (10,)),
            args=(s, f, h),
        )

    result = step(*args)
    eager = metrics.ranking_metrics(*args, (5,), (10,))
    for name in eager:
        np.testing.assert_allclose(result[name], eager[name])


def test_top_k_larger_than_items_names_k():
    with pytest.raises(ValueError, match="k=7"):
        metrics.top_k_items(np.zeros((2, 6), np.float32), 7)
    with pytest.raises(ValueError, match="k=100"):
        metrics.ranking_metrics(
            np.zeros((1, 60), np.float32), _pad([[0]]), _pad([[1]])
        )


def test_mean_and_stderr():
    # mean 2.5; population std sqrt(5/4) (np.std, as the notebook);
    # stderr = that / sqrt(4).
    mean, stderr = metrics.mean_and_stderr(np.array([1.0, 2.0, 3.0, 4.0]))
    assert mean == pytest.approx(2.5)
    assert stderr == pytest.approx(math.sqrt(5 / 4) / 2)
    assert isinstance(mean, float) and isinstance(stderr, float)
    values = np.random.uniform(size=50)
    total = sum(values)
    var = sum((v - total / 50) ** 2 for v in values) / 50
    mean, stderr = metrics.mean_and_stderr(values)
    assert mean == pytest.approx(total / 50)
    assert stderr == pytest.approx(math.sqrt(var / 50))
    with pytest.raises(ValueError):
        metrics.mean_and_stderr(np.array([]))
