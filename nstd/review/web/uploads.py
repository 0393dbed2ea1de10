"""Photos uploaded through `nstd web`, taken exactly as photos dropped in the shared folder.

Each file streams to a hidden temp name (`.nstd-upload-*.part`, which intake never reads) in the
chosen inbox folder, is synced, and only then gets its name, so the daemon never sees half a file.
Where it may go is one of `folders(config)`, picked by the exact name the page offers, never a
path composed from what the client sends; its own name is reduced to a plain base name. The folder
is opened one component at a time below the inbox without following any link, and the temp file
and the final name are made through that descriptor, so a link swapped in meanwhile leads nowhere.
A name already taken gets " (2)", " (3)", ...: a hard link claims a name atomically, never replacing
a file. Oversized, cut-off and disk-full uploads leave nothing behind.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import unicodedata
from pathlib import Path, PurePosixPath

from nstd.config import Config
from nstd.core.errors import NstdError
from nstd.core.images import IMAGE_SUFFIXES
from nstd.intake.rules import not_taken, targets
from nstd.intake.walker import is_transient

TEMP_PREFIX = ".nstd-upload-"
MAX_NAME_BYTES = 200
MAX_FOLDERS = 200
FOLDER_DEPTH = 3
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


class UploadRefused(NstdError):
    def __init__(self, file: str, cause: str, status: int = 400):
        super().__init__(file, cause)
        self.status = status


def inbox_folders(inbox: Path) -> list[tuple[Path, str]]:
    """The inbox and its folders down to FOLDER_DEPTH as (path, inbox-relative name): links
    never followed, hidden and temporary names skipped."""
    found, todo = [], [(inbox, "", 0)]
    while todo and len(found) < MAX_FOLDERS:
        folder, rel, depth = todo.pop(0)
        found.append((folder, rel))
        if depth >= FOLDER_DEPTH:
            continue
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            child = f"{rel}/{e.name}" if rel else e.name
            if e.is_dir(follow_symlinks=False) and not is_transient(child):
                todo.append((Path(e.path), child, depth + 1))
    return found


def folders(config: Config) -> list[dict]:
    """Where a photo may be uploaded: the inbox folders some rule takes photos from, each with
    the rules and styles a photo there is painted by."""
    offered = []
    for _, rel in inbox_folders(config.inbox):
        jobs = targets(config, f"{rel}/photo.jpg" if rel else "photo.jpg")
        if jobs:
            rules, styles = sorted({j.rule for j in jobs}), sorted({j.style for j in jobs})
            offered.append({"folder": rel, "label": f"{rel or 'inbox'}/: {', '.join(rules)} ({', '.join(styles)})"})
    return offered


def unpaintable(config: Config, relpath: str) -> str | None:
    """Why a photo under this inbox name would never be painted (intake would pass it by); None if
    a rule takes it."""
    refusal = not_taken(config, relpath)
    if refusal:
        return f"not uploaded: the inbox takes no such name, {refusal}; rename the file and upload it again"
    if not targets(config, relpath):
        return "not uploaded: no rule takes a photo of this name in this folder (`nstd rules` says why)"
    return None


def clean_name(raw: str) -> str:
    """A plain base name with an image suffix: the last component of whatever path the client
    sent, without control characters, leading dots or spaces, at most MAX_NAME_BYTES."""
    base = _UNSAFE.sub("", re.split(r"[/\\]", unicodedata.normalize("NFC", raw))[-1]).strip().lstrip(". ")
    suffix = PurePosixPath(base).suffix
    if suffix.lower() not in IMAGE_SUFFIXES:
        raise UploadRefused(raw[:80] or "(no name)", f"not a photo's name: it must end in one of "
                                                     f"{', '.join(sorted(IMAGE_SUFFIXES))}")
    stem = base[: -len(suffix)]
    while len((stem + suffix).encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    if not stem.strip():
        raise UploadRefused(raw[:80], "the name is empty once reduced to a plain file name")
    return stem + suffix


def open_folder(inbox: Path, rel: str) -> int:
    """A descriptor of inbox/rel, reached one component at a time without following links."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(inbox, flags)
    try:
        for part in [p for p in rel.split("/") if p]:
            if part in (".", ".."):
                raise UploadRefused(rel, "not an inbox folder")
            child = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = child
        return fd
    except OSError as e:
        os.close(fd)
        raise UploadRefused(rel or "inbox", f"the folder cannot be opened ({e.strerror}); was it replaced?") from None
    except BaseException:
        os.close(fd)
        raise


class Upload:
    """One file on its way in: write chunks, then `finish` under its name, or `discard`."""

    def __init__(self, inbox: Path, folder: str, max_bytes: int):
        self.folder, self.max_bytes, self.size = folder, max_bytes, 0
        self.dir_fd = open_folder(inbox, folder)
        self.temp = f"{TEMP_PREFIX}{secrets.token_hex(8)}.part"
        try:
            self.fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                              0o640, dir_fd=self.dir_fd)
        except OSError as e:
            os.close(self.dir_fd)
            raise _refusal(folder, e) from None

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise UploadRefused(self.folder or "inbox", f"the file is larger than watch.max_file_mb "
                                                        f"({self.max_bytes / 1e6:g} MB)", 413)
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as e:
            raise _refusal(self.folder, e) from None

    def finish(self, name: str) -> str:
        """Sync, then give the file its name (or the first free "name (n)"); returns that name."""
        if self.size == 0:
            raise UploadRefused(name, "the file is empty")
        try:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
            stem, suffix = os.path.splitext(name)
            for n in range(1, 1000):
                final = name if n == 1 else f"{stem} ({n}){suffix}"
                try:
                    os.link(self.temp, final, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd,
                            follow_symlinks=False)
                except FileExistsError:
                    continue
                os.unlink(self.temp, dir_fd=self.dir_fd)
                os.fsync(self.dir_fd)
                return final
        except OSError as e:
            raise _refusal(name, e) from None
        raise UploadRefused(name, "999 files of this name are in the folder already", 409)

    def discard(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        try:
            os.unlink(self.temp, dir_fd=self.dir_fd)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        os.close(self.dir_fd)


def _refusal(where: str, e: OSError) -> UploadRefused:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return UploadRefused(where or "inbox", "the inbox's disk is full; nothing was kept", 507)
    return UploadRefused(where or "inbox", f"cannot write into the inbox ({e.strerror})", 500)


def remove_stale_temps(inbox: Path) -> list[str]:
    """Temp files of uploads cut off by a stop of the web app (only one runs per inbox)."""
    removed = []
    for folder, _ in inbox_folders(inbox):
        try:
            names = [n for n in os.listdir(folder) if n.startswith(TEMP_PREFIX) and n.endswith(".part")]
        except OSError:
            continue
        for name in names:
            path = folder / name
            if stat.S_ISREG(os.lstat(path).st_mode):
                path.unlink()
                removed.append(str(path))
    return removed
