"""Readers on the real raw layouts, checked against pandas parses."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import shared_file

from data_prep import config as cfg
from data_prep.errors import BadLineError
from data_prep.errors import DataPrepError
from data_prep.ranges import plan_ranges
from data_prep.ranges import resolve_raw_files
from data_prep.readers import read_range


def read_all(path, layout, chunk_bytes=1 << 26, on_bad_lines="error"):
    """Reads every range of ``path``; returns a frame in ``order`` order."""
    files = resolve_raw_files(str(path), layout)
    tables, rows, bad = [], 0, 0
    for rng in plan_ranges(files, chunk_bytes):
        table, n, b = read_range(rng, layout, on_bad_lines)
        tables.append(table)
        rows, bad = rows + n, bad + b
    frame = pa.concat_tables(tables).to_pandas()
    assert frame["order"].is_monotonic_increasing
    assert frame["order"].is_unique
    return frame.reset_index(drop=True), rows, bad


def assert_rows(frame, expected):
    """Same (user, item, rating) rows in the same (raw-file) order."""
    expected = expected.reset_index(drop=True)
    assert len(frame) == len(expected)
    for column in ("user", "item", "rating"):
        got = frame[column].to_numpy()
        want = expected[column].to_numpy()
        if got.dtype == object or want.dtype == object:
            got, want = got.astype(str), want.astype(str)
        np.testing.assert_array_equal(got, want, err_msg=column)


MOVIELENS_NAMES = ["user", "item", "rating", "timestamp"]


@pytest.mark.parametrize(
    "relative",
    [
        "format-samples/movielens-20m/ratings.csv",
        "format-samples/movielens-25m/ratings.csv",
        "ml-latest-small/ratings.csv",
    ],
)
@pytest.mark.parametrize("chunk_bytes", [1 << 26, 4096])
def test_movielens_csv(relative, chunk_bytes):
    path = shared_file(relative)
    frame, rows, bad = read_all(path, cfg.MOVIELENS_CSV, chunk_bytes)
    expected = pd.read_csv(path, names=MOVIELENS_NAMES, header=0)
    assert_rows(frame, expected)
    assert (rows, bad) == (len(expected), 0)
    assert frame["user"].dtype == np.int64


def test_movielens_1m_dat():
    path = shared_file("format-samples/movielens-1m/ratings.head53.dat")
    frame, rows, _ = read_all(path, cfg.MOVIELENS_DAT, chunk_bytes=300)
    expected = pd.read_csv(
        path, sep="::", engine="python", names=MOVIELENS_NAMES
    )
    assert_rows(frame, expected)
    assert rows == 53


def test_movielens_100k_directory():
    path = shared_file("ml-100k/u.data")
    frame, rows, _ = read_all(path.parent, cfg.MOVIELENS_100K, 1 << 18)
    expected = pd.read_csv(path, sep="\t", names=MOVIELENS_NAMES)
    assert_rows(frame, expected)
    assert rows == 100_000


def test_ml1m_dense_tsv_as_csv():
    path = shared_file("ml-1m/ratings_dense.tsv")
    layout = cfg.Layout(
        "delimited", "\t", True, ("user", "item", "rating"), "str", ("*",)
    )
    frame, rows, _ = read_all(path, layout, chunk_bytes=1 << 22)
    expected = pd.read_csv(path, sep="\t")
    assert_rows(frame, expected)
    assert rows == 1_000_209


def test_lastfm_crlf_tab_without_rating():
    path = shared_file("lastfm-hetrec2011/user_artists.dat")
    layout = cfg.Layout(
        "delimited", "\t", True, ("user", "item", "weight"), "str", ("*",)
    )
    frame, rows, _ = read_all(path, layout, chunk_bytes=100_000)
    expected = pd.read_csv(path, sep="\t")
    expected.columns = ["user", "item", "weight"]
    expected["rating"] = 1.0  # no rating column: every row is a click
    assert_rows(frame, expected)
    assert rows == 92_834


def test_msd_triplets_string_ids():
    path = shared_file(
        "format-samples/msd-taste-profile/"
        "kaggle_visible_evaluation_triplets.head.txt"
    )
    frame, rows, _ = read_all(path, cfg.MSD_TRIPLETS, chunk_bytes=500)
    expected = pd.read_csv(path, sep="\t", names=["user", "item", "count"])
    expected["rating"] = 1.0
    assert_rows(frame, expected)
    assert rows == 44
    assert frame["item"].str.startswith("SO").all()


def netflix_expected():
    path = shared_file(
        "format-samples/netflix-prize/mv_0000011.head40.with_movie_id.csv"
    )
    frame = pd.read_csv(path, names=["item", "user", "rating", "date"])
    return frame[["user", "item", "rating"]]


def test_netflix_training_set_layout(tmp_path):
    sample = shared_file("format-samples/netflix-prize/mv_0000011.head40.txt")
    folder = tmp_path / "training_set"
    folder.mkdir()
    (folder / "mv_0000011.txt").write_bytes(sample.read_bytes())
    frame, rows, _ = read_all(tmp_path, cfg.NETFLIX)
    assert_rows(frame, netflix_expected())
    assert rows == 40


@pytest.mark.parametrize("chunk_bytes", [1 << 20, 97])
def test_netflix_combined_layout_across_ranges(tmp_path, chunk_bytes):
    """combined_data files concatenate movie blocks; a range that starts
    mid-block must find its movie header before the range."""
    expected = netflix_expected()
    lines = (
        shared_file("format-samples/netflix-prize/mv_0000011.head40.txt")
        .read_text()
        .splitlines()[1:]
    )
    # The real rows, cut into blocks of three movies over two files.
    blocks = [("11", lines[:15]), ("12", lines[15:30]), ("13", lines[30:])]
    (tmp_path / "combined_data_1.txt").write_text(
        "".join(f"{m}:\n" + "\n".join(rows) + "\n" for m, rows in blocks[:2])
    )
    (tmp_path / "combined_data_2.txt").write_text(
        f"{blocks[2][0]}:\n" + "\n".join(blocks[2][1]) + "\n"
    )
    frame, rows, _ = read_all(tmp_path, cfg.NETFLIX, chunk_bytes)
    expected = expected.assign(item=[11] * 15 + [12] * 15 + [13] * 10)
    assert_rows(frame, expected)


def test_ranges_cover_every_line_once(tmp_path):
    path = tmp_path / "r.csv"
    rows = [f"{u},{i},{(u + i) % 5 + 1}" for u in range(50) for i in range(7)]
    path.write_text("\n".join(rows))  # no trailing newline
    layout = cfg.Layout(
        "delimited", ",", False, ("user", "item", "rating"), "int", ("*",)
    )
    for chunk in (1, 7, 64, 1 << 20):
        frame, n, _ = read_all(path, layout, chunk)
        assert n == len(rows)
        got = [
            f"{u},{i},{int(r)}"
            for u, i, r in frame[["user", "item", "rating"]].itertuples(
                index=False
            )
        ]
        assert got == rows


def test_bad_line_names_file_line_and_text(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(
        "userId,movieId,rating,timestamp\n1,2,3.5,10\n1,3,4.0,11\n"
        "2,5,4.0\n2,6,5.0,12\n"
    )
    with pytest.raises(BadLineError) as err:
        read_all(path, cfg.MOVIELENS_CSV)
    message = str(err.value)
    assert str(path) in message and "line 4" in message
    assert "'2,5,4.0'" in message and "expected 4 fields" in message


def test_bad_rating_in_a_later_range(tmp_path):
    path = tmp_path / "ratings.csv"
    good = [f"{u},{u + 1},4.0,0" for u in range(1, 200)]
    lines = ["userId,movieId,rating,timestamp"] + good + ["7,8,great,0"]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadLineError, match=r"line 201: could not convert"):
        read_all(path, cfg.MOVIELENS_CSV, chunk_bytes=512)


def test_skip_counts_bad_lines(tmp_path):
    path = tmp_path / "u.data"
    path.write_text("1\t2\t5\t0\nbroken line\n1\t3\tx\t0\n2\t2\t4\t0\n")
    frame, rows, bad = read_all(path, cfg.MOVIELENS_100K, on_bad_lines="skip")
    assert (rows, bad) == (4, 2)
    assert frame[["user", "item"]].values.tolist() == [[1, 2], [2, 2]]


def test_netflix_rows_before_any_header(tmp_path):
    path = tmp_path / "combined_data_1.txt"
    path.write_text("1488844,3,2005-09-06\n11:\n822109,5,2005-05-13\n")
    with pytest.raises(BadLineError, match="before any 'MovieID:' header"):
        read_all(path, cfg.NETFLIX)


def test_missing_and_empty_raw_paths(tmp_path):
    with pytest.raises(DataPrepError, match="no such file"):
        resolve_raw_files(str(tmp_path / "nope.csv"), cfg.MOVIELENS_CSV)
    with pytest.raises(
        DataPrepError, match="no file matching any of ratings.csv"
    ):
        resolve_raw_files(str(tmp_path), cfg.MOVIELENS_CSV)
    (tmp_path / "ratings.csv").write_text("")
    with pytest.raises(DataPrepError, match="empty"):
        resolve_raw_files(str(tmp_path), cfg.MOVIELENS_CSV)


def test_pure_modules_import_without_beam():
    """The readers, the numpy split, the presets, the synthetic generator
    and the pandas reference import no Apache Beam (a fresh process)."""
    modules = [
        "data_prep.errors",
        "data_prep.counters",
        "data_prep.config",
        "data_prep.split",
        "data_prep.synthetic",
        "data_prep.notebook_reference",
        "data_prep.ranges",
        "data_prep.delimited",
        "data_prep.netflix",
        "data_prep.readers",
        "data_prep.fields",
        "data_prep.leave_one_out",
        "data_prep.flags",
    ]
    code = (
        f"import sys, {', '.join(modules)};print('apache_beam' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip().splitlines()[-1] == "False"


def test_errors_module_imports_only_the_standard_library():
    """data_prep.errors is importable anywhere: no numpy, pyarrow, Beam."""
    code = (
        "import sys; before = set(sys.modules); import data_prep.errors;"
        "new = {m.split('.')[0] for m in set(sys.modules) - before};"
        "print(sorted(new - set(sys.stdlib_module_names)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip().splitlines()[-1] == "['data_prep']"
