"""End to end: ``python -m data_prep`` against the authors' procedure."""

from __future__ import annotations

import glob
import json
import os

import pandas as pd
import pytest
import tensorflow as tf
from apache_beam.options.pipeline_options import DirectOptions
from apache_beam.options.pipeline_options import GoogleCloudOptions
from apache_beam.options.pipeline_options import StandardOptions
from conftest import IN_PROCESS
from conftest import shared_file

from data_prep import beam_run
from data_prep import config as cfg
from data_prep import counters
from data_prep import notebook_reference
from data_prep import output
from data_prep import pipeline
from tf_multvae import features


def prepare(tmp_path, *args, name="out"):
    out = tmp_path / name
    code = pipeline.main([*args, "--out", str(out), *IN_PROCESS])
    return code, out


def load(directory):
    """{split: {user_id: {key: [raw item ids]}}} from a dataset directory."""
    vocab = (directory / features.VOCAB_FILE).read_text().split("\n")[:-1]
    out = {}
    for split in features.SPLITS:
        users = out.setdefault(split, {})
        pattern = str(directory / features.shard_pattern(split))
        for path in sorted(glob.glob(pattern)):
            for record in tf.data.TFRecordDataset(path):
                ex = tf.io.parse_single_example(record, features.parse_spec())
                user = ex[features.USER_ID].numpy().decode()
                assert user not in users
                users[user] = {
                    key: [vocab[i] for i in ex[key].values.numpy()]
                    for key in features.ITEM_KEYS
                }
    return vocab, out


def by_user(frame):
    return {
        str(u): sorted(map(str, items))
        for u, items in frame.groupby("user")["item"].apply(list).items()
    }


def assert_same_as_notebook(directory, ref):
    vocab, got = load(directory)
    assert set(vocab) == set(map(str, ref["items"]))
    assert len(vocab) == len(set(vocab))
    train = by_user(ref["train_plays"])
    assert set(got["train"]) == set(map(str, ref["train_users"]))
    for user, record in got["train"].items():
        assert sorted(record["items"]) == train[user]
        assert record["fold_in"] == record["heldout"] == []
    for split in features.HELDOUT_SPLITS:
        fold_in = by_user(ref[f"{split}_fold_in"])
        heldout = by_user(ref[f"{split}_heldout"])
        assert set(got[split]) == set(fold_in)
        for user, record in got[split].items():
            assert sorted(record["fold_in"]) == fold_in[user]
            assert sorted(record["heldout"]) == heldout.get(user, [])
            assert record["items"] == []
    return got


@pytest.mark.slow
def test_ml1m_split_is_exactly_the_notebooks(tmp_path):
    """The real ML-1M ratings through the csv preset give exactly the
    notebook's split, vocabulary and held-out draws (seed 98765)."""
    path = shared_file("ml-1m/ratings_dense.tsv")
    code, out = prepare(
        tmp_path,
        "--dataset",
        "csv",
        "--raw",
        str(path),
        "--sep",
        "\\t",
        "--header",
        "--columns",
        "user,item,rating",
        "--heldout-users",
        "600",
    )
    assert code == 0
    raw = pd.read_csv(path, sep="\t")
    ref = notebook_reference.notebook_split(raw, 3.5, 5, 0, 600, 98765)
    got = assert_same_as_notebook(out, ref)
    assert len(got["validation"]) == len(got["test"]) == 600
    meta = json.loads((out / features.METADATA_FILE).read_text())
    assert meta["n_items"] == len(ref["items"])
    assert meta["rows"]["read"] == len(raw)
    assert meta["rows"]["below_threshold"] == int((raw["rating"] <= 3.5).sum())
    assert meta["splits"]["train"]["interactions"] == len(ref["train_plays"])
    test_heldout = meta["splits"]["test"]["heldout_interactions"]
    assert test_heldout == len(ref["test_heldout"])
    assert meta["parameters"]["seed"] == meta["seed"] == 98765


@pytest.mark.slow
def test_latest_small_with_the_ml20m_preset(tmp_path):
    path = shared_file("ml-latest-small/ratings.csv")
    code, out = prepare(
        tmp_path,
        "--dataset",
        "ml-20m",
        "--raw",
        str(path.parent),
        "--heldout-users",
        "50",
        "--chunk-mb",
        "1",
    )
    assert code == 0
    raw = pd.read_csv(path).rename(
        columns={"userId": "user", "movieId": "item"}
    )
    ref = notebook_reference.notebook_split(raw, 3.5, 5, 0, 50, 98765)
    assert_same_as_notebook(out, ref)


@pytest.mark.slow
def test_lastfm_item_filter_first_and_no_rating_column(tmp_path):
    path = shared_file("lastfm-hetrec2011/user_artists.dat")
    code, out = prepare(
        tmp_path,
        "--dataset",
        "csv",
        "--raw",
        str(path),
        "--sep",
        "tab",
        "--header",
        "--columns",
        "user,item,weight",
        "--min-item-users",
        "5",
        "--min-user-clicks",
        "10",
        "--heldout-users",
        "150",
    )
    assert code == 0
    raw = pd.read_csv(path, sep="\t")
    raw.columns = ["user", "item", "weight"]
    ref = notebook_reference.notebook_split(raw, None, 10, 5, 150, 98765)
    assert_same_as_notebook(out, ref)
    meta = json.loads((out / features.METADATA_FILE).read_text())
    assert meta["parameters"]["threshold"] is None
    dropped = raw.groupby("item").size()
    assert meta["items_dropped_by_min_item_users"] == int((dropped < 5).sum())


@pytest.mark.slow
def test_msd_string_ids(tmp_path):
    path = shared_file(
        "format-samples/msd-taste-profile/"
        "kaggle_visible_evaluation_triplets.head.txt"
    )
    code, out = prepare(
        tmp_path,
        "--dataset",
        "msd",
        "--raw",
        str(path),
        "--min-item-users",
        "1",
        "--min-user-clicks",
        "1",
        "--heldout-users",
        "1",
    )
    assert code == 0
    vocab, got = load(out)
    raw = pd.read_csv(path, sep="\t", names=["user", "item", "count"])
    assert vocab == sorted(vocab)  # string ids: lexicographic order
    # Every song of the sample has one listener, so the held-out users'
    # songs are all outside the training users' vocabulary: they are
    # dropped and counted.
    (user,) = got["train"]
    assert sorted(got["train"][user]["items"]) == sorted(
        raw.loc[raw["user"] == user, "item"]
    )
    meta = json.loads((out / features.METADATA_FILE).read_text())
    for split in features.HELDOUT_SPLITS:
        assert got[split] == {}
        assert meta["splits"][split]["users_with_no_known_item"] == 1
    assert meta["rows"]["test_clicks_outside_vocabulary"] > 0


@pytest.mark.slow
def test_netflix_training_set_directory(tmp_path):
    sample = shared_file("format-samples/netflix-prize/mv_0000011.head40.txt")
    raw = tmp_path / "netflix" / "training_set"
    raw.mkdir(parents=True)
    (raw / "mv_0000011.txt").write_bytes(sample.read_bytes())
    code, out = prepare(
        tmp_path,
        "--dataset",
        "netflix",
        "--raw",
        str(raw.parent),
        "--min-user-clicks",
        "1",
        "--heldout-users",
        "1",
    )
    assert code == 0
    vocab, got = load(out)
    assert vocab == ["11"]
    rows = pd.read_csv(sample, skiprows=1, names=["user", "rating", "date"])
    clicked = set(map(str, rows.loc[rows["rating"] > 3.5, "user"]))
    assert {u for s in got.values() for u in s} == clicked


@pytest.mark.slow
def test_default_runner_is_multiprocess_and_tfds_loads_it(tmp_path, capsys):
    """The CLI as a user runs it: no Beam flags at all."""
    import tensorflow_datasets as tfds

    path = shared_file("ml-100k/u.data")
    out = tmp_path / "ml-100k"
    assert (
        pipeline.main(
            ["--dataset", "ml-100k", "--raw", str(path), "--out", str(out)]
        )
        == 0
    )
    printed = capsys.readouterr().out
    meta = json.loads((out / features.METADATA_FILE).read_text())
    assert f"{meta['n_items']:,}" in printed and "density" in printed
    builder = tfds.builder_from_directory(str(out))
    for split in features.SPLITS:
        ds = builder.as_dataset(split=split)
        n = sum(1 for _ in ds)
        assert n == meta["splits"][split]["users"] > 0
    ex = next(iter(builder.as_dataset(split="validation")))
    assert ex["fold_in"].dtype == tf.int64 and ex["items"].shape == (0,)
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_existing_out_is_refused_without_overwrite(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    raw = tmp_path / "u.data"
    raw.write_text("1\t1\t5\t0\n")
    code, _ = prepare(tmp_path, "--dataset", "ml-100k", "--raw", str(raw))
    assert code == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    # A missing --raw is named first (before anything about --out).
    code, _ = prepare(tmp_path, "--dataset", "ml-100k", "--raw", "/nonexistent")
    assert code == 2
    assert "--raw /nonexistent: no such file" in capsys.readouterr().err


@pytest.mark.slow
def test_bad_line_stops_and_leaves_old_dataset(tmp_path, capsys):
    raw = tmp_path / "u.data"
    good = [f"{u}\t{i}\t5\t0" for u in range(1, 40) for i in range(1, 8)]
    lines = good[:100] + ["12\t7\tfive\t0"] + good[100:]
    raw.write_text("\n".join(lines) + "\n")
    old = tmp_path / "out"
    old.mkdir()
    (old / "metadata.json").write_text("{}")  # an old dataset's
    (old / "keep.txt").write_text("old")
    code, _ = prepare(
        tmp_path,
        "--dataset",
        "ml-100k",
        "--raw",
        str(raw),
        "--overwrite",
        "--heldout-users",
        "3",
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"{raw}, line 101" in err and "12\\t7\\tfive\\t0" in err
    assert (old / "keep.txt").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["out", "u.data"]
    # The same file with --on-bad-lines skip: counted in metadata.json.
    code, out = prepare(
        tmp_path,
        "--dataset",
        "ml-100k",
        "--raw",
        str(raw),
        "--overwrite",
        "--heldout-users",
        "3",
        "--on-bad-lines",
        "skip",
    )
    assert code == 0
    meta = json.loads((out / features.METADATA_FILE).read_text())
    assert meta["rows"]["bad_lines"] == 1
    assert meta["rows"]["read"] == len(good) + 1
    assert not (out / "keep.txt").exists()


@pytest.mark.parametrize(
    "flags,message",
    [
        (
            ["--min-user-clicks", "100000"],
            "--min-user-clicks 100000 left no users",
        ),
        (["--threshold", "9"], "no clicks left after --threshold 9.0"),
        (
            ["--min-item-users", "100000"],
            "--min-item-users 100000 left no items",
        ),
        (["--heldout-users", "5000"], "--heldout-users 5000 needs more than"),
    ],
)
def test_filters_that_leave_nothing_name_themselves(
    tmp_path, capsys, flags, message
):
    path = shared_file("ml-100k/u.data")
    code, out = prepare(
        tmp_path, "--dataset", "ml-100k", "--raw", str(path), *flags
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--dataset", "ml-100k", "--raw", "/no/such/u.data"], "no such file"),
        (
            ["--dataset", "ml-20m", "--sep", "tab", "--raw", "x"],
            "apply to --dataset csv only",
        ),
        (
            ["--dataset", "csv", "--columns", "user,rating", "--raw", "x"],
            "exactly one 'item' column",
        ),
        (
            [
                "--dataset",
                "csv",
                "--columns",
                "user,item",
                "--threshold",
                "3",
                "--raw",
                "x",
            ],
            "needs a rating column",
        ),
        (
            ["--dataset", "ml-100k", "--heldout-users", "0", "--raw", "x"],
            "--heldout-users must be >= 1",
        ),
        (
            ["--dataset", "ml-100k", "--threshold", "high", "--raw", "x"],
            "--threshold must be a finite number",
        ),
        (
            ["--dataset", "ml-100k", "--threshold", "nan", "--raw", "x"],
            "--threshold must be a finite number or 'none', not 'nan'",
        ),
        (
            ["--dataset", "ml-100k", "--threshold=-inf", "--raw", "x"],
            "--threshold must be a finite number",
        ),
    ],
)
def test_bad_arguments_fail_before_the_pipeline(
    tmp_path, capsys, flags, message
):
    code, _ = prepare(tmp_path, *flags)
    assert code == 2
    assert message in capsys.readouterr().err


def test_csv_without_rating_and_tab_separator(tmp_path):
    raw = tmp_path / "clicks.tsv"
    rows = [
        (f"u{u}", f"i{(u * 7 + k) % 13}") for u in range(30) for k in range(6)
    ]
    raw.write_text("".join(f"{u}\t{i}\n" for u, i in rows))
    code, out = prepare(
        tmp_path,
        "--dataset",
        "csv",
        "--raw",
        str(raw),
        "--sep",
        "\\t",
        "--columns",
        "user,item",
        "--heldout-users",
        "3",
    )
    assert code == 0
    frame = pd.DataFrame(rows, columns=["user", "item"])
    ref = notebook_reference.notebook_split(frame, None, 5, 0, 3, 98765)
    assert_same_as_notebook(out, ref)


def test_beam_options_pass_through_unchanged():
    args, beam_args = pipeline.parse_args(
        [
            "--dataset",
            "ml-20m",
            "--raw",
            "gs://b/ratings.csv",
            "--out",
            "o",
            "--runner",
            "DataflowRunner",
            "--project",
            "my-project",
            "--temp_location",
            "gs://b/tmp",
            "--region",
            "us-central1",
        ]
    )
    assert beam_args == [
        "--runner",
        "DataflowRunner",
        "--project",
        "my-project",
        "--temp_location",
        "gs://b/tmp",
        "--region",
        "us-central1",
    ]
    options = beam_run.pipeline_options(beam_args)
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    gcp = options.view_as(GoogleCloudOptions)
    assert (gcp.project, gcp.temp_location) == ("my-project", "gs://b/tmp")
    all_options = options.get_all_options()
    assert "--direct_running_mode=multi_processing" not in all_options
    default = beam_run.pipeline_options([])
    direct = default.view_as(DirectOptions)
    assert direct.direct_running_mode == "multi_processing"
    assert direct.direct_num_workers == 0
    runner = beam_run.make_pipeline(default).runner
    assert type(runner).__name__ == "FnApiRunner"


def test_synthetic_default_needs_no_raw_file(tmp_path):
    code, out = prepare(
        tmp_path,
        "--dataset",
        "synthetic",
        "--synthetic-users",
        "400",
        "--synthetic-items",
        "150",
    )
    assert code == 0
    meta = json.loads((out / features.METADATA_FILE).read_text())
    generator = meta["source"]["generator"]
    assert generator["n_users"] == 400
    assert generator["rows"] == meta["rows"]["read"]
    kept = meta["users"] + sum(
        meta["splits"][s]["users_with_no_known_item"]
        for s in features.HELDOUT_SPLITS
    )
    assert meta["heldout_users_per_split"] == kept // 10  # csv default: 10%
    vocab, got = load(out)
    n_heldout = meta["heldout_users_per_split"]
    assert len(got["validation"]) == len(got["test"]) == n_heldout
    assert 0 < len(vocab) <= 150


def test_each_counter_lands_in_its_metadata_field():
    """metadata.json reads the counters under the names the stages count
    them with (data_prep.counters): distinct totals, each in its field."""
    fold_in, heldout = features.FOLD_IN, features.HELDOUT
    totals = {
        counters.ROWS_READ: 101,
        counters.BAD_LINES: 2,
        counters.ROWS_BELOW_THRESHOLD: 30,
        counters.CLICKS: 69,
        counters.ROWS_DROPPED_BY_MIN_ITEM_USERS: 4,
        counters.ITEMS_DROPPED_BY_MIN_ITEM_USERS: 3,
        counters.ROWS_DROPPED_BY_MIN_USER_CLICKS: 5,
        counters.USERS_DROPPED_BY_MIN_USER_CLICKS: 1,
        counters.USERS_WITH_CLICKS: 11,
        counters.HELDOUT_USERS_PER_SPLIT: 3,
        counters.split_users("train"): 4,
        counters.split_interactions("train"): 40,
        counters.outside_vocabulary("validation"): 6,
        counters.outside_vocabulary("test"): 7,
        counters.split_users("validation"): 3,
        counters.split_users_scored("validation"): 2,
        counters.split_interactions("validation", fold_in): 8,
        counters.split_interactions("validation", heldout): 1,
        counters.split_users("test"): 2,
        counters.split_users_scored("test"): 2,
        counters.split_interactions("test", fold_in): 9,
        counters.split_interactions("test", heldout): 3,
    }
    shards = {
        "train": [("t0", 1, 9), ("t1", 3, 9)],
        "validation": [("v", 3, 9)],
        "test": [("s", 2, 9)],
    }
    config = cfg.PRESETS["ml-100k"].to_json()
    meta = output.build_metadata(config, ["u.data"], totals, 20, shards)
    assert meta["rows"] == {
        "read": 101,
        "bad_lines": 2,
        "below_threshold": 30,
        "clicks": 69,
        "dropped_by_min_item_users": 4,
        "dropped_by_min_user_clicks": 5,
        "validation_clicks_outside_vocabulary": 6,
        "test_clicks_outside_vocabulary": 7,
    }
    assert meta["splits"] == {
        "train": {"users": 4, "interactions": 40, "shards": 2},
        "validation": {
            "users": 3,
            "users_scored": 2,
            "users_without_targets": 1,
            "users_with_no_known_item": 0,
            "interactions": 9,
            "fold_in_interactions": 8,
            "heldout_interactions": 1,
            "shards": 1,
        },
        "test": {
            "users": 2,
            "users_scored": 2,
            "users_without_targets": 0,
            "users_with_no_known_item": 1,
            "interactions": 12,
            "fold_in_interactions": 9,
            "heldout_interactions": 3,
            "shards": 1,
        },
    }
    assert meta["heldout_users_per_split"] == 3
    assert meta["items_dropped_by_min_item_users"] == 3
    assert meta["users_dropped_by_min_user_clicks"] == 1
    assert (meta["users"], meta["interactions"]) == (9, 61)
    assert list(meta)[-4:] == [
        "splits",
        "rows",
        "items_dropped_by_min_item_users",
        "users_dropped_by_min_user_clicks",
    ]
