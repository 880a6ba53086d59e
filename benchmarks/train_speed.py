"""``python -m benchmarks.train_speed``: training and evaluation throughput.

    python -m benchmarks.train_speed --shape ml-20m [--mixed-precision] [--jit]

Trains Mult-VAE^PR on synthetic users with the item count and clicks per
user of ML-20M (20,108 items, 73 per user) or MSD (41,140, 59), then ranks
held-out users (fold-in -> masked top-100 metrics). Prints the figures and,
as its last line, one JSON object with ``train_users_per_s``,
``eval_users_per_s``, ``bound_users_per_s`` (the fp32 matmul throughput
measured in the same run divided by the model's training FLOPs per user
with sparse input), ``eval_bound_users_per_s`` (the same for one forward
pass) and ``peak_rss_mb`` (the whole process's peak; the peaks of
MSD-shape training and of evaluating 50,000 users, each in a process of
its own, are ``benchmarks.memory``'s). ``--mixed-precision`` also trains
under ``mixed_bfloat16`` (``mixed_float16`` on a GPU, as training does)
in the same process, on a model of its own built under that policy, and
adds its rate, its ratio to fp32, the compute dtype of its output layer
and the half-precision matmul rate. ``--jit`` compiles the training
steps with XLA. On a GPU, fp32 matmuls run as TF32 where the GPU has it
(TensorFlow's default).
Each rate is the best of three timed windows (the matmul rate is
measured between them): on a shared machine the fastest window is the
least disturbed; every window's training rate is printed too
(``train_windows``, ``mixed_train_windows``), so that two equal figures
can be told from one figure printed twice. The training windows are
consecutive steps of one ``fit``, timed by a callback, so that no window
holds the end of a ``fit`` (see ``_training_rate``).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

from benchmarks.common import forward_flops_per_user
from benchmarks.common import padded_users
from benchmarks.common import print_figures
from benchmarks.common import training_flops_per_user

WINDOWS = 3  # timed windows per figure; the best one is reported
SHAPES = {"ml-20m": (20_108, 73), "msd": (41_140, 59), "ml-1m": (3_497, 95)}


def matmul_flops_per_s(n_items, hidden, batch, dtype, repeats=20) -> float:
    import tensorflow as tf

    a = tf.cast(tf.random.normal([batch, hidden]), dtype)
    w = tf.cast(tf.random.normal([hidden, n_items]), dtype)

    @tf.function
    def step():
        return tf.reduce_sum(tf.cast(tf.matmul(a, w)[:, :1], tf.float32))

    step().numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        out = step()
    out.numpy()
    seconds = time.perf_counter() - start
    return repeats * 2.0 * batch * hidden * n_items / seconds


def _best_rate(work, units: float) -> float:
    """``units`` per second of the best of WINDOWS timings of ``work()``
    (as timeit does): on a shared machine the fastest window is the one
    least disturbed by other jobs."""
    best = float("inf")
    for _ in range(WINDOWS):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return units / best


def _step_clock():
    """A Keras callback whose ``ends`` lists the time at the end of every
    training step."""
    import keras

    class StepClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    return StepClock()


def _training_rate(
    policy, n_items, hidden, latent, train, steps, batch, jit=False
):
    """The model and the users/s of each window of its training, under a
    Keras dtype policy set before the model is built.

    One ``fit`` runs the warm-up (tracing, the optimizer's slots) and then
    WINDOWS windows of ``steps`` updates, timed from the end of the step
    before each window to the end of its last step. Not one ``fit`` per
    window: the end of a ``fit`` waits for tf.data's autotuning thread to
    wake (up to about 5 s after the input iterator was made, on the CPUs
    measured), which capped every 10-step window at 5,000 users / 5.11 s
    = 979 users/s whatever the model did (docs/benchmarks.md).
    """
    import keras

    from tf_multvae.model import build_model
    from tf_multvae.model import compile_model

    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = build_model(
        "vae", n_items, hidden_dims=(hidden,), latent_dim=latent, seed=0
    )
    compile_model(model, jit_compile=jit)
    warm_up = 5
    clock = _step_clock()
    model.fit(
        train,
        steps_per_epoch=warm_up + WINDOWS * steps,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[clock],
    )
    keras.mixed_precision.set_global_policy("float32")
    return model, step_window_rates(clock.ends, warm_up, steps, batch)


def step_window_rates(step_ends, warm_up, steps, batch) -> list[float]:
    """Users/s of each window of ``steps`` consecutive steps after
    ``warm_up`` steps, from the time at the end of every step: window w
    runs from the end of step ``warm_up + w * steps`` (counting from 1) to
    the end of step ``warm_up + (w + 1) * steps``."""
    marks = step_ends[warm_up - 1 :: steps]
    return [steps * batch / (b - a) for a, b in zip(marks, marks[1:])]


def run(
    shape: str, steps: int, batch: int, mixed_precision: bool, jit=False
) -> dict:
    import tensorflow as tf

    from tf_multvae import metrics

    gpu = bool(tf.config.list_logical_devices("GPU"))
    half = tf.float16 if gpu else tf.bfloat16

    n_items, clicks = SHAPES[shape]
    hidden, latent = 600, 200
    users = padded_users(batch * 4, n_items, clicks, seed=0)
    train = tf.data.Dataset.from_tensor_slices(users).batch(batch).repeat()
    fp32_matmul = [matmul_flops_per_s(n_items, hidden, batch, tf.float32)]
    model, train_windows = _training_rate(
        "float32", n_items, hidden, latent, train, steps, batch, jit
    )
    train_rate = max(train_windows)
    fp32_matmul.append(matmul_flops_per_s(n_items, hidden, batch, tf.float32))

    fold_in = tf.constant(users[:, : users.shape[1] // 2])
    heldout = tf.constant(users[:, users.shape[1] // 2 :])

    @tf.function
    def evaluate(f, h):
        return metrics.ranking_metrics(model.score(f), f, h)["ndcg_at_100"]

    evaluate(fold_in[:batch], heldout[:batch]).numpy()

    def work():
        for i in range(0, users.shape[0], batch):
            out = evaluate(fold_in[i : i + batch], heldout[i : i + batch])
        out.numpy()

    eval_rate = _best_rate(work, users.shape[0])
    fp32_matmul.append(matmul_flops_per_s(n_items, hidden, batch, tf.float32))

    flops = training_flops_per_user(n_items, hidden, latent, clicks)
    eval_flops = forward_flops_per_user(n_items, hidden, latent, clicks / 2)
    matmul = max(fp32_matmul)
    result = {
        "shape": shape,
        "jit": jit,
        "n_items": n_items,
        "clicks_per_user": clicks,
        "batch": batch,
        "train_users_per_s": round(train_rate, 1),
        "train_windows": [round(r, 1) for r in train_windows],
        "eval_users_per_s": round(eval_rate, 1),
        "bound_users_per_s": round(matmul / flops, 1),
        "train_fraction_of_bound": round(train_rate * flops / matmul, 3),
        "eval_bound_users_per_s": round(matmul / eval_flops, 1),
        "eval_fraction_of_bound": round(eval_rate * eval_flops / matmul, 3),
        "training_mflops_per_user": round(flops / 1e6, 1),
        "matmul_gflops": round(matmul / 1e9, 1),
    }
    if mixed_precision:
        del model
        half_matmul = matmul_flops_per_s(n_items, hidden, batch, half)
        policy = "mixed_float16" if gpu else "mixed_bfloat16"
        mixed, mixed_windows = _training_rate(
            policy, n_items, hidden, latent, train, steps, batch, jit
        )
        mixed_rate = max(mixed_windows)
        logits_layer = mixed.decoder.dense_layers[-1]  # timed under policy
        half_matmul = max(
            half_matmul, matmul_flops_per_s(n_items, hidden, batch, half)
        )
        result.update(
            mixed_policy=policy,
            mixed_train_users_per_s=round(mixed_rate, 1),
            mixed_train_windows=[round(r, 1) for r in mixed_windows],
            mixed_logits_compute_dtype=logits_layer.compute_dtype,
            mixed_over_fp32=round(mixed_rate / train_rate, 3),
            half_matmul_gflops=round(half_matmul / 1e9, 1),
            half_over_fp32_matmul=round(half_matmul / matmul, 3),
        )
    result["peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_speed")
    p.add_argument("--shape", choices=sorted(SHAPES), default="ml-20m")
    p.add_argument("--steps", type=int, default=10, help="per window")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--mixed-precision", action="store_true")
    p.add_argument("--jit", action="store_true", help="XLA-compile training")
    args = p.parse_args(argv)
    result = run(
        args.shape,
        args.steps,
        args.batch_size,
        args.mixed_precision,
        args.jit,
    )
    print_figures(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
