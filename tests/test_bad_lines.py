"""Malformed raw input is a bad line, never silently bent.

Each case runs through the real pipeline twice: ``--on-bad-lines error``
(exit 2, one ``error:`` line naming the file and the right line, nothing
at --out, the raw file unchanged) and ``skip`` (exit 0, the bad lines
counted in metadata.json, every good row in the records, as a plain
Python reading of the good lines says).
"""

from __future__ import annotations

import glob
import json

import pyarrow as pa
import pytest
import tensorflow as tf
from conftest import IN_PROCESS

from data_prep import config as cfg
from data_prep import pipeline
from data_prep.errors import BadLineError
from data_prep.ranges import BOM
from data_prep.ranges import plan_ranges
from data_prep.ranges import resolve_raw_files
from data_prep.readers import read_range
from tf_multvae import features

ITEMS = 8  # every user rates items 1..8: all in the training vocabulary
BIG = "9" * 1_000_000  # a 1 MB field


def good_lines(users, sep=",", rating="4", time=True):
    """Every user rates every item (a click under the 3.5 threshold)."""
    tail = f"{sep}0" if time else ""
    return [
        f"{u}{sep}{i}{sep}{rating}{tail}"
        for u in users
        for i in range(1, ITEMS + 1)
    ]


def expected(lines, sep=","):
    """{user: sorted items} of good lines, the plain Python way."""
    out = {}
    for line in lines:
        user, item = line.split(sep)[:2]
        out.setdefault(user, set()).add(item)
    return {u: sorted(items) for u, items in out.items()}


def records(out):
    """{user_id: sorted raw items} over every split's records."""
    vocab = (out / features.VOCAB_FILE).read_text().split("\n")[:-1]
    got = {}
    for split in features.SPLITS:
        pattern = str(out / features.shard_pattern(split))
        for path in sorted(glob.glob(pattern)):
            for record in tf.data.TFRecordDataset(path):
                ex = tf.io.parse_single_example(record, features.parse_spec())
                user = ex[features.USER_ID].numpy().decode()
                assert user not in got
                got[user] = sorted(
                    vocab[i]
                    for key in features.ITEM_KEYS
                    for i in ex[key].values.numpy()
                )
    return got


def prepare(tmp_path, raw, dataset, on_bad_lines):
    out = tmp_path / "out"
    argv = ["--dataset", dataset, "--raw", str(raw), "--out", str(out)]
    argv += ["--heldout-users", "3", "--on-bad-lines", on_bad_lines]
    return pipeline.main([*argv, *IN_PROCESS]), out


def write(path, lines, prefix=b""):
    data = prefix + b"".join(
        (line if isinstance(line, bytes) else line.encode()) + b"\n"
        for line in lines
    )
    path.write_bytes(data)
    return data


def check_both(tmp_path, capsys, raw, dataset, line, bad, good):
    """error stops at ``line``; skip counts ``bad`` and keeps ``good``."""
    before = raw.read_bytes()
    code, out = prepare(tmp_path, raw, dataset, "error")
    assert code == 2
    errors = [x for x in capsys.readouterr().err.splitlines() if "error:" in x]
    assert len(errors) == 1, errors
    assert errors[0].startswith("error: ")
    assert f"{raw}, line {line}: " in errors[0]
    assert len(errors[0]) < 700  # a long line is quoted cut short
    assert not out.exists()
    assert raw.read_bytes() == before
    code, out = prepare(tmp_path, raw, dataset, "skip")
    assert code == 0
    meta = json.loads((out / features.METADATA_FILE).read_text())
    assert meta["rows"]["bad_lines"] == bad
    assert meta["rows"]["read"] == sum(map(len, good.values())) + bad
    assert records(out) == good
    assert raw.read_bytes() == before
    return errors[0]


def test_invalid_utf8_ids_are_bad_lines(tmp_path, capsys):
    raw = tmp_path / "ratings.csv"
    good = good_lines([f"u{u}" for u in range(1, 30)] + ["usér"], time=False)
    # Two raw users that "replace" decoding would merge into one.
    bad = [b"u294\xff,%d,4" % i for i in range(1, 6)]
    bad += [b"u294\xfe,%d,4" % i for i in range(1, 6)]
    write(raw, good[:50] + bad + good[50:])
    message = check_both(tmp_path, capsys, raw, "csv", 51, 10, expected(good))
    assert "user id" in message and "not valid UTF-8" in message
    assert "\\xff" in message


@pytest.mark.parametrize("dataset", ["ml-20m", "csv"])
def test_nan_inf_and_out_of_scale_ratings(tmp_path, capsys, dataset):
    raw = tmp_path / "ratings.csv"
    header = ["userId,movieId,rating,timestamp"] if dataset == "ml-20m" else []
    good = good_lines(range(1, 31), time=dataset == "ml-20m")
    tail = ",0" if dataset == "ml-20m" else ""
    values = ["nan", "NaN", "inf", "-inf", "Infinity", "1e400"]
    out_of_scale = ["7.5", "0.0", "-1"]
    bad = [f"{100 + k},1,{v}{tail}" for k, v in enumerate(values)]
    kept = []
    if dataset == "ml-20m":
        bad += [f"{200 + k},1,{v}{tail}" for k, v in enumerate(out_of_scale)]
    else:  # no scale: any finite rating is read (7.5 > 3.5: a click)
        kept = [f"300,{i},7.5" for i in range(1, 6)]
    write(raw, header + good[:100] + bad + kept + good[100:])
    want = expected(good + kept)
    line = len(header) + 101
    message = check_both(tmp_path, capsys, raw, dataset, line, len(bad), want)
    assert "rating 'nan' is not finite" in message


def test_huge_field_and_int64_overflow(tmp_path, capsys):
    raw = tmp_path / "ratings.csv"
    good = good_lines(range(1, 31))
    bad = [
        f"{BIG},1,4.0,0",
        "99999999999999999999,1,4.0,0",
        f"1,{2**63},4.0,0",
        f"1,2,{BIG},0",
        f"x{BIG},2,4.0,0",
    ]
    header = "userId,movieId,rating,timestamp"
    write(raw, [header] + good[:70] + bad + good[70:])
    message = check_both(
        tmp_path, capsys, raw, "ml-20m", 72, len(bad), expected(good)
    )
    assert "user id '99999" in message and "is beyond int64" in message
    assert f"... ({len(bad[0])} characters)" in message


def test_long_string_ids_are_ids(tmp_path, capsys):
    """String-id layouts read a 1 MB id, also in a range re-read line by
    line for another bad line."""
    raw = tmp_path / "ratings.csv"
    users = [f"u{u}" for u in range(1, 30)] + [BIG]
    good = good_lines(users, time=False)
    write(raw, good[:10] + ["only,two"] + good[10:])
    check_both(tmp_path, capsys, raw, "csv", 11, 1, expected(good))


def test_bom_keeps_line_numbers_and_first_row(tmp_path, capsys):
    raw = tmp_path / "u.data"
    good = good_lines(range(1, 1001), sep="\t")  # 8000 lines
    lines = good[:4999] + ["12\t7\tfive\t0"] + good[4999:]
    write(raw, lines, prefix=BOM)
    want = expected(good, sep="\t")
    assert want["1"] == [str(i) for i in range(1, ITEMS + 1)]
    message = check_both(tmp_path, capsys, raw, "ml-100k", 5000, 1, want)
    assert "'12\\t7\\tfive\\t0'" in message


# The readers directly: cheaper cases, and the layouts too slow to prepare.


def read_all(path, layout, on_bad_lines="error", chunk_bytes=1 << 20):
    files = resolve_raw_files(str(path), layout)
    tables, rows, bad = [], 0, 0
    for rng in plan_ranges(files, chunk_bytes):
        table, n, b = read_range(rng, layout, on_bad_lines)
        tables.append(table)
        rows, bad = rows + n, bad + b
    return pa.concat_tables(tables).to_pydict(), rows, bad


def test_bom_before_a_header(tmp_path):
    path = tmp_path / "ratings.csv"
    lines = ["userId,movieId,rating,timestamp", "1,2,3.5,10", "2,x,4,0"]
    write(path, lines, prefix=BOM)
    got, rows, bad = read_all(path, cfg.MOVIELENS_CSV, "skip")
    assert (got["user"], got["item"], rows, bad) == ([1], [2], 2, 1)
    with pytest.raises(BadLineError, match="line 3: "):
        read_all(path, cfg.MOVIELENS_CSV)


@pytest.mark.parametrize("chunk_bytes", [1 << 20, 16])
def test_netflix_bom_and_bad_values(tmp_path, chunk_bytes):
    path = tmp_path / "combined_data_1.txt"
    lines = [
        "1:",
        "10,3,2005-09-06",
        "11,nan,2005-09-06",
        "12,6,2005-09-06",
        f"{2**63},4,2005-09-06",
        "13,5,2005-09-06",
        f"{2**64}:",
        "14,5,2005-09-06",
        "2:",
        "15,1,2005-09-06",
    ]
    write(path, lines, prefix=BOM)
    got, rows, bad = read_all(path, cfg.NETFLIX, "skip", chunk_bytes)
    assert list(zip(got["user"], got["item"])) == [(10, 1), (13, 1), (15, 2)]
    assert (rows, bad) == (8, 5)
    with pytest.raises(BadLineError, match="line 3: rating 'nan' is not"):
        read_all(path, cfg.NETFLIX, chunk_bytes=chunk_bytes)


def test_msd_play_counts(tmp_path):
    path = tmp_path / "train_triplets.txt"
    lines = ["a\tx\t3", "b\tx\t0", "c\tx\tnan", "d\tx\tmany", "e\tx\t1"]
    write(path, lines)
    got, rows, bad = read_all(path, cfg.MSD_TRIPLETS, "skip")
    assert (got["user"], rows, bad) == (["a", "e"], 5, 3)
    with pytest.raises(BadLineError, match=r"line 2: play_count '0' is out"):
        read_all(path, cfg.MSD_TRIPLETS)


def test_strict_numbers_in_the_line_by_line_path(tmp_path):
    """Python's int() and float() read what pyarrow refuses (digit
    separators, non-ASCII digits): bad lines on both paths alike."""
    path = tmp_path / "u.data"
    lines = ["1\t2\t5\t0", "1_0\t2\t5\t0", "\u0663\t2\t5\t0", "2\t2\t1_0\t0"]
    write(path, lines)
    got, rows, bad = read_all(path, cfg.MOVIELENS_100K, "skip")
    assert (got["user"], rows, bad) == ([1], 4, 3)


def test_empty_string_id_is_a_bad_line(tmp_path):
    path = tmp_path / "ratings.csv"
    write(path, ["a,x,4", ",x,4", "b,x,4"])
    got, rows, bad = read_all(path, cfg.CSV, "skip")
    assert (got["user"], rows, bad) == (["a", "b"], 3, 1)
    with pytest.raises(BadLineError, match="line 2: empty user id"):
        read_all(path, cfg.CSV)


def test_long_line_is_quoted_cut_short(tmp_path):
    path = tmp_path / "ratings.csv"
    write(path, ["a,x,4", "b,x," + "7" * 5000 + "x"])
    with pytest.raises(BadLineError) as err:
        read_all(path, cfg.CSV)
    assert str(err.value).count("7") < 300
    assert "... (5005 characters)" in str(err.value)
