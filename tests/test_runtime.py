"""Package-wide TensorFlow settings, the benchmarks' FLOP counts and machine,
and the memory benchmark's figures."""

from __future__ import annotations

import json
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


def _run_benchmark(name: str, *args: str) -> tuple[dict, list[str]]:
    """``python -m benchmarks.NAME ARGS`` from the repository root: its
    last line's JSON and every line it printed."""
    out = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *args],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    printed = out.stdout.strip().splitlines()
    return json.loads(printed[-1]), printed


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


_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse avx2 fma avx512f avx512_bf16 avx512_vnni
processor\t: 1
model name\t: another
"""


def test_benchmarks_name_the_cpu_and_its_matmul_flags():
    found = benchmark.cpu(_CPUINFO)
    assert found["cpu"] == "AMD EPYC 9R14"  # the first processor's
    assert found["cpu_family_model"] == "25/17"
    assert found["cpu_flags"] == ["avx2", "fma", "avx512f", "avx512_vnni",
                                  "avx512_bf16"]  # fmt: skip
    assert benchmark.cpu("")["cpu_flags"] == []
    here = benchmark.machine()
    assert here["cores"] >= 1 and here["tensorflow"].count(".") >= 1
    assert isinstance(here["onednn"], bool)


@pytest.mark.slow
def test_memory_benchmark_prints_the_peaks_of_training_and_evaluation(
    tmp_path,
):
    # A tiny shape: 300 items, 50 held-out users; the dataset is prepared
    # into --data-dir and kept there.
    data_dir = tmp_path / "data"
    result, printed = _run_benchmark(
        "memory", "--items=300", "--clicks=20", "--eval-users=50",
        "--train-users=100", "--steps=3", "--batch-size=25",
        f"--data-dir={data_dir}",
    )  # fmt: skip
    assert result["cpu"] and result["cores"] >= 1  # the machine first
    assert result["train_peak_rss_mb"] > 0 and result["eval_peak_rss_mb"] > 0
    assert result["train_peak_rss_mb"] >= result["train_setup_rss_mb"] > 0
    assert result["eval_users"] == result["data_test_users"] == 50
    assert result["shape"] == "custom" and result["n_items"] == 300
    assert result["prep_seconds"] > 0 and (data_dir / "metadata.json").exists()
    for key in ("train_peak_rss_mb", "eval_peak_rss_mb", "prep_seconds"):
        assert any(line.startswith(key + " ") for line in printed)


def test_training_windows_are_timed_from_step_ends():
    from benchmarks.train_speed import step_window_rates

    # 2 warm-up steps of 10 s, then steps of 1 s, 2 s, 1 s, 4 s at batch 5:
    # windows of two steps run 20 -> 23 s and 23 -> 28 s.
    ends = [10.0, 20.0, 21.0, 23.0, 24.0, 28.0]
    assert step_window_rates(ends, 2, 2, 5) == [10 / 3, 10 / 5]


@pytest.mark.slow
def test_training_benchmark_prints_three_windows_of_one_fit():
    result, _ = _run_benchmark(
        "train_speed", "--shape=ml-1m", "--steps=2", "--batch-size=50"
    )
    assert result["cpu"] and result["n_items"] == 3_497
    windows = result["train_windows"]
    assert len(windows) == 3 and min(windows) > 0
    assert result["train_users_per_s"] == max(windows)
    # Two 50-user steps of a 3,497-item model take well under a second
    # here: a window that held the end of a fit (about 5 s) would be
    # slower than 100 users / 5 s.
    assert min(windows) > 100 / 5.0


def test_profiled_ops_fall_into_the_steps_parts():
    from benchmarks.profile_step import op_part

    scope = "StatefulPartitionedCall/gradient_tape/mult_vae_1/decoder_1"
    parts = {
        f"{scope}/logits_1/MatMul/MatMul:_MklMatMul": "output_matmuls",
        "x/mult_vae_1/decoder_1/logits_1/BiasAdd:_MklNativeFusedMatMul": (
            "output_matmuls"
        ),
        f"{scope}/dense_1_1/MatMul/MatMul_1:_MklMatMul": "other_matmuls",
        "x/fused_adam/ResourceApplyAdam_6:ResourceApplyAdam": "adam",
        "x/SparseSegmentSumWithNumSegments:SparseSegmentSumWithNumSegments": (
            "first_layer"
        ),
        "x/argsort/TopKV2:TopKV2": "first_layer",
        f"{scope}/logits_1/BiasAdd/BiasAddGrad:BiasAddGrad": "other",
        "x/Softmax:_MklSoftmax": "other",
    }
    for event, part in parts.items():
        name, op_type = event.rsplit(":", 1)
        assert op_part(name, op_type) == part, event


@pytest.mark.slow
def test_step_profile_adds_up_to_the_step():
    result, printed = _run_benchmark(
        "profile_step", "--shape", "ml-1m", "--steps", "5", "--top", "3"
    )
    parts = ("output_matmuls", "other_matmuls", "adam", "first_layer", "other")
    total = sum(result[f"{part}_ms"] for part in parts)
    assert abs(total - result["ops_ms_per_step"]) < 0.1 * len(parts)
    assert all(result[f"{part}_ms"] > 0 for part in parts)
    # The ops run one at a time, so they fill the step (the step clock
    # also holds Python's callback work between steps).
    assert 0.5 * result["step_ms"] < result["ops_ms_per_step"]
    assert result["ops_ms_per_step"] < 1.2 * result["step_ms"]
    assert len(result["slowest_ops"]) == 3
    assert result["cpu_flags"] == benchmark.cpu()["cpu_flags"]


@pytest.mark.slow
def test_ranking_benchmark_compares_equal_results():
    result, _ = _run_benchmark(
        "ranking_speed", "--items", "6400", "--batch", "20", "--rounds", "1"
    )
    assert result["block"] == 16  # 6,400 = 16 * 400, the k best: 1/4
    assert result["same_mask"] and result["same_top_k"]
    for name in ("scatter_mask_ms", "add_at_mask_ms", "tf_top_k_ms"):
        assert result[name] > 0
    assert result["top_k_speedup"] == pytest.approx(
        result["tf_top_k_ms"] / result["ranking_top_k_ms"], rel=0.02
    )


@pytest.mark.slow
def test_serving_agreement_measures_both_exports_on_the_test_users(
    serving_run,
):
    result, _ = _run_benchmark(
        "serving_agreement", "--run-dir", str(serving_run)
    )
    metrics_json = json.loads((serving_run / "metrics.json").read_text())
    test = metrics_json["test"]
    assert result["scored_users"] == test["users"]
    # The float32 signature ranks as evaluation does: the same NDCG@100.
    assert result["ndcg_fp32"] == pytest.approx(
        test["ndcg_at_100"]["mean"], abs=1e-5
    )
    assert 0.0 <= result["top_k_overlap_min"] <= result["top_k_overlap"] <= 1
    assert result["ndcg_difference"] == pytest.approx(
        result["ndcg_bf16"] - result["ndcg_fp32"], abs=2e-5
    )
    assert result["meets_targets"] == (
        result["top_k_overlap"] >= 0.99
        and abs(result["ndcg_difference"]) <= 0.001
    )
