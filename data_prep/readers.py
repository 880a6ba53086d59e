"""Raw files -> columnar batches of ratings: the one entry point.

The pipeline never reads a whole raw file in one place: the driver cuts
every file into byte ranges (:mod:`data_prep.ranges`) and each worker parses
its ranges with :func:`read_range` into an Arrow table, by the layout's
kind: one rating per line (:mod:`data_prep.delimited`) or Netflix's
``MovieID:`` blocks (:mod:`data_prep.netflix`).

Every row carries an :data:`ORDER` key, ``file_index << 40 | position``,
that increases with the row's place in the raw files; the held-out draws
need each user's clicks in raw-file order (docs/design.md, "The paper's
protocol"), and leave-one-out breaks ties in :data:`TIME` with it.

A UTF-8 byte order mark opening a file is dropped, not read as part of its
first line (which is then read, or skipped as the header, as usual).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from data_prep.config import Layout
from data_prep.delimited import ORDER
from data_prep.delimited import TIME
from data_prep.delimited import arrow_id_type
from data_prep.delimited import empty_table
from data_prep.delimited import read_delimited
from data_prep.netflix import read_netflix
from data_prep.ranges import BOM
from data_prep.ranges import FILE_SHIFT
from data_prep.ranges import ByteRange
from data_prep.ranges import read_range_bytes

__all__ = ["ORDER", "TIME", "arrow_id_type", "empty_table", "read_range"]


def read_range(
    rng: ByteRange, layout: Layout, on_bad_lines: str, timestamps: bool = False
) -> tuple[pa.Table, int, int]:
    """Parses one byte range.

    Args:
        timestamps: also parse the layout's time column (int64 seconds).

    Returns:
        (table, rows_read, bad_lines). ``table`` has columns user, item,
        rating (float64; 1.0 where the layout has no rating) and order,
        then with ``timestamps`` time.

    Raises:
        BadLineError: a malformed line and ``on_bad_lines == "error"``.
    """
    data, offset = read_range_bytes(rng)
    skip_first = layout.header and offset == 0
    if offset == 0 and data.startswith(BOM):
        data, offset = data[len(BOM) :], len(BOM)
    if skip_first:
        newline = data.find(b"\n")
        offset += len(data) if newline < 0 else newline + 1
        data = b"" if newline < 0 else data[newline + 1 :]
    if not data.strip():
        return empty_table(layout, timestamps), 0, 0
    base = (rng.file_index << FILE_SHIFT) + offset
    read = read_netflix if layout.kind == "netflix" else read_delimited
    table, bad = read(data, offset, rng, layout, on_bad_lines, timestamps)
    table = table.set_column(
        table.schema.get_field_index(ORDER),
        ORDER,
        pc.add(table[ORDER], base),
    )
    return table, table.num_rows + bad, bad
