"""One code path under tf.distribute: Mirrored and MultiWorkerMirrored.

Each configuration trains in its own process (logical devices and
TF_CONFIG must be set before TensorFlow starts) on the same small dataset,
and must reach the validation NDCG@100 of the default strategy.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from conftest import IN_PROCESS
from conftest import REPO

from data_prep import pipeline

# Mult-DAE with dropout 0 has no noise, so the strategies must agree up to
# float summation order; Mult-VAE draws per-replica noise, so its runs
# agree only statistically.
TRAIN_ARGS = [
    "--dataset",
    "synthetic",
    "--epochs",
    "3",
    "--batch-size",
    "100",
    "--hidden-dims",
    "32",
    "--latent-dim",
    "16",
    "--deterministic",
]
LAUNCH = """
import os, sys
import tensorflow as tf
n = int(os.environ.get("LOGICAL_CPUS", "1"))
if n > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * n
    )
from tf_multvae import train
sys.exit(train.main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("data") / "synthetic"
    assert (
        pipeline.main(
            [
                "--dataset",
                "synthetic",
                "--synthetic-users",
                "1200",
                "--synthetic-items",
                "300",
                "--out",
                str(out),
                *IN_PROCESS,
            ]
        )
        == 0
    )
    return str(out)


def _start(args, env_extra):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env_extra}
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCH, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(proc, timeout=300):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]


def _validation(run_dir) -> list[float]:
    with open(os.path.join(run_dir, "metrics.json")) as f:
        return json.load(f)["validation"]["ndcg_at_100"]


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _best_history(run_dir) -> list[float]:
    """A worker's validation history (non-chief workers write best.json)."""
    with open(os.path.join(run_dir, "best.json")) as f:
        return json.load(f)["history"]["ndcg_at_100"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["dae", "vae"])
def test_strategies_reach_the_same_validation_ndcg(dataset, tmp_path, model):
    extra = ["--model", model, "--data-dir", dataset]
    if model == "dae":
        extra += ["--dropout", "0"]
    runs = {}
    # The default strategy and MirroredStrategy over two logical CPUs.
    for name, cpus, strategy in (
        ("default", "1", "default"),
        ("mirrored", "2", "mirrored"),
    ):
        run_dir = str(tmp_path / name)
        proc = _start(
            [*TRAIN_ARGS, *extra, "--strategy", strategy, "--run-dir", run_dir],
            {"LOGICAL_CPUS": cpus},
        )
        _finish(proc)
        runs[name] = _validation(run_dir)
    # MultiWorkerMirroredStrategy: two worker processes on localhost.
    cluster = {"worker": [f"localhost:{p}" for p in _free_ports(2)]}
    run_dir = str(tmp_path / "multi_worker")
    procs = [
        _start(
            [
                *TRAIN_ARGS,
                *extra,
                "--strategy",
                "multi_worker",
                "--run-dir",
                run_dir,
            ],
            {
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": i}}
                )
            },
        )
        for i in range(2)
    ]
    for proc in procs:
        _finish(proc)
    runs["multi_worker"] = _validation(run_dir)
    # The second worker trained the same model and saw the same metrics.
    worker_1 = _best_history(os.path.join(run_dir, ".worker-1"))
    assert worker_1 == pytest.approx(runs["multi_worker"], abs=1e-6)
    tolerance = 1e-3 if model == "dae" else 0.03
    base = runs["default"]
    for name, history in runs.items():
        assert len(history) == 3, name
        assert max(history) == pytest.approx(max(base), abs=tolerance), (
            name,
            history,
            base,
        )
