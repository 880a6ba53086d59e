"""What the speed programs share: the package's TensorFlow settings,
synthetic users, FLOP counts and the way figures are printed.

Imported first by every benchmark, so that ``tf_multvae`` sets its
TensorFlow environment (oneDNN on) before TensorFlow loads, as the
installed commands do.
"""

from __future__ import annotations

import json

import tf_multvae  # noqa: F401  (TensorFlow's environment, before TF loads)


def padded_users(n_users, n_items, clicks, seed):
    """int64 [n_users, max_len] random distinct items per user, -1 padded."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.poisson(clicks, n_users), 1, n_items)
    out = np.full((n_users, int(lengths.max())), -1, np.int64)
    for u, n in enumerate(lengths):
        out[u, :n] = np.sort(rng.choice(n_items, n, replace=False))
    return out


def forward_flops_per_user(n_items, hidden, latent, clicks) -> float:
    """Multiply-adds x 2 of one user's forward pass, sparse input."""
    return 2.0 * (
        clicks * hidden  # the sparse first layer touches nnz rows
        + hidden * 2 * latent
        + latent * hidden
        + hidden * n_items
    )


def training_flops_per_user(n_items, hidden, latent, clicks) -> float:
    """Forward + backward: each matmul's forward, dW and dx, 3 x forward."""
    return 3.0 * forward_flops_per_user(n_items, hidden, latent, clicks)


def print_figures(result: dict) -> None:
    """One figure per line, then all of them as the last line's JSON."""
    for key, value in result.items():
        print(f"{key:28s}{value}")
    print(json.dumps(result))
