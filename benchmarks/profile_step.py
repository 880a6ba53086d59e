"""``python -m benchmarks.profile_step``: where a training step's time goes.

    python -m benchmarks.profile_step --shape ml-20m|msd|ml-1m [--top 15]

Trains Mult-VAE^PR 600-200-600 on synthetic users of the shape's item count
and clicks per user (as ``benchmarks.train_speed`` does), warms up, then
records ``--steps`` updates of one ``fit`` with TensorFlow's profiler and
sums each op's time per step from the trace. The ops run one at a time
(one inter-op thread; each op still uses every core), so their times add
up to the step; on the CPUs measured the step took as long as with
TensorFlow's default inter-op threads.

Prints the step's time, its parts (the output layer's three matmuls:
forward, dW and dx; the other matmuls; Adam's updates; the sparse first
layer; everything else) with their share of the step, the output layer's
matmul rate, the ``--top`` slowest ops, and as its last line one JSON
object with the CPU (``benchmarks.common.machine``).
"""

from __future__ import annotations

import argparse
import collections
import glob
import re
import sys
import tempfile

from benchmarks.common import padded_users
from benchmarks.common import print_figures
from benchmarks.train_speed import SHAPES
from benchmarks.train_speed import _step_clock

# A TensorFlow op's trace event is "scope/name:Type"; the executor's own
# events ("ExecutorState::Process", "EagerLocalExecute: ...") are not.
_OP_EVENT = re.compile(r"^(?P<name>[^:\s]+):(?P<type>[A-Za-z_][A-Za-z0-9_]*)$")
_MATMUL = re.compile(r"MatMul")
OUTPUT_LAYER = "logits"  # the decoder's output layer's name


def op_part(name: str, op_type: str) -> str:
    """The part of the step an op belongs to, from its scope and type."""
    if _MATMUL.search(op_type):
        scopes = name.split("/")
        if any(scope.startswith(OUTPUT_LAYER) for scope in scopes):
            return "output_matmuls"
        return "other_matmuls"
    if op_type.startswith("ResourceApplyAdam"):
        return "adam"
    if op_type.startswith("SparseSegment") or op_type == "TopKV2":
        return "first_layer"
    return "other"


def _short(name: str) -> str:
    """An op's name without the function-call and gradient-tape scopes."""
    return "/".join(
        scope
        for scope in name.split("/")
        if scope not in ("StatefulPartitionedCall", "gradient_tape")
    )


def op_times(xplane_path: str) -> dict[tuple[str, str], float]:
    """Seconds spent in each (op name, op type) in a profiler trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xplane_path, "rb") as f:
        space.ParseFromString(f.read())
    seconds = collections.Counter()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            for event in line.events:
                match = _OP_EVENT.match(
                    plane.event_metadata[event.metadata_id].name
                )
                if match:
                    key = (match["name"], match["type"])
                    seconds[key] += event.duration_ps * 1e-12
    return dict(seconds)


def run(shape: str, steps: int, batch: int, top: int) -> dict:
    import keras
    import tensorflow as tf

    from tf_multvae.model import build_model
    from tf_multvae.model import compile_model

    tf.config.threading.set_inter_op_parallelism_threads(1)
    n_items, clicks = SHAPES[shape]
    hidden, latent = 600, 200
    users = padded_users(batch * 4, n_items, clicks, seed=0)
    train = tf.data.Dataset.from_tensor_slices(users).batch(batch).repeat()
    keras.utils.set_random_seed(0)
    model = build_model(
        "vae", n_items, hidden_dims=(hidden,), latent_dim=latent, seed=0
    )
    compile_model(model)
    model.fit(train, steps_per_epoch=5, epochs=1, verbose=0)
    clock = _step_clock()
    with tempfile.TemporaryDirectory(prefix="profile_step-") as logdir:
        tf.profiler.experimental.start(logdir)
        model.fit(
            train,
            steps_per_epoch=steps + 1,
            epochs=1,
            verbose=0,
            callbacks=[clock],
        )
        tf.profiler.experimental.stop()
        (path,) = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
        times = op_times(path)
    # The trace holds steps + 1 updates; the clock times the last steps.
    per_step = {key: 1e3 * s / (steps + 1) for key, s in times.items()}
    parts = collections.Counter()
    for (name, op_type), ms in per_step.items():
        parts[op_part(name, op_type)] += ms
    ops_ms = sum(per_step.values())
    output_flops = 3 * 2.0 * batch * hidden * n_items
    result = {
        "shape": shape,
        "n_items": n_items,
        "batch": batch,
        "steps": steps,
        "step_ms": round(1e3 * (clock.ends[-1] - clock.ends[0]) / steps, 1),
        "ops_ms_per_step": round(ops_ms, 1),
    }
    for part in ("output_matmuls", "other_matmuls", "adam", "first_layer"):
        result[f"{part}_ms"] = round(parts[part], 1)
    result["other_ms"] = round(parts["other"], 1)
    result["output_matmuls_share"] = round(parts["output_matmuls"] / ops_ms, 3)
    result["output_matmul_gflops"] = round(
        output_flops / parts["output_matmuls"] / 1e6, 1
    )
    slowest = sorted(per_step.items(), key=lambda kv: -kv[1])[:top]
    result["slowest_ops"] = [
        [f"{_short(name)}:{op_type}", round(ms, 2)]
        for (name, op_type), ms in slowest
    ]
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_step")
    p.add_argument("--shape", choices=sorted(SHAPES), default="ml-20m")
    p.add_argument("--steps", type=int, default=10, help="profiled updates")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--top", type=int, default=15, help="slowest ops listed")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.top < 0:
        p.error("--steps and --batch-size must be >= 1, --top >= 0")
    result = run(args.shape, args.steps, args.batch_size, args.top)
    print_figures(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
