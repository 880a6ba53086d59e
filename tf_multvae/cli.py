"""How every command ends: one line on stderr and an exit code.

The commands (data prep, training, the baselines, the reports, export,
search) report a user's mistake the same way: ``error: MESSAGE`` on one
line and exit code 2; a run that trained but whose loss became NaN exits
with 1. Library code raises; only a command's ``main`` turns the error
into a line and a code, through :func:`call` or :func:`fail`.

Anything else a command meets is a bug or a fault of the machine; the
command still ends with one line, naming the log file that holds the full
trace (:func:`command`), and ``--verbose`` lets it propagate with its
trace instead.

Imports no TensorFlow, so data prep and the light commands can use it.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import tempfile
import time
import traceback
from typing import Callable
from typing import TypeVar

T = TypeVar("T")

OK = 0
FAILED = 1  # the job ran and failed: the loss became NaN, or too little memory
USAGE = 2  # a bad flag, file, line or dataset
INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
VERBOSE = "--verbose"
VERBOSE_HELP = (
    "print everything: the libraries' logs (Beam's, TensorFlow's) and, on "
    "an unexpected error, its full Python trace"
)
# An unexpected error's message is cut after this many characters.
MESSAGE_LIMIT = 300
# The log file the running command writes (set_log); None: a fresh one
# in the system's temporary directory when there is something to log.
_log: str | None = None
# quiet_process's log, and whether a trace was written into it.
_process_log: str | None = None
_trace_written = False

# What a user's mistake raises in library code: a missing file or
# directory (FileNotFoundError, NotADirectoryError are OSErrors the
# library raises on purpose) or a bad value (ValueError).
USER_ERRORS = (
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    ValueError,
)


def finite_float(text: str) -> float:
    """An argparse ``type``: a finite number (NaN and infinities refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, not {text!r}")
    return value


def check_directory(path: str | None, flag: str) -> None:
    """Refuses a ``flag`` naming a path that exists and is not a
    directory (NotADirectoryError, a user error); None passes."""
    if path and os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(f"{flag} {path} is a file, not a directory")


def check_log_file(path: str | None, flag: str = "--log-file") -> None:
    """Refuses a log file ``flag`` that is a directory or whose directory
    does not exist (user errors); None passes."""
    if not path:
        return
    if os.path.isdir(path):
        raise IsADirectoryError(f"{flag} {path} is a directory; name a file")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"{flag} {path}: no directory {parent}")


def fail(message: object, code: int = USAGE) -> int:
    """Prints ``error: message`` to stderr; returns ``code``."""
    print(f"error: {message}", file=sys.stderr)
    return code


def call(fn: Callable[..., T], *args, **kwargs) -> tuple[T | None, int]:
    """``(fn(*args, **kwargs), OK)``, or ``(None, code)`` after an error.

    A user error (:data:`USER_ERRORS`) gives :data:`USAGE`, a diverged
    run (FloatingPointError) :data:`FAILED`; either is printed by
    :func:`fail`. Anything else is a bug and propagates with its trace.
    """
    try:
        return fn(*args, **kwargs), OK
    except USER_ERRORS as err:
        return None, fail(err)
    except FloatingPointError as err:
        return None, fail(err, FAILED)


def add_verbose(parser: argparse.ArgumentParser) -> None:
    """Adds ``--verbose`` (:data:`VERBOSE_HELP`) to a command's parser."""
    parser.add_argument(VERBOSE, action="store_true", help=VERBOSE_HELP)


def log_path(prog: str) -> str:
    """A new log file's path for ``prog``, in the system's temp directory."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{prog.replace('.', '_')}-{stamp}-{os.getpid()}.log"
    return os.path.join(tempfile.gettempdir(), name)


def set_log(path: str | None) -> None:
    """Names the log file the running command writes (None: none yet)."""
    global _log
    _log = path


def current_log() -> str | None:
    """The log file this command writes, if it has one already."""
    return _log or _process_log


def quiet_process(prog: str, argv: list[str] | None = None) -> None:
    """For a command run as a program (``python -m ...``), before it
    imports TensorFlow or Beam: the C++ libraries' logging, which goes
    straight to file descriptor 2 (TensorFlow's and absl's start-up lines,
    gRPC's), goes to a log file instead, while Python's ``sys.stderr``
    (the ``error:`` line, argparse's usage) stays the terminal. Nothing
    is redirected with ``--verbose``. :func:`end_process` removes the log
    unless it holds an unexpected error's trace."""
    global _process_log
    given = sys.argv[1:] if argv is None else argv
    if VERBOSE in given or _process_log:
        return
    path = log_path(prog)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        return
    terminal = os.dup(2)
    sys.stderr.flush()
    os.dup2(fd, 2)
    os.close(fd)
    sys.stderr = open(terminal, "w", buffering=1, closefd=True)
    _process_log = path


def end_process(code: int) -> int:
    """Removes :func:`quiet_process`'s log unless an unexpected error's
    trace is in it (the message named it); returns ``code``."""
    if _process_log and not _trace_written:
        try:
            os.remove(_process_log)
        except OSError:
            pass
    return code


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split()) or "(no message)"
    if len(text) > MESSAGE_LIMIT:
        text = text[:MESSAGE_LIMIT] + "..."
    return text


def unexpected(err: BaseException, prog: str) -> int:
    """Writes ``err``'s trace to the log; one line naming it; FAILED."""
    global _trace_written
    path = current_log() or log_path(prog)
    try:
        with open(path, "a") as f:
            traceback.print_exception(err, file=f)
        _trace_written = True
    except OSError:
        path = None
    where = (
        f"the full trace is in {path}" if path else "the trace was not saved"
    )
    return fail(
        f"unexpected {type(err).__name__}: {_short(err)} ({where}; "
        f"{VERBOSE} prints it here)",
        FAILED,
    )


def command(prog: str) -> Callable:
    """Decorates a command's ``main(argv) -> int`` so that it always ends
    with an exit code: a bug or a fault of the machine becomes one line
    naming the log with its trace (:func:`unexpected`), Ctrl-C the line
    ``error: interrupted`` and :data:`INTERRUPTED`. With ``--verbose``
    among the arguments such an error propagates with its trace."""

    def decorate(main: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(main)
        def guarded(argv: list[str] | None = None) -> int:
            given = sys.argv[1:] if argv is None else list(argv)
            try:
                return main(argv)
            except KeyboardInterrupt:
                return fail("interrupted", INTERRUPTED)
            except Exception as err:  # noqa: BLE001 - the one safety net
                if VERBOSE in given:
                    raise
                return unexpected(err, prog)
            finally:
                set_log(None)

        return guarded

    return decorate
