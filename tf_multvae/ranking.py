"""Exact ranking ops over all items: the top-k, and adding at a few items.

Evaluation (``tf_multvae.metrics``), the likelihood's gradient
(``tf_multvae.model.losses``) and the serving signatures each touch a
``[batch, n_items]`` tensor at a few items per user and then rank it. These
ops do that in as few passes over it as TensorFlow's CPU kernels allow,
with the results of the plain ops (docs/benchmarks.md has the timings):

* :func:`add_at` adds values at (row, item) in one pass where
  ``tf.tensor_scatter_nd_add`` copies the tensor and then scatters.
* :func:`top_k` is ``tf.math.top_k(scores, k)``, same values, same
  indices, same ties (the lower index first), found in levels: the
  maxima of blocks of items, the k best blocks, the items of those blocks
  that can still be among the k best, then the k best of those.
"""

from __future__ import annotations

import tensorflow as tf

# Before it ranks any item, top_k ranks the maxima of blocks of
# MIN_BLOCK to MAX_BLOCK items (a divisor of the item count), or else of
# PADDED_BLOCK items (see _block_size).
MIN_BLOCK, MAX_BLOCK, PADDED_BLOCK = 16, 64, 32
# The k best blocks' items at or above the k-th best block maximum are
# ranked alone where no row keeps more than MAX_KEPT * k of them, in
# batches of MIN_KEPT_ROWS users or more (for fewer, the ops it takes
# cost more than they save: 0.06-0.12 ms at batch 1, docs/benchmarks.md).
MAX_KEPT, MIN_KEPT_ROWS = 4, 16


def on_gpu() -> bool:
    """True where TensorFlow places ops on a GPU (by default, if any):
    the ops here, and the first layer's row sums, then take the kernels
    that have a GPU implementation."""
    return bool(tf.config.list_logical_devices("GPU"))


def coordinates(item_ids: tf.Tensor) -> tf.Tensor:
    """int64 ``[batch, max_len, 2]``: (row, item) of every entry."""
    item_ids = tf.cast(item_ids, tf.int64)
    shape = tf.shape(item_ids, out_type=tf.int64)
    rows = tf.broadcast_to(tf.range(shape[0])[:, None], shape)
    return tf.stack([rows, item_ids], axis=-1)


def add_at(dense: tf.Tensor, item_ids: tf.Tensor, values) -> tf.Tensor:
    """``dense`` with ``values`` added at (row, ``item_ids[row, j]``).

    Args:
        dense: float32 ``[batch, n_items]``.
        item_ids: int64 ``[batch, max_len]``, indices in [0, n_items).
            Repeats add up.
        values: float32 ``[batch, max_len]``, or a scalar for every entry.

    Returns:
        float32 ``[batch, n_items]``, a new tensor.

    On CPU by ``SparseTensorDenseAdd``, one pass over ``dense``;
    ``tf.tensor_scatter_nd_add`` copies ``dense`` and then scatters one
    entry at a time, and it is what runs on a GPU, where
    ``SparseTensorDenseAdd`` has no kernel.
    """
    where = coordinates(item_ids)  # [batch, max_len, 2]
    values = tf.broadcast_to(tf.cast(values, dense.dtype), tf.shape(where)[:2])
    if on_gpu():
        return tf.tensor_scatter_nd_add(dense, where, values)
    return tf.raw_ops.SparseTensorDenseAdd(
        a_indices=tf.reshape(where, [-1, 2]),
        a_values=tf.reshape(values, [-1]),
        a_shape=tf.shape(dense, out_type=tf.int64),
        b=dense,
    )


def _block_size(n_items: int | None, k: int) -> int | None:
    """Items per block for :func:`top_k`, or None for the plain top-k.

    The largest divisor of n_items in [MIN_BLOCK, MAX_BLOCK], so that the
    scores are viewed as [batch, blocks, size] without a copy (gathering
    the k best blocks costs less per item the longer the block); else
    PADDED_BLOCK, the scores then padded to a multiple of it (one copy).
    None where the k best blocks would hold a quarter of the items or
    more: then one plain top-k is as fast.
    """
    if n_items is None:
        return None
    for size in range(MAX_BLOCK, MIN_BLOCK - 1, -1):
        if n_items % size == 0 and 4 * k * size <= n_items:
            return size
    if 4 * k * PADDED_BLOCK <= n_items:
        return PADDED_BLOCK
    return None


def top_k(
    scores: tf.Tensor, k: int, block: int | None = None
) -> tuple[tf.Tensor, tf.Tensor]:
    """``tf.math.top_k(scores, k, sorted=True)``, by blocks of items.

    The items are cut into blocks of b consecutive items (the scores
    padded with -inf to a multiple of b, where b does not divide the item
    count: padding comes after every item, so it loses every tie and is
    never among the k best of n_items >= k items). The k best items lie in
    the k best blocks by their maxima: a block holding one of them has a
    maximum at least the k-th best score, and at most k blocks do, or,
    with ties at that score, the first of the tied blocks are the ones
    holding the first tied items. So the k best of those blocks' k*b
    items, taken in item order, are the k best items with
    ``tf.math.top_k``'s ties (the lower index first).

    Fewer than those k*b need ranking: with t the k-th best block maximum
    of a row, k distinct items score at least t, so none below t is among
    the k best. Where every row keeps at most :data:`MAX_KEPT` * k items
    at or above t (scores spread over the blocks: about 1.1 * k of 4,400
    for random scores at ML-20M's width), only those are ranked, still in
    item order; else (the k best bunched in a few blocks) all k*b are. So
    they are for batches under :data:`MIN_KEPT_ROWS` rows, and on a GPU,
    where the short way's ``tf.where`` would make the device wait for the
    host to learn its size.

    Args:
        scores: float32 ``[batch, n_items]``, n_items static for the
            blocks (else the plain top-k runs); no NaN.
        k: how many, 1 <= k <= n_items.
        block: items per block (default: :func:`_block_size`'s choice).

    Returns:
        (values, indices): float32 and int32 ``[batch, k]``, best first.
    """
    n_items = scores.shape[-1]
    size = _block_size(n_items, k) if block is None else block
    if size is None or -(-n_items // size) < k:  # fewer blocks than k
        return tf.math.top_k(scores, k=k, sorted=True)
    padding = -n_items % size
    if padding:
        scores = tf.pad(
            scores, [[0, 0], [0, padding]], constant_values=-float("inf")
        )
    blocks = tf.reshape(scores, [-1, (n_items + padding) // size, size])
    maxima, best = tf.math.top_k(tf.reduce_max(blocks, axis=2), k, False)
    best = tf.sort(best, axis=1)  # [batch, k], in item order
    candidates = tf.reshape(
        tf.gather(blocks, best, axis=1, batch_dims=1), [-1, k * size]
    )
    if on_gpu():  # tf.where's output size would stop the GPU for the host
        values, positions = _rank(candidates, k)
    else:
        values, positions = tf.cond(
            tf.shape(candidates)[0] >= MIN_KEPT_ROWS,
            lambda: _rank_above(candidates, maxima, k),
            lambda: _rank(candidates, k),
        )
    block_of = tf.gather(best, positions // size, axis=1, batch_dims=1)
    return values, block_of * size + positions % size


def _rank(candidates: tf.Tensor, k: int) -> tuple[tf.Tensor, tf.Tensor]:
    """The k best of ``[batch, width]``: values, int32 positions."""
    values, positions = tf.math.top_k(candidates, k=k, sorted=True)
    return values, positions


def _rank_above(
    candidates: tf.Tensor, maxima: tf.Tensor, k: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """:func:`_rank` of the candidates at or above each row's least
    block maximum (``maxima``: ``[batch, k]``), where no row keeps more
    than :data:`MAX_KEPT` * k of them; else of all candidates."""
    above = candidates >= tf.reduce_min(maxima, axis=1, keepdims=True)
    kept = tf.reduce_sum(tf.cast(above, tf.int32), axis=1)  # [batch]
    return tf.cond(
        tf.reduce_max(kept) <= MAX_KEPT * k,
        lambda: _rank_kept(candidates, above, kept, k),
        lambda: _rank(candidates, k),
    )


def _rank_kept(
    candidates: tf.Tensor, above: tf.Tensor, kept: tf.Tensor, k: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """:func:`_rank` of ``candidates`` where ``above``, the rest left out.

    Args:
        candidates: float32 ``[batch, width]``, in item order.
        above: bool ``[batch, width]``, the candidates that can be among
            the k best: ``kept`` (int32 ``[batch]``) per row, at least k.
    """
    where = tf.where(above)  # (row, position), row-major: item order
    rows, n_rows = where[:, 0], tf.shape(kept, out_type=tf.int64)[0]
    width = tf.maximum(tf.cast(tf.reduce_max(kept), tf.int64), k)
    shape = tf.stack([n_rows, width])  # k columns for an empty batch

    def dense(values, pad):  # each row's kept items, then padding
        ragged = tf.RaggedTensor.from_value_rowids(values, rows, n_rows)
        return ragged.to_tensor(pad, shape=shape)

    # The -inf padding comes after the row's kept items: it loses ties.
    values, order = _rank(
        dense(tf.gather_nd(candidates, where), -float("inf")), k
    )
    positions = dense(tf.cast(where[:, 1], tf.int32), 0)
    return values, tf.gather(positions, order, batch_dims=1)
