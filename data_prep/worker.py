"""The Beam worker process data prep starts: Beam's own SDK worker, made to
stop with the command that started it and to log where the command says.

``python -m data_prep`` runs the DirectRunner's portable engine with one
worker process per core (:mod:`data_prep.beam_run`). Beam starts each as
``python -m apache_beam.runners.worker.sdk_worker_main``; a worker started
that way outlives a killed command by up to a minute, and prints its INFO
log and any traceback on the terminal. Started as ``python -m
data_prep.worker`` instead, it

- asks the kernel (Linux ``PR_SET_PDEATHSIG``) for SIGKILL when the
  command's process dies, and exits at once if that already happened;
- writes its stderr (Beam's log, tracebacks) to the command's log file
  when the command names one in ``TF_MULTVAE_PREP_LOG``; the command
  prints a short account and names the file on failure.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

# Set by the command for its workers (they inherit its environment).
PARENT_ENV = "TF_MULTVAE_PREP_PARENT"
LOG_ENV = "TF_MULTVAE_PREP_LOG"
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None) -> None:
    """SIGKILL this process when ``parent`` dies (Linux; elsewhere a
    no-op); exits now if this process's parent is no longer ``parent``."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:
        os._exit(1)  # the command died before the request took effect


def command_line() -> str:
    """What Beam runs (through a shell) to start one worker."""
    return f"exec {sys.executable} -m data_prep.worker"


def main() -> None:
    parent = os.environ.get(PARENT_ENV)
    die_with_parent(int(parent) if parent and parent.isdigit() else None)
    log = os.environ.get(LOG_ENV)
    if log:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(fd, 2)
        os.dup2(fd, 1)
        os.close(fd)
    from apache_beam.runners.worker import sdk_worker_main

    sdk_worker_main.main(sys.argv)


if __name__ == "__main__":
    main()
