"""Parsing delimited lines (one rating per line) into an Arrow table.

The fast path is pyarrow's CSV parser over a whole byte range. A range it
rejects is re-read line by line (:func:`slow_parse`) to name the bad line
(file, line number, text) or, with ``--on-bad-lines skip``, to drop and
count it.

Every reader returns the same table: columns user, item, rating (float64;
1.0 where the layout has no rating) and :data:`ORDER`, the row's place in
the raw files; asked for ``timestamps`` (leave-one-out orders clicks in
time), also :data:`TIME`, the layout's time column as int64 seconds (a
``date`` is its midnight, UTC). Otherwise the time column is not even
parsed, so the paper's protocol reads no faster or slower for having one.
The table's types (:func:`arrow_id_type`, :func:`empty_table`) are defined
here, where every parse ends, and re-exported by :mod:`data_prep.readers`.
"""

from __future__ import annotations

import csv
import datetime
import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from data_prep.config import DATE
from data_prep.config import ITEM
from data_prep.config import RATING
from data_prep.config import USER
from data_prep.config import Layout
from data_prep.errors import BadLineError
from data_prep.ranges import ByteRange
from data_prep.ranges import line_number

ORDER = "order"
TIME = "time"
DAY_SECONDS = 86_400
_EPOCH = datetime.date(1970, 1, 1)
_ALT_SEP = "\x1f"  # stands in for a multi-character separator


def arrow_id_type(layout: Layout) -> pa.DataType:
    """The Arrow type of the layout's user and item ids."""
    return pa.int64() if layout.id_type == "int" else pa.string()


def empty_table(layout: Layout, timestamps: bool = False) -> pa.Table:
    """A table with a reader's columns and no rows."""
    id_type = arrow_id_type(layout)
    columns = {
        USER: pa.array([], id_type),
        ITEM: pa.array([], id_type),
        RATING: pa.array([], pa.float64()),
        ORDER: pa.array([], pa.int64()),
    }
    if timestamps:
        columns[TIME] = pa.array([], pa.int64())
    return pa.table(columns)


def _arrow_types(
    layout: Layout, columns: tuple[str, ...], timestamps: bool
) -> dict:
    id_type = arrow_id_type(layout)
    types = {c: id_type for c in (USER, ITEM) if c in columns}
    if RATING in columns:
        types[RATING] = pa.float64()
    time = layout.time_column
    if timestamps and time in columns:
        types[time] = pa.date32() if time == DATE else pa.int64()
    return types


def _seconds(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A parsed time column as int64 seconds (dates: their midnight)."""
    if pa.types.is_date32(column.type):
        days = pc.cast(column, pa.int32()).cast(pa.int64())
        return pc.multiply(days, DAY_SECONDS)
    return column


def fast_parse(
    data: bytes,
    layout: Layout,
    columns: tuple[str, ...],
    timestamps: bool = False,
) -> pa.Table:
    """pyarrow's CSV parser over ``data``: the columns with a role.

    With ``timestamps`` the layout's time column comes back too, renamed
    :data:`TIME` and in int64 seconds.

    Raises:
        pyarrow.ArrowInvalid: some line does not parse.
    """
    sep = layout.sep
    if len(sep) > 1:
        data, sep = data.replace(sep.encode(), _ALT_SEP.encode()), _ALT_SEP
    types = _arrow_types(layout, columns, timestamps)
    table = pacsv.read_csv(
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
    time = layout.time_column
    if timestamps and time in columns:
        index = table.schema.get_field_index(time)
        table = table.set_column(index, TIME, _seconds(table[time]))
    return table


def _finish(table: pa.Table, order: np.ndarray) -> pa.Table:
    n = table.num_rows
    rating = (
        table[RATING]
        if RATING in table.column_names
        else pa.array(np.ones(n), pa.float64())
    )
    columns = {
        USER: table[USER],
        ITEM: table[ITEM],
        RATING: rating,
        ORDER: pa.array(order, pa.int64()),
    }
    if TIME in table.column_names:
        columns[TIME] = table[TIME]
    return pa.table(columns)


def read_delimited(
    data: bytes,
    offset: int,
    rng: ByteRange,
    layout: Layout,
    on_bad_lines: str,
    timestamps: bool = False,
) -> tuple[pa.Table, int]:
    """Parses the whole lines of a range (one rating per line).

    Args:
        data: the lines, as :func:`data_prep.ranges.read_range_bytes`
            returns them (header line already removed).
        offset: the byte offset of ``data`` in the file.
        rng: the range, for the file's path in error messages.
        layout: the raw layout.
        on_bad_lines: "error" or "skip".
        timestamps: also parse the time column into :data:`TIME`.

    Returns:
        (table, bad_lines); ``order`` is the row's index within ``data``.

    Raises:
        BadLineError: a malformed line and ``on_bad_lines == "error"``.
    """
    try:
        table = fast_parse(data, layout, layout.columns, timestamps)
        return _finish(table, np.arange(table.num_rows)), 0
    except pa.ArrowInvalid:
        return slow_parse(data, offset, rng, layout, on_bad_lines, timestamps)


def _parse_field(value: str, id_type: str):
    if id_type == "int":
        return int(value)
    if not value:
        raise ValueError("empty id")
    return value


def _parse_time(value: str, role: str) -> int:
    """One time field as int64 seconds, or ValueError naming it."""
    try:
        if role == DATE:
            day = datetime.date.fromisoformat(value.strip())
            return (day - _EPOCH).days * DAY_SECONDS
        seconds = int(value)
    except ValueError:
        kind = "a YYYY-MM-DD date" if role == DATE else "integer seconds"
        raise ValueError(f"{role} {value!r} is not {kind}") from None
    if not -(2**63) <= seconds < 2**63:
        raise ValueError(f"{role} {value!r} is out of the int64 range")
    return seconds


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
    timestamps: bool = False,
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
    time = layout.time_column if timestamps else None
    time_at = columns.index(time) if time in columns else None
    users, items, ratings, order, times = [], [], [], [], []
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
            if time_at is not None:
                times.append(_parse_time(fields[time_at], time))
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
    table = {
        USER: pa.array(users, id_type),
        ITEM: pa.array(items, id_type),
        RATING: pa.array(ratings, pa.float64()),
        ORDER: pa.array(order, pa.int64()),
    }
    if time_at is not None:
        table[TIME] = pa.array(times, pa.int64())
    return pa.table(table), bad
