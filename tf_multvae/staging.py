"""Writing a directory beside its final place and swapping it in, so
that a killed process never leaves half of one, and the next run recovers
what it left (standard library only).

Data prep's datasets and export's SavedModel versions are written this
way. Beside the final directory ``DIR`` a writer keeps:

- ``.DIR.tmp-ID/``: the staging directory it writes into, with an owner
  file naming the process (pid, start time, host);
- ``.DIR.swap.json``: while the finished staging directory replaces
  ``DIR`` (written before the first rename, removed after the last);
- ``.DIR.old-ID/``: the directory being replaced, for the moment between
  the two renames.

A run removes its own on success and on failure. A run that was killed
cannot, so the next run for the same ``DIR`` calls :func:`recover` first:
it finishes an interrupted swap (or, when the new directory is gone,
restores the old one), removes staging directories whose owner is no
longer running, and returns one line per thing it did, which the command
prints.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
import uuid

from tf_multvae import rundir

OWNER_FILE = ".owner"
STALE_SECONDS = 3600


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), or None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _owner() -> dict:
    pid = os.getpid()
    return {"pid": pid, "start": _start_time(pid), "host": socket.gethostname()}


def _alive(owner: dict) -> bool:
    """Whether the process an owner record names is still running.

    A record from another host is taken as alive (never touched); a pid
    that now belongs to a process started at another time is not."""
    if owner.get("host") != socket.gethostname():
        return True
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    start = _start_time(pid)
    return start is None or owner.get("start") in (None, start)


def _read_owner(directory: str) -> dict | None:
    try:
        with open(os.path.join(directory, OWNER_FILE)) as f:
            owner = json.load(f)
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def mark(directory: str) -> None:
    """Writes the owner file of this process into ``directory``."""
    with open(os.path.join(directory, OWNER_FILE), "w") as f:
        json.dump(_owner(), f)


def _names(out: str) -> tuple[str, str]:
    """(parent directory, base name) of a local ``out``."""
    out = os.path.abspath(out).rstrip("/")
    return os.path.dirname(out), os.path.basename(out)


def journal_path(out: str) -> str:
    parent, name = _names(out)
    return os.path.join(parent, f".{name}.swap.json")


def staging_dir(out: str) -> str:
    """A fresh, owned staging directory beside a local ``out``."""
    parent, name = _names(out)
    path = os.path.join(parent, f".{name}.tmp-{uuid.uuid4().hex[:8]}")
    os.makedirs(path)
    mark(path)
    return path


def swap_into_place(staging: str, out: str) -> None:
    """Renames a finished ``staging`` to ``out``, replacing an old ``out``.

    Two renames; a journal written before the first lets the next run
    finish the swap when this process is killed between them."""
    out = os.path.abspath(out)
    os.remove(os.path.join(staging, OWNER_FILE))
    parent, name = _names(out)
    old = os.path.join(parent, f".{name}.old-{uuid.uuid4().hex[:8]}")
    rundir.write_json(
        journal_path(out), {**_owner(), "new": staging, "old": old}
    )
    if os.path.exists(out):
        os.rename(out, old)
    os.rename(staging, out)
    shutil.rmtree(old, ignore_errors=True)
    os.remove(journal_path(out))


def _size_mb(path: str) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total / (1 << 20)


def _finish_swap(out: str, complete_file: str) -> list[str]:
    """Completes or undoes the swap a dead process left in its journal."""
    path = journal_path(out)
    try:
        with open(path) as f:
            journal = json.load(f)
    except FileNotFoundError:
        return []
    except (OSError, ValueError):  # written atomically: never half, but
        os.remove(path)  # a stray one must not block every next run
        return []
    if _alive(journal):
        return []
    new, old = journal.get("new", ""), journal.get("old", "")
    said = []
    complete = bool(new) and os.path.isfile(os.path.join(new, complete_file))
    if complete:
        if os.path.exists(out) and old:
            os.rename(out, old)
        os.rename(new, out)
        said.append(
            f"finished the swap that an interrupted run began: {out} now "
            "holds the dataset it prepared"
        )
    elif not os.path.exists(out) and old and os.path.isdir(old):
        os.rename(old, out)
        said.append(
            f"restored {out}: an interrupted run had moved it aside to "
            f"{old} and left no finished dataset to replace it"
        )
    if old and os.path.isdir(old):
        shutil.rmtree(old, ignore_errors=True)
    os.remove(path)
    return said


def _restore_legacy(out: str, complete_file: str) -> list[str]:
    """Earlier versions moved ``out`` to ``.NAME.tmp-ID.old`` before the
    second rename, with no journal: with ``out`` missing, put it back."""
    parent, name = _names(out)
    if os.path.exists(out) or not os.path.isdir(parent):
        return []
    for entry in sorted(os.listdir(parent)):
        old = os.path.join(parent, entry)
        if (
            entry.startswith(f".{name}.tmp-")
            and entry.endswith(".old")
            and os.path.isfile(os.path.join(old, complete_file))
        ):
            os.rename(old, out)
            return [
                f"restored {out}: an interrupted --overwrite had left it "
                f"only in {old}"
            ]
    return []


def _dead(path: str) -> bool:
    """Whether a staging or scratch directory belongs to no running run.

    One with no owner file comes from an earlier version (or is being
    created this instant): dead once untouched for an hour."""
    owner = _read_owner(path)
    if owner is not None:
        return not _alive(owner)
    try:
        return time.time() - os.path.getmtime(path) > STALE_SECONDS
    except OSError:
        return False


def remove_dead(directories: list[str], what: str) -> list[str]:
    """Removes those of ``directories`` no running process owns; says so."""
    dead = [path for path in directories if _dead(path)]
    if not dead:
        return []
    size = sum(_size_mb(path) for path in dead)
    for path in dead:
        shutil.rmtree(path, ignore_errors=True)
    return [
        f"removed {len(dead)} {what} of an interrupted run "
        f"({size:.1f} MB): {', '.join(dead)}"
    ]


def recover(out: str, complete_file: str) -> list[str]:
    """Cleans up after a killed run for a local ``out``; says what it did.

    ``complete_file``: the file a finished directory holds (a dataset's
    metadata.json, a SavedModel's saved_model.pb).

    Finishes (or undoes) an interrupted swap into ``out``, then removes
    the staging directories beside ``out`` whose owner has exited.
    Directories of a run still going are left alone."""
    said = _finish_swap(out, complete_file)
    with contextlib.suppress(OSError):  # a journal killed mid-write
        os.remove(journal_path(out) + rundir.TMP)
    said += _restore_legacy(out, complete_file)
    parent, name = _names(out)
    if os.path.isdir(parent):
        prefix = f".{name}.tmp-"
        staging = [
            os.path.join(parent, e)
            for e in sorted(os.listdir(parent))
            if e.startswith(prefix) or e.startswith(f".{name}.old-")
        ]
        said += remove_dead(
            [p for p in staging if os.path.isdir(p)], "staging folder(s)"
        )
    return said
