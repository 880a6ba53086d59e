"""The errors data prep raises for the user (standard library only).

Every data_prep module raises these; ``python -m data_prep`` turns them,
even when Beam has wrapped them in its own exceptions, into one
``error: MESSAGE`` line and exit code 2.
"""

from __future__ import annotations

# A bad line is quoted up to this many characters (bytes, when it is not
# valid UTF-8), then "..." and its length.
QUOTE_LIMIT = 200


class DataPrepError(Exception):
    """Bad input or parameters; the message is meant for the user."""


def quote_line(line: str | bytes, limit: int = QUOTE_LIMIT) -> str:
    """A raw line for a message: escaped, and cut after ``limit``.

    A line of bytes that is valid UTF-8 is quoted as text; one that is not
    is quoted as bytes (``b'u294\\xff,...'``), so every odd byte shows.
    """
    unit = "characters"
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            unit = "bytes"
    if len(line) <= limit:
        return repr(line)
    return f"{line[:limit]!r}... ({len(line)} {unit})"


class BadLineError(DataPrepError):
    """A malformed line of a raw file, named by file, number and text."""

    def __init__(
        self, path: str, line_number: int, line: str | bytes, why: str
    ):
        super().__init__(
            f"{path}, line {line_number}: {why}: {quote_line(line)} "
            "(use --on-bad-lines skip to drop and count such lines)"
        )
