"""``python -m benchmarks.memory``: peak memory of training and evaluation.

    python -m benchmarks.memory --shape msd [--data-dir DIR]

Two figures, each the peak resident set of its own fresh child process
(``python -m benchmarks.memory --phase train|eval``), so that neither
phase's peak hides the other's and neither includes the parent's own
imports:

- ``train_peak_rss_mb``: Mult-VAE^PR (600-200-600) trained with
  ``model.fit`` for ``--steps`` updates of ``--batch-size`` synthetic users
  with the shape's items and clicks per user (the users of
  ``benchmarks.train_speed``), past the first steps' tracing and the
  optimizer's slots, so the figure is the steady state's;
- ``eval_peak_rss_mb``: the same model, untrained (memory does not depend
  on the weights), through ``tf_multvae.reports.evaluation.
  per_user_metrics`` on the test split of a dataset prepared by
  ``python -m data_prep --dataset synthetic`` with ``--eval-users`` users
  in it (50,000 at MSD shape, as the paper holds out), the whole split
  read from its TFRecords ``--batch-size`` users at a time, as
  ``python -m tf_multvae.reports.evaluate`` does.

Each child reports its own ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
(Linux: the process's peak RSS, which includes the Python and TensorFlow
runtime) in its last line's JSON, with ``setup_rss_mb``, the same reading
taken after the imports and the model's construction, before the phase's
work. The parent prints the machine, both peaks and how long the dataset's
preparation took (``prep_seconds``; null with a ``--data-dir`` that was
already prepared, which is then reused as it is).

The generator leaves the rarest items without a training click, and
preparation drops them; it is asked for a few more items than the shape's
(:data:`ITEM_SURPLUS`) so that about the shape's count remain. Clicks per
user are asked for a little below the shape's, since preparation drops
users with fewer than 5 clicks and so raises the mean.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from benchmarks.common import padded_users
from benchmarks.common import print_figures
from benchmarks.train_speed import SHAPES

HIDDEN, LATENT = 600, 200
# Items asked of the generator per item wanted (fitted at MSD shape with
# TRAIN_USERS training users: 41,881 asked gave 41,156).
ITEM_SURPLUS = 1.018
CLICK_SHORTFALL = 0.966  # clicks asked of it per click wanted
TRAIN_USERS = 60_000  # training users of the prepared data at MSD shape
KEPT_USERS = 0.95  # share of generated users with at least 5 clicks


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _model(n_items: int):
    from tf_multvae.model import build_model

    return build_model(
        "vae", n_items, hidden_dims=(HIDDEN,), latent_dim=LATENT, seed=0
    )


def train_phase(n_items: int, clicks: float, steps: int, batch: int) -> dict:
    """Peak RSS of ``steps`` updates of ``model.fit`` at the shape."""
    import keras
    import tensorflow as tf

    from tf_multvae.model import compile_model

    users = padded_users(batch * 4, n_items, clicks, seed=0)
    train = tf.data.Dataset.from_tensor_slices(users).batch(batch).repeat()
    keras.utils.set_random_seed(0)
    model = _model(n_items)
    compile_model(model)
    setup = _peak_mb()
    start = time.perf_counter()
    model.fit(train, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return {
        "phase": "train",
        "n_items": n_items,
        "steps": steps,
        "seconds": round(time.perf_counter() - start, 1),
        "setup_rss_mb": setup,
        "peak_rss_mb": _peak_mb(),
    }


def eval_phase(data_dir: str, batch: int) -> dict:
    """Peak RSS of ``per_user_metrics`` over the test split of data_dir."""
    from tf_multvae import datadir
    from tf_multvae.reports.evaluation import per_user_metrics

    info = datadir.load_info(data_dir)
    model = _model(info.n_items)
    setup = _peak_mb()
    start = time.perf_counter()
    per_user = per_user_metrics(model, data_dir, "test", batch)
    return {
        "phase": "eval",
        "n_items": info.n_items,
        "users": int(per_user["user_id"].size),
        "users_scored": int(per_user["scored"].sum()),
        "seconds": round(time.perf_counter() - start, 1),
        "setup_rss_mb": setup,
        "peak_rss_mb": _peak_mb(),
    }


def prepare(out: str, n_items: int, clicks: float, users: int, train: int):
    """``python -m data_prep --dataset synthetic`` with ``users`` held out
    in each of validation and test; returns its seconds."""
    wanted = 2 * users + train
    command = [
        sys.executable,
        "-m",
        "data_prep",
        "--dataset=synthetic",
        f"--synthetic-users={int(wanted / KEPT_USERS) + 50}",
        f"--synthetic-items={round(n_items * ITEM_SURPLUS)}",
        f"--synthetic-clicks-per-user={clicks * CLICK_SHORTFALL:.2f}",
        "--threshold=none",  # every generated row is a click
        f"--heldout-users={users}",
        f"--out={out}",
    ]
    print("preparing:", " ".join(command[1:]), flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"data_prep failed ({done.returncode})")
    return round(time.perf_counter() - start, 1)


def _child(args: list[str]) -> dict:
    """Runs one phase in a fresh process; its last line's JSON."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", *args],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"the {args[0]} child failed ({out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _dataset_figures(data_dir: str) -> dict:
    with open(os.path.join(data_dir, "metadata.json")) as f:
        meta = json.load(f)
    test = meta["splits"]["test"]
    return {
        "data_n_items": meta["n_items"],
        "data_test_users": test["users"],
        "data_test_clicks_per_user": round(
            test["interactions"] / test["users"], 1
        ),
        "data_clicks_per_user": round(meta["interactions"] / meta["users"], 1),
    }


def run(args) -> dict:
    n_items, clicks = SHAPES[args.shape]
    n_items = args.items or n_items
    clicks = args.clicks or clicks
    train_users = args.train_users or TRAIN_USERS
    scratch = None
    data_dir = args.data_dir
    prep_seconds = None
    if data_dir is None:
        scratch = tempfile.mkdtemp(prefix="memory-benchmark-")
        data_dir = os.path.join(scratch, "data")
    try:
        if not os.path.exists(os.path.join(data_dir, "metadata.json")):
            prep_seconds = prepare(
                data_dir, n_items, clicks, args.eval_users, train_users
            )
        dataset = _dataset_figures(data_dir)
        common = [f"--batch-size={args.batch_size}"]
        train = _child(
            [
                "--phase=train",
                f"--items={n_items}",
                f"--clicks={clicks}",
                f"--steps={args.steps}",
                *common,
            ]
        )
        evaluation = _child(["--phase=eval", f"--data-dir={data_dir}", *common])
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return {
        "shape": "custom" if args.items or args.clicks else args.shape,
        "n_items": n_items,
        "clicks_per_user": clicks,
        "batch": args.batch_size,
        "model": f"{HIDDEN}-{LATENT}-{HIDDEN}",
        "train_steps": train["steps"],
        "train_seconds": train["seconds"],
        "train_setup_rss_mb": train["setup_rss_mb"],
        "train_peak_rss_mb": train["peak_rss_mb"],
        "data_dir": args.data_dir,
        "prep_seconds": prep_seconds,
        **dataset,
        "eval_users": evaluation["users"],
        "eval_n_items": evaluation["n_items"],
        "eval_seconds": evaluation["seconds"],
        "eval_setup_rss_mb": evaluation["setup_rss_mb"],
        "eval_peak_rss_mb": evaluation["peak_rss_mb"],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.memory")
    p.add_argument("--shape", choices=sorted(SHAPES), default="msd")
    p.add_argument("--items", type=int, help="instead of the shape's")
    p.add_argument("--clicks", type=float, help="per user, ditto")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--eval-users", type=int, default=50_000)
    p.add_argument(
        "--train-users",
        type=int,
        help=f"training users of the prepared data (default {TRAIN_USERS})",
    )
    p.add_argument(
        "--data-dir",
        help="a prepared dataset to evaluate (kept); prepared here first "
        "if it has no metadata.json (default: a temporary one)",
    )
    p.add_argument("--phase", choices=("train", "eval"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.phase == "train":
        result = train_phase(
            args.items, args.clicks, args.steps, args.batch_size
        )
    elif args.phase == "eval":
        result = eval_phase(args.data_dir, args.batch_size)
    else:
        result = run(args)
        print_figures(result)
        return 0
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
