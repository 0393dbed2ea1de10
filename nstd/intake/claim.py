"""One daemon to an inbox. Two daemons with their own state files on one inbox would each paint
every photo (and race to file it away): the state file's lock cannot see the other one. So the
daemon also holds a lock in the inbox itself, `.nstd-daemon.lock` (hidden: never taken as a
photo), naming who holds it; a second daemon is refused at start with that name.

flock is dropped by the kernel with the process, so a killed daemon leaves nothing to clean up;
on a share whose file system has no locks the daemon starts with a warning instead.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Optional

from nstd.core.errors import StateError

LOCK_NAME = ".nstd-daemon.lock"


def claim_inbox(inbox: Path, state: Path, config: Path, log) -> Optional[int]:
    """The inbox's lock, held until the process ends; StateError naming the daemon that holds it."""
    inbox.mkdir(parents=True, exist_ok=True)
    path = inbox / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        log.warning("cannot lock the inbox: a second daemon on it would not be noticed", path=str(path),
                    error=e.strerror)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = _holder(fd)
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise StateError(str(inbox), f"another nstd daemon watches this inbox ({holder}); one daemon to an "
                                         "inbox, or each would paint every photo") from None
        log.warning("cannot lock the inbox: a second daemon on it would not be noticed", path=str(path),
                    error=e.strerror)
        return None
    facts = {"pid": os.getpid(), "host": socket.gethostname(), "state": str(state), "config": str(config),
             "since": time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(facts).encode(), 0)
    return fd


def _holder(fd: int) -> str:
    try:
        facts = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return (f"pid {facts['pid']} on {facts['host']}, state file {facts['state']}, config {facts['config']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "its lock names no one"
