"""Parsing delimited lines (one rating per line) into an Arrow table.

The fast path is pyarrow's CSV parser over a whole byte range. A range it
rejects, or whose values :func:`values_ok` refuses (an empty or non-UTF-8
id, a NaN, infinite or out-of-range number), is re-read line by line
(:func:`slow_parse`) to name the bad line (file, line number, text) or,
with ``--on-bad-lines skip``, to drop and count it.

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
from data_prep.fields import DAY_SECONDS
from data_prep.fields import bounds
from data_prep.fields import number_columns
from data_prep.fields import parse_id
from data_prep.fields import parse_number
from data_prep.fields import parse_time
from data_prep.ranges import ByteRange
from data_prep.ranges import line_number

ORDER = "order"
TIME = "time"
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
    for column in number_columns(layout):
        if column in columns:
            types[column] = pa.float64()
    time = layout.time_column
    if timestamps and time in columns:
        types[time] = pa.date32() if time == DATE else pa.int64()
    return types


def values_ok(table: pa.Table, layout: Layout) -> bool:
    """Whether a fast-parsed table holds no value a bad line would have:
    an empty string id, a NaN or infinite number, one out of its range."""
    if layout.id_type == "str":
        for column in (USER, ITEM):
            if column in table.column_names and table.num_rows:
                if pc.min(pc.utf8_length(table[column])).as_py() == 0:
                    return False
    for column in number_columns(layout):
        if column not in table.column_names or not table.num_rows:
            continue
        values = table[column]
        if not pc.all(pc.is_finite(values)).as_py():
            return False
        low, high = bounds(layout, column)
        extremes = pc.min_max(values)
        if extremes["min"].as_py() < low or extremes["max"].as_py() > high:
            return False
    return True


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
    except pa.ArrowInvalid:
        table = None
    if table is not None and values_ok(table, layout):
        return _finish(table, np.arange(table.num_rows)), 0
    return slow_parse(data, offset, rng, layout, on_bad_lines, timestamps)


def _split_line(line: str, sep: str) -> list[str]:
    if len(sep) > 1 or '"' not in line:
        return line.split(sep)
    try:
        return next(csv.reader([line], delimiter=sep))
    except csv.Error as err:
        raise ValueError(f"unreadable quoted field ({err})") from None


def _parse_line(line: bytes, layout: Layout, time: str | None) -> tuple:
    """(user, item, rating, time) of one line, or ValueError saying why."""
    columns = layout.columns
    fields = _split_line(line.decode("utf-8", "surrogateescape"), layout.sep)
    if len(fields) != len(columns):
        raise ValueError(
            f"expected {len(columns)} fields "
            f"({layout.sep!r}-separated), found {len(fields)}"
        )
    row = dict(zip(columns, fields))
    user = parse_id(row[USER], USER, layout.id_type)
    item = parse_id(row[ITEM], ITEM, layout.id_type) if ITEM in row else None
    numbers = {
        c: parse_number(row[c], c, layout) for c in number_columns(layout)
    }
    seconds = parse_time(row[time], time) if time in row else None
    return user, item, numbers.get(RATING, 1.0), seconds


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
    time = layout.time_column if timestamps else None
    rows, order, bad = [], [], 0
    for index, line in enumerate(data.split(b"\n")):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        try:
            rows.append(_parse_line(line, layout, time))
        except ValueError as err:
            if on_bad_lines == "skip":
                bad += 1
                continue
            first = line_number(rng.path, offset)
            raise BadLineError(rng.path, first + index, line, str(err))
        order.append(index)
    users, items, ratings, times = zip(*rows) if rows else ([],) * 4
    id_type = arrow_id_type(layout)
    table = {
        USER: pa.array(users, id_type),
        ITEM: pa.array(items, id_type),
        RATING: pa.array(ratings, pa.float64()),
        ORDER: pa.array(order, pa.int64()),
    }
    if time in layout.columns:
        table[TIME] = pa.array(times, pa.int64())
    return pa.table(table), bad
