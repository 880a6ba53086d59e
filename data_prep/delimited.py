"""Parsing delimited lines (one rating per line) into an Arrow table.

The fast path is pyarrow's CSV parser over a whole byte range. A range it
rejects is re-read line by line (:func:`slow_parse`) to name the bad line
(file, line number, text) or, with ``--on-bad-lines skip``, to drop and
count it.

Every reader returns the same table: columns user, item, rating (float64;
1.0 where the layout has no rating) and :data:`ORDER`, the row's place in
the raw files. The table's types (:func:`arrow_id_type`,
:func:`empty_table`) are defined here, where every parse ends, and
re-exported by :mod:`data_prep.readers`.
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from data_prep.config import ITEM
from data_prep.config import RATING
from data_prep.config import USER
from data_prep.config import Layout
from data_prep.errors import BadLineError
from data_prep.ranges import ByteRange
from data_prep.ranges import line_number

ORDER = "order"
_ALT_SEP = "\x1f"  # stands in for a multi-character separator


def arrow_id_type(layout: Layout) -> pa.DataType:
    """The Arrow type of the layout's user and item ids."""
    return pa.int64() if layout.id_type == "int" else pa.string()


def empty_table(layout: Layout) -> pa.Table:
    """A table with a reader's columns and no rows."""
    id_type = arrow_id_type(layout)
    return pa.table(
        {
            USER: pa.array([], id_type),
            ITEM: pa.array([], id_type),
            RATING: pa.array([], pa.float64()),
            ORDER: pa.array([], pa.int64()),
        }
    )


def _arrow_types(layout: Layout, columns: tuple[str, ...]) -> dict:
    id_type = arrow_id_type(layout)
    types = {c: id_type for c in (USER, ITEM) if c in columns}
    if RATING in columns:
        types[RATING] = pa.float64()
    return types


def fast_parse(
    data: bytes, layout: Layout, columns: tuple[str, ...]
) -> pa.Table:
    """pyarrow's CSV parser over ``data``: the columns with a role.

    Raises:
        pyarrow.ArrowInvalid: some line does not parse.
    """
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


def _finish(table: pa.Table, order: np.ndarray) -> pa.Table:
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


def read_delimited(
    data: bytes,
    offset: int,
    rng: ByteRange,
    layout: Layout,
    on_bad_lines: str,
) -> tuple[pa.Table, int]:
    """Parses the whole lines of a range (one rating per line).

    Args:
        data: the lines, as :func:`data_prep.ranges.read_range_bytes`
            returns them (header line already removed).
        offset: the byte offset of ``data`` in the file.
        rng: the range, for the file's path in error messages.
        layout: the raw layout.
        on_bad_lines: "error" or "skip".

    Returns:
        (table, bad_lines); ``order`` is the row's index within ``data``.

    Raises:
        BadLineError: a malformed line and ``on_bad_lines == "error"``.
    """
    try:
        table = fast_parse(data, layout, layout.columns)
        return _finish(table, np.arange(table.num_rows)), 0
    except pa.ArrowInvalid:
        return slow_parse(data, offset, rng, layout, on_bad_lines)


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


def slow_parse(
    data: bytes,
    offset: int,
    rng: ByteRange,
    layout: Layout,
    on_bad_lines: str,
) -> tuple[pa.Table, int]:
    """Line-by-line parse of a range: names or skips malformed lines.

    Args are those of :func:`read_delimited`.

    Returns:
        (table, bad_lines); ``order`` is the line's index within ``data``.

    Raises:
        BadLineError: a malformed line and ``on_bad_lines == "error"``.
    """
    columns = layout.columns
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
