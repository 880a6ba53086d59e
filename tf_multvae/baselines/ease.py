"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data",
WWW 2019) in TensorFlow, float32, within a memory budget.

B = I - P diag(1 / diag(P)) with P = (XᵀX + λI)⁻¹, so diag(B) = 0; a
user's scores are x_u B. :func:`ease_weights` builds the Gram matrix a
block of columns at a time from CSR sparse products, takes its Cholesky
factor, solves for P a block of columns at a time and turns P into B in
place, so at most two items × items matrices exist at once (13.5 GB for
MSD's 41,140 items). Too little memory fails before any work, naming what
is needed. A solve that float32 got wrong (numpy's float32 inverse does so
silently at MSD size: it scored NDCG@100 0.001 where popularity scores
0.031) fails too: the residual of
(XᵀX + λI) P = I is checked on sampled columns, computed from the sparse X
alone.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_multvae.baselines.base import Baseline

DEFAULT_L2 = 500.0  # λ, Steck's value for ML-20M and Netflix
_TEMP_BYTES = 1 << 28  # one dense block: 256 MB
_RESIDUAL_COLUMNS = 64
RESIDUAL_TOLERANCE = 1e-3  # max |(G P - I)_ij| on the sampled columns


def available_memory_bytes() -> int | None:
    """MemAvailable of /proc/meminfo (Linux), else None (not checked)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def memory_bytes(n_items: int, n_clicks: int) -> int:
    """Peak memory of :func:`ease_weights`, roughly.

    Two float32 n_items × n_items matrices (G and its Cholesky factor, then
    the factor and P), the clicks (a SparseTensor and two CSR copies:
    about 40 bytes a click) and four dense blocks of at most 256 MB.
    """
    return 2 * 4 * n_items**2 + 40 * n_clicks + 4 * _TEMP_BYTES


def check_memory(
    n_items: int, n_clicks: int, available_bytes: int | None = -1
) -> None:
    """Fails early when EASE would not fit in memory.

    Args:
        n_items: I.
        n_clicks: training clicks (nonzeros of X).
        available_bytes: the budget; -1: what the machine has available
            now (:func:`available_memory_bytes`); None: do not check.

    Raises:
        MemoryError: :func:`memory_bytes` exceeds the budget; the message
            says how much is needed.
    """
    if available_bytes == -1:
        available_bytes = available_memory_bytes()
    need = memory_bytes(n_items, n_clicks)
    if available_bytes is not None and need > available_bytes:
        raise MemoryError(
            f"EASE on {n_items:,} items needs about {need / 1e9:.1f} GB of "
            f"memory (two {n_items:,} × {n_items:,} float32 matrices of "
            f"{4 * n_items**2 / 1e9:.1f} GB each, plus the clicks) but "
            f"{available_bytes / 1e9:.1f} GB is available; run it on a "
            "machine with more memory"
        )


def _block(n_rows: int, n_columns: int) -> int:
    """Columns per dense block of ``n_rows`` rows (at most _TEMP_BYTES)."""
    return max(1, min(n_columns, _TEMP_BYTES // (4 * max(1, n_rows))))


def _fold_in_matrix(item_ids: tf.Tensor, n_items: int) -> tf.SparseTensor:
    """int64 ``[batch, max_len]``, -1 padded -> float32 sparse [batch, I].

    The sparse product x_u B then costs clicks × I, not batch × I².
    """
    where = tf.where(item_ids >= 0)  # [n, 2]: (row, position)
    columns = tf.gather_nd(item_ids, where)
    indices = tf.stack([where[:, 0], columns], axis=1)
    return tf.SparseTensor(
        indices,
        tf.ones_like(columns, tf.float32),
        tf.stack([tf.shape(item_ids, out_type=tf.int64)[0], n_items]),
    )


def _csr(sparse: tf.SparseTensor) -> tf.Tensor:
    """A canonically ordered SparseTensor as a CSR matrix (a variant)."""
    return tf.raw_ops.SparseTensorToCSRSparseMatrix(
        indices=sparse.indices,
        values=sparse.values,
        dense_shape=sparse.dense_shape,
    )


class EASE(Baseline):
    """Scores x_u B with EASE's item-item weights B (zero diagonal).

    Args:
        l2: λ, the ridge penalty (Steck's 500 for ML-20M and Netflix).
    """

    kind = "ease"
    flags = {"l2": ("--l2", float, "λ, the ridge penalty (500)")}

    def __init__(self, l2: float = DEFAULT_L2):
        if not l2 > 0:
            raise ValueError(f"--l2 must be > 0, got {l2}")
        super().__init__(l2=float(l2))

    def check(self, n_items, n_clicks, available_bytes=-1) -> None:
        check_memory(n_items, n_clicks, available_bytes)

    def fit(self, x: tf.SparseTensor) -> None:
        """B from the training clicks; fails if the solve went wrong."""
        self.weights, self.residual = ease_weights(
            x, self.hyperparameters["l2"], None
        )
        self.n_items = int(self.weights.shape[0])

    def score(self, item_ids: tf.Tensor) -> tf.Tensor:
        """float32 ``[batch, n_items]``: x_u B for each user's fold-in x_u."""
        x = _fold_in_matrix(item_ids, self.n_items)  # [batch, I] sparse
        return tf.sparse.sparse_dense_matmul(x, self.weights)

    def report(self) -> dict:
        return {"residual": self.residual}


def ease_weights(
    x: tf.SparseTensor, l2: float, available_bytes: int | None = -1
) -> tuple[tf.Variable, float]:
    """EASE's B = I - P diag(1/diag(P)), P = (XᵀX + λI)⁻¹, in float32.

    Args:
        x: float32 ``tf.SparseTensor`` ``[n_users, n_items]``, the clicks.
        l2: λ > 0.
        available_bytes: the memory budget (see :func:`check_memory`).

    Returns:
        (B, residual): a float32 tf.Variable ``[n_items, n_items]`` with a
        zero diagonal, and the largest |(XᵀX + λI) P - I| entry on
        ``_RESIDUAL_COLUMNS`` sampled columns.

    Raises:
        MemoryError: before any work (see :func:`check_memory`).
        FloatingPointError: the solve is inaccurate (residual above
            RESIDUAL_TOLERANCE) or the matrix is not positive definite.
    """
    n_users, n_items = (int(d) for d in x.dense_shape)
    check_memory(n_items, int(x.values.shape[0]), available_bytes)
    # One items × items buffer holds G, then P, then B; the Cholesky factor
    # is the only other one. G = XᵀX a block of columns J at a time, as
    # CSR sparse products (several times faster than a sparse-dense
    # product here); G is symmetric, so G[:, J] is stored as rows J.
    weights = tf.Variable(tf.zeros([n_items, n_items]), trainable=False)
    x_t = _csr(tf.sparse.reorder(tf.sparse.transpose(x)))  # [I, users]
    step = _block(n_items, n_items)
    for j in range(0, n_items, step):
        width = min(step, n_items - j)
        x_j = _csr(tf.sparse.slice(x, [0, j], [n_users, width]))
        g_j = tf.raw_ops.SparseMatrixSparseMatMul(
            a=x_t, b=x_j, type=tf.float32
        )  # CSR [I, width]
        weights[j : j + width].assign(
            tf.transpose(
                tf.raw_ops.CSRSparseMatrixToDense(
                    sparse_input=g_j, type=tf.float32
                )
            )
        )
    del x_t
    diagonal = tf.stack([tf.range(n_items)] * 2, axis=1)  # [I, 2]
    weights.scatter_nd_add(diagonal, tf.fill([n_items], float(l2)))
    try:
        chol = tf.linalg.cholesky(weights)  # [I, I], lower
    except tf.errors.InvalidArgumentError as err:
        raise FloatingPointError(
            f"EASE: XᵀX + {l2}·I is not positive definite in float32 "
            f"({err.message}); use a larger --l2"
        ) from None
    # P = (LLᵀ)⁻¹, a block of columns at a time, stored as rows.
    step = _block(n_items, n_items)
    for j in range(0, n_items, step):
        width = min(step, n_items - j)
        unit = tf.one_hot(tf.range(j, j + width), n_items, axis=0)  # [I, w]
        weights[j : j + width].assign(
            tf.transpose(tf.linalg.cholesky_solve(chol, unit))
        )
    del chol
    residual = _residual(x, l2, weights)
    if not residual <= RESIDUAL_TOLERANCE:
        raise FloatingPointError(
            f"EASE: float32 solve of (XᵀX + {l2}·I) P = I is inaccurate "
            f"(largest residual {residual:.2e} > {RESIDUAL_TOLERANCE:g} on "
            f"{_RESIDUAL_COLUMNS} sampled columns); use a larger --l2"
        )
    # B = -P / diag(P) column-wise, then a zero diagonal; in place by rows.
    inverse_diagonal = 1.0 / tf.linalg.diag_part(weights)  # [I]
    for j in range(0, n_items, step):
        width = min(step, n_items - j)
        weights[j : j + width].assign(
            -weights[j : j + width] * inverse_diagonal[None, :]
        )
    weights.scatter_nd_update(diagonal, tf.zeros([n_items]))
    return weights, residual


def _residual(x: tf.SparseTensor, l2: float, inverse: tf.Variable) -> float:
    """max |(XᵀX + λI) p - e| over evenly spaced columns p of P.

    (XᵀX + λI) p = Xᵀ(X p) + λ p needs only the sparse X.
    """
    n_items = int(inverse.shape[0])
    columns = np.unique(
        np.linspace(0, n_items - 1, _RESIDUAL_COLUMNS).astype(np.int64)
    )
    # Rows of the buffer are solved columns of P: p = P[:, columns].
    p = tf.transpose(tf.gather(inverse, columns))  # [I, c]
    gp = tf.sparse.sparse_dense_matmul(
        x, tf.sparse.sparse_dense_matmul(x, p), adjoint_a=True
    )
    unit = tf.one_hot(columns, n_items, axis=0)  # [I, c]
    return float(tf.reduce_max(tf.abs(gp + l2 * p - unit)))
