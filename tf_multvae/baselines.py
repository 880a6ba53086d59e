"""``python -m tf_multvae.baselines``: popularity and EASE, same protocol.

    python -m tf_multvae.baselines --model ease --data-dir data/ml-1m \\
        --run-dir runs/ml-1m-ease [--l2 500]

Both read the training users of a prepared dataset through the same data
pipeline as the models, are scored by the same code
(``evaluation.per_user_metrics``: fold-in items masked, Recall@20/50,
NDCG@100) and write a run directory like ``tf_multvae.train``'s
(config.json, metrics.json) plus the test users' per-user file, so the
report commands (evaluate, compare) take them like any run.

* popularity: every user gets the items ranked by their number of
  training users.
* EASE (Steck, WWW 2019), λ = ``--l2``: see ``tf_multvae.ease``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import tensorflow as tf

from tf_multvae import data
from tf_multvae import ease
from tf_multvae import evaluation
from tf_multvae import features
from tf_multvae import runs

KINDS = ("popularity", "ease")
DEFAULT_L2 = 500.0  # λ of EASE, Steck's value for ML-20M and Netflix


def train_matrix(data_dir: str) -> tf.SparseTensor:
    """The training users' clicks X, read with ``data.train_dataset``.

    Returns:
        float32 ``tf.SparseTensor`` ``[n_train_users, n_items]``, 1 at each
        click, in canonical (row-major) order.
    """
    n_items = data.load_info(data_dir).n_items
    rows, columns, offset = [], [], 0
    for batch in data.train_dataset(data_dir, 4096, seed=0, shuffle=False):
        ids = batch.numpy()  # [batch, max_len], -1 padded, sorted rows
        r, c = np.nonzero(ids != features.PAD)
        rows.append(r + offset)
        columns.append(ids[r, c])
        offset += ids.shape[0]
    indices = np.stack(
        [np.concatenate(rows), np.concatenate(columns)], axis=1
    ).astype(np.int64)  # [n_clicks, 2]
    return tf.SparseTensor(
        indices, tf.ones([len(indices)], tf.float32), [offset, n_items]
    )


class Popularity:
    """Scores every item by its training users, the same for every user.

    Args:
        counts: float32 ``[n_items]``, users who clicked each item.
    """

    def __init__(self, counts):
        self.counts = tf.convert_to_tensor(counts, tf.float32)

    def score(self, item_ids: tf.Tensor) -> tf.Tensor:
        """float32 ``[batch, n_items]``: the counts, for each user."""
        batch = tf.shape(item_ids)[0]
        return tf.broadcast_to(self.counts[None, :], [batch, len(self.counts)])


def fit(model_config: dict, data_dir: str, available_bytes: int | None = -1):
    """The baseline of ``model_config`` (config.json's "model") on data_dir.

    Args:
        model_config: ``{"kind": "popularity"}`` or ``{"kind": "ease",
            "l2": λ}``.
        data_dir: a prepared dataset directory.
        available_bytes: EASE's memory budget (see ``ease.ease_weights``).

    Returns:
        A :class:`Popularity` or an ``ease.EASE`` (with ``.residual``).

    Raises:
        ValueError: unknown kind.
        MemoryError: EASE would not fit, found before reading the data.
    """
    kind = model_config["kind"]
    if kind not in KINDS:
        raise ValueError(f"--model must be one of {KINDS}, not {kind!r}")
    if kind == "ease":
        info = data.load_info(data_dir)
        train = info.metadata["splits"][features.TRAIN]
        ease.check_memory(
            info.n_items, int(train["interactions"]), available_bytes
        )
    x = train_matrix(data_dir)
    if kind == "popularity":
        return Popularity(tf.sparse.reduce_sum(x, axis=0))
    weights, residual = ease.ease_weights(x, model_config["l2"], None)
    model = ease.EASE(weights)
    model.residual = residual
    return model


def run(
    kind: str,
    data_dir: str,
    run_dir: str,
    l2: float = DEFAULT_L2,
    batch_size: int = 500,
    overwrite: bool = False,
) -> dict:
    """Fits a baseline, evaluates it on both held-out splits, writes run_dir.

    Returns:
        The contents of metrics.json: ``test`` as ``tf_multvae.train``
        writes it, ``validation`` with one value per metric (one "epoch"),
        and the fit's seconds (and EASE's solve residual).

    Raises:
        FileNotFoundError, ValueError: bad data directory or arguments, or
            a run directory holding another run (without ``overwrite``).
        MemoryError, FloatingPointError: see :func:`ease_weights`.
    """
    if kind not in KINDS:
        raise ValueError(f"--model must be one of {KINDS}, not {kind!r}")
    if kind == "ease" and not l2 > 0:
        raise ValueError(f"--l2 must be > 0, got {l2}")
    info = data.load_info(data_dir)
    model_config = {"kind": kind}
    if kind == "ease":
        model_config["l2"] = float(l2)
    config = {
        "dataset": info.metadata.get("source", {}).get("dataset"),
        "model": model_config,
        "data_dir": os.path.abspath(data_dir),
        "n_items": info.n_items,
    }
    path = os.path.join(run_dir, runs.CONFIG)
    if os.path.exists(path) and not overwrite:
        with open(path) as f:
            if json.load(f) != config:
                raise ValueError(
                    f"--run-dir {run_dir} holds another run; pass "
                    "--overwrite or choose another --run-dir"
                )
    started = time.time()
    model = fit(model_config, data_dir)
    seconds = time.time() - started
    per_user = evaluation.per_user_metrics(model, data_dir, "test", batch_size)
    validation = evaluation.evaluate(model, data_dir, "validation", batch_size)
    result = {
        "test": evaluation.summarize(per_user),
        "validation": {
            name: [value["mean"]]
            for name, value in validation.items()
            if isinstance(value, dict)
        },
        "best_epoch": None,
        "fit_seconds": round(seconds, 2),
    }
    if kind == "ease":
        result["residual"] = model.residual
    os.makedirs(run_dir, exist_ok=True)
    for name, value in ((runs.CONFIG, config), (runs.METRICS, result)):
        runs.write_json(os.path.join(run_dir, name), value)
    runs.write_per_user(
        runs.per_user_path(run_dir, "test"), per_user, evaluation.METRIC_NAMES
    )
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tf_multvae.baselines",
        description="Popularity and EASE under the paper's protocol.",
    )
    p.add_argument("--model", required=True, choices=KINDS)
    p.add_argument("--data-dir", required=True, help="prepared dataset")
    p.add_argument("--run-dir", required=True, help="output directory")
    p.add_argument(
        "--l2", type=float, default=DEFAULT_L2, help="EASE's λ (500)"
    )
    p.add_argument("--batch-size", type=int, default=500,
                   help="users scored at once")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        result = run(
            args.model, args.data_dir, args.run_dir, args.l2,
            args.batch_size, args.overwrite,
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (MemoryError, FloatingPointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        evaluation.format_table(
            result["test"],
            f"{args.model} on {args.data_dir}, test users "
            f"(fit {result['fit_seconds']:.1f} s)",
        )
    )
    print(f"run directory: {os.path.abspath(args.run_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
