"""Looking inside settled inbox files without stalling the supervisor.

Hashing a 20 GB file or decoding a 50-megapixel photo takes seconds to minutes and hundreds of MB;
on the supervisor's loop that would starve message handling, SIGTERM and the systemd watchdog.
`Inspector` does it in a child process, one file at a time, under an address-space limit, and
kills the child when one file takes longer than `timeout` seconds. The supervisor polls for
results and never waits. The child decodes from the very descriptor it hashes, so the bytes
judged are the bytes recorded.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Optional

from nstd.core.childproc import die_with_parent, ignore_terminal_signals, requests
from nstd.core.errors import InputError


@dataclass(frozen=True)
class Inspection:
    path: str
    sha256: Optional[str] = None
    size: int = 0
    stamp: Optional[tuple[int, int]] = None  # (size, mtime_ns) of what was read
    error: Optional[str] = None


def inspect_file(path: str, max_pixels: int, max_bytes: int) -> Inspection:
    from nstd.core.fileids import open_regular, sha256_of
    from nstd.core.images import decode_file

    try:
        with open_regular(path) as f:
            st = os.fstat(f.fileno())
            stamp = (st.st_size, st.st_mtime_ns)
            if st.st_size > max_bytes:
                return Inspection(path, size=st.st_size, stamp=stamp, error=too_big(st.st_size, max_bytes))
            try:
                decode_file(f, path, max_pixels)
            except InputError as e:
                return Inspection(path, size=st.st_size, stamp=stamp, error=e.cause)
            except MemoryError:
                return Inspection(path, size=st.st_size, stamp=stamp,
                                  error="too large to decode within the memory limit")
            return Inspection(path, sha256_of(f), st.st_size, stamp)
    except OSError as e:
        return Inspection(path, error=f"cannot read ({e.strerror or e})")


def too_big(size: int, max_bytes: int) -> str:
    return f"{size / 1e6:.0f} MB, over the limit of {max_bytes / 1e6:.0f} MB (watch.max_file_mb)"


def _child(conn: Connection, max_pixels: int, max_bytes: int, parent_pid: int) -> None:
    die_with_parent(parent_pid)
    ignore_terminal_signals()
    # Room for the decoded pixels several times over (mode conversions), plus the interpreter.
    limit = max_pixels * 16 + (1 << 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for path in requests(conn, parent_pid):
        if path is None:  # asked to stop
            return
        conn.send(inspect_file(path, max_pixels, max_bytes))


class Inspector:
    """One child process that inspects files in order; `results()` never blocks."""

    def __init__(self, max_pixels: int, max_bytes: int, timeout: float = 300.0):
        self.max_pixels, self.max_bytes, self.timeout = max_pixels, max_bytes, timeout
        self.waiting: deque[str] = deque()
        self.in_flight: Optional[tuple[str, float]] = None
        self.process: Optional[mp.Process] = None
        self.conn: Optional[Connection] = None

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_child, name="nstd-inspector", daemon=True,
                                   args=(child, self.max_pixels, self.max_bytes, os.getpid()))
        self.process.start()
        child.close()

    def submit(self, path: str) -> None:
        if path not in self.waiting and (self.in_flight is None or self.in_flight[0] != path):
            self.waiting.append(path)

    def busy_with(self) -> set[str]:
        return set(self.waiting) | ({self.in_flight[0]} if self.in_flight else set())

    def __len__(self) -> int:
        return len(self.waiting) + (self.in_flight is not None)

    def results(self, now: Optional[float] = None) -> list[Inspection]:
        now = time.monotonic() if now is None else now
        out = []
        if self.in_flight is not None:
            path, since = self.in_flight
            try:
                if now - since > self.timeout:  # past its deadline: a late answer does not count
                    self._kill()
                    out.append(Inspection(path, error=f"took longer than {self.timeout:.0f} s to read"))
                elif self.conn.poll(0):
                    out.append(self.conn.recv())
                    self.in_flight = None
                elif not self.process.is_alive():
                    raise EOFError
            except (EOFError, OSError):
                code = self.process.exitcode
                self._kill()
                out.append(Inspection(path, error=f"could not be read within the memory limit "
                                                   f"(inspector exit code {code})"))
        if self.in_flight is None and self.waiting:
            if self.process is None or not self.process.is_alive():
                self._start()
            path = self.waiting.popleft()
            self.conn.send(path)
            self.in_flight = (path, now)
        return out

    def _kill(self) -> None:
        self.in_flight = None
        if self.process is not None:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(5)
            self.conn.close()
        self.process = self.conn = None

    def close(self) -> None:
        self.waiting.clear()
        if self.process is not None and self.process.is_alive() and self.in_flight is None:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self._kill()
