"""The ranking ops against numpy: a stable argsort for the top-k (ties to
the lower index), a loop for adding at items."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tf_multvae import ranking


@pytest.fixture(autouse=True, params=["short way", "gpu way"])
def way(request, monkeypatch):
    """Every test twice: with top_k free to rank only the items that can
    still be among the k best (any batch size, not only MIN_KEPT_ROWS
    rows or more), and as it runs where TensorFlow sees a GPU (chosen
    when the ops are built, so it runs here on the CPU; add_at then
    takes tensor_scatter_nd_add)."""
    if request.param == "short way":
        monkeypatch.setattr(ranking, "MIN_KEPT_ROWS", 1)
    else:
        monkeypatch.setattr(ranking, "on_gpu", lambda: True)
    return request.param


def _reference_top_k(scores: np.ndarray, k: int):
    """The k best of each row, best first, equal scores by lower index."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def _check(scores: np.ndarray, k: int, block=None):
    values, indices = ranking.top_k(tf.constant(scores), k, block)
    want_values, want_indices = _reference_top_k(scores, k)
    np.testing.assert_array_equal(indices.numpy(), want_indices)
    np.testing.assert_array_equal(values.numpy(), want_values)


def test_block_size_divides_the_items_and_leaves_small_counts_plain():
    assert ranking._block_size(20_108, 100) == 44  # ML-20M: 4 * 11 * 457
    assert ranking._block_size(41_140, 100) == 55  # MSD
    # Netflix (3 * 5923): no divisor in range, blocks of 32 after padding;
    # ML-1M (13 * 269): too few items for blocks to pay.
    assert ranking._block_size(17_769, 100) == ranking.PADDED_BLOCK
    assert ranking._block_size(3_497, 100) is None
    assert ranking._block_size(6_400, 100) == 16  # the k best: 1/4 of them
    assert ranking._block_size(6_399, 100) is None
    assert ranking._block_size(None, 100) is None


@pytest.mark.parametrize("block", [16, 20, 32])
def test_top_k_by_blocks_is_tf_top_k_with_many_ties(block):
    rng = np.random.default_rng(0)
    # 5 distinct values over 640 items: most of the top 20 are ties.
    scores = rng.integers(0, 5, size=(7, 640)).astype(np.float32)
    _check(scores, 20, block)


@pytest.mark.parametrize("n_items", [1_000, 17_769])
def test_padded_blocks_never_rank_the_padding(n_items):
    rng = np.random.default_rng(n_items)
    scores = rng.integers(0, 4, size=(5, n_items)).astype(np.float32)
    scores[0, :] = -np.inf  # every item ties with the padding
    scores[1, :-3] = -np.inf  # the best items are the last ones
    _check(scores, 20, 32)
    _check(scores, 100)  # the default choice


def test_ties_across_blocks_go_to_the_lower_item():
    # Items 30 and 100 tie for the best; item 5 (block 0) and item 70
    # (block 3) tie for second; the best block by maximum is block 1.
    scores = np.zeros((1, 320), np.float32)
    scores[0, [30, 100]] = 3.0
    scores[0, [5, 70]] = 2.0
    _check(scores, 3, 20)
    values, indices = ranking.top_k(tf.constant(scores), 3, 20)
    assert indices.numpy().tolist() == [[30, 100, 5]]


def test_masked_items_and_whole_masked_blocks():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(4, 1600)).astype(np.float32)
    scores[0, :800] = -np.inf  # half the blocks hold no finite score
    scores[1, rng.choice(1600, 1560, replace=False)] = -np.inf  # 40 left
    scores[2, :] = -np.inf  # all masked: the first k items, in order
    _check(scores, 100, 16)
    values, indices = ranking.top_k(tf.constant(scores), 100, 16)
    assert indices.numpy()[2].tolist() == list(range(100))
    assert np.isinf(values.numpy()[1, 40:]).all()


@pytest.mark.parametrize("k", [1, 7, 100])
def test_default_choice_matches_at_an_ml20m_like_width(k):
    rng = np.random.default_rng(k)
    scores = rng.normal(size=(3, 20_108)).astype(np.float32)
    scores[:, rng.choice(20_108, 50, replace=False)] = -np.inf
    _check(scores, k)


def _kept_per_row(scores: np.ndarray, k: int, block: int) -> np.ndarray:
    """Items of each row's k best blocks at or above its k-th best block
    maximum (what top_k ranks alone while no row keeps > MAX_KEPT * k)."""
    maxima = scores.reshape(len(scores), -1, block).max(axis=2)
    threshold = -np.sort(-maxima, axis=1)[:, k - 1]
    best = np.argsort(-maxima, axis=1, kind="stable")[:, :k]
    items = scores.reshape(len(scores), -1, block)
    kept = np.take_along_axis(items, best[:, :, None], axis=1)
    return (kept >= threshold[:, None, None]).sum(axis=(1, 2))


def test_both_ways_of_ranking_the_best_blocks_items():
    rng = np.random.default_rng(3)
    spread = rng.normal(size=(4, 6_400)).astype(np.float32)
    # Scores falling with the item index: the best items fill the first
    # blocks, so every item of the k best blocks is at or above the k-th
    # best block maximum, in one row (the whole batch then ranks them all).
    bunched = spread.copy()
    bunched[2] = -np.arange(6_400, dtype=np.float32) + 0.1 * spread[2]
    assert _kept_per_row(spread, 50, 32).max() <= ranking.MAX_KEPT * 50
    assert _kept_per_row(bunched, 50, 32).max() > ranking.MAX_KEPT * 50
    _check(spread, 50, 32)
    _check(bunched, 50, 32)


def test_a_batch_of_users_as_evaluation_ranks_them(monkeypatch):
    # The package's own row threshold: fewer rows rank all k*b items,
    # more rank the ones left (both ways exact).
    monkeypatch.undo()
    rng = np.random.default_rng(5)
    for rows in (ranking.MIN_KEPT_ROWS - 1, ranking.MIN_KEPT_ROWS, 40):
        _check(rng.normal(size=(rows, 6_400)).astype(np.float32), 50, 32)


def test_an_empty_batch_gives_k_empty_columns():
    values, indices = ranking.top_k(tf.zeros([0, 20_108]), 100)
    assert values.shape == (0, 100) and indices.shape == (0, 100)


def test_plain_top_k_where_the_width_is_unknown_or_too_small():
    rng = np.random.default_rng(2)
    scores = rng.integers(0, 3, size=(2, 3_497)).astype(np.float32)
    _check(scores, 100)  # too few items for blocks: plain top_k
    _check(scores[:, :40], 5, 16)  # 3 blocks of 16 for k=5: plain

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def unknown_width(s):
        return ranking.top_k(s, 10)

    values, indices = unknown_width(tf.constant(scores))
    want_values, want_indices = _reference_top_k(scores, 10)
    np.testing.assert_array_equal(indices.numpy(), want_indices)


def test_add_at_adds_every_entry_repeats_included():
    dense = np.arange(12, dtype=np.float32).reshape(2, 6)
    ids = np.array([[1, 4, 1], [0, 5, 2]], np.int64)
    values = np.array([[1.0, -2.0, 10.0], [0.5, 0.0, -np.inf]], np.float32)
    expected = dense.copy()
    for row in range(2):
        for j in range(3):
            expected[row, ids[row, j]] += values[row, j]
    got = ranking.add_at(tf.constant(dense), ids, values).numpy()
    np.testing.assert_array_equal(got, expected)
    scalar = ranking.add_at(tf.constant(dense), ids[:, :2], 1.0).numpy()
    np.testing.assert_array_equal(
        scalar - dense, [[0, 1, 0, 0, 1, 0], [1, 0, 0, 0, 0, 1]]
    )
