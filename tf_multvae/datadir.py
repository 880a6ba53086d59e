"""A prepared dataset directory: checking it, and the facts it holds.

``python -m data_prep`` writes the directory (docs/design.md, "The
prepared-dataset contract"); everything that reads one calls
:func:`load_info` first, which checks that it is complete and of the
format version this package reads, and names what is wrong otherwise.
The vocabulary file is read by :func:`read_vocabulary` alone.

Files are read through ``tf.io.gfile``, so ``gs://`` and other file systems
TensorFlow knows work as well as local paths.
"""

from __future__ import annotations

import json
import os
import re
from typing import NamedTuple

import tensorflow as tf

from tf_multvae import features

_PREPARE_HINT = "prepare one with python -m data_prep --dataset NAME --out DIR"
_SHARD_COUNT = re.compile(r"-(\d{5})-of-(\d{5})$")


class DatasetInfo(NamedTuple):
    """What :func:`load_info` found in a prepared dataset directory."""

    n_items: int  # I, the item vocabulary size (model input/output width)
    metadata: dict  # metadata.json as written by data_prep
    directory: str  # the dataset directory, as given

    @property
    def protocol(self) -> str:
        """The evaluation protocol, one of ``features.PROTOCOLS``."""
        return self.metadata.get(
            features.PROTOCOL_KEY, features.STRONG_GENERALIZATION
        )


def _not_prepared(data_dir: str, why: str) -> ValueError:
    return ValueError(f"{data_dir} is not a prepared dataset: {why}")


def shard_files(data_dir: str, split: str) -> list[str]:
    """The shard files of ``split``, sorted; all of them, or ValueError."""
    pattern = tf.io.gfile.join(data_dir, features.shard_pattern(split))
    files = sorted(
        f for f in tf.io.gfile.glob(pattern) if _SHARD_COUNT.search(f)
    )
    if not files:
        raise _not_prepared(
            data_dir, f"no {split} shards ({features.shard_pattern(split)})"
        )
    counts = {int(_SHARD_COUNT.search(f).group(2)) for f in files}
    expected = {
        features.shard_name(split, i, n) for n in counts for i in range(n)
    }
    missing = sorted(expected - {os.path.basename(f) for f in files})
    if len(counts) > 1 or missing:
        raise _not_prepared(
            data_dir,
            f"the {split} shards are incomplete (missing: "
            f"{', '.join(missing) or 'shards of different counts'})",
        )
    return files


def load_info(data_dir: str) -> DatasetInfo:
    """Checks that ``data_dir`` is a prepared dataset and reads its metadata.

    Args:
        data_dir: a directory written by ``python -m data_prep``.

    Returns:
        The dataset's :class:`DatasetInfo`.

    Raises:
        FileNotFoundError: ``data_dir`` does not exist.
        ValueError: it is not a complete prepared dataset of the supported
            ``features.READABLE_FORMAT_VERSIONS``; the message names the
            directory and what is wrong.
    """
    data_dir = os.fspath(data_dir)
    if not tf.io.gfile.exists(data_dir):
        raise FileNotFoundError(f"--data-dir {data_dir} does not exist")
    if not tf.io.gfile.isdir(data_dir):
        raise _not_prepared(data_dir, "it is not a directory")
    path = tf.io.gfile.join(data_dir, features.METADATA_FILE)
    if not tf.io.gfile.exists(path):
        raise _not_prepared(
            data_dir, f"no {features.METADATA_FILE} ({_PREPARE_HINT})"
        )
    with tf.io.gfile.GFile(path, "r") as f:
        try:
            metadata = json.load(f)
        except json.JSONDecodeError as err:
            raise _not_prepared(
                data_dir, f"{features.METADATA_FILE} is not JSON ({err})"
            ) from None
    version = metadata.get("format_version")
    if version not in features.READABLE_FORMAT_VERSIONS:
        readable = " or ".join(map(str, features.READABLE_FORMAT_VERSIONS))
        raise ValueError(
            f"{data_dir} has format_version {version!r} but this tf_multvae "
            f"reads format_version {readable}; prepare it again with "
            "python -m data_prep"
        )
    protocol = metadata.get(features.PROTOCOL_KEY)
    if protocol is not None and protocol not in features.PROTOCOLS:
        raise _not_prepared(
            data_dir,
            f"{features.METADATA_FILE} has protocol {protocol!r}, not one "
            f"of {', '.join(features.PROTOCOLS)}",
        )
    n_items = metadata.get("n_items")
    if not isinstance(n_items, int) or n_items < 1:
        raise _not_prepared(
            data_dir, f"{features.METADATA_FILE} has n_items {n_items!r}"
        )
    vocab = tf.io.gfile.join(data_dir, features.VOCAB_FILE)
    if not tf.io.gfile.exists(vocab):
        raise _not_prepared(data_dir, f"no {features.VOCAB_FILE}")
    try:
        n_lines = len(read_vocabulary(vocab))
    except ValueError as err:
        raise _not_prepared(data_dir, str(err)) from None
    if n_lines != n_items:
        raise _not_prepared(
            data_dir,
            f"{features.VOCAB_FILE} has {n_lines} items but "
            f"{features.METADATA_FILE} says n_items {n_items}",
        )
    for split in features.SPLITS:
        if "users" not in metadata.get("splits", {}).get(split, {}):
            raise _not_prepared(
                data_dir,
                f"{features.METADATA_FILE} has no user count for {split}",
            )
        shard_files(data_dir, split)
    return DatasetInfo(n_items=n_items, metadata=metadata, directory=data_dir)


def read_vocabulary(path: str) -> list[str]:
    """The raw item ids of an ``items.txt``, line number = item index.

    Args:
        path: the file (any file system TensorFlow knows).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a valid vocabulary (``features.parse_vocabulary``).
    """
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"no item vocabulary at {path}")
    with tf.io.gfile.GFile(path, "rb") as f:
        return features.parse_vocabulary(f.read(), path)


def count_users(data_dir: str, split: str) -> int:
    """Users (records) in ``split`` of a prepared dataset, from metadata."""
    if split not in features.SPLITS:
        raise ValueError(
            f"split must be one of {features.SPLITS}, not {split!r}"
        )
    return int(load_info(data_dir).metadata["splits"][split]["users"])
