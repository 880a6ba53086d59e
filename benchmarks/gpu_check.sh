#!/bin/sh
# The GPU check: on a machine with a GPU, from the repository root,
#
#     pip install -e ".[all,dev,gpu]"     # TensorFlow with its CUDA libraries
#     sh benchmarks/gpu_check.sh [PYTHON]  # PYTHON: default .venv/bin/python
#
# runs the tests that exercise the model, its kernels, the metrics and the
# distribution strategies on the GPU, then the training benchmark at the
# ML-20M shape in fp32 (TF32 where the GPU has it), under mixed_float16 and
# with XLA, the MSD shape in fp32 (each with its evaluation figures), the
# ranking ops against TensorFlow's, and the serving benchmark with the
# float32 and the bfloat16 output layer. Each step's output goes to $OUT (default
# gpu-check/); the last line printed is one JSON object with every step's
# figures (its benchmark JSON) or its failure. CI never runs this: it needs
# a GPU, and says so and exits 2 without one.
set -u
cd "$(dirname "$0")/.."
PYTHON=${1:-.venv/bin/python}
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
export TF_CPP_MIN_LOG_LEVEL=2

if ! "$PYTHON" -c "import sys, tensorflow as tf; sys.exit(not tf.config.list_physical_devices('GPU'))"; then
    echo "error: TensorFlow sees no GPU here ($PYTHON); benchmarks/gpu_check.sh needs one" >&2
    exit 2
fi
nvidia-smi -L > "$OUT/nvidia-smi.txt" 2>&1 || true

step() {  # step NAME COMMAND...: runs it, keeps its output and exit code
    name=$1
    shift
    start=$(date +%s)
    "$@" > "$OUT/$name.log" 2>&1
    echo $? > "$OUT/$name.rc"
    echo $(( $(date +%s) - start )) > "$OUT/$name.seconds"
    echo "$name: exit $(cat "$OUT/$name.rc") in $(cat "$OUT/$name.seconds") s" >&2
}

step tests "$PYTHON" -m pytest -q -p no:cacheprovider -m "not slow" \
    tests/test_layers.py tests/test_model.py tests/test_losses.py \
    tests/test_metrics.py tests/test_sampled.py tests/test_cdae.py \
    tests/test_ranking.py tests/test_signatures.py tests/test_distributed.py
step train_ml20m_fp32 "$PYTHON" -m benchmarks.train_speed --shape ml-20m
step train_ml20m_mixed "$PYTHON" -m benchmarks.train_speed --shape ml-20m --mixed-precision
step train_ml20m_xla "$PYTHON" -m benchmarks.train_speed --shape ml-20m --jit
step train_msd_fp32 "$PYTHON" -m benchmarks.train_speed --shape msd
step ranking "$PYTHON" -m benchmarks.ranking_speed
step serving "$PYTHON" -m benchmarks.serving_speed
step serving_bf16 "$PYTHON" -m benchmarks.serving_speed --output-dtype bfloat16

"$PYTHON" - "$OUT" <<'PY'
import json, os, sys

out = sys.argv[1]
names = ["tests", "train_ml20m_fp32", "train_ml20m_mixed", "train_ml20m_xla",
         "train_msd_fp32", "ranking", "serving", "serving_bf16"]
summary = {}
for name in names:
    read = lambda suffix: open(os.path.join(out, name + suffix)).read()
    lines = read(".log").strip().splitlines()
    entry = {"exit": int(read(".rc")), "seconds": int(read(".seconds"))}
    if name == "tests":
        entry["summary"] = lines[-1] if lines else ""
    elif entry["exit"] == 0:
        entry.update(json.loads(lines[-1]))
    else:
        entry["tail"] = lines[-5:]
    summary[name] = entry
summary["gpus"] = open(os.path.join(out, "nvidia-smi.txt")).read().split("\n")[:4]
print(json.dumps(summary))
PY
