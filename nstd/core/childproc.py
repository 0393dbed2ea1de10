"""What the daemon's child processes (worker, inspector) share: reading their parent's requests.

A child asks the kernel to kill it when the daemon dies (PR_SET_PDEATHSIG), so no orphan holds
the GPU or a file, and also checks its parent between requests, for the moment before the
kernel's promise took effect.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from multiprocessing.connection import Connection
from typing import Iterator

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL us when the daemon dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the daemon died before prctl took effect
        os._exit(1)


def ignore_terminal_signals() -> None:
    """Ctrl-C and a terminal's hang-up reach the whole process group; the daemon decides."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def requests(conn: Connection, parent_pid: int) -> Iterator[object]:
    """The parent's requests, one at a time, until it closes the pipe or is gone."""
    while True:
        if not conn.poll(1.0):
            if os.getppid() != parent_pid:
                return
            continue
        try:
            yield conn.recv()
        except EOFError:
            return
