"""``python -m benchmarks.serving_speed``: the exported signature's speed.

    python -m benchmarks.serving_speed [--requests 1000] [--batch 1000]

Exports Mult-VAE^PR at ML-20M shape (20,108 items, 600-200-600, random
weights: speed does not depend on them) with ``tf_multvae.serving.export``,
loads it with ``tf.saved_model.load`` as a server would, and calls its
``serving_default`` signature (raw item ids in, top-100 out) in process:

- latency at batch 1: p50 and p99 over ``--requests`` users of ~73 clicks;
- throughput at batch ``--batch``: users per second over ``--rounds``.

Next to them it measures two bounds on the same machine: the time to read
the weights once (batch 1 must read the 20,108 x 600 output kernel, 48 MB,
for every request) and the fp32 matmul throughput divided by the forward
FLOPs of one user (the bound on users/s at large batches), and the load
average, since other jobs may share the cores. Prints the figures and, as
its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from benchmarks.common import forward_flops_per_user
from benchmarks.common import padded_users
from benchmarks.common import print_figures
from tf_multvae import cli

N_ITEMS, HIDDEN, LATENT, CLICKS = 20_108, 600, 200, 73  # ML-20M shape
TOP_K = 100


def _percentiles_ms(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def weight_read_ms(kernel, repeats: int = 50) -> float:
    """Median time to read ``kernel`` once (a sum over it), in ms."""
    import tensorflow as tf

    read = tf.function(lambda: tf.reduce_sum(kernel))
    read().numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        read().numpy()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def matmul_flops_per_s(kernel, batch: int, repeats: int = 5) -> float:
    """fp32 ``[batch, hidden] x kernel`` FLOP/s, best of ``repeats``."""
    import tensorflow as tf

    a = tf.random.normal([batch, kernel.shape[0]])
    step = tf.function(lambda: tf.reduce_sum(tf.matmul(a, kernel)[:, :1]))
    step().numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step().numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * batch * kernel.shape[0] * kernel.shape[1] / best


def run(
    requests: int,
    batch: int,
    rounds: int,
    seed: int = 0,
    output_dtype: str = "float32",
) -> dict:
    import keras
    import tensorflow as tf

    from tf_multvae.model import build_model
    from tf_multvae.serving import export
    from tf_multvae.serving import signatures

    load_before = os.getloadavg()[0]
    keras.utils.set_random_seed(seed)
    model = build_model(
        "vae", N_ITEMS, hidden_dims=(HIDDEN,), latent_dim=LATENT, seed=seed
    )
    vocab = np.array([f"item-{i}" for i in range(N_ITEMS)], dtype=object)
    users = padded_users(max(requests, batch), N_ITEMS, CLICKS, seed)
    ids = np.where(users >= 0, vocab[np.maximum(users, 0)], signatures.ID_PAD)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_path = os.path.join(tmp, "items.txt")
        with open(vocab_path, "w") as f:
            f.write("\n".join(vocab) + "\n")
        started = time.perf_counter()
        path = export.save(
            signatures.ServingModule(model, vocab_path, TOP_K, output_dtype),
            tmp + "/model",
        )
        export_s = time.perf_counter() - started
        signature = tf.saved_model.load(path).signatures[
            signatures.SERVING_SIGNATURE
        ]

        def call(rows):
            out = signature(items=tf.constant(rows.astype(str)))
            return out[signatures.ITEM_IDS].numpy()

        # Batch 1, one user after another, each padded to its own length
        # as a client would send it; inputs built outside the clock.
        lengths = (users >= 0).sum(axis=1)
        singles = [ids[u : u + 1, : lengths[u]] for u in range(requests)]
        for rows in singles[:20]:
            call(rows)  # warm-up
        latencies = []
        for rows in singles:
            start = time.perf_counter()
            call(rows)
            latencies.append(time.perf_counter() - start)
        p50, p99 = _percentiles_ms(latencies)

        big = ids[:batch]
        call(big)  # warm-up
        start = time.perf_counter()
        for _ in range(rounds):
            call(big)
        throughput = rounds * batch / (time.perf_counter() - start)

    kernel = model.decoder.kernels[-1].value  # [hidden, n_items]
    read_ms = weight_read_ms(kernel)
    flops = forward_flops_per_user(N_ITEMS, HIDDEN, LATENT, CLICKS)
    matmul = matmul_flops_per_s(kernel, batch)
    return {
        "n_items": N_ITEMS,
        "layers": f"{N_ITEMS}-{HIDDEN}-{LATENT}-{HIDDEN}-{N_ITEMS}",
        "clicks_per_user": CLICKS,
        "top_k": TOP_K,
        "output_dtype": output_dtype,
        "export_s": round(export_s, 1),
        "batch1_requests": requests,
        "batch1_p50_ms": round(p50, 3),
        "batch1_p99_ms": round(p99, 3),
        "batch1_weight_read_ms": round(read_ms, 3),
        "batch": batch,
        "batch_users_per_s": round(throughput, 1),
        "forward_mflops_per_user": round(flops / 1e6, 1),
        "matmul_gflops_per_s": round(matmul / 1e9, 1),
        "bound_users_per_s": round(matmul / flops, 1),
        # Other jobs share the cores: the 1-minute load average around the
        # run (2 cores; above 2, every figure here is slowed by them).
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TF loads
    from tf_multvae.serving.signatures import OUTPUT_DTYPES

    p = argparse.ArgumentParser(prog="python -m benchmarks.serving_speed")
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument(
        "--output-dtype",
        choices=OUTPUT_DTYPES,
        default="float32",
        help="the export's output layer (export --output-dtype)",
    )
    args = p.parse_args(argv)
    if args.requests < 1 or args.batch < 1 or args.rounds < 1:
        return cli.fail("--requests, --batch, --rounds must be >= 1")
    result = run(
        args.requests, args.batch, args.rounds, output_dtype=args.output_dtype
    )
    print_figures(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
