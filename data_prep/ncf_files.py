"""NCF's leave-one-out files: finding them and parsing their lines.

NCF (He et al., "Neural Collaborative Filtering", WWW 2017) ships each
dataset as three tab-separated files of 0-based integer ids sharing one
prefix ``NAME``:

- ``NAME.train.rating``: ``user item rating timestamp``, one interaction a
  line; read in byte ranges (:func:`parse_train_range`), never whole;
- ``NAME.test.rating``: the same fields, one line per user: the user's
  held-out interaction;
- ``NAME.test.negative``: ``(user,item)`` and the user's sampled negatives,
  one line per user.

The two test files hold one line per user and are read whole
(:mod:`data_prep.ncf_heldout`). Every malformed line is an error naming
the file, the line number and the line (:func:`line_error`).
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from data_prep.errors import DataPrepError
from data_prep.ranges import ByteRange
from data_prep.ranges import line_number
from data_prep.ranges import open_raw
from data_prep.ranges import read_range_bytes

TRAIN_SUFFIX = ".train.rating"
TEST_SUFFIX = ".test.rating"
NEGATIVE_SUFFIX = ".test.negative"
SUFFIXES = (TRAIN_SUFFIX, TEST_SUFFIX, NEGATIVE_SUFFIX)
RATING_FIELDS = ("user", "item", "rating", "timestamp")
_ID = re.compile(r"[0-9]+")
_QUOTED = 200


@dataclass(frozen=True)
class NcfFiles:
    """The three files of one NCF dataset (any Beam filesystem)."""

    name: str
    train: str
    test: str
    negative: str

    @property
    def paths(self) -> list[str]:
        return [self.train, self.test, self.negative]


def _fs():
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def resolve(raw: str | None) -> NcfFiles:
    """``--raw`` as ``DIR/NAME`` (or one of the files, or a ``DIR`` holding
    exactly one ``*.train.rating``) -> the three files.

    Raises:
        DataPrepError: no ``--raw``, a missing file (named), or a ``DIR``
            with no or several ``*.train.rating``.
    """
    if not raw:
        raise DataPrepError("--raw DIR/NAME is required for --dataset ncf")
    fs = _fs()
    is_dir = os.path.isdir(raw) if "://" not in raw else raw.endswith("/")
    if is_dir:
        matched = fs.match([fs.join(raw, "*" + TRAIN_SUFFIX)])[0]
        found = sorted(m.path for m in matched.metadata_list)
        if len(found) != 1:
            names = ", ".join(os.path.basename(p) for p in found) or "none"
            raise DataPrepError(
                f"--raw {raw}: a directory must hold exactly one "
                f"*{TRAIN_SUFFIX} (found {names}); pass --raw DIR/NAME"
            )
        raw = found[0]
    prefix = raw
    for suffix in SUFFIXES:
        if prefix.endswith(suffix):
            prefix = prefix[: -len(suffix)]
            break
    paths = [prefix + suffix for suffix in SUFFIXES]
    for path in paths:
        if not fs.exists(path):
            raise DataPrepError(f"--raw {raw}: no such file {path}")
    return NcfFiles(prefix.rstrip("/").rsplit("/", 1)[-1], *paths)


def line_error(path: str, number: int, line: str, why: str) -> DataPrepError:
    """The error for line ``number`` of ``path``, its text quoted."""
    if len(line) > _QUOTED:
        line = line[:_QUOTED] + "..."
    return DataPrepError(f"{path}, line {number}: {why}: {line!r}")


def parse_id(text: str, what: str) -> int:
    """A non-negative integer id; ValueError naming ``what`` otherwise."""
    if _ID.fullmatch(text):
        return int(text)
    if text.startswith("-") and _ID.fullmatch(text[1:]):
        raise ValueError(f"{what} id {text} is negative")
    raise ValueError(f"{what} id {text!r} is not a non-negative integer")


def rating_fields(line: str) -> list[str]:
    """The fields of a ``*.rating`` line; ValueError unless there are 4."""
    fields = line.split("\t")
    if len(fields) != len(RATING_FIELDS):
        raise ValueError(
            f"expected {len(RATING_FIELDS)} tab-separated fields "
            f"({', '.join(RATING_FIELDS)}), found {len(fields)}"
        )
    return fields


def _train_row(line: str) -> tuple[int, int]:
    fields = rating_fields(line)
    user = parse_id(fields[0], "user")
    item = parse_id(fields[1], "item")
    try:
        rating = float(fields[2])
    except ValueError:
        raise ValueError(f"rating {fields[2]!r} is not a number") from None
    if not rating > 0:
        raise ValueError(
            f"rating {fields[2]} is not > 0 (NCF's loader skips such lines)"
        )
    return user, item


def _fast_train(data: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """pyarrow's parse of whole lines; None where some line is bad."""
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(
                column_names=list(RATING_FIELDS),
                use_threads=False,
                block_size=1 << 24,
            ),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types={
                    "user": pa.int64(),
                    "item": pa.int64(),
                    "rating": pa.float64(),
                },
                include_columns=["user", "item", "rating"],
                null_values=[],
            ),
        )
    except pa.ArrowInvalid:
        return None
    users = table["user"].to_numpy()
    items = table["item"].to_numpy()
    ratings = table["rating"].to_numpy()
    if users.size and (
        users.min() < 0 or items.min() < 0 or not (ratings > 0).all()
    ):
        return None
    return users, items


def parse_train_range(rng: ByteRange) -> tuple[np.ndarray, np.ndarray]:
    """The (users, items) int64 arrays of the lines starting in ``rng``.

    Raises:
        DataPrepError: a malformed line, named by file, number and text.
    """
    data, offset = read_range_bytes(rng)
    if not data.strip():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    fast = _fast_train(data)
    if fast is not None:
        return fast
    users, items = [], []
    for index, raw_line in enumerate(data.split(b"\n")):
        line = raw_line.decode("utf-8", errors="replace").rstrip("\r")
        if not line.strip():
            continue
        try:
            user, item = _train_row(line)
        except ValueError as err:
            first = line_number(rng.path, offset)
            raise line_error(rng.path, first + index, line, str(err))
        users.append(user)
        items.append(item)
    return np.array(users, np.int64), np.array(items, np.int64)


def find_train_line(path: str, user: int, item: int | None = None):
    """1-based number of the first line of ``user`` (and ``item``) in a
    train file, or None (for error messages only: reads the file)."""
    with open_raw(path) as f:
        text = io.TextIOWrapper(f, errors="replace")
        for number, raw_line in enumerate(text, start=1):
            fields = raw_line.rstrip("\r\n").split("\t")
            try:
                if int(fields[0]) == user and (
                    item is None or int(fields[1]) == item
                ):
                    return number
            except (ValueError, IndexError):
                continue
    return None


def lines(path: str):
    """(number, text) of each non-blank line of a small file."""
    with open_raw(path) as f:
        data = f.read()
    for number, raw_line in enumerate(data.split(b"\n"), start=1):
        line = raw_line.decode("utf-8", errors="replace").rstrip("\r")
        if line.strip():
            yield number, line


def read_line(path: str, number: int) -> str:
    """Line ``number`` (1-based) of a small file, for error messages."""
    for found, line in lines(path):
        if found == number:
            return line
    return ""
