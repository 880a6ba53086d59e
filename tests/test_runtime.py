"""Package-wide TensorFlow settings and the benchmarks' FLOP counts."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from benchmarks import common as benchmark

_PROBE = (
    "import os, tf_multvae, tensorflow\n"
    "from tensorflow.python.util import _pywrap_util_port as port\n"
    "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], port.IsMklEnabled())\n"
)


def _probe(env_value):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if env_value is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout.split()[-2:]


@pytest.mark.slow
@pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64"),
    reason="TensorFlow's oneDNN switch applies to its x86 builds",
)
def test_importing_the_package_turns_on_onednn_and_respects_the_environment():
    assert _probe(None) == ["1", "True"]
    assert _probe("0") == ["0", "False"]


def test_forward_flops_match_a_hand_count_at_ml20m_shape():
    # 73 clicks x 600 (sparse first layer) + 600 x 2*200 (mu, logvar)
    # + 200 x 600 + 600 x 20,108, two FLOPs per multiply-add.
    hand = 2 * (73 * 600 + 600 * 400 + 200 * 600 + 600 * 20_108)
    assert hand == 24_937_200
    assert benchmark.forward_flops_per_user(20_108, 600, 200, 73) == hand
    # Training: forward, gradient w.r.t. weights and w.r.t. inputs.
    assert benchmark.training_flops_per_user(20_108, 600, 200, 73) == 3 * hand
