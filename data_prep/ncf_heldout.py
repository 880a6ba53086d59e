"""NCF's two test files: each user's test item and negatives, checked.

``NAME.test.rating`` and ``NAME.test.negative`` hold one line per user;
:func:`read_heldout` parses and cross-checks them into a :class:`HeldOut`,
which every group of users of the train file is joined with
(:mod:`data_prep.ncf`); :meth:`HeldOut.check_group` checks a group's
training items against it. Every error names the file and the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from data_prep.errors import DataPrepError
from data_prep.ncf_files import NcfFiles
from data_prep.ncf_files import find_train_line
from data_prep.ncf_files import line_error
from data_prep.ncf_files import lines
from data_prep.ncf_files import parse_id
from data_prep.ncf_files import rating_fields
from data_prep.ncf_files import read_line

_HEADER = re.compile(r"\(([0-9]+),([0-9]+)\)")
_NEGATIVE_LINE = re.compile(r"\([0-9]+,[0-9]+\)(?:\t[0-9]+)+")


@dataclass
class HeldOut:
    """Each user's test item and negatives, by user id ascending.

    Attributes:
        files: the dataset's files (for messages).
        users: int64 ``[n]``, sorted, unique.
        items: int64 ``[n]``, the user's test item.
        negatives: int64 ``[n, k]``, the user's negatives in file order.
        test_lines, negative_lines: int64 ``[n]``, the user's line in
            ``files.test`` and ``files.negative``.
    """

    files: NcfFiles
    users: np.ndarray
    items: np.ndarray
    negatives: np.ndarray
    test_lines: np.ndarray
    negative_lines: np.ndarray

    def group_bounds(self, n_groups: int) -> np.ndarray:
        """The first user of each of ``n_groups`` runs of consecutive test
        users (for :func:`group_of`)."""
        start = np.linspace(0, self.users.size, n_groups, endpoint=False)
        return self.users[start.astype(np.int64)]

    def check_group(self, rows, users, offsets, index, test, negatives):
        """Raises DataPrepError unless a group's training users are its
        test users (``self.users[rows]``) and no user's test item or
        negative is one of its training items.

        Args:
            rows: the group's positions in this object's arrays.
            users, offsets, index: the group's training users, sorted,
                and their sorted unique items (as vocabulary indices),
                user ``j``'s ``index[offsets[j]:offsets[j + 1]]``.
            test, negatives: ``[len(rows)]`` and ``[len(rows), k]``, the
                test items and negatives as vocabulary indices.
        """
        files = self.files
        extra = np.setdiff1d(users, self.users[rows])
        if extra.size:
            user = int(extra[0])
            raise DataPrepError(
                f"{files.train}, line {find_train_line(files.train, user)}: "
                f"user {user} has no line in {files.test} (nor in "
                f"{files.negative})"
            )
        missing = np.flatnonzero(~np.isin(self.users[rows], users))
        if missing.size:
            j = rows[missing[0]]
            raise DataPrepError(
                f"{files.test}, line {self.test_lines[j]}: user "
                f"{self.users[j]} has no line in {files.train}"
            )
        width = int(max(index.max(initial=0), negatives.max(initial=0))) + 1
        position = np.arange(rows.size)
        train = np.repeat(position, np.diff(offsets)) * width + index
        clash = np.isin(position * width + test, train)
        if clash.any():
            j = rows[np.argmax(clash)]
            user, item = int(self.users[j]), int(self.items[j])
            raise self._error(
                files.test,
                int(self.test_lines[j]),
                f"user {user}'s test item {item} is also one of the user's "
                f"training items",
                user,
                item,
            )
        clash = np.isin(position[:, None] * width + negatives, train)
        if clash.any():
            j, column = np.unravel_index(np.argmax(clash), clash.shape)
            user = int(self.users[rows[j]])
            item = int(self.negatives[rows[j], column])
            raise self._error(
                files.negative,
                int(self.negative_lines[rows[j]]),
                f"negative item {item} (field {column + 2}) of user {user} "
                "is one of the user's training items",
                user,
                item,
            )

    def _error(self, path, number, why, user, item) -> DataPrepError:
        train = self.files.train
        why += f" ({train}, line {find_train_line(train, user, item)})"
        return line_error(path, number, read_line(path, number), why)


def group_of(bounds: np.ndarray, users: np.ndarray) -> np.ndarray:
    """Each user's group, by :meth:`HeldOut.group_bounds`: groups in order
    hold the users in order."""
    return np.maximum(np.searchsorted(bounds, users, "right") - 1, 0)


def _test_rows(path: str) -> dict[int, tuple[int, int]]:
    """user -> (test item, line) of a test.rating file."""
    rows = {}
    for number, line in lines(path):
        try:
            fields = rating_fields(line)
            user = parse_id(fields[0], "user")
            item = parse_id(fields[1], "item")
        except ValueError as err:
            raise line_error(path, number, line, str(err))
        if user in rows:
            why = f"user {user} has a second line (the first is line "
            raise line_error(path, number, line, f"{why}{rows[user][1]})")
        rows[user] = item, number
    return rows


def _negative_row(line: str, fields: int | None):
    """(user, item, negatives) of a test.negative line; ValueError if bad.

    Args:
        fields: the number of fields every line must have (the first
            line's), or None for the first line.
    """
    parts = line.split("\t")
    if fields is not None and len(parts) != fields:
        raise ValueError(
            f"expected {fields} tab-separated fields ((user,item) and "
            f"{fields - 1} negatives, as the first line), found {len(parts)}"
        )
    if not _NEGATIVE_LINE.fullmatch(line):
        if _HEADER.fullmatch(parts[0]) is None:
            raise ValueError(f"the first field {parts[0]!r} is not (user,item)")
        if len(parts) < 2:
            raise ValueError("no negatives after (user,item)")
        for text in parts[1:]:
            parse_id(text, "negative item")
    header = _HEADER.fullmatch(parts[0])
    negatives = np.array(parts[1:], np.int64)
    return int(header.group(1)), int(header.group(2)), negatives


def read_heldout(files: NcfFiles) -> HeldOut:
    """Parses and cross-checks the two test files (one line per user).

    Raises:
        DataPrepError: a malformed line, a user with two lines in one file
            or a line in one file only, or a ``(user,item)`` whose item is
            not the user's test item; each named by file and line.
    """
    tests = _test_rows(files.test)
    if not tests:
        raise DataPrepError(f"{files.test} has no lines")
    seen, width, negatives = {}, None, []
    for number, line in lines(files.negative):
        try:
            user, item, row = _negative_row(line, width)
        except ValueError as err:
            raise line_error(files.negative, number, line, str(err))
        width = row.size + 1
        if user in seen:
            why = f"user {user} has a second line (the first is line "
            why += f"{seen[user]})"
        elif user not in tests:
            why = f"user {user} has no line in {files.test}"
        elif item != tests[user][0]:
            test_item, test_line = tests[user]
            why = (
                f"({user},{item}) names item {item} but user {user}'s test "
                f"item is {test_item} ({files.test}, line {test_line})"
            )
        else:
            seen[user] = number
            negatives.append((user, row))
            continue
        raise line_error(files.negative, number, line, why)
    for user, (_, number) in tests.items():
        if user not in seen:
            raise DataPrepError(
                f"{files.test}, line {number}: user {user} has no line in "
                f"{files.negative}"
            )
    negatives.sort(key=lambda pair: pair[0])
    users = [user for user, _ in negatives]
    return HeldOut(
        files=files,
        users=np.array(users, np.int64),
        items=np.array([tests[u][0] for u in users], np.int64),
        negatives=np.stack([row for _, row in negatives]),
        test_lines=np.array([tests[u][1] for u in users], np.int64),
        negative_lines=np.array([seen[u] for u in users], np.int64),
    )
