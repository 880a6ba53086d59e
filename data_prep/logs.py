"""Quiet by default: data prep's own account on stdout, the rest in a log.

Beam logs every stage at INFO and its worker processes print their own
logs and tracebacks; a user needs a few lines of progress and, on an
error, one line. So for one run :func:`routed` sends the logging of this
process and of its workers (:mod:`data_prep.worker`) to a log file, which
is removed when the run succeeds unless ``--log-file`` named it, and is
kept and named when it fails. ``--verbose`` sends everything to stderr,
as Beam would.

Records logged while the modules load (before the flags are known) are
held by :func:`hold_import_logs` and then go where the run's go.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import sys

from data_prep import worker
from tf_multvae import cli

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_held = logging.handlers.MemoryHandler(1 << 16, flushLevel=logging.CRITICAL + 1)


def hold_import_logs() -> None:
    """Keeps records logged from now until :func:`routed` (call it before
    importing Beam: its import logs warnings on the root logger)."""
    root = logging.getLogger()
    if _held not in root.handlers:
        root.addHandler(_held)


@contextlib.contextmanager
def routed(verbose: bool, log_file: str | None):
    """Routes the run's logging; yields the log file's path (None when
    ``verbose``: everything goes to stderr)."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, os.environ.get(worker.LOG_ENV))
    for handler in saved[0]:
        root.removeHandler(handler)
    path, own = None, False
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
    else:
        own = log_file is None and cli.current_log() is None
        path = log_file or cli.current_log() or cli.log_path("data_prep")
        path = os.path.abspath(path)
        handler = logging.FileHandler(path, delay=False)
        os.environ[worker.LOG_ENV] = path
        cli.set_log(path)
    handler.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    _held.setTarget(handler)
    _held.flush()
    _held.setTarget(None)
    logging.captureWarnings(True)
    ok = False
    try:
        yield path
        ok = True
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        handler.close()
        for handler in saved[0]:
            if handler is not _held:
                root.addHandler(handler)
        root.setLevel(saved[1])
        if saved[2] is None:
            os.environ.pop(worker.LOG_ENV, None)
        else:
            os.environ[worker.LOG_ENV] = saved[2]
        if own and ok:
            with contextlib.suppress(OSError):
                os.remove(path)
