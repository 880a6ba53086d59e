"""Raw files -> byte ranges -> columnar batches of ratings.

The pipeline never reads a whole raw file in one place: the driver cuts every
file into byte ranges and each worker parses its ranges into an Arrow table
(fast path: pyarrow's CSV parser). A range that the fast path rejects is
re-read line by line to name the bad line (file, line number, text) or, with
``--on-bad-lines skip``, to drop and count it.

Every row carries an ``order`` key, ``file_index << 40 | position``, that
increases with the row's place in the raw files; the held-out draws need each
user's clicks in raw-file order (DESIGN.md §2).
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from data_prep.config import ITEM
from data_prep.config import RATING
from data_prep.config import USER
from data_prep.config import Layout

ORDER = "order"
FILE_SHIFT = 40  # files up to 1 TiB; 2**23 files
_ALT_SEP = "\x1f"  # stands in for a multi-character separator


class DataPrepError(Exception):
    """Bad input or parameters; the message is meant for the user."""


class BadLineError(DataPrepError):
    def __init__(self, path: str, line_number: int, line: str, why: str):
        super().__init__(
            f"{path}, line {line_number}: {why}: {line!r} "
            "(use --on-bad-lines skip to drop and count such lines)"
        )


@dataclass(frozen=True)
class ByteRange:
    """Lines that *start* in [start, end) of one file."""

    file_index: int
    path: str
    start: int
    end: int


def resolve_raw_files(raw: str, layout: Layout) -> list[str]:
    """Expands ``--raw`` (a file, a directory or a glob) into files.

    Raises:
        DataPrepError: nothing matches, or every match is empty.
    """
    if not raw:
        raise DataPrepError("--raw is required for this dataset")
    directory = not any(ch in raw for ch in "*?[") and _is_dir(raw)
    if directory:
        patterns = [FileSystems.join(raw, p) for p in layout.file_patterns]
    else:
        patterns = [raw]
    for pattern in patterns:
        matched = FileSystems.match([pattern])[0].metadata_list
        files = sorted(
            (m.path, m.size_in_bytes)
            for m in matched
            if not _basename(m.path).startswith(".")
        )
        if files:
            break
    else:
        if directory:
            raise DataPrepError(
                f"--raw {raw}: no file matching any of "
                f"{', '.join(layout.file_patterns)} in that directory"
            )
        raise DataPrepError(f"--raw {raw}: no such file")
    if sum(size for _, size in files) == 0:
        raise DataPrepError(f"--raw {raw}: the raw files are empty")
    return [path for path, _ in files]


def _is_dir(path: str) -> bool:
    return os.path.isdir(path) if "://" not in path else path.endswith("/")


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def plan_ranges(files: list[str], chunk_bytes: int) -> list[ByteRange]:
    """Cuts files into ranges of about ``chunk_bytes`` each."""
    if chunk_bytes < 1:
        raise DataPrepError(f"--chunk-mb must be positive, got {chunk_bytes}")
    if len(files) >= 1 << (63 - FILE_SHIFT):
        raise DataPrepError(f"too many raw files ({len(files)})")
    ranges = []
    for index, path in enumerate(files):
        size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
        for start in range(0, max(size, 1), chunk_bytes):
            ranges.append(
                ByteRange(index, path, start, min(start + chunk_bytes, size))
            )
    return ranges


def _open(path: str):
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def read_range_bytes(rng: ByteRange) -> tuple[bytes, int]:
    """Returns the whole lines starting in the range and their file offset."""
    with _open(rng.path) as f:
        pos = rng.start
        if pos > 0:
            f.seek(pos - 1)
            pos += len(f.readline()) - 1
        if pos >= rng.end:
            return b"", pos
        f.seek(pos)
        data = f.read(rng.end - pos)
        if data and not data.endswith(b"\n"):
            data += f.readline()
    return data, pos


def line_number(path: str, offset: int) -> int:
    """1-based number of the line starting at byte ``offset`` (error path)."""
    count, pos = 1, 0
    with _open(path) as f:
        while pos < offset:
            block = f.read(min(1 << 24, offset - pos))
            if not block:
                break
            count += block.count(b"\n")
            pos += len(block)
    return count


def arrow_id_type(layout: Layout) -> pa.DataType:
    """The Arrow type of the layout's user and item ids."""
    return pa.int64() if layout.id_type == "int" else pa.string()


def empty_table(layout: Layout) -> pa.Table:
    id_type = arrow_id_type(layout)
    return pa.table(
        {
            USER: pa.array([], id_type),
            ITEM: pa.array([], id_type),
            RATING: pa.array([], pa.float64()),
            ORDER: pa.array([], pa.int64()),
        }
    )


def read_range(
    rng: ByteRange, layout: Layout, on_bad_lines: str
) -> tuple[pa.Table, int, int]:
    """Parses one byte range.

    Returns:
        (table, rows_read, bad_lines). ``table`` has columns user, item,
        rating (float64; 1.0 where the layout has no rating) and order.

    Raises:
        BadLineError: a malformed line and ``on_bad_lines == "error"``.
    """
    data, offset = read_range_bytes(rng)
    skip_first = layout.header and offset == 0
    if skip_first:
        newline = data.find(b"\n")
        offset += len(data) if newline < 0 else newline + 1
        data = b"" if newline < 0 else data[newline + 1 :]
    if not data.strip():
        return empty_table(layout), 0, 0
    base = (rng.file_index << FILE_SHIFT) + offset
    if layout.kind == "netflix":
        table, bad = _read_netflix(data, offset, rng, layout, on_bad_lines)
    else:
        table, bad = _read_delimited(data, offset, rng, layout, on_bad_lines)
    table = table.set_column(
        table.schema.get_field_index(ORDER),
        ORDER,
        pc.add(table[ORDER], base),
    )
    return table, table.num_rows + bad, bad


def _arrow_types(layout: Layout, columns: tuple[str, ...]) -> dict:
    id_type = arrow_id_type(layout)
    types = {c: id_type for c in (USER, ITEM) if c in columns}
    if RATING in columns:
        types[RATING] = pa.float64()
    return types


def _fast_parse(data: bytes, layout: Layout, columns: tuple[str, ...]):
    sep = layout.sep
    if len(sep) > 1:
        data, sep = data.replace(sep.encode(), _ALT_SEP.encode()), _ALT_SEP
    types = _arrow_types(layout, columns)
    return pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(
            column_names=list(columns), use_threads=False, block_size=1 << 24
        ),
        parse_options=pacsv.ParseOptions(delimiter=sep),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            include_columns=list(types),
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _finish(table: pa.Table, layout: Layout, order: np.ndarray) -> pa.Table:
    n = table.num_rows
    rating = (
        table[RATING]
        if RATING in table.column_names
        else pa.array(np.ones(n), pa.float64())
    )
    return pa.table(
        {
            USER: table[USER],
            ITEM: table[ITEM],
            RATING: rating,
            ORDER: pa.array(order, pa.int64()),
        }
    )


def _read_delimited(data, offset, rng, layout, on_bad_lines):
    try:
        table = _fast_parse(data, layout, layout.columns)
        return _finish(table, layout, np.arange(table.num_rows)), 0
    except pa.ArrowInvalid:
        rows, bad = _slow_parse(data, offset, rng, layout, on_bad_lines)
        return rows, bad


def _parse_field(value: str, id_type: str):
    if id_type == "int":
        return int(value)
    if not value:
        raise ValueError("empty id")
    return value


def _split_line(line: str, sep: str) -> list[str]:
    if len(sep) > 1:
        return line.split(sep)
    return next(csv.reader([line], delimiter=sep))


def _slow_parse(data, offset, rng, layout, on_bad_lines, columns=None):
    """Line-by-line parse of a range: names or skips malformed lines."""
    columns = columns or layout.columns
    roles = {c: columns.index(c) for c in (USER, ITEM, RATING) if c in columns}
    users, items, ratings, order = [], [], [], []
    bad = 0
    for index, raw_line in enumerate(data.split(b"\n")):
        line = raw_line.decode("utf-8", errors="replace").rstrip("\r")
        if not line.strip():
            continue
        fields = _split_line(line, layout.sep)
        try:
            if len(fields) != len(columns):
                raise ValueError(
                    f"expected {len(columns)} fields "
                    f"({layout.sep!r}-separated), found {len(fields)}"
                )
            user = _parse_field(fields[roles[USER]], layout.id_type)
            item = (
                _parse_field(fields[roles[ITEM]], layout.id_type)
                if ITEM in roles
                else None
            )
            rating = float(fields[roles[RATING]]) if RATING in roles else 1.0
        except ValueError as err:
            if on_bad_lines == "skip":
                bad += 1
                continue
            first = line_number(rng.path, offset)
            raise BadLineError(rng.path, first + index, line, str(err))
        users.append(user)
        items.append(item)
        ratings.append(rating)
        order.append(index)
    id_type = arrow_id_type(layout)
    table = pa.table(
        {
            USER: pa.array(users, id_type),
            ITEM: pa.array(items, id_type),
            RATING: pa.array(ratings, pa.float64()),
            ORDER: pa.array(order, pa.int64()),
        }
    )
    return table, bad


# A Netflix movie header: "123:" alone on its line.
_NETFLIX_HEADER = re.compile(rb"^[ \t]*(\d+):[ \t\r]*(?:\n|\Z)", re.M)


def _preceding_movie(rng: ByteRange, offset: int) -> int | None:
    """The MovieID header in force at ``offset`` (scans backwards)."""
    block = 1 << 20
    end = offset
    with _open(rng.path) as f:
        while end > 0:
            start = max(0, end - block)
            f.seek(start)
            text = f.read(end - start)
            # Only trust headers that start at a line start inside the block.
            headers = list(_NETFLIX_HEADER.finditer(text))
            if start > 0:
                headers = [h for h in headers if h.start() > 0]
            if headers:
                return int(headers[-1].group(1))
            # Overlap so a header cut by the block edge is seen whole.
            end = start + 64 if start > 0 else 0
            if start == 0:
                break
    return None


def _read_netflix(data, offset, rng, layout, on_bad_lines):
    """``MovieID:`` blocks of ``CustomerID,Rating,Date`` lines."""
    headers = list(_NETFLIX_HEADER.finditer(data))
    starts = [0] + [h.end() for h in headers]
    ends = [h.start() for h in headers] + [len(data)]
    movies = [None] + [int(h.group(1)) for h in headers]
    parts, bad = [], 0
    for movie, start, end in zip(movies, starts, ends):
        segment = data[start:end]
        if not segment.strip():
            continue
        if start == 0 and offset > 0:
            movie = _preceding_movie(rng, offset)
        if movie is None:
            first = segment.split(b"\n", 1)[0].decode(errors="replace")
            if on_bad_lines == "skip":
                bad += segment.strip().count(b"\n") + 1
                continue
            raise BadLineError(
                rng.path,
                line_number(rng.path, offset + start),
                first,
                "rating line before any 'MovieID:' header",
            )
        try:
            table = _fast_parse(segment, layout, layout.columns)
            order = np.arange(table.num_rows)
        except pa.ArrowInvalid:
            table, seg_bad = _slow_parse(
                segment, offset + start, rng, layout, on_bad_lines
            )
            bad += seg_bad
            order = table[ORDER].to_numpy()
        n = table.num_rows
        parts.append(
            pa.table(
                {
                    USER: table[USER],
                    ITEM: pa.array(np.full(n, movie), pa.int64()),
                    RATING: table[RATING],
                    # Position of the block in the range keeps file order.
                    ORDER: pa.array(order + start, pa.int64()),
                }
            )
        )
    if not parts:
        return empty_table(layout), bad
    return pa.concat_tables(parts), bad
