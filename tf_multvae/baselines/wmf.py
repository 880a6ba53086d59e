"""WMF (Hu, Koren & Volinsky, ICDM 2008), fit by ``implicit``'s ALS.

Weighted matrix factorization of the binary clicks P: weight 1 on every
zero and c on every one, fitted by alternating least squares on the
training users (``implicit.cpu.als``, whose ``alpha`` times the click is
the whole confidence, so alpha = c for binary clicks). A held-out user has
no trained factors: they are one exact least-squares step with the item
factors Y fixed, over the user's fold-in items p_u (the paper's first
author, dawenl/vae_cf issue #3),

    u = (YᵀC_uY + λI)⁻¹ YᵀC_u p_u,   C_u = diag(1 + (c − 1) p_u),

solved here in float64 as (YᵀY + (c − 1) Σ_{i ∈ u} y_i y_iᵀ + λI) u =
c Σ_{i ∈ u} y_i with YᵀY computed once, which is what implicit's
``recalculate_user`` computes. Scores are u Yᵀ.

``implicit`` is imported only when fitting, so the package imports
without it (``pip install tf-multvae[baselines]``).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tf_multvae.baselines import ease
from tf_multvae.baselines.base import Baseline

DEFAULT_FACTORS = 100  # K: the paper's grid is {100, 200}
DEFAULT_CONFIDENCE = 10.0  # c: the paper's grid is {2, 5, 10, 30, 50, 100}
# λ: the paper does not give it (its grid is c × K). 100 had the best
# validation NDCG@100 on ML-1M at c = 10, K = 100 among 0.01 (implicit's
# default, 0.383), 1, 10, 30, 100 (0.412), 300 and 1000.
DEFAULT_REGULARIZATION = 100.0
DEFAULT_ITERATIONS = 15  # implicit's default
DEFAULT_SEED = 98765
# The memory estimate's users: data_prep keeps users with >= 5 clicks.
MIN_USER_CLICKS = 5
# Bytes a training click costs while fitting: the SparseTensor (20), its
# numpy copies (16), the CSR matrix, implicit's alpha-scaled copy and its
# transpose (8 each).
_BYTES_PER_CLICK = 64


def threads() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def memory_bytes(n_items: int, n_clicks: int, factors: int) -> int:
    """Peak memory of :meth:`WMF.fit`, roughly.

    The item factors (float32, and a float64 copy for the fold-in), the
    user factors (float32, at most n_clicks / MIN_USER_CLICKS users), the
    K × K Gram matrix and the clicks (about 64 bytes a click).
    """
    users = n_clicks // MIN_USER_CLICKS + 1
    return (
        12 * n_items * factors
        + 4 * users * factors
        + 8 * factors**2
        + _BYTES_PER_CLICK * n_clicks
    )


def _integer(value, flag: str, low: int) -> int:
    """``value`` as an int >= low; ValueError naming ``flag`` otherwise."""
    if isinstance(value, bool) or int(value) != value or value < low:
        raise ValueError(f"{flag} must be an integer >= {low}, got {value}")
    return int(value)


def _positive(value, flag: str) -> float:
    """``value`` as a finite float > 0; ValueError naming ``flag``."""
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{flag} must be > 0, got {value}")
    return float(value)


class WMF(Baseline):
    """Weighted matrix factorization; held-out users by one ALS step.

    Args:
        factors: K, the factors per user and item.
        confidence: c, the weight of a click (1 on every non-click).
        regularization: λ, the L2 penalty on the factors.
        iterations: ALS sweeps (users then items) over the training users.
        seed: the factors' random initialization.
    """

    kind = "wmf"
    flags = {
        "factors": ("--factors", int, "K, factors (100; paper: 100, 200)"),
        "confidence": (
            "--confidence",
            float,
            "c, the weight of a click, 1 on non-clicks (10; paper: 2, 5, "
            "10, 30, 50, 100)",
        ),
        "regularization": (
            "--regularization",
            float,
            "λ, the L2 penalty on the factors (100)",
        ),
        "iterations": ("--iterations", int, "ALS iterations (15)"),
        "seed": ("--seed", int, "the factors' initialization (98765)"),
    }

    def __init__(
        self,
        factors: int = DEFAULT_FACTORS,
        confidence: float = DEFAULT_CONFIDENCE,
        regularization: float = DEFAULT_REGULARIZATION,
        iterations: int = DEFAULT_ITERATIONS,
        seed: int = DEFAULT_SEED,
    ):
        super().__init__(
            factors=_integer(factors, "--factors", 1),
            confidence=_positive(confidence, "--confidence"),
            regularization=_positive(regularization, "--regularization"),
            iterations=_integer(iterations, "--iterations", 1),
            seed=_integer(seed, "--seed", 0),
        )

    def check(self, n_items, n_clicks, available_bytes=-1) -> None:
        if available_bytes == -1:
            available_bytes = ease.available_memory_bytes()
        factors = self.hyperparameters["factors"]
        need = memory_bytes(n_items, n_clicks, factors)
        if available_bytes is not None and need > available_bytes:
            raise MemoryError(
                f"WMF with {factors} factors on {n_items:,} items and "
                f"{n_clicks:,} clicks needs up to about {need / 1e9:.2f} GB of "
                f"memory but {available_bytes / 1e9:.2f} GB is available"
            )

    def fit(self, x: tf.SparseTensor) -> None:
        """ALS on the float32 ``[n_users, n_items]`` clicks, on the CPU."""
        import implicit.cpu.als
        import scipy.sparse
        import threadpoolctl

        h = self.hyperparameters
        indices = x.indices.numpy()  # [n_clicks, 2]
        user_items = scipy.sparse.csr_matrix(
            (x.values.numpy(), (indices[:, 0], indices[:, 1])),
            shape=tuple(int(d) for d in x.dense_shape),
            dtype=np.float32,
        )
        # implicit's own threads; BLAS's would compete with them.
        with threadpoolctl.threadpool_limits(1, "blas"):
            als = implicit.cpu.als.AlternatingLeastSquares(
                factors=h["factors"],
                regularization=h["regularization"],
                alpha=h["confidence"],
                dtype=np.float32,
                iterations=h["iterations"],
                calculate_training_loss=False,
                num_threads=threads(),
                random_state=h["seed"],
            )
            als.fit(user_items, show_progress=False)
        self.item_factors = np.asarray(als.item_factors, np.float32)  # [I, K]
        self._y = self.item_factors.astype(np.float64)  # [I, K]
        self._gram = self._y.T @ self._y  # [K, K]: YᵀY
        self.n_items = self.item_factors.shape[0]

    def fold_in(self, item_ids) -> np.ndarray:
        """Held-out users' factors: one exact least-squares step, Y fixed.

        Args:
            item_ids: int64 ``[batch, max_len]`` fold-in item indices, -1
                padded (a tf.Tensor or numpy array).

        Returns:
            float64 ``[batch, K]``: u = (YᵀC_uY + λI)⁻¹ YᵀC_u p_u per row
            (0 for a row without items).
        """
        ids = np.asarray(item_ids, np.int64)  # [batch, max_len]
        h = self.hyperparameters
        c, k = h["confidence"], h["factors"]
        lhs = np.empty((len(ids), k, k))  # [batch, K, K]
        rhs = np.empty((len(ids), k))  # [batch, K]
        base = self._gram + h["regularization"] * np.eye(k)
        for u, row in enumerate(ids):
            y = self._y[row[row >= 0]]  # [n_u, K]
            lhs[u] = base + (c - 1.0) * (y.T @ y)
            rhs[u] = c * y.sum(axis=0)
        return np.linalg.solve(lhs, rhs[..., None])[..., 0]

    def score(self, item_ids: tf.Tensor) -> tf.Tensor:
        """float32 ``[batch, n_items]``: the fold-in factors times Yᵀ.

        Traceable (the evaluation calls it inside a tf.function): the
        fold-in runs in numpy, through ``tf.numpy_function``.
        """
        users = tf.numpy_function(
            self.fold_in, [item_ids], tf.float64, stateful=False
        )
        users = tf.reshape(users, [-1, self.hyperparameters["factors"]])
        return tf.matmul(
            tf.cast(users, tf.float32), self.item_factors, transpose_b=True
        )
