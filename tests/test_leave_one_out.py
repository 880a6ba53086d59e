"""``--protocol leave-one-out``: NCF's split from the presets' raw layouts,
checked against a plain-Python computation of the protocol."""

from __future__ import annotations

import glob
import json
import os

import apache_beam as beam
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import tensorflow as tf
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to
from conftest import IN_PROCESS
from conftest import shared_file

from data_prep import config as cfg
from data_prep import leave_one_out_stages
from data_prep import pipeline
from data_prep import split as splitlib
from data_prep import transforms
from data_prep.ranges import plan_ranges
from data_prep.ranges import resolve_raw_files
from data_prep.readers import read_range
from tf_multvae import features

LOO = ["--protocol", "leave-one-out"]
SEED = 98765
CODES = {"validation": splitlib.VALIDATION_CODE, "test": splitlib.TEST_CODE}
# (user, item, rating, timestamp) in file order. User 10's 102 and 103 share
# the latest time (103 is later in the file: the test item); all of user
# 7's clicks share one time; user 5 clicks 108 twice (its latest click
# counts); users 3 and 4 have two distinct items each (dropped); 103, 106,
# 107, 108 and 110 occur only as held-out items.
TINY = [
    (10, 100, 5, 1000),
    (10, 101, 3, 1001),
    (10, 102, 4, 1005),
    (10, 103, 1, 1005),
    (2, 100, 4, 500),
    (2, 104, 2, 400),
    (2, 105, 5, 600),
    (7, 101, 4, 50),
    (7, 106, 3, 50),
    (7, 100, 5, 50),
    (3, 100, 5, 10),
    (3, 101, 5, 20),
    (3, 100, 4, 30),
    (4, 198, 5, 1),
    (4, 197, 5, 2),
    (10, 104, 5, 900),
    (2, 107, 1, 700),
    (5, 108, 4, 100),
    (5, 109, 4, 200),
    (5, 108, 3, 300),
    (5, 110, 2, 250),
    (5, 111, 4, 50),
]
CSV = [
    "--dataset",
    "csv",
    "--header",
    "--columns",
    "user,item,rating,timestamp",
]


def reference(rows, negatives, min_user_clicks=1, seed=SEED):
    """The protocol in plain Python: {split: {user: {key: [raw ids]}}}.

    The negatives follow the documented draw: user ``pos`` (its place in
    the sorted users the filter kept) gets ``Generator.choice(n_free,
    negatives, replace=False)`` seeded with ``[seed, split code, pos]``,
    each drawn r meaning the r-th item, in vocabulary order, that the user
    never clicked.
    """
    clicks = {}
    for u, _, _, _ in rows:
        clicks[u] = clicks.get(u, 0) + 1
    users = sorted(u for u, n in clicks.items() if n >= min_user_clicks)
    latest = {u: {} for u in users}
    for order, (u, i, _, t) in enumerate(rows):
        if u in latest:
            latest[u][i] = max(latest[u].get(i, (t, order)), (t, order))
    by_time = {
        u: sorted(items, key=items.get)
        for u, items in latest.items()
        if len(items) >= 3
    }
    vocab = sorted({i for items in by_time.values() for i in items})
    index = {item: k for k, item in enumerate(vocab)}
    out = {"train": {}, "validation": {}, "test": {}}
    for u, items in by_time.items():
        train = sorted(items[:-2])
        out["train"][str(u)] = {"items": train}
        mine = {index[i] for i in items}
        free = [k for k in range(len(vocab)) if k not in mine]
        for split, held in (("validation", items[-2]), ("test", items[-1])):
            rng = np.random.default_rng([seed, CODES[split], users.index(u)])
            drawn = rng.choice(len(free), size=negatives, replace=False)
            out[split][str(u)] = {
                "fold_in": train,
                "heldout": [held],
                "candidates": [vocab[free[r]] for r in drawn] + [held],
            }
    return vocab, out


def load(directory):
    """(vocab, {split: {user: {key: [raw ids]}}}), empty lists left out."""
    vocab = (directory / features.VOCAB_FILE).read_text().split("\n")[:-1]
    vocab = np.array([int(v) for v in vocab])
    out = {}
    for split in features.SPLITS:
        users = out.setdefault(split, {})
        pattern = str(directory / features.shard_pattern(split))
        for path in sorted(glob.glob(pattern)):
            for batch in tf.data.TFRecordDataset(path).batch(4096):
                ex = tf.io.parse_example(batch, features.parse_spec())
                ids = [u.decode() for u in ex[features.USER_ID].numpy()]
                lists = {}
                for key in features.ITEM_KEYS:
                    rows = ex[key].indices.numpy()[:, 0]
                    items = vocab[ex[key].values.numpy()].tolist()
                    bounds = np.searchsorted(rows, np.arange(len(ids) + 1))
                    lists[key] = [
                        items[a:b] for a, b in zip(bounds[:-1], bounds[1:])
                    ]
                for j, user in enumerate(ids):
                    assert user not in users
                    users[user] = {
                        key: lists[key][j]
                        for key in features.ITEM_KEYS
                        if lists[key][j]
                    }
    return vocab.tolist(), out


def write_csv(path, rows):
    lines = ["user,item,rating,timestamp"] + [
        ",".join(map(str, r)) for r in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def prepare(tmp_path, *args, name="out", beam_args=IN_PROCESS):
    out = tmp_path / name
    code = pipeline.main([*args, "--out", str(out), *beam_args])
    return code, out


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("raw") / "ratings.csv", TINY)


@pytest.mark.parametrize(
    "beam_args",
    [
        IN_PROCESS,
        ["--direct_running_mode=multi_threading", "--direct_num_workers=2"],
    ],
    ids=["1-worker", "2-workers"],
)
def test_tiny_csv_is_the_plain_python_protocol(tmp_path, tiny_csv, beam_args):
    flags = [*CSV, "--raw", str(tiny_csv), *LOO, "--negatives", "4"]
    flags += ["--min-user-clicks", "1"]
    code, out = prepare(tmp_path, *flags, beam_args=beam_args)
    assert code == 0
    want_vocab, want = reference(TINY, negatives=4)
    vocab, got = load(out)
    assert vocab == want_vocab == list(range(100, 112))
    assert got == want
    assert got["test"]["10"]["heldout"] == [103]  # equal times: file order
    assert got["test"]["7"]["heldout"] == [100]
    assert got["validation"]["5"]["heldout"] == [110]  # 108's latest click
    meta = json.loads((out / features.METADATA_FILE).read_text())
    assert meta[features.PROTOCOL_KEY] == features.LEAVE_ONE_OUT
    params = meta["parameters"]
    assert (params["protocol"], params["negatives"]) == ("leave-one-out", 4)
    assert params["threshold"] is None and params["heldout_users"] is None
    assert meta["rows"]["clicks"] == len(TINY)
    assert meta["users_dropped_with_fewer_than_3_items"] == 2
    assert meta["heldout_users_per_split"] == 4
    for split in features.HELDOUT_SPLITS:
        assert meta["splits"][split] == {
            "users": 4,
            "users_scored": 4,
            "users_without_targets": 0,
            "users_with_no_known_item": 0,
            "interactions": 12,
            "fold_in_interactions": 8,
            "heldout_interactions": 4,
            "candidates": 20,
            "shards": 1,
        }
    assert meta["splits"]["train"]["interactions"] == 8


def test_the_preset_user_filter_still_applies(tmp_path, tiny_csv):
    """csv's --min-user-clicks 5 counts rows: users 5 and 10 are left."""
    flags = [*CSV, "--raw", str(tiny_csv), *LOO, "--negatives", "3"]
    code, out = prepare(tmp_path, *flags)
    assert code == 0
    want_vocab, want = reference(TINY, negatives=3, min_user_clicks=5)
    assert sorted(want["test"]) == ["10", "5"]
    vocab, got = load(out)
    assert (vocab, got) == (want_vocab, want)


def _lists(user_lists):
    """One DrawHeldout-format output -> (split, user, key, items) rows."""
    split, _, user_ids, lists = user_lists
    for key, (values, offsets) in lists.items():
        for j, user in enumerate(user_ids):
            chunk = values[offsets[j] : offsets[j + 1]]
            yield split, user, key, tuple(int(v) for v in chunk)


@pytest.mark.parametrize("n_batches,n_groups", [(1, 1), (3, 2), (5, 4)])
def test_the_stages_do_not_depend_on_batching_or_groups(n_batches, n_groups):
    """The same clicks in other batches and groups: the same lists."""
    rows = [
        (str(u), str(i), t, order) for order, (u, i, _, t) in enumerate(TINY)
    ]
    batches = [
        pa.table(
            {
                "user": pa.array([r[0] for r in part], pa.string()),
                "item": pa.array([r[1] for r in part], pa.string()),
                "order": pa.array([r[3] for r in part], pa.int64()),
                "time": pa.array([r[2] for r in part], pa.int64()),
            }
        )
        for part in (rows[k::n_batches] for k in range(n_batches))
    ]
    vocab, want = reference(TINY, negatives=5)
    index = {item: k for k, item in enumerate(vocab)}
    expected = [
        (split, user, key, tuple(index[i] for i in items))
        for split, users in want.items()
        for user, lists in users.items()
        for key, items in lists.items()
    ]
    with test_pipeline.TestPipeline(argv=IN_PROCESS) as p:
        clicks = p | beam.Create(batches)
        plan = clicks | transforms.PlanSplit(
            1, None, SEED, pa.string(), protocol=features.LEAVE_ONE_OUT
        )
        user_lists, _ = clicks | leave_one_out_stages.LeaveOneOut(
            plan, n_groups, pa.string(), SEED, 5
        )
        assert_that(user_lists | beam.FlatMap(_lists), equal_to(expected))


@pytest.mark.slow
def test_ml100k_every_user_latest_item_is_its_test_item(tmp_path):
    path = shared_file("ml-100k/u.data")
    code, out = prepare(
        tmp_path,
        "--dataset",
        "ml-100k",
        "--raw",
        str(path),
        *LOO,
        "--chunk-mb",
        "1",
    )
    assert code == 0
    vocab, got = load(out)
    assert {len(got[s]) for s in features.SPLITS} == {943}
    assert set(got["train"]) == set(got["validation"]) == set(got["test"])
    for split in features.HELDOUT_SPLITS:
        for record in got[split].values():
            assert len(record["heldout"]) == 1
            assert len(record["candidates"]) == 100
    raw = pd.read_csv(
        path, sep="\t", names=["user", "item", "rating", "timestamp"]
    )
    raw["order"] = np.arange(len(raw))
    ranked = raw.sort_values(["user", "timestamp", "order"])
    latest = ranked.groupby("user").tail(2).groupby("user")["item"].apply(list)
    assert sorted(vocab) == vocab == sorted(raw["item"].unique())
    rng = np.random.default_rng(0)
    users = sorted(got["test"], key=int)
    for user in rng.choice(users, size=100, replace=False):
        val, test = latest[int(user)]
        items = set(raw.loc[raw["user"] == int(user), "item"])
        assert got["test"][user]["heldout"] == [test]
        assert got["validation"][user]["heldout"] == [val]
        train = sorted(items - {val, test})
        assert got["train"][user]["items"] == train
        for split in features.HELDOUT_SPLITS:
            record = got[split][user]
            assert record["fold_in"] == train
            negatives = record["candidates"][:-1]
            assert record["candidates"][-1] == record["heldout"][0]
            assert len(negatives) == len(set(negatives)) == 99
            assert not set(negatives) & items
    meta = json.loads((out / features.METADATA_FILE).read_text())
    assert meta["rows"]["clicks"] == len(raw)  # no threshold
    assert meta["splits"]["test"]["candidates"] == 943 * 100


# Netflix's layout: (movie, customer, rating, date) in file order. User 10's
# movies 1 and 3 share the latest date (3 is later: the test item), so do
# user 20's 1 and 2 (2 is later: the validation item).
NETFLIX = [
    (1, 10, 5, "2005-01-03"),
    (1, 20, 3, "2005-01-01"),
    (2, 10, 4, "2005-01-02"),
    (2, 20, 4, "2005-01-01"),
    (3, 10, 1, "2005-01-03"),
    (3, 20, 2, "2004-12-31"),
    (4, 20, 5, "2005-01-05"),
    (5, 30, 1, "2001-05-01"),
    (6, 30, 2, "2001-05-02"),
    (7, 30, 3, "2001-05-03"),
]


def test_netflix_dates_order_the_clicks(tmp_path):
    lines, movie = [], None
    for item, user, rating, date in NETFLIX:
        if item != movie:
            lines.append(f"{item}:")
            movie = item
        lines.append(f"{user},{rating},{date}")
    raw = tmp_path / "netflix"
    raw.mkdir()
    (raw / "combined_data_1.txt").write_text("\n".join(lines) + "\n")
    flags = ["--dataset", "netflix", "--raw", str(raw), *LOO]
    code, out = prepare(
        tmp_path, *flags, "--min-user-clicks", "1", "--negatives", "2"
    )
    assert code == 0
    rows = [(u, i, r, d) for i, u, r, d in NETFLIX]  # ISO dates sort as text
    vocab, got = load(out)
    assert (vocab, got) == reference(rows, negatives=2)
    assert (got["test"]["10"]["heldout"], got["test"]["20"]["heldout"]) == (
        [3],
        [4],
    )
    assert got["validation"]["20"]["heldout"] == [2]


def test_time_is_read_only_when_asked():
    path = shared_file("ml-latest-small/ratings.csv")
    files = resolve_raw_files(str(path), cfg.MOVIELENS_CSV)
    ranges = plan_ranges(files, 1 << 18)
    assert len(ranges) > 1
    tables = [read_range(r, cfg.MOVIELENS_CSV, "error")[0] for r in ranges]
    assert "time" not in tables[0].column_names
    timed = [
        read_range(r, cfg.MOVIELENS_CSV, "error", timestamps=True)[0]
        for r in ranges
    ]
    times = pa.concat_tables(timed)["time"].to_numpy()
    np.testing.assert_array_equal(times, pd.read_csv(path)["timestamp"])


def assert_fails(tmp_path, capsys, flags, *expected):
    code, out = prepare(tmp_path, *flags)
    assert code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1, err
    for text in expected:
        assert text in errors[0]
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_a_layout_without_time_is_refused(tmp_path, capsys):
    raw = tmp_path / "ratings_dense.tsv"  # ML-1M's, as read here
    raw.write_text("user\titem\trating\n1\t1\t5\n")
    flags = ["--dataset", "csv", "--raw", str(raw), "--sep", "tab"]
    flags += ["--header", "--columns", "user,item,rating", *LOO]
    assert_fails(
        tmp_path,
        capsys,
        flags,
        "--protocol leave-one-out",
        "time column",
        "'timestamp'",
        "user,item,rating",
    )


def test_heldout_users_do_not_apply(tmp_path, capsys):
    flags = ["--dataset", "ml-100k", "--raw", "u.data", *LOO]
    flags += ["--heldout-users", "100"]
    assert_fails(
        tmp_path,
        capsys,
        flags,
        "--heldout-users does not apply",
        "--protocol leave-one-out",
    )


def test_negatives_need_the_protocol(tmp_path, capsys):
    flags = ["--dataset", "ml-100k", "--raw", "u.data", "--negatives", "9"]
    assert_fails(tmp_path, capsys, flags, "--negatives applies to")


def test_a_bad_timestamp_is_a_bad_line(tmp_path, capsys):
    rows = [*TINY[:5], (2, 104, 2, "noon"), *TINY[6:]]
    raw = write_csv(tmp_path / "ratings.csv", rows)
    flags = [*CSV, "--raw", str(raw), *LOO, "--min-user-clicks", "1"]
    assert_fails(tmp_path, capsys, flags, f"{raw}, line 7", "timestamp 'noon'")


def test_too_few_items_left_for_the_negatives(tmp_path, capsys, tiny_csv):
    flags = [*CSV, "--raw", str(tiny_csv), *LOO, "--negatives", "8"]
    flags += ["--min-user-clicks", "1"]
    assert_fails(
        tmp_path,
        capsys,
        flags,
        "user 10 clicked 5 of the 12 items, leaving 7 to draw --negatives 8",
    )
