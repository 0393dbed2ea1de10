"""Writes, moves and deletes that stay inside the configured folders, whatever is linked there.

A link in the outbox (`outbox/.nstd/trash -> /home/you`, `outbox/swirls -> /etc`) must never lead a
write, a move or a delete outside. Checking a path first and then using it leaves a gap in which
the link can be swapped in; so every such operation here reaches the file's folder one component
at a time from its root's descriptor (`beneath`, no link followed, missing folders made on the
way) and acts through that descriptor. Where a caller needs a path (to open a temp file, to hard
link), it gets `/proc/self/fd/<folder>/<name>`, which the kernel resolves through the very folder
that was checked.

The roots are every configured folder a process knows: `Config` registers its own when it is made
and the worker its job's outbox, so no caller can forget to. A path under no registered root (the
`-o` of `nstd stylize`) is used as given.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from .fileids import NotRegularFile, locate

_ROOTS: set[Path] = set()
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PROC_FD = Path("/proc/self/fd")


class LinkInFolder(NotRegularFile):
    """A link (or a file) where a folder of nstd's was expected: never followed, never written through."""


def confine_to(*roots: Path | str) -> None:
    """From now on, every write, move and delete under these folders stays beneath them."""
    _ROOTS.update(Path(os.path.abspath(r)) for r in roots)


def root_of(path: Path | str) -> Optional[tuple[Path, str]]:
    """(the registered folder `path` lies under, the rest); None under none of them."""
    try:
        return locate(os.path.abspath(path), _ROOTS)
    except OSError:
        return None


def _open_root(root: Path, create: bool) -> int:
    try:
        return os.open(root, _DIR)
    except FileNotFoundError:
        if not create:
            raise
    root.mkdir(parents=True, exist_ok=True)  # a configured folder itself, resolved when the config was read
    return os.open(root, _DIR)


def _step(fd: int, part: str, create: bool) -> int:
    """The folder `part` of the folder `fd`, made if asked, never through a link."""
    try:
        return os.open(part, _DIR, dir_fd=fd)
    except FileNotFoundError:
        if not create:
            raise
    try:
        os.mkdir(part, 0o777, dir_fd=fd)
    except FileExistsError:
        pass  # made meanwhile by another writer; opened below like any folder
    return os.open(part, _DIR, dir_fd=fd)


@contextmanager
def folder_of(path: Path | str, create: bool = False) -> Iterator[tuple[int, str]]:
    """`with folder_of(path) as (dir_fd, name):` path's folder as a descriptor, reached from its
    root without following a link (made on the way with `create`), and its last component."""
    path = Path(os.path.abspath(path))
    found = root_of(path)
    if found is None:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        parts = [path.name]
    else:
        root, rel = found
        parts = rel.split("/")
        fd, walked = -1, root
        try:
            fd = _open_root(root, create)
            for part in parts[:-1]:
                walked = walked / part
                child = _step(fd, part, create)
                os.close(fd)
                fd = child
        except OSError as e:
            if fd >= 0:
                os.close(fd)
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise _link_fault(e.errno, walked) from None
            raise
    try:
        yield fd, parts[-1]
    finally:
        os.close(fd)


def _link_fault(code: int, where: Path) -> LinkInFolder:
    found = root_of(where)
    inside = f" (nstd writes only beneath {found[0]})" if found else ""
    return LinkInFolder(code, f"a link or not a folder where nstd keeps a folder: never followed{inside}",
                        str(where))


def through(dir_fd: int, name: str) -> Path:
    """A path to `name` in the folder `dir_fd` that the kernel resolves through that descriptor."""
    return _PROC_FD / str(dir_fd) / name


@contextmanager
def opened_folder(path: Path | str, create: bool = False) -> Iterator[int]:
    """The folder `path` itself as a descriptor, reached without following a link."""
    with folder_of(path, create) as (parent, name):
        if create:
            try:
                os.mkdir(name, 0o777, dir_fd=parent)
            except FileExistsError:
                pass
        try:
            fd = os.open(name, _DIR, dir_fd=parent)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise _link_fault(e.errno, Path(os.path.abspath(path))) from None
            raise
    try:
        yield fd
    finally:
        os.close(fd)


def makedirs(path: Path | str) -> None:
    with opened_folder(path, create=True):
        pass


def fsync_folder(path: Path | str) -> None:
    with opened_folder(path) as fd:
        os.fsync(fd)


def unlink(path: Path | str, missing_ok: bool = False) -> None:
    """Remove a file (or a link itself) beneath its root."""
    try:
        with folder_of(path) as (fd, name):
            os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        if not missing_ok:
            raise


def rename(src: Path | str, dest: Path | str) -> None:
    """Move src to dest, both reached beneath their roots; dest's folders are made."""
    with folder_of(src) as (sfd, sname), folder_of(dest, create=True) as (dfd, dname):
        os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)


def rmtree(path: Path | str) -> None:
    """Remove a folder and what it holds, never through a link (the folder itself being one included:
    LinkInFolder, nothing removed)."""
    with folder_of(path) as (fd, name):
        mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
        if not stat.S_ISDIR(mode):
            raise _link_fault(errno.ENOTDIR, Path(os.path.abspath(path)))
        # shutil's descriptor-based walk opens each folder with O_NOFOLLOW and checks it is the one it listed.
        shutil.rmtree(through(fd, name))


def scan(path: Path | str) -> list[tuple[str, os.stat_result]]:
    """(name, lstat) of each entry of a folder reached without following a link; [] if it is not there."""
    try:
        with opened_folder(path) as fd:
            names = os.listdir(fd)
            found = []
            for name in names:
                try:
                    found.append((name, os.stat(name, dir_fd=fd, follow_symlinks=False)))
                except FileNotFoundError:
                    pass
            return found
    except FileNotFoundError:
        return []


def stat_beneath(path: Path | str) -> os.stat_result:
    """lstat of path, reached without following a link on the way."""
    with folder_of(path) as (fd, name):
        return os.stat(name, dir_fd=fd, follow_symlinks=False)


def read_bytes(path: Path | str) -> bytes:
    """A regular file's bytes, reached without following a link anywhere."""
    with folder_of(path) as (dfd, name):
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise LinkInFolder(e.errno, "a link: never followed", str(path)) from None
            raise
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise NotRegularFile(0, "not a regular file", str(path))
        return f.read()
