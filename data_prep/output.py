"""Finishing a prepared dataset: metadata.json, TFDS metadata, atomic swap.

The pipeline writes shards and items.txt into a staging directory next to
``--out``; this module adds the metadata and renames the staging directory
into place, so a failed run never leaves a half dataset behind (DESIGN §3).
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import shutil
import uuid

from data_prep.readers import DataPrepError
from tf_multvae import __version__
from tf_multvae import features


def check_out_dir(out: str, overwrite: bool) -> None:
    """Fails early when ``out`` exists and may not be replaced."""
    if os.path.exists(out) and not overwrite:
        raise DataPrepError(
            f"--out {out} already exists; pass --overwrite to replace it"
        )
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)


def staging_dir(out: str) -> str:
    out = os.path.abspath(out)
    path = os.path.join(
        os.path.dirname(out),
        f".{os.path.basename(out)}.tmp-{uuid.uuid4().hex[:8]}",
    )
    os.makedirs(path)
    return path


def swap_into_place(staging: str, out: str) -> None:
    """Renames ``staging`` to ``out``, replacing an old ``out`` last."""
    out = os.path.abspath(out)
    old = None
    if os.path.exists(out):
        old = f"{staging}.old"
        os.rename(out, old)
    os.rename(staging, out)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def add_empty_shards(directory: str, train_shards: int) -> None:
    """Writes the shards that got no user as empty files.

    TFDS expects every shard its names promise (a group of training users
    or a held-out split can be empty on a small dataset).
    """
    counts = {features.TRAIN: train_shards}
    for split in features.SPLITS:
        total = counts.get(split, 1)
        for index in range(total):
            path = os.path.join(directory, features.shard_name(split, index, total))
            if not os.path.exists(path):
                open(path, "wb").close()


def _count_records(path: str) -> int:
    import tensorflow as tf

    return int(
        tf.data.TFRecordDataset(path).reduce(
            tf.constant(0, tf.int64), lambda n, _: n + 1
        )
    )


def shard_lengths(directory: str) -> dict[str, list[tuple[str, int]]]:
    """Per split: its shard files (sorted) and their record counts."""
    out = {}
    for split in features.SPLITS:
        files = sorted(
            glob.glob(os.path.join(directory, features.shard_pattern(split)))
        )
        out[split] = [(f, _count_records(f)) for f in files]
    return out


def write_tfds_metadata(directory: str, shards: dict) -> None:
    """dataset_info.json & co, so tfds.builder_from_directory loads it."""
    import tensorflow_datasets as tfds

    split_infos = [
        tfds.core.SplitInfo(
            name=split,
            shard_lengths=[n for _, n in files],
            num_bytes=sum(os.path.getsize(f) for f, _ in files),
        )
        for split, files in shards.items()
    ]
    tfds.folder_dataset.write_metadata(
        data_dir=directory,
        features=features.tfds_features(),
        split_infos=split_infos,
        check_data=False,
        description="A dataset prepared by tf_multvae's data_prep "
        "(see metadata.json for its provenance and parameters).",
    )


def read_vocabulary_size(directory: str) -> int:
    with open(os.path.join(directory, features.VOCAB_FILE), "rb") as f:
        return sum(1 for line in f if line.strip())


def build_metadata(
    config_json: dict,
    raw_files: list[str],
    counters: dict[str, int],
    n_items: int,
    shards: dict,
    extra_source: dict | None = None,
) -> dict:
    """Assembles metadata.json from the run's Beam counters."""
    c = lambda name: int(counters.get(name, 0))  # noqa: E731
    splits = {
        features.TRAIN: {
            "users": c("train_users"),
            "interactions": c("train_interactions"),
        }
    }
    n_heldout = c("heldout_users_per_split")
    for name in features.HELDOUT_SPLITS:
        fold_in = c(f"{name}_fold_in_interactions")
        heldout = c(f"{name}_heldout_interactions")
        splits[name] = {
            "users": c(f"{name}_users"),
            "users_scored": c(f"{name}_users_scored"),
            "users_without_targets": c(f"{name}_users")
            - c(f"{name}_users_scored"),
            "users_with_no_known_item": n_heldout - c(f"{name}_users"),
            "interactions": fold_in + heldout,
            "fold_in_interactions": fold_in,
            "heldout_interactions": heldout,
        }
    for name, files in shards.items():
        splits[name]["shards"] = len(files)
        got = sum(n for _, n in files)
        if got != splits[name]["users"]:
            raise DataPrepError(
                f"internal error: {name} shards hold {got} records but "
                f"{splits[name]['users']} users were counted"
            )
    users = sum(s["users"] for s in splits.values())
    interactions = sum(s["interactions"] for s in splits.values())
    return {
        "format_version": features.FORMAT_VERSION,
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
        "splits": splits,
        "rows": {
            "read": c("rows_read"),
            "bad_lines": c("bad_lines"),
            "below_threshold": c("rows_below_threshold"),
            "clicks": c("clicks"),
            "dropped_by_min_item_users": c("rows_dropped_by_min_item_users"),
            "dropped_by_min_user_clicks": c("rows_dropped_by_min_user_clicks"),
            **{
                f"{name}_clicks_outside_vocabulary": c(
                    f"{name}_clicks_outside_vocabulary"
                )
                for name in features.HELDOUT_SPLITS
            },
        },
        "items_dropped_by_min_item_users": c("items_dropped_by_min_item_users"),
        "users_dropped_by_min_user_clicks": c(
            "users_dropped_by_min_user_clicks"
        ),
    }


def write_metadata(directory: str, metadata: dict) -> None:
    with open(os.path.join(directory, features.METADATA_FILE), "w") as f:
        json.dump(metadata, f, indent=2)
        f.write("\n")


def format_statistics(metadata: dict) -> str:
    """The paper's Table 1 columns, as the pipeline prints them."""
    s = metadata["splits"]
    rows = [
        ("dataset", metadata["source"]["dataset"]),
        ("users", f"{metadata['users']:,}"),
        ("items", f"{metadata['n_items']:,}"),
        ("interactions", f"{metadata['interactions']:,}"),
        ("density", f"{100 * metadata['density']:.3f}%"),
        (
            "held-out users",
            f"{metadata['heldout_users_per_split']:,} per split "
            f"(scored: validation {s['validation']['users_scored']:,}, "
            f"test {s['test']['users_scored']:,})",
        ),
        ("train users", f"{s['train']['users']:,}"),
        ("raw rows read", f"{metadata['rows']['read']:,}"),
        ("bad lines", f"{metadata['rows']['bad_lines']:,}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
