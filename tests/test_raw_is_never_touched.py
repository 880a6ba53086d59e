"""Data prep never destroys a user's raw input or other files.

``--out`` equal to, inside or holding a ``--raw`` path is refused before
anything runs, even with ``--overwrite``, and the raw files stay byte for
byte what they were; ``--overwrite`` replaces only a prepared dataset (or
an empty directory), never a file or a directory of something else.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from conftest import IN_PROCESS

from data_prep import pipeline

CSV = "".join(f"{u},{i},5\n" for u in range(12) for i in range(u % 5, 9))


def _digest(root) -> dict:
    """path -> sha256 of every file under ``root`` (or of the file)."""
    paths = [root] if os.path.isfile(root) else [
        os.path.join(d, f) for d, _, files in os.walk(root) for f in files
    ]  # fmt: skip
    return {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in paths}


def _prep(raw, out, *flags):
    return pipeline.main(
        ["--dataset", "csv", "--raw", str(raw), "--columns",
         "user,item,rating", "--heldout-users", "2", "--out", str(out),
         *flags, *IN_PROCESS]
    )  # fmt: skip


@pytest.fixture
def raw_dir(tmp_path):
    directory = tmp_path / "raw"
    directory.mkdir()
    (directory / "ratings.csv").write_text(CSV)
    return directory


@pytest.mark.parametrize(
    "where",
    ["the raw directory", "the raw file", "inside the raw directory",
     "a directory holding the raw file"],
)  # fmt: skip
def test_out_overlapping_raw_is_refused(raw_dir, tmp_path, capsys, where):
    raw, out = {
        "the raw directory": (raw_dir, raw_dir),
        "the raw file": (raw_dir / "ratings.csv", raw_dir / "ratings.csv"),
        "inside the raw directory": (raw_dir, raw_dir / "prepared"),
        "a directory holding the raw file": (
            raw_dir / "ratings.csv",
            raw_dir,
        ),
    }[where]
    before = _digest(str(raw_dir))
    assert _prep(raw, out, "--overwrite") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out ") and "overlaps the raw input" in err
    assert err.count("\n") == 1
    assert _digest(str(raw_dir)) == before  # nothing changed, nothing added
    assert os.listdir(tmp_path) == ["raw"]  # no staging left beside it


def test_raw_inside_an_existing_dataset_is_refused(raw_dir, tmp_path, capsys):
    out = tmp_path / "data"
    assert _prep(raw_dir, out) == 0
    inner = out / "copy.csv"
    inner.write_text(CSV)
    before = _digest(str(out))
    assert _prep(inner, out, "--overwrite") == 2
    assert "overlaps the raw input" in capsys.readouterr().err
    assert _digest(str(out)) == before


def test_ncf_out_over_its_files_is_refused(tmp_path, capsys):
    prefix = tmp_path / "ncf" / "tiny"
    prefix.parent.mkdir()
    (tmp_path / "ncf" / "tiny.train.rating").write_text("0\t1\t4\t0\n")
    (tmp_path / "ncf" / "tiny.test.rating").write_text("0\t2\t4\t0\n")
    (tmp_path / "ncf" / "tiny.test.negative").write_text("(0,2)\t3\n")
    before = _digest(str(prefix.parent))
    code = pipeline.main(
        ["--dataset", "ncf", "--raw", str(prefix), "--out",
         str(prefix.parent), "--overwrite", *IN_PROCESS]
    )  # fmt: skip
    assert code == 2
    assert "overlaps the raw input" in capsys.readouterr().err
    assert _digest(str(prefix.parent)) == before


def test_an_out_beside_raw_still_works(raw_dir, tmp_path):
    before = _digest(str(raw_dir))
    assert _prep(raw_dir / "ratings.csv", tmp_path / "raw-prepared") == 0
    assert _digest(str(raw_dir)) == before


def test_an_out_that_is_a_file_is_refused(raw_dir, tmp_path, capsys):
    out = tmp_path / "notes.txt"
    out.write_text("the user's own file\n")
    assert _prep(raw_dir, out, "--overwrite") == 2
    err = capsys.readouterr().err
    assert f"--out {out} is a file, not a dataset directory" in err
    assert out.read_text() == "the user's own file\n"


def test_overwrite_replaces_only_a_prepared_dataset(raw_dir, tmp_path, capsys):
    out = tmp_path / "documents"
    out.mkdir()
    (out / "thesis.tex").write_text("chapter 1\n")
    before = _digest(str(out))
    assert _prep(raw_dir, out, "--overwrite") == 2
    assert "not a prepared dataset, so --overwrite will not replace it" in (
        capsys.readouterr().err
    )
    assert _digest(str(out)) == before
    # A prepared dataset there is replaced; an empty directory is filled.
    dataset = tmp_path / "data"
    assert _prep(raw_dir, dataset) == 0
    assert _prep(raw_dir, dataset, "--overwrite") == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _prep(raw_dir, empty, "--overwrite") == 0
    assert (empty / "metadata.json").exists()
