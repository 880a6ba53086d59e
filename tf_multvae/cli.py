"""How every command ends: one line on stderr and an exit code.

The commands (data prep, training, the baselines, the reports, export,
search) report a user's mistake the same way: ``error: MESSAGE`` on one
line and exit code 2; a run that trained but whose loss became NaN exits
with 1. Library code raises; only a command's ``main`` turns the error
into a line and a code, through :func:`call` or :func:`fail`.

Imports no TensorFlow, so data prep and the light commands can use it.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Callable
from typing import TypeVar

T = TypeVar("T")

OK = 0
FAILED = 1  # the job ran and failed: the loss became NaN, or too little memory
USAGE = 2  # a bad flag, file, line or dataset

# What a user's mistake raises in library code: a missing file or
# directory (FileNotFoundError, NotADirectoryError are OSErrors the
# library raises on purpose) or a bad value (ValueError).
USER_ERRORS = (FileNotFoundError, NotADirectoryError, ValueError)


def finite_float(text: str) -> float:
    """An argparse ``type``: a finite number (NaN and infinities refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, not {text!r}")
    return value


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
