"""The TensorFlow ops under the first layer: sparse input, seeds per replica.

Inputs are a user's clicked items as a dense int64 ``[batch, max_len]``
tensor of item indices padded with :data:`tf_multvae.features.PAD` (-1).
The click matrix x (``[batch, n_items]``) is never materialized: the first
layer finds the non-zeros (:func:`clicked_entries`) and sums the kernel
rows they select (:func:`sparse_rows_matmul`, with its gradient written
out), so a SavedModel and every tf.distribute strategy can be fed plain
padded ids. The Keras layers around these ops are in
``tf_multvae.model.layers``.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from tf_multvae import features
from tf_multvae import ranking


def replica_seed(generator: keras.random.SeedGenerator) -> tf.Tensor:
    """The next seed of ``generator``, distinct per tf.distribute replica.

    Under a tf.distribute strategy every replica reads the same (mirrored)
    generator state; folding in the replica id keeps their dropout masks
    and sampling noise independent. With one replica it is the seed that
    ``keras.random`` would draw.

    Returns:
        int32 ``[2]``, a seed for the ``tf.random.stateless_*`` ops.
    """
    seed = generator.next()  # [2], advances the generator
    seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        seed = tf.random.experimental.stateless_fold_in(
            seed, context.replica_id_in_sync_group
        )
    return seed


def clicked_entries(
    item_ids: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The non-zeros of the click matrix x, and its rows' L2 scale.

    A user's row has one 1 per distinct clicked item, so its norm is
    sqrt(n_u) and every non-zero of the normalized row x_u / ||x_u|| is
    1 / sqrt(n_u) (the authors' ``tf.nn.l2_normalize`` of the binary
    input).

    Args:
        item_ids: int ``[batch, max_len]``, distinct item indices per row,
            padded with -1.

    Returns:
        (rows, items, scale): int64 ``[nnz]`` row and item of each non-zero
        in row-major order, and float32 ``[batch]`` 1 / sqrt(n_u) (1 for a
        user without clicks, whose row has no entries).
    """
    item_ids = tf.cast(item_ids, tf.int64)
    is_item = item_ids != features.PAD  # [batch, max_len]
    positions = tf.where(is_item)  # [nnz, 2] (row, position in row)
    items = tf.gather_nd(item_ids, positions)  # [nnz]
    counts = tf.reduce_sum(tf.cast(is_item, tf.float32), axis=1)  # [batch]
    scale = tf.math.rsqrt(tf.maximum(counts, 1.0))
    return positions[:, 0], items, scale


def row_parts() -> int:
    """How many pieces :func:`segment_rows` cuts a batch into.

    ``SparseSegmentSum``'s CPU kernel runs on one thread, and TensorFlow
    runs independent ops side by side, so one piece per core (at most 8)
    sums rows on every core: at ML-20M shape, 500 users, 8 ms in one
    piece, 4.3-5.2 ms in two on 2 cores (docs/benchmarks.md). One piece
    where TensorFlow sees a GPU, whose kernel is parallel.
    """
    if ranking.on_gpu():
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def segment_rows(
    kernel: tf.Tensor,
    rows: tf.Tensor,
    items: tf.Tensor,
    batch: tf.Tensor,
    parts: int,
) -> tf.Tensor:
    """``[batch, units]``: row r is the sum of ``kernel[items[j]]`` over
    the j with ``rows[j] == r`` (``rows`` sorted ascending), summed in
    ``parts`` independent pieces of consecutive users.

    Each piece sums its users' entries in the same order as one
    ``tf.sparse.segment_sum`` would, so the result is the same to the bit.
    """
    if parts == 1:
        return tf.sparse.segment_sum(kernel, items, rows, num_segments=batch)
    batch = tf.cast(batch, tf.int64)
    # Users [bounds[p], bounds[p + 1]) form piece p.
    bounds = batch * tf.range(parts + 1, dtype=tf.int64) // parts
    cuts = tf.searchsorted(rows, bounds, side="left")  # [parts + 1]
    pieces = [
        tf.sparse.segment_sum(
            kernel,
            items[cuts[p] : cuts[p + 1]],
            rows[cuts[p] : cuts[p + 1]] - bounds[p],
            num_segments=bounds[p + 1] - bounds[p],
        )
        for p in range(parts)
    ]
    return tf.concat(pieces, axis=0)


@tf.custom_gradient
def sparse_rows_matmul(
    kernel: tf.Tensor,
    rows: tf.Tensor,
    items: tf.Tensor,
    scale: tf.Tensor,
) -> tf.Tensor:
    """y = diag(scale) X W for a binary X given by its non-zeros.

    X is ``[batch, n_items]`` with X[rows[j], items[j]] = 1. The product
    and its gradient are both sums of kernel (or gradient) rows
    (``tf.sparse.segment_sum``); on CPU this is several times faster than
    ``tf.sparse.sparse_dense_matmul``, whose gradient with respect to the
    dense operand is slow.

    Args:
        kernel: float32 ``[n_items, units]``, W.
        rows: int64 ``[nnz]``, sorted ascending (row-major non-zeros).
        items: int64 ``[nnz]``, each non-zero's column.
        scale: float32 ``[batch]``, each row's value.

    Returns:
        float32 ``[batch, units]``. Only ``kernel`` gets a gradient:
        dL/dW = X^T diag(scale) dL/dy, as a dense ``[n_items, units]``.
    """
    batch = tf.shape(scale)[0]
    sums = segment_rows(kernel, rows, items, batch, row_parts())
    outputs = sums * scale[:, None]

    def grad(upstream):
        by_item = tf.argsort(items, stable=True)  # segment ids must sort
        d_kernel = tf.sparse.segment_sum(
            upstream * scale[:, None],
            tf.gather(rows, by_item),
            tf.gather(items, by_item),
            num_segments=tf.shape(kernel)[0],
        )  # [n_items, units]
        return d_kernel, None, None, None

    return outputs, grad
