"""``python -m benchmarks.serving_agreement``: how a bfloat16 export ranks
against the float32 one.

    python -m benchmarks.serving_agreement --run-dir RUN [--data-dir DIR]
        [--split test] [--top-k 100]

Builds the serving graph of a training run's best model twice, with the
output layer in float32 (the default export) and in bfloat16 (``export
--output-dtype bfloat16``), runs the ``by_index`` signature of both on the
users of ``--split`` (their fold-in items in, the top-k out, input items
excluded) and prints:

- ``top_k_overlap``: the mean share of each user's float32 top-k that the
  bfloat16 top-k also holds (``top_k_overlap_min``: the lowest user's);
- ``ndcg_fp32`` / ``ndcg_bf16``: NDCG@k of both rankings against the
  users' held-out items (``tf_multvae.metrics.ndcg_at_k``, the paper's
  definition), mean and standard error over the users with held-out items,
  and their difference;
- ``meets_targets``: overlap >= 0.99 and |NDCG difference| <= 0.001, the
  bar a bfloat16 export must clear before it could be the default.

The last line is one JSON object with the CPU (the figures do not depend
on it, up to the rounding of the CPU's bfloat16 matmul).
"""

from __future__ import annotations

import argparse
import os
import sys

from benchmarks.common import print_figures

OVERLAP_TARGET, NDCG_TOLERANCE = 0.99, 0.001


def run(run_dir: str, data_dir: str | None, split: str, k: int) -> dict:
    import numpy as np

    from tf_multvae import data
    from tf_multvae import features
    from tf_multvae import metrics
    from tf_multvae.serving import export
    from tf_multvae.serving import signatures

    model, vocab = export.load_run(run_dir, data_dir)
    data_dir = os.path.dirname(vocab)  # the dataset's items.txt
    modules = {
        dtype: signatures.ServingModule(model, vocab, k, dtype)
        for dtype in signatures.OUTPUT_DTYPES
    }
    overlap, ndcg = [], {dtype: [] for dtype in modules}
    for batch in data.eval_dataset(data_dir, split, 500):
        fold_in = batch[features.FOLD_IN]
        heldout = batch[features.HELDOUT]
        scored = metrics.has_heldout(heldout).numpy()
        tops = {}
        for dtype, module in modules.items():
            top = module.recommend_indices(fold_in)[signatures.ITEM_INDICES]
            tops[dtype] = top.numpy()
            per_user = metrics.ndcg_at_k(top, heldout, k).numpy()
            ndcg[dtype].append(per_user[scored])
        for full, half in zip(tops["float32"], tops["bfloat16"]):
            real = full[full >= 0]
            overlap.append(len(np.intersect1d(real, half)) / max(len(real), 1))
    means = {}
    for dtype, parts in ndcg.items():
        values = np.concatenate(parts)
        means[dtype] = metrics.mean_and_stderr(values)
    difference = means["bfloat16"][0] - means["float32"][0]
    overlap = np.asarray(overlap)
    return {
        "run_dir": run_dir,
        "split": split,
        "users": int(overlap.size),
        "scored_users": int(sum(len(p) for p in ndcg["float32"])),
        "k": k,
        "top_k_overlap": round(float(overlap.mean()), 5),
        "top_k_overlap_min": round(float(overlap.min()), 3),
        "ndcg_fp32": round(means["float32"][0], 5),
        "ndcg_fp32_stderr": round(means["float32"][1], 5),
        "ndcg_bf16": round(means["bfloat16"][0], 5),
        "ndcg_bf16_stderr": round(means["bfloat16"][1], 5),
        "ndcg_difference": round(difference, 5),
        "meets_targets": bool(
            overlap.mean() >= OVERLAP_TARGET
            and abs(difference) <= NDCG_TOLERANCE
        ),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.serving_agreement")
    p.add_argument("--run-dir", required=True, help="a training run")
    p.add_argument("--data-dir", help="default: the run's config.json's")
    p.add_argument("--split", choices=("test", "validation"), default="test")
    p.add_argument("--top-k", type=int, default=100)
    args = p.parse_args(argv)
    if args.top_k < 1:
        p.error("--top-k must be >= 1")
    print_figures(run(args.run_dir, args.data_dir, args.split, args.top_k))
    return 0


if __name__ == "__main__":
    sys.exit(main())
