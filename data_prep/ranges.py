"""Raw files -> byte ranges, and reading a range's whole lines.

The driver never reads a whole raw file: :func:`plan_ranges` cuts every
file into ranges of about ``--chunk-mb`` and each worker reads the lines
that *start* in its range (:func:`read_range_bytes`).

Paths go through Beam's FileSystems, so ``--raw`` may be local or on any
filesystem the runner reaches (gs://, s3://, hdfs://). Beam is imported on
the first file access, not with this module, so that the parsing modules
stay importable (and testable) without it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO

from data_prep.config import Layout
from data_prep.errors import DataPrepError

FILE_SHIFT = 40  # files up to 1 TiB; 2**23 files
BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark, dropped at a file's start


@dataclass(frozen=True)
class ByteRange:
    """Lines that *start* in [start, end) of one file."""

    file_index: int
    path: str
    start: int
    end: int


def _filesystems():
    """Beam's FileSystems (imported here: see the module docstring)."""
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def resolve_raw_files(raw: str, layout: Layout) -> list[str]:
    """Expands ``--raw`` (a file, a directory or a glob) into files.

    Raises:
        DataPrepError: nothing matches, or every match is empty.
    """
    if not raw:
        raise DataPrepError("--raw is required for this dataset")
    fs = _filesystems()
    directory = not any(ch in raw for ch in "*?[") and _is_dir(raw)
    if directory:
        patterns = [fs.join(raw, p) for p in layout.file_patterns]
    else:
        patterns = [raw]
    for pattern in patterns:
        matched = fs.match([pattern])[0].metadata_list
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
    fs = _filesystems()
    ranges = []
    for index, path in enumerate(files):
        size = fs.match([path])[0].metadata_list[0].size_in_bytes
        for start in range(0, max(size, 1), chunk_bytes):
            ranges.append(
                ByteRange(index, path, start, min(start + chunk_bytes, size))
            )
    return ranges


def open_raw(path: str) -> BinaryIO:
    """Opens a raw file for binary reading, uncompressed, on any filesystem."""
    from apache_beam.io.filesystem import CompressionTypes

    return _filesystems().open(
        path, compression_type=CompressionTypes.UNCOMPRESSED
    )


def read_range_bytes(rng: ByteRange) -> tuple[bytes, int]:
    """Returns the whole lines starting in the range and their file offset."""
    with open_raw(rng.path) as f:
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
    with open_raw(path) as f:
        while pos < offset:
            block = f.read(min(1 << 24, offset - pos))
            if not block:
                break
            count += block.count(b"\n")
            pos += len(block)
    return count
