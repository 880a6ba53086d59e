"""A prepared dataset directory: checking it, and the facts it holds.

``python -m data_prep`` writes the directory (docs/design.md, "The
prepared-dataset contract"); everything that reads one calls
:func:`load_info` first, which checks that it is complete and of the
format version this package reads, that its shards are those
metadata.json describes, and names what is wrong otherwise (see
:func:`check_shards` for what is checked and what it costs). A record
that turns out corrupt while tf.data reads it is reported by
:func:`reading`; :func:`fingerprint` identifies one preparation of a
dataset, which a run directory records.
The vocabulary file is read by :func:`read_vocabulary` alone.
(A module longer than 300 lines: every check of the directory stays in
the one place every reader passes through.)

Files are read through ``tf.io.gfile``, so ``gs://`` and other file systems
TensorFlow knows work as well as local paths.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from typing import NamedTuple

import tensorflow as tf

from tf_multvae import features
from tf_multvae import records

_PREPARE_HINT = "prepare one with python -m data_prep --dataset NAME --out DIR"
_SHARD_COUNT = re.compile(r"-(\d{5})-of-(\d{5})$")
# metadata.json's listing of every split's shards: {split: [{"name",
# "bytes", "records"}, ...]} (data_prep.output.build_metadata writes it;
# datasets prepared before it have none).
# A split's shards are counted record by record (their TFRecord length
# headers) only up to this many bytes in all: at most some 700,000
# records, well under a second, once per process.
COUNT_LIMIT_BYTES = 64 << 20
_counted: dict[tuple, int] = {}  # (path, bytes, mtime) -> records
_REPREPARE = "prepare it again with python -m data_prep"
# What a tf.data error message says besides the problem.
_TF_NOISE = re.compile(r"\{\{[^}]*\}\}|\s*\[Op:.*$")


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


def _changed(data_dir: str, why: str) -> ValueError:
    return ValueError(
        f"{data_dir} is not the dataset its {features.METADATA_FILE} "
        f"describes: {why}; {_REPREPARE}"
    )


def _globbed(data_dir: str, split: str) -> list[str]:
    pattern = tf.io.gfile.join(data_dir, features.shard_pattern(split))
    return sorted(
        f for f in tf.io.gfile.glob(pattern) if _SHARD_COUNT.search(f)
    )


def shard_files(data_dir: str, split: str) -> list[str]:
    """The shard files of ``split``, sorted; all of them, or ValueError."""
    files = _globbed(data_dir, split)
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
        if not _globbed(data_dir, split):
            shard_files(data_dir, split)  # names what is missing
    for split in features.SPLITS:
        check_shards(data_dir, split, metadata)
    return DatasetInfo(n_items=n_items, metadata=metadata, directory=data_dir)


def _count(path: str, size: int, mtime: int) -> int:
    """Records of a shard, from its length headers; once per version."""
    key = (path, size, mtime)
    if key not in _counted:
        opener = open if "://" not in path else tf.io.gfile.GFile
        with opener(path, "rb") as f:
            try:
                _counted[key] = records.count_tfrecords(f)
            except ValueError as err:  # a truncated header
                raise _changed(
                    os.path.dirname(path),
                    f"shard {os.path.basename(path)} is truncated ({err})",
                ) from None
    return _counted[key]


def check_shards(data_dir: str, split: str, metadata: dict) -> list[str]:
    """Checks that ``split``'s shards are those metadata.json describes.

    What is checked, on every :func:`load_info`:

    - the shard names: no shard missing, none extra (against metadata.json's
      listing of the shards; for a dataset prepared before the listing,
      against the shard count the names and ``splits.SPLIT.shards`` give);
    - each shard's size in bytes against the listing, by one stat per
      shard (a shard emptied or truncated since data prep);
    - the listing's record counts against the split's user count;
    - the records in the files themselves, counted from their length
      headers (one seek per record), only where that is cheap: when the
      split's shards hold at most :data:`COUNT_LIMIT_BYTES` in all, once
      per process and version of each file.

    For a 10M-user dataset that is a glob and one stat per shard: the
    sizes stand in for the record counts (a shard of the size data prep
    wrote holds its records unless bytes inside changed, which the records'
    checksums catch as they are read: :func:`reading`).

    Returns:
        The split's shard files, sorted.

    Raises:
        ValueError: naming the shard and what differs.
    """
    listing = (metadata.get(features.SHARD_LISTING) or {}).get(split)
    if listing is not None and not all(
        isinstance(e, dict)
        and isinstance(e.get("name"), str)
        and all(isinstance(e.get(k), int) for k in ("bytes", "records"))
        for e in listing
    ):
        raise _not_prepared(
            data_dir,
            f"{features.METADATA_FILE}'s {features.SHARD_LISTING} for "
            f"{split} is not a list of name, bytes and records",
        )
    files = shard_files(data_dir, split) if listing is None else None
    files = files or _globbed(data_dir, split)
    names = {os.path.basename(f): f for f in files}
    about = metadata["splits"][split]
    stats = {name: tf.io.gfile.stat(path) for name, path in names.items()}
    if listing is None:
        listed = {}
        if "shards" in about and about["shards"] != len(files):
            raise _changed(
                data_dir,
                f"it has {len(files)} {split} shards, "
                f"{features.METADATA_FILE} says {about['shards']}",
            )
    else:
        listed = {entry["name"]: entry for entry in listing}
        missing = sorted(set(listed) - set(names))
        extra = sorted(set(names) - set(listed))
        if missing:
            raise _changed(
                data_dir,
                f"the {split} shards are incomplete: shard {missing[0]} "
                "is missing",
            )
        if extra:
            raise _changed(
                data_dir, f"shard {extra[0]} is not one it lists for {split}"
            )
        for name, entry in sorted(listed.items()):
            if stats[name].length != entry["bytes"]:
                raise _changed(
                    data_dir,
                    f"shard {name} has {stats[name].length} bytes, "
                    f"{features.METADATA_FILE} says {entry['bytes']}",
                )
        total = sum(entry["records"] for entry in listing)
        if total != about["users"]:
            raise _changed(
                data_dir,
                f"{features.METADATA_FILE} says {split} has "
                f"{about['users']} users but lists {total} records in the "
                f"shards {features.shard_pattern(split)}",
            )
    if sum(st.length for st in stats.values()) > COUNT_LIMIT_BYTES:
        return files
    total = 0
    for name, path in sorted(names.items()):
        n = _count(path, stats[name].length, stats[name].mtime_nsec)
        want = listed.get(name, {}).get("records", n)
        if n != want:
            raise _changed(
                data_dir,
                f"shard {name} holds {n} records, "
                f"{features.METADATA_FILE} says {want}",
            )
        total += n
    if total != about["users"]:
        raise _changed(
            data_dir,
            f"the shards {features.shard_pattern(split)} hold {total} "
            f"records but {features.METADATA_FILE} says {split} has "
            f"{about['users']} users",
        )
    return files


class CorruptShard(ValueError):
    """A shard's record failed its checksum (or ended early) as read."""


def _corrupt_shard(data_dir: str) -> str | None:
    """The first shard of ``data_dir`` whose records do not all read."""
    for split in features.SPLITS:
        for path in shard_files(data_dir, split):
            try:
                tf.data.TFRecordDataset(path).reduce(0, lambda n, _: n + 1)
            except tf.errors.DataLossError:
                return path
    return None


@contextlib.contextmanager
def reading(data_dir: str):
    """Turns a corrupt record met inside tf.data into :class:`CorruptShard`.

    TensorFlow reports a checksum mismatch or a truncated record (a
    ``tf.errors.DataLossError``) without the file; the shards are then
    read one by one to name it (the split's shards if none fails again).
    Wrap whatever iterates the datasets of ``data.py`` on ``data_dir``.
    """
    try:
        yield
    except tf.errors.DataLossError as err:
        why = str(err.message).strip().splitlines()[0]
        why = _TF_NOISE.sub("", why).strip() or "a data loss"
        path = _corrupt_shard(data_dir)
        where = (
            f"shard {os.path.basename(path)} is corrupt or truncated"
            if path
            else "one of its shards is corrupt or truncated"
        )
        raise CorruptShard(
            f"{data_dir}: {where} (TensorFlow: {why}); {_REPREPARE}"
        ) from None


def fingerprint(data_dir: str) -> str:
    """What identifies one preparation of ``data_dir``: a sha256 (hex).

    Over metadata.json's bytes (which hold the creation time and every
    count) and items.txt's size and bytes; a copy of the directory has the
    same fingerprint, a dataset prepared again another. Reads two small
    files.
    """
    digest = hashlib.sha256()
    for name in (features.METADATA_FILE, features.VOCAB_FILE):
        path = tf.io.gfile.join(data_dir, name)
        if not tf.io.gfile.exists(path):
            raise _not_prepared(data_dir, f"no {name}")
        with tf.io.gfile.GFile(path, "rb") as f:
            data = f.read()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


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
