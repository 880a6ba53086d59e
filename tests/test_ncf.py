"""``python -m data_prep --dataset ncf``: NCF's leave-one-out files.

The real ML-1M files (../shared/data/ncf-ml-1m) are converted once and
checked against a plain-Python parse of the same files; tiny hand-written
files check the exact records and every error. ``--ncf-validation``: the
real files once more, and tiny drawn files, against a plain-Python
computation of the same seeded draws.
"""

from __future__ import annotations

import collections
import json
import os

import numpy as np
import pytest
from conftest import IN_PROCESS
from conftest import shared_file
from references import read_split

from data_prep import ncf
from data_prep import ncf_files
from data_prep import pipeline
from data_prep.config import PrepConfig
from tf_multvae import datadir
from tf_multvae import features

N_USERS = 6040
N_ITEMS = 3706
N_TRAIN = 994_169


def prepare(raw, out, *flags):
    return pipeline.main(
        ["--dataset", "ncf", "--raw", str(raw), "--out", str(out)]
        + [*flags, *IN_PROCESS]
    )


def by_user(rows):
    return {row[features.USER_ID]: row for row in rows}


# The real ML-1M files -------------------------------------------------------


@pytest.fixture(scope="module")
def ml1m(tmp_path_factory):
    """(prepared directory, its metadata) of NCF's ML-1M files."""
    raw = shared_file("ncf-ml-1m/ml-1m.train.rating").parent / "ml-1m"
    out = tmp_path_factory.mktemp("ncf") / "ml-1m"
    # Four byte ranges of the train file, so users span ranges.
    assert prepare(raw, out, "--chunk-mb", "4") == 0
    metadata = json.loads((out / features.METADATA_FILE).read_text())
    return out, metadata


@pytest.fixture(scope="module")
def ml1m_raw():
    """The three files parsed with plain Python: train items by user,
    (test item, negatives) by user."""
    folder = shared_file("ncf-ml-1m/ml-1m.train.rating").parent
    train = collections.defaultdict(set)
    with open(folder / "ml-1m.train.rating") as f:
        for line in f:
            user, item, _, _ = line.rstrip("\n").split("\t")
            train[int(user)].add(int(item))
    test = {}
    with open(folder / "ml-1m.test.rating") as f:
        for line in f:
            user, item = map(int, line.split("\t")[:2])
            test[user] = [item]
    with open(folder / "ml-1m.test.negative") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            user, item = map(int, fields[0].strip("()").split(","))
            assert test[user] == [item]
            test[user].append([int(i) for i in fields[1:]])
    return train, test


@pytest.mark.slow  # NCF's real ML-1M files, end to end
def test_ml1m_counts_and_metadata(ml1m):
    out, meta = ml1m
    splits = meta["splits"]
    assert meta[features.PROTOCOL_KEY] == features.LEAVE_ONE_OUT
    assert meta["source"]["dataset"] == "ncf"
    assert meta["source"]["name"] == "ml-1m"
    assert [os.path.basename(p) for p in meta["source"]["raw_files"]] == [
        "ml-1m.train.rating",
        "ml-1m.test.rating",
        "ml-1m.test.negative",
    ]
    assert meta["parameters"]["protocol"] == features.LEAVE_ONE_OUT
    assert meta["parameters"]["threshold"] is None
    assert meta["parameters"]["read_as_given"] is True
    assert meta["parameters"]["ncf_validation"] is False
    assert meta["parameters"]["seed"] is meta["seed"] is None
    assert "users_with_a_single_training_item" not in splits["validation"]
    assert meta["n_items"] == N_ITEMS
    assert meta["source"]["item_index_is_ncf_id"] is True
    assert meta["source"]["items_in_train"] == N_ITEMS - 2
    assert meta["source"]["items_only_in_test_files"] == 2
    assert splits["train"]["users"] == N_USERS
    assert splits["train"]["interactions"] == N_TRAIN
    assert splits["validation"]["users"] == 0
    assert splits["test"]["users"] == splits["test"]["users_scored"] == N_USERS
    assert splits["test"]["fold_in_interactions"] == N_TRAIN
    assert splits["test"]["heldout_interactions"] == N_USERS
    assert splits["test"]["candidates"] == 100 * N_USERS
    assert meta["heldout_users_per_split"] == N_USERS
    assert meta["users"] == N_USERS
    assert meta["interactions"] == N_TRAIN + N_USERS
    assert meta["rows"]["read"] == N_TRAIN
    vocab = (out / features.VOCAB_FILE).read_text().split("\n")[:-1]
    assert vocab == [str(i) for i in range(N_ITEMS)]
    info = datadir.load_info(str(out))
    assert info.n_items == N_ITEMS


@pytest.mark.slow  # NCF's real ML-1M files, end to end
def test_ml1m_records_are_the_raw_files(ml1m, ml1m_raw):
    """Every user's records against the plain-Python parse (the item index
    is NCF's id here)."""
    out, _ = ml1m
    train, test = ml1m_raw
    got_train = by_user(read_split(str(out), "train"))
    got_test = by_user(read_split(str(out), "test"))
    assert read_split(str(out), "validation") == []
    assert set(got_train) == set(got_test) == {str(u) for u in range(N_USERS)}
    repeats = 0
    for user in range(N_USERS):
        items = sorted(train[user])
        record = got_train[str(user)]
        assert record["items"] == items
        assert record["fold_in"] == record["heldout"] == []
        assert record["candidates"] == []
        record = got_test[str(user)]
        item, negatives = test[user]
        assert record["items"] == []
        assert record["fold_in"] == items
        assert record["heldout"] == [item]
        assert record["candidates"] == negatives + [item]
        repeats += item in negatives
    assert repeats == 156


@pytest.mark.slow  # NCF's real ML-1M files, end to end
def test_ml1m_loads_with_tfds(ml1m):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    out, _ = ml1m
    builder = tfds.builder_from_directory(str(out))
    assert builder.info.splits["validation"].num_examples == 0
    assert builder.info.splits["train"].num_examples == N_USERS
    assert builder.info.splits["test"].num_examples == N_USERS
    first = next(iter(builder.as_dataset(split="test")))
    assert first["candidates"].shape == (100,)
    assert first["heldout"].shape == (1,)
    assert first["items"].shape == (0,)
    assert first["fold_in"].dtype == tf.int64


# Tiny hand-written files -----------------------------------------------------

# Users 0, 1 and 7; items 0..5 and 9 (only among the negatives), so items.txt
# is 0 1 2 3 4 5 9 and item 9 has index 6. User 1's item 2 is listed twice;
# user 7's negatives hold its own test item 5.
TRAIN = [
    "0\t0\t5\t0",
    "0\t1\t3\t0",
    "1\t1\t4\t0",
    "1\t2\t4\t0",
    "1\t3\t4\t0",
    "1\t2\t4\t0",
    "7\t0\t1\t0",
]
TEST = ["7\t5\t5\t9", "0\t2\t5\t1", "1\t4\t5\t3"]
NEGATIVE = ["(0,2)\t3\t4", "(7,5)\t5\t9", "(1,4)\t0\t5"]
FILES = {"train": ".train.rating", "test": ".test.rating"}
FILES["negative"] = ".test.negative"


def write_files(folder, train=TRAIN, test=TEST, negative=NEGATIVE):
    """The three files ``folder/toy.*``; returns the prefix."""
    folder.mkdir(exist_ok=True)
    for lines, suffix in zip((train, test, negative), FILES.values()):
        (folder / f"toy{suffix}").write_text("".join(f"{x}\n" for x in lines))
    return folder / "toy"


def test_small_files_exact_records(tmp_path):
    prefix = write_files(tmp_path / "raw")
    out = tmp_path / "out"
    assert prepare(prefix, out) == 0
    assert (out / features.VOCAB_FILE).read_text().split() == [
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
        "9",
    ]
    train = read_split(str(out), "train")
    assert [(r["user_id"], r["items"]) for r in train] == [
        ("0", [0, 1]),
        ("1", [1, 2, 3]),
        ("7", [0]),
    ]
    test = read_split(str(out), "test")
    assert [
        (r["user_id"], r["fold_in"], r["heldout"], r["candidates"], r["items"])
        for r in test
    ] == [
        ("0", [0, 1], [2], [3, 4, 2], []),
        ("1", [1, 2, 3], [4], [0, 5, 4], []),
        ("7", [0], [5], [5, 6, 5], []),
    ]
    assert read_split(str(out), "validation") == []
    meta = json.loads((out / features.METADATA_FILE).read_text())
    assert meta["source"]["items_only_in_test_files"] == 3
    assert meta["source"]["item_index_is_ncf_id"] is False
    assert meta["rows"]["read"] == 7
    assert meta["splits"]["train"]["interactions"] == 6
    assert meta["splits"]["test"]["candidates"] == 9
    # --raw as the directory holding them: the same dataset.
    again = tmp_path / "again"
    assert prepare(prefix.parent, again) == 0
    assert read_split(str(again), "test") == test


def test_raw_may_name_one_of_the_files(tmp_path):
    prefix = write_files(tmp_path)
    for suffix in ("", *FILES.values()):
        files = ncf_files.resolve(f"{prefix}{suffix}")
        assert files.name == "toy"
        assert files.paths == [f"{prefix}{s}" for s in FILES.values()]


def _replace(lines, number, text):
    """``lines`` with line ``number`` (1-based) replaced, or added."""
    lines = list(lines)
    if number > len(lines):
        return lines + [text]
    lines[number - 1] = text
    return lines


# (file, its changed line, the new text, what the message says)
LONG = "(7,5)\t" + "\t".join(["5"] * 500)
BAD_LINES = [
    ("train", 2, "0\t1\t3", "expected 4 tab-separated fields"),
    ("train", 3, "1\tone\t4\t0", "item id 'one' is not a non-negative"),
    ("train", 5, "-1\t3\t4\t0", "user id -1 is negative"),
    ("train", 4, "1\t2\t0\t0", "rating 0 is not > 0"),
    ("test", 2, "0\t2\t5", "expected 4 tab-separated fields"),
    ("test", 2, "x\t2\t5\t1", "user id 'x' is not a non-negative"),
    ("test", 4, "0\t2\t5\t1", "user 0 has a second line (the first is line 2)"),
    ("negative", 1, "(0;2)\t3\t4", "'(0;2)' is not (user,item)"),
    ("negative", 2, LONG, "expected 3 tab-separated fields"),
    ("negative", 2, "(7,5)\t5\t-9", "negative item id -9 is negative"),
    ("negative", 4, "(1,4)\t0\t5", "user 1 has a second line"),
    ("negative", 1, "(0,3)\t3\t4", "user 0's test item is 2"),
    (
        "negative",
        1,
        "(0,2)\t1\t4",
        "negative item 1 (field 2) of user 0 is one of the user's training "
        "items",
    ),
]


@pytest.mark.parametrize("which,number,text,why", BAD_LINES)
def test_bad_line_names_file_and_line(
    tmp_path, capsys, which, number, text, why
):
    files = {"train": TRAIN, "test": TEST, "negative": NEGATIVE}
    files[which] = _replace(files[which], number, text)
    prefix = write_files(tmp_path / "raw", **files)
    where = f"{prefix}{FILES[which]}, line {number}: "
    line = _assert_fails(tmp_path, capsys, prefix, where, why)
    quoted = text if len(text) <= 200 else text[:200] + "..."
    assert line.endswith(f": {quoted!r}") or f": {quoted!r} [" in line


# (the files' changes, the file and line named, what the message says)
BAD_USERS = [
    ({"train": TRAIN[:6]}, "test", 1, "user 7 has no line in {train}"),
    ({"test": TEST[1:]}, "negative", 2, "user 7 has no line in {test}"),
    (
        {"negative": NEGATIVE[:1] + NEGATIVE[2:]},
        "test",
        1,
        "user 7 has no line in {negative}",
    ),
    (
        {"train": TRAIN + ["8\t0\t5\t0"]},
        "train",
        8,
        "user 8 has no line in {test}",
    ),
    (
        {
            "test": _replace(TEST, 2, "0\t1\t5\t1"),
            "negative": _replace(NEGATIVE, 1, "(0,1)\t3\t4"),
        },
        "test",
        2,
        "user 0's test item 1 is also one of the user's training items "
        "({train}, line 2)",
    ),
]


@pytest.mark.parametrize("changes,which,number,why", BAD_USERS)
def test_files_that_disagree_name_user_file_and_line(
    tmp_path, capsys, changes, which, number, why
):
    prefix = write_files(tmp_path / "raw", **changes)
    paths = {key: f"{prefix}{suffix}" for key, suffix in FILES.items()}
    where = f"{paths[which]}, line {number}: "
    _assert_fails(tmp_path, capsys, prefix, where, why.format(**paths))


def test_missing_file_and_bad_raw_are_named(tmp_path, capsys):
    prefix = write_files(tmp_path / "raw")
    (tmp_path / "raw" / "toy.test.negative").unlink()
    _assert_fails(
        tmp_path, capsys, prefix, f"no such file {prefix}.test.negative"
    )
    (tmp_path / "raw" / "two.train.rating").write_text("")
    _assert_fails(
        tmp_path,
        capsys,
        tmp_path / "raw",
        "exactly one *.train.rating (found toy.train.rating, two.train.rating)",
    )
    _assert_fails(
        tmp_path,
        capsys,
        prefix,
        "--threshold, --protocol strong-generalization: not for --dataset ncf",
        flags=("--threshold", "3", "--protocol", "strong-generalization"),
    )


def test_failed_overwrite_keeps_the_old_dataset(tmp_path, capsys):
    prefix = write_files(tmp_path / "raw", train=_replace(TRAIN, 3, "1\t1\t4"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "metadata.json").write_text("{}")  # an old dataset's
    (out / "keep.txt").write_text("old")
    assert prepare(prefix, out) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert prepare(prefix, out, "--overwrite") == 2
    assert f"{prefix}.train.rating, line 3" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["out", "raw"]


def _assert_fails(tmp_path, capsys, prefix, *expected, flags=()):
    """Runs on ``prefix``: exit 2, one ``error:`` line holding each of
    ``expected``, nothing at --out or beside it. Returns the line."""
    out = tmp_path / "out"
    assert prepare(prefix, out, *flags) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for text in expected:
        assert text in lines[0]
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["raw"]
    return lines[0]


# --ncf-validation --------------------------------------------------------


def expected_lists(train, test, vocab, seed):
    """Every split's records as plain Python computes them from the files'
    parse: {split: {user id: (items, fold_in, heldout, candidates)}}.

    Args:
        train: {user: set of raw training items}.
        test: {user: [raw test item, [raw negatives]]}.
        vocab: the sorted raw item ids (index = position).
        seed: None without --ncf-validation.

    The draws are data_prep.ncf_validation's documented ones: a generator
    seeded from [seed, 1 (split.VALIDATION_CODE), user] picks the position
    of the validation item among the user's sorted training items, then
    the negatives' ranks among the items it has no interaction with.
    """
    index = {item: i for i, item in enumerate(vocab)}
    everything = set(range(len(vocab)))
    out = {name: {} for name in features.SPLITS}
    for user in sorted(train):
        items = sorted(index[i] for i in train[user])
        test_item = index[test[user][0]]
        negatives = [index[i] for i in test[user][1]]
        rest = items
        if seed is not None and len(items) > 1:
            rng = np.random.default_rng([seed, 1, user])
            chosen = items[int(rng.integers(len(items)))]
            rest = [i for i in items if i != chosen]
            free = sorted(everything - set(items) - {test_item})
            ranks = rng.choice(len(free), size=len(negatives), replace=False)
            drawn = [free[r] for r in ranks]
            row = ([], rest, [chosen], drawn + [chosen])
            out[features.VALIDATION][str(user)] = row
        out[features.TRAIN][str(user)] = (rest, [], [], [])
        row = ([], rest, [test_item], negatives + [test_item])
        out[features.TEST][str(user)] = row
    return out


def read_lists(out):
    """The prepared dataset in expected_lists' form, and its vocabulary."""
    got = {}
    for name in features.SPLITS:
        records = read_split(str(out), name)
        got[name] = {
            r[features.USER_ID]: tuple(r[key] for key in features.ITEM_KEYS)
            for r in records
        }
        assert list(got[name]) == sorted(got[name], key=int)
    vocab = (out / features.VOCAB_FILE).read_text().split("\n")[:-1]
    return got, [int(item) for item in vocab]


def check_validation_properties(got, train, test, vocab):
    """What --ncf-validation promises, whatever the draw."""
    index = {item: i for i, item in enumerate(vocab)}
    for user, (_, fold_in, heldout, candidates) in got["validation"].items():
        mine = {index[i] for i in train[int(user)]}
        item = heldout[0]
        assert heldout == [item] and item in mine and len(mine) > 1
        assert fold_in == sorted(mine - {item})
        assert got["train"][user][0] == fold_in
        assert got["test"][user][1] == fold_in
        drawn = candidates[:-1]
        assert candidates[-1] == item
        assert len(drawn) == len(set(drawn)) == len(test[int(user)][1])
        known = mine | {index[test[int(user)][0]]}
        assert not known & set(drawn)
        assert all(0 <= i < len(vocab) for i in drawn)
    single = {u for u, items in train.items() if len(items) == 1}
    assert set(got["validation"]) == {str(u) for u in train} - {
        str(u) for u in single
    }
    for user in single:
        assert got["train"][str(user)][0] == [index[i] for i in train[user]]


@pytest.fixture(scope="module")
def ml1m_validation(tmp_path_factory):
    """NCF's ML-1M files prepared with --ncf-validation (default seed)."""
    raw = shared_file("ncf-ml-1m/ml-1m.train.rating").parent / "ml-1m"
    out = tmp_path_factory.mktemp("ncf") / "ml-1m-validation"
    assert prepare(raw, out, "--ncf-validation", "--chunk-mb", "4") == 0
    return out, json.loads((out / features.METADATA_FILE).read_text())


@pytest.mark.slow  # NCF's real ML-1M files, end to end
def test_ml1m_validation_split(ml1m_validation, ml1m_raw):
    out, meta = ml1m_validation
    train, test = ml1m_raw
    params = meta["parameters"]
    assert params["ncf_validation"] is True
    assert params["read_as_given"] is False
    assert params["seed"] == meta["seed"] == PrepConfig.seed == 98765
    assert params["validation_negatives"] == 99
    splits = meta["splits"]
    n_train = N_TRAIN - N_USERS
    assert splits["train"] == {
        "users": N_USERS,
        "interactions": n_train,
        "shards": 2,
    }
    for name in ("validation", "test"):
        assert splits[name]["users"] == splits[name]["users_scored"]
        assert splits[name]["users"] == N_USERS
        assert splits[name]["fold_in_interactions"] == n_train
        assert splits[name]["heldout_interactions"] == N_USERS
        assert splits[name]["candidates"] == 100 * N_USERS
    assert splits["validation"]["users_with_a_single_training_item"] == 0
    assert meta["users"] == N_USERS
    assert meta["interactions"] == N_TRAIN + N_USERS
    got, vocab = read_lists(out)
    assert vocab == list(range(N_ITEMS))
    check_validation_properties(got, train, test, vocab)
    assert got == expected_lists(train, test, vocab, 98765)
    # The validation item is drawn from all over the user's items.
    where = [
        sorted(train[int(u)]).index(row[2][0]) / len(train[int(u)])
        for u, row in got["validation"].items()
    ]
    assert 0.45 < np.mean(where) < 0.55
    assert min(where) == 0.0 and max(where) > 0.95
    assert datadir.load_info(str(out)).protocol == features.LEAVE_ONE_OUT
    import tensorflow_datasets as tfds

    splits = tfds.builder_from_directory(str(out)).info.splits
    assert splits["validation"].num_examples == N_USERS


# Tiny files of 40 users (ids 1, 4, ..., 118) and 30 items (ids 5, 7, ...,
# 63, so an item's index is not its id), drawn once: 14 users have a single
# training item, some a training line twice, some a test negative twice.
ITEM_IDS = range(5, 65, 2)


def tiny_files(folder):
    rng = np.random.default_rng(12)
    train, test, negative = [], [], []
    items = {}
    for user in range(1, 120, 3):
        size = 1 if user % 9 == 1 else int(rng.integers(2, 8))
        chosen = rng.choice(ITEM_IDS, size=size + 1, replace=False).tolist()
        items[user] = set(chosen[:-1])
        rows = chosen[:-1] + chosen[:1] * (user % 7 == 0)
        train += [f"{user}\t{i}\t{1 + user % 5}\t{9 * i}" for i in rows]
        test.append(f"{user}\t{chosen[-1]}\t5\t0")
        left = sorted(set(ITEM_IDS) - set(chosen))
        drawn = rng.choice(left, size=4, replace=user % 5 == 0)
        fields = [f"({user},{chosen[-1]})", *map(str, drawn)]
        negative.append("\t".join(fields))
    prefix = write_files(folder, train, test, negative)
    parsed = {}
    for line in negative:
        fields = line.split("\t")
        user, item = map(int, fields[0].strip("()").split(","))
        parsed[user] = [item, [int(i) for i in fields[1:]]]
    return prefix, items, parsed


def _outputs(out):
    """Everything a run wrote but its timings: file name -> bytes."""
    files = {}
    for path in sorted(out.iterdir()):
        if path.name != features.METADATA_FILE:
            files[path.name] = path.read_bytes()
    meta = json.loads((out / features.METADATA_FILE).read_text())
    for key in ("created_at", "pipeline_seconds"):
        meta.pop(key)
    return files, meta


def test_tiny_files_validation_records(tmp_path, monkeypatch):
    prefix, train, test = tiny_files(tmp_path / "raw")
    runs = {
        "one": ("--seed", "7"),
        # Two workers, and byte ranges of 97 bytes (--chunk-mb counts
        # 97-byte "megabytes" here): the same dataset.
        "two": ("--seed", "7", "--chunk-mb", "1"),
        "other": ("--seed", "8"),
    }
    results = {}
    for name, flags in runs.items():
        out = tmp_path / name
        if name == "two":
            monkeypatch.setattr(ncf, "MB", 97)
            beam = ("--direct_running_mode=multi_threading",)
            beam += ("--direct_num_workers=2",)
            code = pipeline.main(
                ["--dataset", "ncf", "--raw", str(prefix), "--out", str(out)]
                + ["--ncf-validation", *flags, *beam]
            )
            monkeypatch.undo()
        else:
            code = prepare(prefix, out, "--ncf-validation", *flags)
        assert code == 0
        results[name] = _outputs(out)
        got, vocab = read_lists(out)
        check_validation_properties(got, train, test, vocab)
        assert got == expected_lists(train, test, vocab, int(flags[1]))
    assert results["two"] == results["one"]
    assert results["other"][0] != results["one"][0]
    # The files are as the comment above them says.
    assert vocab == list(ITEM_IDS)
    single = sum(len(items) == 1 for items in train.values())
    assert single == 14
    assert any(len(set(drawn)) < len(drawn) for _, drawn in test.values())
    # The validation items left the test split's fold-in too.
    assert got["test"] != expected_lists(train, test, vocab, None)["test"]
    meta = results["one"][1]
    assert meta["source"]["item_index_is_ncf_id"] is False
    validation = meta["splits"]["validation"]
    assert validation["users_with_a_single_training_item"] == single
    assert validation["users"] == 40 - single
    assert validation["candidates"] == 5 * (40 - single)
    n_items = sum(len(items) for items in train.values())
    assert meta["splits"]["train"]["interactions"] == n_items - 40 + single
    assert meta["interactions"] == n_items + 40
    assert meta["parameters"]["seed"] == meta["seed"] == 7
    assert meta["parameters"]["validation_negatives"] == 4


def test_too_few_items_left_for_validation_negatives(tmp_path, capsys):
    # User 0 has 5 of the 6 items; the negatives line holds 2.
    prefix = write_files(
        tmp_path / "raw",
        train=[f"0\t{i}\t5\t0" for i in range(4)] + ["1\t0\t5\t0"],
        test=["0\t4\t5\t0", "1\t1\t5\t0"],
        negative=["(0,4)\t5\t5", "(1,1)\t2\t3"],
    )
    _assert_fails(
        tmp_path,
        capsys,
        prefix,
        "--ncf-validation: user 0 has interactions with 5 of the 6 items, "
        "leaving 1 to draw its 2 validation negatives from (as many as "
        f"each line of {prefix}.test.negative holds)",
        flags=("--ncf-validation",),
    )
    # Without the flag, the files are fine.
    assert prepare(prefix, tmp_path / "out") == 0


def test_validation_flags_are_refused_where_they_do_not_apply(tmp_path, capsys):
    prefix = write_files(tmp_path / "raw")
    _assert_fails(
        tmp_path,
        capsys,
        prefix,
        "--seed: not for --dataset ncf, whose files are read as given (--seed "
        "is, with --ncf-validation)",
        flags=("--seed", "3"),
    )
    _assert_fails(
        tmp_path,
        capsys,
        prefix,
        "--seed must be in [0, 2**32), got -1",
        flags=("--ncf-validation", "--seed", "-1"),
    )
    _assert_fails(
        tmp_path,
        capsys,
        prefix,
        "--ncf-validation applies to --dataset ncf only",
        flags=("--dataset", "ml-100k", "--ncf-validation"),
    )
