"""Data prep's scratch directory, and what a killed run leaves there
(standard library only).

A run's staging directory beside ``--out`` and its swap into place are
:mod:`tf_multvae.staging`'s. What is temporary for the whole run, a
generated synthetic raw file and Beam's own temporary folders, goes into a
scratch directory ``tf_multvae-prep-ID/`` in the system's temporary
directory (:class:`Scratch`: TMPDIR points there for the run and its
workers), with the same owner file; the next run removes those whose
owner is no longer running (:func:`remove_dead_scratch`).
"""

from __future__ import annotations

import os
import shutil
import tempfile

from tf_multvae import staging

SCRATCH_PREFIX = "tf_multvae-prep-"


def remove_dead_scratch() -> list[str]:
    """Removes the scratch directories of data-prep runs that have exited."""
    root = tempfile.gettempdir()
    if os.path.basename(root).startswith(SCRATCH_PREFIX):  # inside a run's
        root = os.path.dirname(root)
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return []
    found = [
        os.path.join(root, e)
        for e in entries
        if e.startswith(SCRATCH_PREFIX) and os.path.isdir(os.path.join(root, e))
    ]
    return staging.remove_dead(found, "scratch folder(s)")


class Scratch:
    """The run's scratch directory, and TMPDIR pointing at it meanwhile.

    Used as a context manager: on exit (success, failure or an exception)
    the directory is removed and the temporary-directory settings are
    restored."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix=SCRATCH_PREFIX)
        staging.mark(self.path)
        self._saved = None

    def __enter__(self) -> Scratch:
        self._saved = (tempfile.tempdir, os.environ.get("TMPDIR"))
        tempfile.tempdir = self.path
        os.environ["TMPDIR"] = self.path
        return self

    def __exit__(self, *exc) -> None:
        tempdir, env = self._saved
        tempfile.tempdir = tempdir
        if env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = env
        shutil.rmtree(self.path, ignore_errors=True)
