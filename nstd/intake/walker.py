"""The one way nstd looks into the inbox: a walk that never follows a link.

Scans, rescans, polling and every watcher event go through here. A path is trusted only after
each of its components below the inbox was checked with lstat: a symlink anywhere on the way
(`inbox/ext -> /some/folder`, `inbox/loop -> .`) makes the *link* the entry, never what is
behind it, so a quarantine moves the link and nothing outside the inbox is ever read or moved.
"""

from __future__ import annotations

import functools
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator, Optional

from wcmatch import glob

from nstd.core.images import IMAGE_SUFFIXES

GLOB_FLAGS = glob.GLOBSTAR | glob.DOTMATCH | glob.BRACE | glob.IGNORECASE

# Names that are never finished inputs: hidden files, browser and sync partials, editor backups.
TRANSIENT_PATTERNS = (
    "**/.*", "**/.*/**", "**/*.part", "**/*.tmp", "**/*.crdownload", "**/*.partial", "**/*.download",
    "**/~*", "**/*~", "**/*.syncthing.*", "**/.syncthing.*", "**/*.!sync", "**/*.filepart",
)

FILE, LINK, SPECIAL, TOO_LONG = "file", "link", "special", "too long"
try:
    PATH_MAX = os.pathconf("/", "PC_PATH_MAX")
except (OSError, ValueError, AttributeError):
    PATH_MAX = 4096


@functools.lru_cache(maxsize=256)
def _matcher(patterns: tuple[str, ...]):
    return glob.compile(list(patterns), flags=GLOB_FLAGS)


def matches(relpath: str, patterns) -> bool:
    # Compiled once per pattern list: compiling on every call was 0.45 ms, most of intake's time.
    return _matcher(tuple(patterns)).match(relpath)


def is_transient(relpath: str) -> bool:
    return matches(relpath, TRANSIENT_PATTERNS)


@dataclass(frozen=True)
class Entry:
    """Something in the inbox worth a decision: a regular file, a link, or a pipe/socket/device."""
    path: Path
    rel: str
    kind: str
    mode: int = 0


def _image_named(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def _classify(inbox: Path, path: Path, st: os.stat_result) -> Optional[Entry]:
    rel = path.relative_to(inbox).as_posix()
    if is_transient(rel):
        return None
    if stat.S_ISLNK(st.st_mode):
        # A link is reported when it poses as a photo or stands for a folder: both are refused.
        return Entry(path, rel, LINK, st.st_mode) if _image_named(path.name) or path.is_dir() else None
    if not _image_named(path.name) or stat.S_ISDIR(st.st_mode):
        return None
    return Entry(path, rel, FILE if stat.S_ISREG(st.st_mode) else SPECIAL, st.st_mode)


def walk(inbox: Path, folder: Optional[Path] = None,
         others: Optional[Callable[[Path], None]] = None) -> Iterator[Entry]:
    """Every entry under the inbox (or one folder of it), hidden folders and links not entered;
    every other file is handed to `others` (to be told as not taken)."""
    stack = [folder or inbox]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                children = list(it)
        except OSError:
            continue  # removed or unreadable meanwhile: the next scan sees what is there
        for child in sorted(children, key=lambda c: c.name):
            path = Path(child.path)
            if len(os.fsencode(child.path)) >= PATH_MAX:
                # Nothing can open it by name (ENAMETOOLONG): reported, or it would never be seen.
                rel = path.relative_to(inbox).as_posix()
                if not is_transient(rel) and (child.is_dir(follow_symlinks=False) or _image_named(child.name)):
                    yield Entry(path, rel, TOO_LONG)
                continue
            try:
                st = child.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if not child.name.startswith("."):
                    stack.append(path)
                continue
            entry = _classify(inbox, path, st)
            if entry is not None:
                yield entry
            elif others is not None:
                others(path)


def confine(inbox: Path, path: Path) -> Optional[Entry]:
    """The entry an event's path stands for, checked component by component with lstat.

    None when it is gone, outside the inbox, or not worth a decision. A symlinked folder on the
    way gives the link itself.
    """
    try:
        rel = PurePosixPath(os.path.normpath(path)).relative_to(PurePosixPath(os.path.normpath(inbox)))
    except ValueError:
        return None
    if not rel.parts or rel.parts[0] == "..":
        return None
    current = inbox
    for i, part in enumerate(rel.parts):
        current = current / part
        try:
            st = os.lstat(current)
        except OSError:
            return None
        last = i == len(rel.parts) - 1
        if stat.S_ISLNK(st.st_mode) and not last:
            return Entry(current, current.relative_to(inbox).as_posix(), LINK, st.st_mode)
        if not last and not stat.S_ISDIR(st.st_mode):
            return None
    return _classify(inbox, current, st)
