"""Looking inside settled inbox files without stalling the supervisor.

Hashing a 20 GB file or decoding a 50-megapixel photo takes seconds to minutes and hundreds of MB;
on the supervisor's loop that would starve message handling, SIGTERM and the systemd watchdog.
`Inspector` does it in a child process, one file at a time, under an address-space limit, and
kills the child when one file takes longer than `timeout` seconds. The supervisor polls for
results and never waits. The child decodes from the very descriptor it hashes, so the bytes
judged are the bytes recorded.
"""

from __future__ import annotations

import functools
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


def inspect_file(path: str, max_pixels: int, max_bytes: int, root: Optional[str] = None) -> Inspection:
    from nstd.core.fileids import open_regular, sha256_of
    from nstd.core.images import decode_file

    try:
        with open_regular(path, root) as f:  # from the inbox, no link followed on the way
            st = os.fstat(f.fileno())
            stamp = (st.st_size, st.st_mtime_ns)
            if st.st_size > max_bytes:
                return Inspection(path, size=st.st_size, stamp=stamp, error=too_big(st.st_size, max_bytes))
            try:
                decode_file(f, path, max_pixels, fit=DECODE_CHECK_SIDE)
            except InputError as e:
                return Inspection(path, size=st.st_size, stamp=stamp, error=e.cause)
            except MemoryError:
                return Inspection(path, size=st.st_size, stamp=stamp,
                                  error="too large to decode within the memory limit")
            return Inspection(path, sha256_of(f), st.st_size, stamp)
    except PermissionError as e:
        from nstd.outbox.filing import unreadable_file
        return Inspection(path, error=unreadable_file(path, e))
    except OSError as e:
        return Inspection(path, error=f"cannot read ({e.strerror or e})")


HEAD_BYTES = 64
# The decode that proves a photo whole reads every byte of it, but a large JPEG at an eighth of its
# width: a 200 MP photo checked in a fraction of the time and memory of its full size.
DECODE_CHECK_SIDE = 256


@functools.cache
def _pillow_formats() -> tuple[frozenset[str], tuple]:
    """(suffixes of formats with no signature, every format's signature test): read once per process.
    Some formats (TGA, SPIDER, ...) have no signature: a file named like one is left to the decoder."""
    from PIL import Image

    Image.init()
    unsigned = {fmt for fmt, (_, accept) in Image.OPEN.items() if accept is None}
    return (frozenset(ext for ext, fmt in Image.EXTENSION.items() if fmt in unsigned),
            tuple(accept for _, accept in Image.OPEN.values() if accept is not None))


def surely_not_an_image(path: str, root: Optional[str] = None) -> Optional[str]:
    """Why the file is surely no image, judged here from its first bytes (no child, no decoding):
    empty, or a start that no image format Pillow reads begins with. None when it may be one."""
    from nstd.core.fileids import open_regular
    from nstd.core.heif import is_heif

    try:
        with open_regular(path, root) as f:
            head = f.read(HEAD_BYTES)
    except OSError:
        return None  # the inspector says what is wrong with it
    if not head:
        return "an empty file, not an image"
    unsigned_suffixes, signatures = _pillow_formats()
    if os.path.splitext(path)[1].lower() in unsigned_suffixes:
        return None
    if any(accept(head) for accept in signatures) or is_heif(head):
        return None
    if not head.strip(b"\0"):
        # A copy that allocated its size first, or a share that has not flushed the start yet.
        return "its first bytes are all zero, as no image's are"
    return NOT_AN_IMAGE


# Its start is written and is no image format's: no later look can make it one, so no retries.
NOT_AN_IMAGE = "not an image file Pillow can read (it starts like no image format)"


def too_big(size: int, max_bytes: int) -> str:
    return f"{size / 1e6:.0f} MB, over the limit of {max_bytes / 1e6:.0f} MB (watch.max_file_mb)"


def _child(conn: Connection, max_pixels: int, max_bytes: int, parent_pid: int) -> None:
    die_with_parent(parent_pid)
    ignore_terminal_signals()
    # Room for the decoded pixels several times over (mode conversions), plus the interpreter.
    limit = max_pixels * 16 + (1 << 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for request in requests(conn, parent_pid):
        if request is None:  # asked to stop
            return
        path, root = request
        conn.send(inspect_file(path, max_pixels, max_bytes, root))


PIPELINE = 32  # requests sent ahead: the child never waits for the supervisor's next tick


class Inspector:
    """One child process that inspects files in order; `results()` never blocks.

    Up to PIPELINE requests are in the pipe at once (one answered per tick would be about five
    files a second). Files seen for the first time go before files looked at again: a flood of
    undecodable files waiting for their retries cannot hold back a photo that just arrived."""

    def __init__(self, max_pixels: int, max_bytes: int, timeout: float = 300.0, root: Optional[str] = None):
        self.max_pixels, self.max_bytes, self.timeout = max_pixels, max_bytes, timeout
        self.root = root  # the inbox: files are opened from it (the intake updates it on a reload)
        self.new: deque[str] = deque()
        self.again: deque[str] = deque()
        self.in_flight: deque[str] = deque()  # sent, answered in this order
        self.head_since = 0.0  # when the child started on in_flight[0]
        self.known: set[str] = set()
        self.process: Optional[mp.Process] = None
        self.conn: Optional[Connection] = None

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_child, name="nstd-inspector", daemon=True,
                                   args=(child, self.max_pixels, self.max_bytes, os.getpid()))
        self.process.start()
        child.close()

    def submit(self, path: str, again: bool = False) -> None:
        if path not in self.known:
            self.known.add(path)
            (self.again if again else self.new).append(path)

    def busy_with(self) -> set[str]:
        return set(self.known)

    def __len__(self) -> int:
        return len(self.known)

    def results(self, now: Optional[float] = None) -> list[Inspection]:
        now = time.monotonic() if now is None else now
        out: list[Inspection] = []
        try:
            while self.in_flight and self.conn.poll(0):
                out.append(self._answered(self.conn.recv(), now))
            if self.in_flight and now - self.head_since > self.timeout:
                # Past its deadline: a late answer does not count; the ones behind it are sent again.
                out.append(self._given_up(f"took longer than {self.timeout:.0f} s to read", now))
            elif self.in_flight and not self.process.is_alive():
                raise EOFError
        except (EOFError, OSError):
            code = self.process.exitcode if self.process else None
            out.append(self._given_up(f"could not be read within the memory limit (inspector exit code {code})", now))
        while len(self.in_flight) < PIPELINE and (self.new or self.again):
            if self.process is None or not self.process.is_alive():
                self._start()
            path = (self.new or self.again).popleft()
            self.conn.send((path, self.root))
            if not self.in_flight:
                self.head_since = now
            self.in_flight.append(path)
        return out

    def _answered(self, inspection: Inspection, now: float) -> Inspection:
        self.known.discard(self.in_flight.popleft())
        self.head_since = now
        return inspection

    def _given_up(self, why: str, now: float) -> Inspection:
        path = self.in_flight.popleft()
        self.known.discard(path)
        self.new.extendleft(reversed(self.in_flight))
        self.in_flight.clear()
        self._kill()
        return Inspection(path, error=why)

    def _kill(self) -> None:
        self.in_flight.clear()
        if self.process is not None:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(5)
            self.conn.close()
        self.process = self.conn = None

    def close(self) -> None:
        self.new.clear()
        self.again.clear()
        self.known.clear()
        if self.process is not None and self.process.is_alive() and not self.in_flight:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self._kill()
