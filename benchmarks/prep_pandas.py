"""The straightforward pandas preparation that ``benchmarks.prep_speed`` times.

Reads a MovieLens ``ratings.csv`` whole, runs the authors' procedure through
:func:`data_prep.notebook_reference.notebook_split` and writes the same kind
of dataset directory as the Beam pipeline: one TFRecord shard per split of
``tf.train.Example`` records (built with ``tf.train.Example`` itself), the item
vocabulary in sorted raw-id order and a small metadata file.

    python -m benchmarks.prep_pandas --raw ratings.csv --out DIR

(from the repository root; ``benchmarks`` is not an installed package)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Iterator

import numpy as np
import pandas as pd

from data_prep.notebook_reference import notebook_split
from tf_multvae import features


def _user_lists(
    users: np.ndarray, items: np.ndarray
) -> Iterator[tuple[int, np.ndarray]]:
    """Yields (user, sorted unique item indices) in ascending user order.

    Args:
        users: int64 ``[n]`` raw user ids.
        items: int64 ``[n]`` item indices.
    """
    order = np.lexsort((items, users))
    users, items = users[order], items[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    for user, chunk in zip(users[starts], np.split(items, starts[1:])):
        yield int(user), np.unique(chunk)


def _example(user: str, items=(), fold_in=(), heldout=()) -> bytes:
    """One user's record, the straightforward way (tf.train.Example)."""
    import tensorflow as tf

    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    feature = {
        features.USER_ID: tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[user.encode()])
        ),
        features.ITEMS: ints(items),
        features.FOLD_IN: ints(fold_in),
        features.HELDOUT: ints(heldout),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString()


def _shard_path(out: str, split: str) -> str:
    return os.path.join(out, features.shard_prefix(split) + "-00000-of-00001")


def run(raw: str, out: str, n_heldout_users: int = 10_000) -> dict:
    """Prepares ``raw`` into ``out`` in memory with pandas.

    Args:
        raw: a ``userId,movieId,rating,timestamp`` csv.
        out: the dataset directory to write (created if missing).
        n_heldout_users: users per held-out split.

    Returns:
        The metadata written: users and interactions per split, items and
        the seconds each phase took.
    """
    import tensorflow as tf

    times = {}
    t0 = time.perf_counter()
    df = pd.read_csv(raw, header=0)
    df = df.rename(columns={"userId": "user", "movieId": "item"})
    times["read"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    split = notebook_split(
        df, threshold=3.5, min_uc=5, min_sc=0, n_heldout_users=n_heldout_users
    )
    del df
    times["split"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    vocab = np.sort(split["items"])  # the item index is the sorted position
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, features.VOCAB_FILE), "w") as f:
        f.writelines(f"{item}\n" for item in vocab)
    counts = {}
    plays = split["train_plays"]
    with tf.io.TFRecordWriter(_shard_path(out, features.TRAIN)) as writer:
        n_users = 0
        for user, items in _user_lists(
            plays["user"].to_numpy(),
            np.searchsorted(vocab, plays["item"].to_numpy()),
        ):
            writer.write(_example(str(user), items=items))
            n_users += 1
    counts[features.TRAIN] = {"users": n_users, "interactions": len(plays)}
    for name in features.HELDOUT_SPLITS:
        parts = {}
        for key in (features.FOLD_IN, features.HELDOUT):
            frame = split[f"{name}_{key}"]
            parts[key] = dict(
                _user_lists(
                    frame["user"].to_numpy(),
                    np.searchsorted(vocab, frame["item"].to_numpy()),
                )
            )
        users = sorted(
            set(parts[features.FOLD_IN]) | set(parts[features.HELDOUT])
        )
        with tf.io.TFRecordWriter(_shard_path(out, name)) as writer:
            for user in users:
                writer.write(
                    _example(
                        str(user),
                        fold_in=parts[features.FOLD_IN].get(user, ()),
                        heldout=parts[features.HELDOUT].get(user, ()),
                    )
                )
        counts[name] = {
            "users": len(users),
            "interactions": sum(
                len(split[f"{name}_{key}"])
                for key in (features.FOLD_IN, features.HELDOUT)
            ),
        }
    times["write"] = time.perf_counter() - t0
    metadata = {
        "source": raw,
        "format_version": features.FORMAT_VERSION,
        "n_items": int(vocab.size),
        "splits": counts,
        "seconds": times,
    }
    with open(os.path.join(out, features.METADATA_FILE), "w") as f:
        json.dump(metadata, f, indent=2)
    return metadata


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.prep_pandas",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--raw", required=True, help="ratings.csv to read")
    parser.add_argument("--out", required=True, help="directory to write")
    parser.add_argument("--heldout-users", type=int, default=10_000)
    args = parser.parse_args(argv)
    metadata = run(args.raw, args.out, args.heldout_users)
    print(json.dumps(metadata), file=sys.stderr)
    return metadata


if __name__ == "__main__":
    main()
