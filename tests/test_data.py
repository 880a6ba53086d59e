"""The data contract: records written by data_prep, read back by data.py.

A tiny raw csv is prepared once with the real pipeline; what
``tf_multvae.data`` yields is checked against an independent reading of the
same shards with ``tf.train.Example.FromString`` (references.read_split).
"""

from __future__ import annotations

import collections
import glob
import json
import pathlib
import shutil

import numpy as np
import pytest
import references
import tensorflow as tf
from conftest import IN_PROCESS

from data_prep import pipeline
from tf_multvae import data
from tf_multvae import datadir
from tf_multvae import features

PAD = features.PAD
BATCH = 7  # divides no split size below, so every epoch ends short


def write_raw(path):
    """60 users: most with ~12 clicks, some whose private items leave a
    held-out user too few clicks to score, some with < 5 clicks."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):
        user = f"u{u:03d}"
        if u >= 56:  # 3 clicks: dropped by min_user_clicks 5
            items = rng.choice(30, 3, replace=False).tolist()
        elif u >= 40:  # 3 shared + 3 items nobody else clicks
            items = rng.choice(30, 3, replace=False).tolist()
            items += [f"p{u}_{k}" for k in range(3)]
        else:
            items = rng.choice(30, int(rng.integers(8, 16)), replace=False)
            items = items.tolist()
        for item in items:
            rows.append(f"{user},i{item},{rng.choice([4, 5])}")
        for item in rng.choice(30, 2):  # ratings <= 3.5 are no clicks
            rows.append(f"{user},i{item},{rng.choice([1, 2, 3])}")
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    raw = root / "ratings.csv"
    write_raw(raw)
    out = root / "prepared"
    code = pipeline.main(
        [
            "--dataset", "csv", "--raw", str(raw),
            "--columns", "user,item,rating", "--heldout-users", "10",
            "--out", str(out), *IN_PROCESS,
        ]
    )  # fmt: skip
    assert code == 0
    return str(out)


@pytest.fixture(scope="module")
def records(prepared):
    """{split: [(user_id, {key: [item ids]})]} in file order, read without
    data.py (references.read_split)."""
    return {
        split: [
            (row[features.USER_ID], {k: row[k] for k in features.ITEM_KEYS})
            for row in references.read_split(prepared, split)
        ]
        for split in features.SPLITS
    }


def unpad(row: np.ndarray) -> list[int]:
    """The ids of one padded row; padding only after the ids."""
    n = int(np.sum(row != PAD))
    assert np.all(row[n:] == PAD), row
    assert np.all(row[:n] >= 0), row
    return row[:n].tolist()


def epoch_lists(ds) -> list[tuple[int, ...]]:
    """One epoch of a train dataset: each user's items, in order."""
    out = []
    for batch in ds:
        assert batch.dtype == tf.int64 and batch.shape.rank == 2
        x = batch.numpy()
        rows = [tuple(unpad(r)) for r in x]
        # The width is the longest list in the batch.
        assert x.shape[1] == max(len(r) for r in rows)
        out += rows
    return out


def test_fixture_has_the_cases_the_tests_need(prepared, records):
    meta = datadir.load_info(prepared).metadata
    assert meta["splits"]["validation"]["users_without_targets"] > 0 or (
        meta["splits"]["test"]["users_without_targets"] > 0
    )
    users = {u for split in records.values() for u, _ in split}
    assert not users & {"u056", "u057", "u058", "u059"}  # < 5 clicks
    assert len(glob.glob(f"{prepared}/*train*")) > 1  # several shards


def test_load_info(prepared, records):
    info = datadir.load_info(prepared)
    with open(f"{prepared}/{features.VOCAB_FILE}") as f:
        vocab = f.read().splitlines()
    assert info.n_items == len(vocab) == info.metadata["n_items"]
    assert info.directory == prepared
    assert datadir.load_info(pathlib.Path(prepared)) == info
    assert info.metadata["format_version"] == features.FORMAT_VERSION
    for split in features.SPLITS:
        assert datadir.count_users(prepared, split) == len(records[split])


def test_train_epoch_yields_every_user_once_with_its_items(prepared, records):
    n_items = datadir.load_info(prepared).n_items
    ds = data.train_dataset(prepared, BATCH, seed=0)
    assert ds.element_spec == tf.TensorSpec([None, None], tf.int64)
    got = epoch_lists(ds)
    expected = [tuple(lists[features.ITEMS]) for _, lists in records["train"]]
    assert collections.Counter(got) == collections.Counter(expected)
    assert all(0 <= i < n_items for row in got for i in row)
    sizes = [int(b.shape[0]) for b in ds]
    assert sizes == [BATCH] * (len(sizes) - 1) + [len(expected) % BATCH]
    assert len(sizes) == data.steps_per_epoch(prepared, BATCH)


def test_epochs_reshuffle_and_the_seed_fixes_the_orders(prepared, records):
    first = data.train_dataset(prepared, BATCH, seed=42)
    second = data.train_dataset(prepared, BATCH, seed=42)
    orders = [epoch_lists(first) for _ in range(2)]
    assert orders[0] != orders[1]
    assert sorted(orders[0]) == sorted(orders[1])
    assert [epoch_lists(second) for _ in range(2)] == orders
    other = epoch_lists(data.train_dataset(prepared, BATCH, seed=43))
    assert other != orders[0]


def test_without_shuffle_every_epoch_has_the_same_order(prepared):
    ds = data.train_dataset(prepared, BATCH, seed=0, shuffle=False)
    assert epoch_lists(ds) == epoch_lists(ds)


def test_drop_remainder(prepared, records):
    ds = data.train_dataset(prepared, BATCH, seed=0, drop_remainder=True)
    assert ds.element_spec == tf.TensorSpec([BATCH, None], tf.int64)
    sizes = [int(b.shape[0]) for b in ds]
    n = len(records["train"])
    assert sizes == [BATCH] * (n // BATCH)
    assert data.steps_per_epoch(prepared, BATCH, drop_remainder=True) == (
        n // BATCH
    )
    assert data.steps_per_epoch(prepared, BATCH) == -(-n // BATCH)


@pytest.mark.parametrize("split", features.HELDOUT_SPLITS)
def test_eval_batches_match_the_records(prepared, records, split):
    ds = data.eval_dataset(prepared, split, BATCH, with_user_ids=True)
    assert ds.element_spec == {
        features.FOLD_IN: tf.TensorSpec([None, None], tf.int64),
        features.HELDOUT: tf.TensorSpec([None, None], tf.int64),
        features.USER_ID: tf.TensorSpec([None], tf.string),
    }
    got = []
    for batch in ds:
        x = {key: value.numpy() for key, value in batch.items()}
        assert len({len(v) for v in x.values()}) == 1  # one batch size
        assert len(x[features.USER_ID]) <= BATCH
        for key in (features.FOLD_IN, features.HELDOUT):
            widths = [len(unpad(r)) for r in x[key]]
            assert x[key].shape[1] == max(widths)
        for j, user in enumerate(x[features.USER_ID]):
            got.append(
                (
                    user.decode(),
                    {
                        key: unpad(x[key][j])
                        for key in (features.FOLD_IN, features.HELDOUT)
                    },
                )
            )
    expected = [
        (user, {k: lists[k] for k in (features.FOLD_IN, features.HELDOUT)})
        for user, lists in records[split]
    ]
    assert got == expected  # same users, same lists, in file order


def test_eval_without_user_ids(prepared, records):
    ds = data.eval_dataset(prepared, features.TEST, 4)
    batches = list(ds)
    assert all(set(b) == {features.FOLD_IN, features.HELDOUT} for b in batches)
    assert sum(int(b[features.FOLD_IN].shape[0]) for b in batches) == len(
        records[features.TEST]
    )


def test_eval_rejects_other_splits(prepared):
    with pytest.raises(ValueError, match="'train'"):
        data.eval_dataset(prepared, features.TRAIN, 4)
    with pytest.raises(ValueError, match="'valid'"):
        data.eval_dataset(prepared, "valid", 4)
    with pytest.raises(ValueError, match="batch_size"):
        data.train_dataset(prepared, 0, seed=0)


def test_load_info_rejects_a_missing_directory(tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=f"--data-dir {missing} "):
        datadir.load_info(missing)
    with pytest.raises(FileNotFoundError, match=missing):
        data.train_dataset(missing, 4, seed=0)


def test_load_info_rejects_a_directory_without_metadata(tmp_path):
    with pytest.raises(ValueError, match="no metadata.json") as err:
        datadir.load_info(str(tmp_path))
    assert f"{tmp_path} is not a prepared dataset" in str(err.value)
    assert "python -m data_prep" in str(err.value)


def broken_copy(prepared, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(prepared, copy)
    return copy


def test_load_info_rejects_another_format_version(prepared, tmp_path):
    copy = broken_copy(prepared, tmp_path)
    path = copy / features.METADATA_FILE
    meta = json.loads(path.read_text())
    meta["format_version"] = features.FORMAT_VERSION + 1
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="format_version") as err:
        datadir.load_info(str(copy))
    assert str(copy) in str(err.value)


def test_load_info_rejects_an_item_count_mismatch(prepared, tmp_path):
    copy = broken_copy(prepared, tmp_path)
    with open(copy / features.VOCAB_FILE, "a") as f:
        f.write("one-item-too-many\n")
    with pytest.raises(ValueError, match="items.txt") as err:
        datadir.load_info(str(copy))
    assert f"{copy} is not a prepared dataset" in str(err.value)


def test_load_info_rejects_missing_shards(prepared, tmp_path):
    copy = broken_copy(prepared, tmp_path)
    shards = sorted(copy.glob(features.shard_pattern(features.TRAIN)))
    shards[0].unlink()
    with pytest.raises(ValueError, match="train shards") as err:
        datadir.load_info(str(copy))
    assert shards[0].name in str(err.value)
    for path in copy.glob(features.shard_pattern(features.TEST)):
        path.unlink()
    shards[0].touch()
    with pytest.raises(ValueError, match="no test shards"):
        datadir.load_info(str(copy))
