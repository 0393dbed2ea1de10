"""Serving files of the outbox, and nothing else.

The path is walked one component at a time from an open handle on the outbox, each with
O_NOFOLLOW: no `..`, no absolute path, no symlink (inside or out), no temp file, no special file.
Checking a resolved path and then opening it by name would leave a window for a swapped-in link.
"""

from __future__ import annotations

import mimetypes
import os
import stat
from pathlib import Path

from nstd.outbox.files import TEMP_MARK

CHUNK = 256 * 1024


class NotServed(Exception):
    """The path does not name a regular file inside the outbox (the reason stays in the log)."""


def open_under(root: Path, rel: str) -> tuple[int, os.stat_result]:
    parts = rel.split("/")
    if (not rel or "\0" in rel or "\\" in rel or rel.startswith("/")
            or any(p in ("", ".", "..") or p.startswith(TEMP_MARK) for p in parts)):
        raise NotServed(f"not a plain relative path: {rel!r}")
    try:
        folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise NotServed(f"outbox unreadable: {e}") from None
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
            os.close(folder)
            folder = inner
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    except OSError as e:  # ELOOP for a link, ENOTDIR, ENOENT, EACCES
        raise NotServed(f"{rel!r}: {e.strerror}") from None
    finally:
        os.close(folder)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotServed(f"{rel!r}: not a regular file")
    return fd, st


def media_type(rel: str) -> str:
    return mimetypes.guess_type(rel)[0] or "application/octet-stream"


def etag(st: os.stat_result) -> str:
    return f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"'


def chunks(fd: int):
    with os.fdopen(fd, "rb") as f:
        while block := f.read(CHUNK):
            yield block
