"""One raw field -> one value, strictly, for the line-by-line path.

These refuse all that pyarrow's CSV parser (the fast path) refuses, so a
line's fate does not depend on its neighbours: Python's own ``int`` and
``float`` would also read digit separators (``1_0``) and non-ASCII
digits. (pyarrow alone reads a hex integer, ``0x10``.) Each parser raises
ValueError naming the field, making its line a bad line. Ids must be valid
UTF-8 (lines are decoded with ``surrogateescape``, so odd bytes survive to
be refused), integers must fit int64, and numbers must be finite and
inside the layout's ``value_range``.
"""

from __future__ import annotations

import datetime
import math
import re

from data_prep.config import DATE
from data_prep.config import RATING
from data_prep.config import Layout
from data_prep.errors import quote_line

DAY_SECONDS = 86_400
_EPOCH = datetime.date(1970, 1, 1)


def number_columns(layout: Layout) -> list[str]:
    """The numeric columns read and checked: rating, the value_range's."""
    columns = [RATING] if layout.has_rating else []
    if layout.value_range and layout.value_range[0] not in columns:
        columns.append(layout.value_range[0])
    return columns


def bounds(layout: Layout, column: str) -> tuple[float, float]:
    low, high = -math.inf, math.inf
    if layout.value_range and layout.value_range[0] == column:
        _, lo, hi = layout.value_range
        low = low if lo is None else lo
        high = high if hi is None else hi
    return low, high


_INT = re.compile(r"-?[0-9]+", re.ASCII)
_FLOAT = re.compile(
    r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|[+-]?(?:nan|inf|infinity)",
    re.ASCII | re.IGNORECASE,
)
INT64 = 2**63


def _shown(value: str) -> str:
    """A field for a message (long ones cut, as lines are)."""
    return quote_line(value.encode("utf-8", "surrogateescape"), 40)


def _integer(value: str) -> int | None:
    """An ASCII decimal integer, or None; longer ones than int64's are
    returned as just past it (not parsed: Python refuses long digits)."""
    value = value.strip()
    if not _INT.fullmatch(value):
        return None
    if len(value.lstrip("-").lstrip("0")) > 19:
        return INT64
    return int(value)


def parse_id(value: str, role: str, id_type: str):
    if id_type == "int":
        number = _integer(value)
        if number is None:
            raise ValueError(f"{role} id {_shown(value)} is not an integer")
        if not -INT64 <= number < INT64:
            raise ValueError(f"{role} id {_shown(value)} is beyond int64")
        return number
    if not value:
        raise ValueError(f"empty {role} id")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"{role} id {_shown(value)} is not valid UTF-8"
        ) from None
    return value


def parse_number(value: str, column: str, layout: Layout) -> float:
    if not _FLOAT.fullmatch(value.strip()):
        raise ValueError(
            f"could not convert {column} {_shown(value)} to a number"
        )
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{column} {_shown(value)} is not finite")
    low, high = bounds(layout, column)
    if not low <= number <= high:
        raise ValueError(
            f"{column} {_shown(value)} is outside [{low:g}, {high:g}]"
        )
    return number


def parse_time(value: str, role: str) -> int:
    """One time field as int64 seconds, or ValueError naming it."""
    try:
        if role == DATE:
            day = datetime.date.fromisoformat(value.strip())
            return (day - _EPOCH).days * DAY_SECONDS
        seconds = _integer(value)
        if seconds is None:
            raise ValueError
    except ValueError:
        kind = "a YYYY-MM-DD date" if role == DATE else "integer seconds"
        raise ValueError(f"{role} {_shown(value)} is not {kind}") from None
    if not -INT64 <= seconds < INT64:
        raise ValueError(f"{role} {_shown(value)} is out of the int64 range")
    return seconds
