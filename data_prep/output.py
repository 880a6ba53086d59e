"""Finishing a prepared dataset: metadata.json, TFDS metadata, atomic swap.

The pipeline writes shards and items.txt into a staging directory next to
``--out``; this module adds the metadata and renames the staging directory
into place, so a failed run never leaves a half dataset behind
(docs/design.md, "The prepared-dataset contract").
(A module longer than 300 lines: the steps that finish a dataset, in the
order they run.)
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
import uuid

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from data_prep import counters as names
from data_prep.errors import DataPrepError
from tf_multvae import __version__
from tf_multvae import features
from tf_multvae import records
from tf_multvae import staging as stage

# Paths go through Beam's FileSystems, so --out may be local or on any
# filesystem the runner reaches (gs://, s3://, hdfs://). Locally the final
# swap is one atomic rename; an object store has no directory rename, so
# there the staged files are moved one by one at the very end.
_RAW = CompressionTypes.UNCOMPRESSED
# Each split's shards (name, bytes, records): tf_multvae.datadir's key.


def _is_local(path: str) -> bool:
    return "://" not in path


def _join(directory: str, name: str) -> str:
    return FileSystems.join(directory, name)


def _files(directory: str) -> list[str]:
    pattern = _join(directory, "*")
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


def write_bytes(path: str, data: bytes) -> None:
    with FileSystems.create(path, compression_type=_RAW) as f:
        f.write(data)


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path, compression_type=_RAW) as f:
        return f.read()


def _remove(directory: str) -> None:
    if _is_local(directory):
        shutil.rmtree(directory, ignore_errors=True)
    elif FileSystems.exists(directory) or _files(directory):
        FileSystems.delete(_files(directory))


def check_out_dir(out: str, overwrite: bool) -> None:
    """Fails early when ``out`` exists and may not be replaced.

    ``--overwrite`` replaces a prepared dataset (or an empty directory),
    never a file or a directory holding something else: those are the
    user's, and are refused whatever the flags.
    """
    exists = FileSystems.exists(out) or (not _is_local(out) and _files(out))
    if exists and _is_local(out) and not os.path.isdir(out):
        raise DataPrepError(
            f"--out {out} is a file, not a dataset directory; choose "
            "another --out"
        )
    if exists and not overwrite:
        raise DataPrepError(
            f"--out {out} already exists; pass --overwrite to replace it"
        )
    if (
        exists
        and _is_local(out)
        and os.listdir(out)
        and not os.path.exists(os.path.join(out, features.METADATA_FILE))
    ):
        raise DataPrepError(
            f"--out {out} holds files but no {features.METADATA_FILE}: not "
            "a prepared dataset, so --overwrite will not replace it; choose "
            "another --out"
        )
    if _is_local(out):
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)


def _within(path: str, root: str) -> bool:
    """``path`` is ``root`` or inside it (both normalized)."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def check_apart(out: str, raw: str, raw_files: list[str]) -> None:
    """Refuses an ``out`` that is, holds or sits inside the raw input.

    ``--overwrite`` replaces ``out`` as a whole, so an ``out`` equal to or
    containing ``--raw`` would delete the user's raw data, and one inside
    a raw directory would be read as raw input by the next run. Checked
    before anything is written.

    Args:
        raw: ``--raw`` as given (a file, a directory or a glob).
        raw_files: the raw files it resolved to.

    Raises:
        DataPrepError: naming both paths.
    """

    def normal(path: str) -> str:
        return os.path.realpath(path) if _is_local(path) else path

    target = normal(out)
    given = [raw] if raw and not any(c in raw for c in "*?[") else []
    for path in [*given, *raw_files]:
        source = normal(path)
        if _within(source, target) or _within(target, source):
            raise DataPrepError(
                f"--out {out} overlaps the raw input {path} (the same path, "
                "or one inside the other); --overwrite would delete raw data "
                "and a dataset inside --raw would be read as raw input: "
                "choose an --out apart from --raw"
            )


def prepare_out(
    out: str, overwrite: bool, raw: str | None, raw_files: list[str] | None
) -> None:
    """Everything that is checked and tidied before a run writes: ``out``
    kept apart from the raw input (skipped when ``raw_files`` is None: a
    generated input), what a killed run left beside a local ``out``
    recovered (:func:`tf_multvae.staging.recover`, each thing done said on
    stdout), then ``out`` judged (:func:`check_out_dir`).
    """
    if raw_files is not None:
        check_apart(out, raw or "", raw_files)
    if _is_local(out):
        for line in stage.recover(out, features.METADATA_FILE):
            print(line, flush=True)
    check_out_dir(out, overwrite)


def staging_dir(out: str) -> str:
    """A fresh directory beside ``out`` that the pipeline writes into
    (locally an owned one, :func:`tf_multvae.staging.staging_dir`)."""
    if _is_local(out):
        return stage.staging_dir(out)
    parent, name = out.rstrip("/").rsplit("/", 1)
    path = f"{parent}/.{name}.tmp-{uuid.uuid4().hex[:8]}"
    FileSystems.mkdirs(path)
    return path


def discard(staging: str) -> None:
    _remove(staging)


def swap_into_place(staging: str, out: str) -> None:
    """Moves ``staging`` to ``out``, replacing an old ``out`` last.

    Locally two renames with a journal (:mod:`tf_multvae.staging`); an
    object store has no directory rename, so there the staged files are
    moved one by one."""
    if _is_local(out):
        stage.swap_into_place(staging, out)
        return
    _remove(out)
    sources = _files(staging)
    FileSystems.rename(
        sources, [_join(out, s.rsplit("/", 1)[1]) for s in sources]
    )
    _remove(staging)


def add_empty_shards(directory: str, train_shards: int) -> None:
    """Writes the shards that got no user as empty files.

    TFDS expects every shard its names promise (a group of training users
    or a held-out split can be empty on a small dataset).
    """
    counts = {features.TRAIN: train_shards}
    for split in features.SPLITS:
        total = counts.get(split, 1)
        for index in range(total):
            path = _join(directory, features.shard_name(split, index, total))
            if not FileSystems.exists(path):
                write_bytes(path, b"")


def shard_lengths(directory: str) -> dict[str, list[tuple[str, int, int]]]:
    """Per split: its shard files (sorted), record counts and bytes."""
    out = {}
    for split in features.SPLITS:
        pattern = _join(directory, features.shard_pattern(split))
        files = sorted(
            (m.path, m.size_in_bytes)
            for m in FileSystems.match([pattern])[0].metadata_list
        )
        out[split] = []
        for path, size in files:
            with FileSystems.open(path, compression_type=_RAW) as f:
                out[split].append((path, records.count_tfrecords(f), size))
    return out


def write_tfds_metadata(directory: str, shards: dict) -> None:
    """dataset_info.json & co, so tfds.builder_from_directory loads it.

    TFDS writes them into a local folder holding empty stand-ins named
    like the shards (it reads only the names); they are then copied.
    """
    import tensorflow_datasets as tfds

    split_infos = [
        tfds.core.SplitInfo(
            name=split,
            shard_lengths=[n for _, n, _ in files],
            num_bytes=sum(size for _, _, size in files),
        )
        for split, files in shards.items()
    ]
    with tempfile.TemporaryDirectory() as local:
        for files in shards.values():
            for path, _, _ in files:
                open(os.path.join(local, path.rsplit("/", 1)[1]), "wb").close()
        tfds.folder_dataset.write_metadata(
            data_dir=local,
            features=features.tfds_features(),
            split_infos=split_infos,
            check_data=False,
            description="A dataset prepared by tf_multvae's data_prep "
            "(see metadata.json for its provenance and parameters).",
        )
        for name in os.listdir(local):
            path = os.path.join(local, name)
            if os.path.getsize(path) and ".tfrecord-" not in name:
                with open(path, "rb") as f:
                    write_bytes(_join(directory, name), f.read())


def read_vocabulary_size(directory: str) -> int:
    """Items in the vocabulary the pipeline wrote (read as training will)."""
    path = _join(directory, features.VOCAB_FILE)
    return len(features.parse_vocabulary(read_bytes(path), path))


def build_metadata(
    config_json: dict,
    raw_files: list[str],
    counters: dict[str, int],
    n_items: int,
    shards: dict,
    extra_source: dict | None = None,
    protocol: str = features.STRONG_GENERALIZATION,
) -> dict:
    """Assembles metadata.json from the run's Beam counters.

    Args:
        protocol: the evaluation protocol the splits were made for (one
            of ``features.PROTOCOLS``).
        counters: totals by :mod:`data_prep.counters` name; a counter that
            never counted is 0.
    """
    c = lambda name: int(counters.get(name, 0))  # noqa: E731
    splits = {
        features.TRAIN: {
            "users": c(names.split_users(features.TRAIN)),
            "interactions": c(names.split_interactions(features.TRAIN)),
        }
    }
    n_heldout = c(names.HELDOUT_USERS_PER_SPLIT)
    for name in features.HELDOUT_SPLITS:
        users = c(names.split_users(name))
        scored = c(names.split_users_scored(name))
        fold_in = c(names.split_interactions(name, features.FOLD_IN))
        heldout = c(names.split_interactions(name, features.HELDOUT))
        splits[name] = {
            "users": users,
            "users_scored": scored,
            "users_without_targets": users - scored,
            "users_with_no_known_item": n_heldout - users,
            "interactions": fold_in + heldout,
            "fold_in_interactions": fold_in,
            "heldout_interactions": heldout,
        }
        if protocol == features.LEAVE_ONE_OUT:
            splits[name]["candidates"] = c(
                names.split_interactions(name, features.CANDIDATES)
            )
    for name, files in shards.items():
        splits[name]["shards"] = len(files)
        got = sum(n for _, n, _ in files)
        if got != splits[name]["users"]:
            raise DataPrepError(
                f"internal error: {name} shards hold {got} records but "
                f"{splits[name]['users']} users were counted"
            )
    users = sum(s["users"] for s in splits.values())
    interactions = sum(s["interactions"] for s in splits.values())
    if protocol == features.LEAVE_ONE_OUT:
        # Every user trains and the held-out splits repeat its training
        # items as fold-in: the users are train's, the interactions
        # train's and each held-out item.
        users = splits[features.TRAIN]["users"]
        interactions = splits[features.TRAIN]["interactions"] + sum(
            splits[name]["heldout_interactions"]
            for name in features.HELDOUT_SPLITS
        )
    return {
        "format_version": features.FORMAT_VERSION,
        features.PROTOCOL_KEY: protocol,
        "created_by": f"tf_multvae {__version__} data_prep",
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "source": {
            "dataset": config_json["dataset"],
            "raw_files": raw_files,
            **(extra_source or {}),
        },
        "parameters": config_json,
        "seed": config_json["seed"],
        "n_items": n_items,
        "users": users,
        "interactions": interactions,
        "density": interactions / (users * n_items) if users else 0.0,
        "heldout_users_per_split": n_heldout,
        # What tf_multvae.datadir checks the shards against before use.
        features.SHARD_LISTING: {
            name: [
                {"name": path.rsplit("/", 1)[-1], "bytes": size, "records": n}
                for path, n, size in files
            ]
            for name, files in shards.items()
        },
        "splits": splits,
        "rows": {
            field: c(counter) for field, counter in names.ROWS_FIELDS.items()
        },
        **{
            field: c(counter) for field, counter in names.DROPPED_FIELDS.items()
        },
        # Leave-one-out prepared from raw ratings counts these too.
        **{
            field: c(counter)
            for field, counter in names.LEAVE_ONE_OUT_FIELDS.items()
            if counter in counters
        },
    }


def finish(
    staging: str, out: str, metadata: dict, shard_files: dict, seconds: float
) -> None:
    """A run's last steps: metadata.json (with the pipeline's seconds) and
    the TFDS metadata into ``staging``, then ``staging`` swapped to ``out``."""
    metadata["pipeline_seconds"] = round(seconds, 1)
    write_metadata(staging, metadata)
    write_tfds_metadata(staging, shard_files)
    swap_into_place(staging, out)


def write_metadata(directory: str, metadata: dict) -> None:
    text = json.dumps(metadata, indent=2) + "\n"
    write_bytes(_join(directory, features.METADATA_FILE), text.encode())
