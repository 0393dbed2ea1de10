"""The outbox's trash: a deleted result's files wait here, restorable, for TRASH_DAYS.

A deletion is one slip of a thumb away on a phone, so it only moves the files: to
`outbox/.nstd/trash/job<id>-<key>/` (the job's key hashes its photo, style and parameters, so a
folder left by another state file's job of the same id is never restored into this one), under the
same paths relative to the outbox, by rename (the trash is on the outbox's own file system, so
nothing is copied and nothing is half moved). A restore renames them back; a place taken meanwhile
by another file is never overwritten. Folders older than TRASH_DAYS are removed by the daemon's
sweep. Every move and removal here is reached beneath the outbox without following a link
(nstd.core.confine): a trash replaced by a link is a fault named in the error, never a way out of
the outbox.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from nstd.core import confine
from nstd.core.errors import NstdError

from .files import fsync_dir
from .thumbs import hidden_dir

TRASH_DAYS = 7


def trash_dir(outbox: Path) -> Path:
    return hidden_dir(outbox, "trash")


def job_trash(outbox: Path, job_id: int, key: str = "") -> Path:
    return trash_dir(outbox) / (f"job{job_id}-{key[:16]}" if key else f"job{job_id}")


def _parsed(name: str) -> tuple[int, str] | None:
    """(job id, key prefix) of a trash folder's name; '' for a folder of an nstd before the key."""
    number, _, key = name.removeprefix("job").partition("-") if name.startswith("job") else ("", "", "")
    return (int(number), key) if number.isdigit() and len(number) < 16 else None


def move_to_trash(outbox: Path, job_id: int, key: str, files: list[Path]) -> list[Path]:
    """Move these outbox files into the job's trash folder; returns where they went."""
    folder = job_trash(outbox, job_id, key)
    moved = []
    for f in files:
        dest = folder / f.relative_to(outbox)
        try:
            confine.rename(f, dest)
        except FileNotFoundError:
            continue
        moved.append(dest)
    if moved:
        with confine.opened_folder(folder) as fd:
            os.utime(fd)  # the sweep counts the days from the deletion, not from the painting
        fsync_dir(folder)
    return moved


def restore_from_trash(outbox: Path, job_id: int, key: str) -> list[Path]:
    """Move the job's files back to their places; refused, nothing moved, if one is taken."""
    ours = [name for name, (number, tag) in _folders(outbox).items()
            if number == job_id and (tag == key[:16] or not tag)]
    folder = trash_dir(outbox) / max(ours, key=len) if ours else None
    if folder is None:
        raise NstdError(f"job {job_id}", f"nothing of it is in the trash (deleted more than {TRASH_DAYS} days ago, "
                                         "or by hand)")
    kept = sorted(_files_in(folder))
    places = [outbox / p.relative_to(folder) for p in kept]
    taken = [str(p) for p in places if _taken(p)]
    if taken:
        raise NstdError(f"job {job_id}", f"not restored: another file has its place now ({', '.join(taken)})")
    for src, dest in zip(kept, places):
        confine.rename(src, dest)
    confine.rmtree(folder)
    return places


def _files_in(folder: Path) -> list[Path]:
    """The regular files under folder, found without following a link."""
    found = []
    for name, st in confine.scan(folder):
        if stat.S_ISDIR(st.st_mode):
            found += _files_in(folder / name)
        elif stat.S_ISREG(st.st_mode):
            found.append(folder / name)
    return found


def _taken(path: Path) -> bool:
    try:
        confine.stat_beneath(path)
        return True
    except FileNotFoundError:
        return False


def in_trash(outbox: Path) -> dict[int, float]:
    """Job id -> when its result was deleted, for every job with files in the trash."""
    try:
        return {_parsed(name)[0]: when for name, when in _deleted(outbox).items()}
    except OSError:
        return {}  # the sweep names the fault (a trash that is a link); a reader shows no trash


def _folders(outbox: Path) -> dict[str, tuple[int, str]]:
    """Each trash folder's name -> (job id, key prefix)."""
    return {name: parsed for name, st in confine.scan(trash_dir(outbox))
            if stat.S_ISDIR(st.st_mode) and (parsed := _parsed(name))}


def _deleted(outbox: Path) -> dict[str, float]:
    return {name: st.st_mtime for name, st in confine.scan(trash_dir(outbox))
            if stat.S_ISDIR(st.st_mode) and _parsed(name)}


def empty_trash(outbox: Path, now: float | None = None, days: float = TRASH_DAYS) -> list[int]:
    """Remove what was deleted more than `days` ago; returns those job ids. A trash that is a link
    raises LinkInFolder (nstd.core.confine): nothing is removed through it."""
    now = time.time() if now is None else now
    gone = []
    for name, deleted in _deleted(outbox).items():
        if now - deleted > days * 86400:
            confine.rmtree(trash_dir(outbox) / name)
            gone.append(_parsed(name)[0])
    return gone


def deleted_folders(outbox: Path) -> list[tuple[Path, int, str]]:
    """(folder, job id, key prefix) of every deletion in the trash; [] where it cannot be read."""
    try:
        return [(trash_dir(outbox) / name, number, tag) for name, (number, tag) in sorted(_folders(outbox).items())]
    except OSError:
        return []


def highest_id_in_trash(outbox: Path) -> int:
    try:
        return max((number for number, _ in _folders(outbox).values()), default=0)
    except OSError:
        return 0
