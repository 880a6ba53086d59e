"""The errors data prep raises for the user (standard library only).

Every data_prep module raises these; ``python -m data_prep`` turns them,
even when Beam has wrapped them in its own exceptions, into one
``error: MESSAGE`` line and exit code 2.
"""

from __future__ import annotations


class DataPrepError(Exception):
    """Bad input or parameters; the message is meant for the user."""


class BadLineError(DataPrepError):
    """A malformed line of a raw file, named by file, number and text."""

    def __init__(self, path: str, line_number: int, line: str, why: str):
        super().__init__(
            f"{path}, line {line_number}: {why}: {line!r} "
            "(use --on-bad-lines skip to drop and count such lines)"
        )
