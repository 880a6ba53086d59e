"""TensorBoard as a user opens it: the real server on a short run's logs.

Starts ``python -m tensorboard.main --logdir RUN/logs`` on conftest's
``vae_run`` (2 epochs, a scalar every update), reads the curves back over
its HTTP API on localhost (the scalars plugin's ``/tags`` and
``/scalars?run=&tag=`` routes) and compares them with the event files,
read independently with ``tf.compat.v1.train.summary_iterator``. The
server is stopped at the end, whatever happens.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

from tf_multvae import rundir

# The server alone takes ~20 s (it imports TensorFlow, then loads the
# logs; stopping it takes a few more), on top of training vae_run.
pytestmark = pytest.mark.slow

STARTUP_S = 120  # TensorBoard imports TensorFlow before it listens
SCALARS = "/data/plugin/scalars"
# What a user looks for: run -> tags (tf_multvae.training.callbacks).
CURVES = {
    "train": ("neg_elbo", "kl", "beta"),
    "validation": ("ndcg_at_100",),
}


def event_scalars(run_dir: pathlib.Path) -> dict:
    """run -> tag -> [(step, value)], from the event files themselves."""
    found: dict = {}
    for path in sorted(run_dir.rglob("events.out.tfevents.*")):
        run = path.parent.name
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor))
                found.setdefault(run, {}).setdefault(value.tag, []).append(
                    (event.step, number)
                )
    return found


def _get(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200, url
        return json.loads(response.read())


@pytest.fixture(scope="module")
def tensorboard(vae_run):
    """(base URL, logdir) of a TensorBoard server on ``vae_run``'s logs,
    once it has loaded every curve; stopped afterwards in any case."""
    logdir = pathlib.Path(vae_run) / rundir.LOGS
    assert logdir.is_dir(), f"training wrote no {logdir}"
    command = [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        str(logdir),
        "--host",
        "localhost",
        "--port",
        "0",  # the OS picks a free port; the server prints its URL
        "--load_fast",
        "false",  # the Python loader: no data server binary needed
        "--reload_interval",
        "1",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    found = threading.Event()

    def read():  # drains the pipe so the server never blocks on it
        for line in proc.stdout:
            lines.append(line)
            if re.search(r"http://localhost:\d+/", line):
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + STARTUP_S
        while not found.wait(0.2):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("TensorBoard did not start:\n" + "".join(lines))
        (url,) = {
            m.group(0)
            for line in lines
            for m in [re.search(r"http://localhost:\d+", line)]
            if m
        }
        # The first load runs in the background: wait for every curve.
        while True:
            tags = _get(url + SCALARS + "/tags")
            if all(
                set(wanted) <= set(tags.get(run, {}))
                for run, wanted in CURVES.items()
            ):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"TensorBoard shows only {tags}")
            time.sleep(0.5)
        yield url, logdir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)


def test_tensorboard_lists_the_runs_and_tags(tensorboard):
    url, logdir = tensorboard
    assert sorted(_get(url + "/data/runs")) == ["train", "validation"]
    tags = _get(url + SCALARS + "/tags")
    on_disk = event_scalars(logdir)
    assert {run: sorted(t) for run, t in tags.items()} == {
        run: sorted(t) for run, t in on_disk.items()
    }


@pytest.mark.parametrize(
    "run,tag", [(run, tag) for run, tags in CURVES.items() for tag in tags]
)
def test_tensorboard_serves_the_curves_of_the_event_files(
    tensorboard, run, tag
):
    url, logdir = tensorboard
    query = urllib.parse.urlencode({"run": run, "tag": tag})
    served = _get(f"{url}{SCALARS}/scalars?{query}")  # [[wall, step, value]]
    expected = event_scalars(logdir)[run][tag]
    assert len(expected) >= 2, expected  # a curve, not a point
    assert [step for _, step, _ in served] == [s for s, _ in expected]
    np.testing.assert_allclose(
        [value for _, _, value in served],
        [v for _, v in expected],
        rtol=1e-6,
    )
    values = np.array([v for _, v in expected])
    assert np.isfinite(values).all()
    if tag == "beta":  # annealed from 0 over --total-anneal-steps 20
        assert values[0] == 0 and (np.diff(values) >= 0).all()
    if tag == "ndcg_at_100":
        assert [s for s, _ in expected] == [1, 2]  # one point per epoch
        assert ((0 <= values) & (values <= 1)).all()
    if tag == "kl":
        assert (values >= 0).all()
