"""Opening inbox files safely, and their identities: a content hash, and a style's identity.

`open_regular` opens without following a link (O_NOFOLLOW) and without waiting on a named pipe or a
device (O_NONBLOCK), then checks with fstat, on the very file it opened, that it is a regular file.
That guards the last component only: a folder on the way swapped for a link (`mv inbox/sub x; ln -s
/outside inbox/sub`) would still lead outside. So every open, move and unlink of a file under a
configured folder goes through `beneath(root, rel)`: the folders are opened one component at a
time from the root's descriptor with O_NOFOLLOW | O_DIRECTORY, and the file is reached through
the last one's descriptor, never through a path the kernel resolves again. A FIFO swapped in for
a queued photo cannot hang the daemon, and no link, wherever it appears, leads outside.
"""

from __future__ import annotations

import errno
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


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def locate(path: Path | str, roots) -> tuple[Path, str]:
    """(root, path relative to it) for the configured folder `path` lies in; NotRegularFile if none."""
    path = Path(path)
    for root in sorted((Path(r) for r in roots), key=lambda r: len(r.parts), reverse=True):
        if path.is_relative_to(root) and path != root:
            rel = path.relative_to(root).as_posix()
            if ".." not in rel.split("/"):
                return root, rel
    raise NotRegularFile(0, "not inside a configured folder: never opened", str(path))


class beneath:
    """`with beneath(root, rel) as (dir_fd, name):` the folder of root/rel as a descriptor reached
    without following any link, and the file's last component to use with dir_fd."""

    def __init__(self, root: Path | str, rel: str):
        self.root, self.rel = Path(root), rel
        self.fd = -1

    def __enter__(self) -> tuple[int, str]:
        parts = [p for p in self.rel.split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            raise NotRegularFile(0, "not a path below its folder", str(self.root / self.rel))
        self.fd = os.open(self.root, _DIR)
        try:
            for part in parts[:-1]:
                child = os.open(part, _DIR, dir_fd=self.fd)
                os.close(self.fd)
                self.fd = child
        except OSError as e:
            os.close(self.fd)
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise NotRegularFile(e.errno, "a folder on its way is a symbolic link or no folder: never "
                                              "followed", str(self.root / self.rel)) from None
            raise
        return self.fd, parts[-1]

    def __exit__(self, *exc) -> None:
        os.close(self.fd)


def open_regular(path: Path | str, root: Path | str | None = None) -> BinaryIO:
    """Open a regular file for reading, refusing links and special files without blocking on them.
    With `root`, `path` is reached from it without following a link anywhere on the way."""
    try:
        if root is None:
            fd = os.open(path, _FILE)
        else:
            with beneath(root, Path(path).relative_to(root).as_posix()) as (dir_fd, name):
                fd = os.open(name, _FILE, dir_fd=dir_fd)
    except (ValueError, OSError) as e:
        if isinstance(e, ValueError):
            raise NotRegularFile(0, f"not inside {root}: never opened", str(path)) from None
        if e.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
            raise NotRegularFile(e.errno, "a symbolic link: never followed", str(path)) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegularFile(0, f"{kind_of(st.st_mode)}, not a regular file", str(path))
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def present(path: Path | str, root: Path | str) -> bool:
    """Whether root/path is there (a link counts), reached without following a link on the way."""
    try:
        with beneath(root, Path(path).relative_to(root).as_posix()) as (dir_fd, name):
            os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            return True
    except (ValueError, OSError):
        return False


def sha256_of(f: BinaryIO) -> str:
    digest = hashlib.sha256()
    f.seek(0)
    for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path | str, root: Path | str | None = None) -> Optional[str]:
    """The hash of a regular file's bytes; None for a link, a special file or one that cannot be read."""
    try:
        with open_regular(path, root) as f:
            return sha256_of(f)
    except OSError:
        return None


_IDENTITIES: dict[str, tuple[tuple, str]] = {}


def _stamp(st: os.stat_result) -> tuple:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def known_identity(path: Path | str) -> Optional[str]:
    """The style's identity if its stamp has not changed since it was last hashed, else None."""
    try:
        stamp = _stamp(os.stat(path))
    except OSError:
        return None
    cached = _IDENTITIES.get(str(path))
    return cached[1] if cached and cached[0] == stamp else None


def remember_identity(path: Path | str, f, digest: str) -> None:
    """Record the hash of the open file `f` as `path`'s identity, stamped from that very file."""
    _IDENTITIES[str(path)] = (_stamp(os.fstat(f.fileno())), digest)


def style_identity(path: Path | str) -> str:
    """A style image's identity: the SHA-256 of its bytes. Hashed again whenever its stamp changes;
    the stamp holds the inode and the change time, which no copy (`cp -p`, `rsync -t`, an unpacked
    archive) can carry over, so a picture replaced by another of the same size and mtime is noticed."""
    known = known_identity(path)
    if known is not None:
        return known
    try:
        with open_regular(path) as f:
            digest = sha256_of(f)
            remember_identity(path, f, digest)
            return digest
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "unreadable"
