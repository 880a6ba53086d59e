"""The Netflix Prize layout: ``MovieID:`` header lines, then that movie's
``CustomerID,Rating,Date`` lines.

A byte range may start in the middle of a movie's block; its first lines
then belong to the last header before the range, which
:func:`preceding_movie` finds by scanning the file backwards. The Date
field is parsed only when asked (``timestamps``), as the day's midnight in
int64 seconds.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

from data_prep.config import ITEM
from data_prep.config import RATING
from data_prep.config import USER
from data_prep.config import Layout
from data_prep.delimited import ORDER
from data_prep.delimited import TIME
from data_prep.delimited import empty_table
from data_prep.delimited import fast_parse
from data_prep.delimited import slow_parse
from data_prep.delimited import values_ok
from data_prep.errors import BadLineError
from data_prep.fields import INT64
from data_prep.ranges import BOM
from data_prep.ranges import ByteRange
from data_prep.ranges import line_number
from data_prep.ranges import open_raw

# A Netflix movie header: "123:" alone on its line.
_NETFLIX_HEADER = re.compile(rb"^[ \t]*(\d+):[ \t\r]*(?:\n|\Z)", re.M)


def preceding_movie(rng: ByteRange, offset: int) -> int | None:
    """The MovieID header in force at ``offset`` (scans backwards)."""
    block = 1 << 20
    end = offset
    with open_raw(rng.path) as f:
        while end > 0:
            start = max(0, end - block)
            f.seek(start)
            text = f.read(end - start)
            if start == 0 and text.startswith(BOM):
                text = b" " * len(BOM) + text[len(BOM) :]
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


def read_netflix(
    data: bytes,
    offset: int,
    rng: ByteRange,
    layout: Layout,
    on_bad_lines: str,
    timestamps: bool = False,
) -> tuple[pa.Table, int]:
    """Parses the whole lines of a range of ``MovieID:`` blocks.

    Args are those of :func:`data_prep.delimited.read_delimited`.

    Returns:
        (table, bad_lines); ``order`` is the row's byte-and-line position
        within ``data``, increasing in file order.

    Raises:
        BadLineError: a malformed line, a MovieID beyond int64, or rating
            lines before any header, and ``on_bad_lines == "error"``.
    """
    headers = list(_NETFLIX_HEADER.finditer(data))
    starts = [0] + [h.end() for h in headers]
    ends = [h.start() for h in headers] + [len(data)]
    movies = [None] + [int(h.group(1)) for h in headers]
    parts, bad = [], 0
    for at, movie, start, end in zip([None, *headers], movies, starts, ends):
        segment = data[start:end]
        if at is not None and movie >= INT64:
            # The header is the bad line; its ratings belong to no movie.
            if on_bad_lines == "error":
                raise BadLineError(
                    rng.path,
                    line_number(rng.path, offset + at.start()),
                    at.group(0).strip(),
                    f"MovieID {movie} is beyond int64",
                )
            bad += 1 + _count_lines(segment)
            continue
        if not segment.strip():
            continue
        if start == 0 and offset > 0:
            movie = preceding_movie(rng, offset)
        why = "rating line before any 'MovieID:' header"
        if movie is not None and movie >= INT64:
            why = f"rating line under MovieID {movie}, beyond int64"
        elif movie is not None:
            why = None
        if why is not None:
            if on_bad_lines == "skip":
                bad += _count_lines(segment)
                continue
            raise BadLineError(
                rng.path,
                line_number(rng.path, offset + start),
                segment.split(b"\n", 1)[0].rstrip(b"\r"),
                why,
            )
        try:
            table = fast_parse(segment, layout, layout.columns, timestamps)
        except pa.ArrowInvalid:
            table = None
        if table is not None and values_ok(table, layout):
            order = np.arange(table.num_rows)
        else:
            table, seg_bad = slow_parse(
                segment, offset + start, rng, layout, on_bad_lines, timestamps
            )
            bad += seg_bad
            order = table[ORDER].to_numpy()
        n = table.num_rows
        columns = {
            USER: table[USER],
            ITEM: pa.array(np.full(n, movie), pa.int64()),
            RATING: table[RATING],
            # Position of the block in the range keeps file order.
            ORDER: pa.array(order + start, pa.int64()),
        }
        if timestamps:
            columns[TIME] = table[TIME]
        parts.append(pa.table(columns))
    if not parts:
        return empty_table(layout, timestamps), bad
    return pa.concat_tables(parts), bad


def _count_lines(segment: bytes) -> int:
    """The non-blank lines of a segment."""
    return sum(1 for line in segment.split(b"\n") if line.strip())
