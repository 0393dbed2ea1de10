"""Opening inbox files safely, and their identities: a content hash and a cheap size+mtime stamp.

The supervisor never opens a path it has not just checked: `open_regular` opens without following
a link (O_NOFOLLOW) and without waiting on a named pipe or a device (O_NONBLOCK), then checks with
fstat, on the very file it opened, that it is a regular file. A FIFO swapped in for a queued photo
therefore cannot hang the daemon, and a symlink cannot make it read outside the inbox.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO, Optional

_KINDS = {stat.S_IFIFO: "a named pipe", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFDIR: "a directory", stat.S_IFLNK: "a symbolic link"}


class NotRegularFile(OSError):
    """The path is a link, pipe, socket, device or folder: never read as a photo."""


def kind_of(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def open_regular(path: Path | str) -> BinaryIO:
    """Open a regular file for reading, refusing links and special files without blocking on them."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == 40:  # ELOOP: O_NOFOLLOW met a symlink
            raise NotRegularFile(e.errno, "a symbolic link: never followed", str(path)) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegularFile(0, f"{kind_of(st.st_mode)}, not a regular file", str(path))
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def sha256_of(f: BinaryIO) -> str:
    digest = hashlib.sha256()
    f.seek(0)
    for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path | str) -> Optional[str]:
    """The hash of a regular file's bytes; None for a link, a special file or one that cannot be read."""
    try:
        with open_regular(path) as f:
            return sha256_of(f)
    except OSError:
        return None


def file_stamp(path: Path | str) -> str:
    """Size and mtime: enough to notice an edited style image without hashing it every time."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"
