"""What the speed programs share: the package's TensorFlow settings,
synthetic users, FLOP counts, the machine they ran on and the way figures
are printed.

Every figure is printed with :func:`machine` (the CPU model and the
instruction-set flags that decide which matmul kernels run, the
TensorFlow version, whether oneDNN is on, the GPUs), so a figure always
says where it was measured.

Imported first by every benchmark, so that ``tf_multvae`` sets its
TensorFlow environment (oneDNN on) before TensorFlow loads, as the
installed commands do.
"""

from __future__ import annotations

import json
import os
import platform

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


# The CPU flags that decide TensorFlow's and oneDNN's matmul kernels.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")


def cpu(cpuinfo: str | None = None) -> dict:
    """The CPU: model name, family/model, logical cores, :data:`CPU_FLAGS`.

    Args:
        cpuinfo: the text of /proc/cpuinfo (default: read it; on a system
            without it only the core count and ``platform``'s name).
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            cpuinfo = ""
    fields = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:  # the first processor's
            fields[key.strip()] = value.strip()
    flags = set(fields.get("flags", "").split())
    return {
        "cpu": fields.get("model name") or platform.processor() or "unknown",
        "cpu_family_model": (
            f"{fields['cpu family']}/{fields['model']}"
            if "cpu family" in fields and "model" in fields
            else None
        ),
        "cores": os.cpu_count(),
        "cpu_flags": [f for f in CPU_FLAGS if f in flags],
    }


def machine() -> dict:
    """:func:`cpu`, the TensorFlow version, oneDNN, the visible GPUs."""
    import tensorflow as tf
    from tensorflow.python.util import _pywrap_util_port as port

    return {
        **cpu(),
        "tensorflow": tf.__version__,
        "onednn": bool(port.IsMklEnabled())
        and os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "0",
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    }


def print_figures(result: dict) -> None:
    """One figure per line, then all of them as the last line's JSON,
    :func:`machine` first."""
    result = {**machine(), **result}
    for key, value in result.items():
        print(f"{key:28s}{value}")
    print(json.dumps(result))
