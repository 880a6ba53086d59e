"""What the report tests share: one small prepared dataset, tiny runs, and
independent numpy references (records read without tf_multvae.data,
metrics by loops).

Preparing data and training cost seconds, so each is made once per test
session (the cache is keyed by pytest's session temporary directory) and
shared by test_evaluate, test_baselines, test_compare, test_plots and
test_table4.
"""

from __future__ import annotations

import glob
import math
import os

import numpy as np
import tensorflow as tf
from conftest import IN_PROCESS

from data_prep import pipeline
from tf_multvae import features

TINY = [
    "--hidden-dims", "16", "--latent-dim", "8", "--batch-size", "100",
    "--total-anneal-steps", "20", "--log-every", "1",
]
_CACHE: dict = {}


def _cached(tmp_path_factory, key, make):
    base = str(tmp_path_factory.getbasetemp())
    if (base, key) not in _CACHE:
        _CACHE[base, key] = make(tmp_path_factory.mktemp(key))
    return _CACHE[base, key]


def dataset(tmp_path_factory) -> str:
    """A synthetic prepared dataset: 600 users, ~200 items, 60 test users."""

    def make(directory):
        out = directory / "synthetic"
        code = pipeline.main(
            ["--dataset", "synthetic", "--synthetic-users", "600",
             "--synthetic-items", "200", "--out", str(out), *IN_PROCESS]
        )
        assert code == 0
        return str(out)

    return _cached(tmp_path_factory, "report-data", make)


def trained_run(tmp_path_factory, model: str) -> str:
    """A 2-epoch tiny Mult-VAE^PR ("vae") or Mult-DAE ("dae") run."""
    from tf_multvae import train

    data_dir = dataset(tmp_path_factory)

    def make(directory):
        run_dir = str(directory / model)
        code = train.main(
            ["--dataset", "synthetic", "--model", model, "--data-dir",
             data_dir, "--run-dir", run_dir, "--epochs", "2", *TINY]
        )
        assert code == 0
        return run_dir

    return _cached(tmp_path_factory, f"report-{model}", make)


def baseline_run(tmp_path_factory, kind: str) -> str:
    """A popularity or EASE (λ = 50) run on the shared dataset."""
    from tf_multvae.baselines import command

    data_dir = dataset(tmp_path_factory)

    def make(directory):
        run_dir = str(directory / kind)
        command.run(kind, data_dir, run_dir, l2=50.0)
        return run_dir

    return _cached(tmp_path_factory, f"report-{kind}", make)


def read_split(data_dir: str, split: str) -> list[dict]:
    """Every record of a split, in file order, parsed with tf.train.Example.

    Returns:
        ``[{"user_id": str, "items": [...], "fold_in": [...],
        "heldout": [...]}]`` with item indices.
    """
    out = []
    pattern = os.path.join(data_dir, features.shard_pattern(split))
    for path in sorted(glob.glob(pattern)):
        for record in tf.data.TFRecordDataset(path):
            example = tf.train.Example.FromString(record.numpy())
            feature = example.features.feature
            row = {
                features.USER_ID: feature[features.USER_ID]
                .bytes_list.value[0].decode()
            }
            for key in features.ITEM_KEYS:
                row[key] = list(feature[key].int64_list.value)
            out.append(row)
    return out


def click_matrix(rows: list[dict], key: str, n_items: int) -> np.ndarray:
    """float64 ``[len(rows), n_items]``: 1 at each item of ``key``."""
    x = np.zeros((len(rows), n_items))
    for u, row in enumerate(rows):
        x[u, row[key]] = 1.0
    return x


def ranking(scores: np.ndarray, fold_in: list[int]) -> np.ndarray:
    """Items best first, fold-in items last; ties: lower index first."""
    masked = np.asarray(scores, np.float64).copy()
    masked[fold_in] = -np.inf
    return np.argsort(-masked, kind="stable")


def recall(ranked: np.ndarray, heldout: list[int], k: int) -> float:
    hits = sum(1 for item in ranked[:k] if item in set(heldout))
    return hits / min(k, len(heldout))


def ndcg(ranked: np.ndarray, heldout: list[int], k: int) -> float:
    targets = set(heldout)
    dcg = sum(
        1.0 / math.log2(r + 2) for r, item in enumerate(ranked[:k])
        if item in targets
    )
    idcg = sum(1.0 / math.log2(r + 2) for r in range(min(k, len(heldout))))
    return dcg / idcg
