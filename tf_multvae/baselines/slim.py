"""SLIM (Ning & Karypis, ICDM 2011), one elastic net per item column.

Sparse item-item weights W ≥ 0 with diag(W) = 0; for each item j,

    w_j = argmin ½‖x_j − X w_j‖² + β/2 ‖w_j‖² + λ‖w_j‖₁,  w_j ≥ 0,

with X the training users' clicks and item j left out of the regressors
(its column zeroed), so w_jj = 0. scikit-learn's ``ElasticNet(positive=True,
fit_intercept=False)`` minimizes 1/(2n)‖·‖² + αρ‖w‖₁ + ½α(1−ρ)‖w‖², the
same objective divided by n (the training users) with α = (λ + β)/n and
ρ = λ/(λ + β). Its coordinate descent releases the GIL, so the columns are
fitted by one thread per core, each on its own copy of X's values (where
it zeroes column j), sharing X's indices. A held-out user's scores are
x_fold-in · W, with W kept sparse (float32 CSR).

:meth:`SLIM.check` prints the memory needed (W at its densest) and refuses
a budget that is too small; :meth:`SLIM.fit` first fits a few columns
spread over the items, then prints the time the rest will take and W's
memory at the density they had. scikit-learn is imported only when
fitting (``pip install tf-multvae[baselines]``).
"""

from __future__ import annotations

import concurrent.futures
import sys
import time
import warnings

import numpy as np
import tensorflow as tf

from tf_multvae.baselines import ease
from tf_multvae.baselines import wmf
from tf_multvae.baselines.base import Baseline

DEFAULT_L1 = 1.0  # λ: the middle of the paper's grid {0.1, 0.5, 1, 5}
DEFAULT_L2 = 1.0  # β: the same grid
TOL = 1e-4  # scikit-learn's default: KKT residuals ~1e-5 of ‖Xᵀx_j‖
MAX_ITER = 1000  # scikit-learn's default
SAMPLE_COLUMNS = 16  # fitted first, and timed for the estimate
# Bytes a training click costs: the SparseTensor (20), its numpy copies
# (16) and the CSC matrix (12) in the main thread; each worker's copy of
# the values (8). A non-zero of W: its float32 value and int32 row, once
# in the per-column pieces and once in the assembled CSR matrix.
_BYTES_PER_CLICK = 48
_BYTES_PER_WORKER_CLICK = 8
_BYTES_PER_WEIGHT = 16


def memory_bytes(
    n_items: int, n_clicks: int, workers: int, density: float = 1.0
) -> int:
    """Peak memory of :meth:`SLIM.fit`, roughly.

    Args:
        n_items: I.
        n_clicks: the training clicks.
        workers: the threads fitting columns.
        density: W's fraction of non-zeros off the diagonal (1: the most).
    """
    weights = int(density * n_items * (n_items - 1))
    return (
        _BYTES_PER_CLICK * n_clicks
        + workers * (_BYTES_PER_WORKER_CLICK * n_clicks + 16 * n_items)
        + _BYTES_PER_WEIGHT * weights
    )


def _non_negative(value, flag: str) -> float:
    """``value`` as a finite float >= 0; ValueError naming ``flag``."""
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{flag} must be >= 0, got {value}")
    return float(value)


def _fit_columns(x, columns, l1: float, l2: float) -> list[tuple]:
    """The weights of ``columns``, each fitted with its own column zeroed.

    Args:
        x: scipy CSC float64 ``[n_users, n_items]``, the clicks (not
            modified: the values are copied once per call).
        columns: the item indices j to fit.
        l1, l2: λ and β in the paper's units.

    Returns:
        Per column: (int32 rows i with w_ij > 0, float32 w_ij, iterations).
    """
    import scipy.sparse
    from sklearn.linear_model import ElasticNet

    n_users = x.shape[0]
    own = scipy.sparse.csc_matrix(
        (x.data.copy(), x.indices, x.indptr), shape=x.shape, copy=False
    )
    model = ElasticNet(
        alpha=(l1 + l2) / n_users,
        l1_ratio=l1 / (l1 + l2),
        positive=True,
        fit_intercept=False,
        copy_X=False,
        tol=TOL,
        max_iter=MAX_ITER,
    )
    out = []
    for j in columns:
        lo, hi = x.indptr[j], x.indptr[j + 1]
        target = np.zeros(n_users)  # [n_users]: x_j
        target[x.indices[lo:hi]] = x.data[lo:hi]
        own.data[lo:hi] = 0.0  # item j is not a regressor: w_jj = 0
        model.fit(own, target, check_input=False)
        own.data[lo:hi] = x.data[lo:hi]
        rows = np.flatnonzero(model.coef_ > 0)
        out.append(
            (
                rows.astype(np.int32),
                model.coef_[rows].astype(np.float32),
                int(model.n_iter_),
            )
        )
    return out


class SLIM(Baseline):
    """Scores x_u W with SLIM's sparse non-negative item-item weights.

    Args:
        l1: λ > 0, the L1 penalty (the paper's units: ½‖·‖² + λ‖w‖₁).
        l2: β >= 0, the L2 penalty (β/2 ‖w‖²).
    """

    kind = "slim"
    flags = {
        "l1": ("--l1", float, "λ, the L1 penalty (1; paper: .1, .5, 1, 5)"),
        "l2": ("--l2", float, "β, the L2 penalty (1; paper: .1, .5, 1, 5)"),
    }

    def __init__(self, l1: float = DEFAULT_L1, l2: float = DEFAULT_L2):
        l1 = _non_negative(l1, "--l1")
        l2 = _non_negative(l2, "--l2")
        if l1 == 0:
            # With w ≥ 0 and no L1 term scikit-learn's duality gap is
            # wrong, so every column would run to MAX_ITER.
            raise ValueError(
                "--l1 must be > 0 (the paper's grid: 0.1, 0.5, 1, 5); "
                "scikit-learn cannot tell a non-negative ridge converged"
            )
        super().__init__(l1=l1, l2=l2)
        self.workers = wmf.threads()

    def check(self, n_items, n_clicks, available_bytes=-1) -> None:
        """Prints the memory needed (W at its densest); refuses too little.

        Raises:
            MemoryError: the estimate exceeds the budget, with the figure.
        """
        if available_bytes == -1:
            available_bytes = ease.available_memory_bytes()
        need = memory_bytes(n_items, n_clicks, self.workers)
        print(
            f"SLIM on {n_items:,} items and {n_clicks:,} clicks, "
            f"{self.workers} threads: at most {need / 1e9:.2f} GB of memory "
            f"(W dense: {n_items * (n_items - 1):,} weights)",
            file=sys.stderr,
            flush=True,
        )
        if available_bytes is not None and need > available_bytes:
            raise MemoryError(
                f"SLIM on {n_items:,} items needs up to {need / 1e9:.2f} GB "
                f"of memory (W at its densest) but "
                f"{available_bytes / 1e9:.2f} GB is available"
            )

    def fit(self, x: tf.SparseTensor) -> None:
        """W from the float32 ``[n_users, n_items]`` clicks, all cores."""
        import scipy.sparse
        from sklearn.exceptions import ConvergenceWarning

        n_users, n_items = (int(d) for d in x.dense_shape)
        indices = x.indices.numpy()  # [n_clicks, 2]
        clicks = scipy.sparse.csc_matrix(
            (x.values.numpy(), (indices[:, 0], indices[:, 1])),
            shape=(n_users, n_items),
            dtype=np.float64,
        )
        clicks.sort_indices()
        # scikit-learn's sparse coordinate descent takes int32 indices.
        clicks.indices = clicks.indices.astype(np.int32, copy=False)
        clicks.indptr = clicks.indptr.astype(np.int32, copy=False)
        del indices
        l1, l2 = self.hyperparameters["l1"], self.hyperparameters["l2"]
        sample = np.unique(
            np.linspace(0, n_items - 1, min(n_items, SAMPLE_COLUMNS))
        ).astype(np.int64)
        rest = np.setdiff1d(np.arange(n_items), sample)
        parts = [rest[t :: self.workers] for t in range(self.workers)]
        fitted = {}
        with warnings.catch_warnings():  # counted below, by n_iter_
            warnings.simplefilter("ignore", ConvergenceWarning)
            started = time.perf_counter()
            fitted.update(zip(sample, _fit_columns(clicks, sample, l1, l2)))
            seconds = time.perf_counter() - started
            density = sum(len(r) for r, _, _ in fitted.values()) / max(
                1, len(sample) * (n_items - 1)
            )
            need = memory_bytes(
                n_items, len(clicks.data), self.workers, density
            )
            self.estimated_seconds = seconds * n_items / len(sample)
            self.estimated_seconds /= min(self.workers, max(1, len(rest)))
            print(
                f"SLIM: {len(sample)} columns in {seconds:.2f} s; the "
                f"{n_items:,} items in about {self.estimated_seconds:.0f} s "
                f"on {self.workers} threads; W about {100 * density:.2f}% "
                f"dense, about {need / 1e9:.2f} GB in all",
                file=sys.stderr,
                flush=True,
            )
            with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
                jobs = [
                    pool.submit(_fit_columns, clicks, part, l1, l2)
                    for part in parts
                    if len(part)
                ]
                for part, job in zip([p for p in parts if len(p)], jobs):
                    fitted.update(zip(part, job.result()))
        self.not_converged = sum(n >= MAX_ITER for _, _, n in fitted.values())
        rows = [fitted[j][0] for j in range(n_items)]
        values = [fitted[j][1] for j in range(n_items)]
        del fitted
        indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
        self.weights = scipy.sparse.csc_matrix(
            (np.concatenate(values), np.concatenate(rows), indptr),
            shape=(n_items, n_items),
        ).tocsr()  # [I, I] float32, w_ij at row i, column j
        self.n_items = n_items

    def score(self, item_ids: tf.Tensor) -> tf.Tensor:
        """float32 ``[batch, n_items]``: x_u W for each user's fold-in x_u.

        Traceable (the evaluation calls it inside a tf.function): the
        sparse product runs in scipy, through ``tf.numpy_function``.
        """
        scores = tf.numpy_function(
            self._scores, [item_ids], tf.float32, stateful=False
        )
        return tf.reshape(scores, [-1, self.n_items])

    def _scores(self, item_ids: np.ndarray) -> np.ndarray:
        """float32 ``[batch, I]`` x W from int64 ``[batch, max_len]`` ids."""
        import scipy.sparse

        ids = np.asarray(item_ids, np.int64)
        rows, positions = np.nonzero(ids >= 0)
        x = scipy.sparse.csr_matrix(
            (
                np.ones(len(rows), np.float32),
                (rows, ids[rows, positions]),
            ),
            shape=(len(ids), self.n_items),
        )  # [batch, I]
        return (x @ self.weights).toarray().astype(np.float32)

    def report(self) -> dict:
        """W's non-zeros and density, the columns that did not converge
        (within MAX_ITER) and the fit's estimated seconds."""
        nonzeros = int(self.weights.nnz)
        return {
            "nonzeros": nonzeros,
            "density": nonzeros / max(1, self.n_items * (self.n_items - 1)),
            "not_converged": int(self.not_converged),
            "estimated_seconds": round(self.estimated_seconds, 2),
        }
