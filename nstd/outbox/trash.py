"""The outbox's trash: a deleted result's files wait here, restorable, for TRASH_DAYS.

A deletion is one slip of a thumb away on a phone, so it only moves the files: to
`outbox/.nstd/trash/job<id>/`, under the same paths relative to the outbox, by rename (the trash
is on the outbox's own file system, so nothing is copied and nothing is half moved). A restore
renames them back; a place taken meanwhile by another file is never overwritten. Folders older
than TRASH_DAYS are removed by the daemon's sweep.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from nstd.core.errors import NstdError

from .files import fsync_dir
from .thumbs import hidden_dir

TRASH_DAYS = 7


def trash_dir(outbox: Path) -> Path:
    return hidden_dir(outbox, "trash")


def job_trash(outbox: Path, job_id: int) -> Path:
    return trash_dir(outbox) / f"job{job_id}"


def move_to_trash(outbox: Path, job_id: int, files: list[Path]) -> list[Path]:
    """Move these outbox files into the job's trash folder; returns where they went."""
    folder = job_trash(outbox, job_id)
    moved = []
    for f in files:
        dest = folder / f.relative_to(outbox)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(f, dest)
        except FileNotFoundError:
            continue
        moved.append(dest)
    if moved:
        os.utime(folder)  # the sweep counts the days from the deletion, not from the painting
        fsync_dir(folder)
    return moved


def restore_from_trash(outbox: Path, job_id: int) -> list[Path]:
    """Move the job's files back to their places; refused, nothing moved, if one is taken."""
    folder = job_trash(outbox, job_id)
    if not folder.is_dir():
        raise NstdError(f"job {job_id}", f"nothing of it is in the trash (deleted more than {TRASH_DAYS} days ago, "
                                         "or by hand)")
    kept = [p for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()]
    places = [outbox / p.relative_to(folder) for p in kept]
    taken = [str(p) for p in places if p.exists() or p.is_symlink()]
    if taken:
        raise NstdError(f"job {job_id}", f"not restored: another file has its place now ({', '.join(taken)})")
    for src, dest in zip(kept, places):
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src, dest)
    shutil.rmtree(folder, ignore_errors=True)
    return places


def in_trash(outbox: Path) -> dict[int, float]:
    """Job id -> when its result was deleted, for every job with files in the trash."""
    found = {}
    try:
        entries = list(os.scandir(trash_dir(outbox)))
    except OSError:
        return found
    for e in entries:
        if e.name.startswith("job") and e.name[3:].isdigit() and e.is_dir(follow_symlinks=False):
            found[int(e.name[3:])] = e.stat(follow_symlinks=False).st_mtime
    return found


def empty_trash(outbox: Path, now: float | None = None, days: float = TRASH_DAYS) -> list[int]:
    """Remove what was deleted more than `days` ago; returns those job ids."""
    now = time.time() if now is None else now
    gone = []
    for job_id, deleted in in_trash(outbox).items():
        if now - deleted > days * 86400:
            shutil.rmtree(job_trash(outbox, job_id), ignore_errors=True)
            gone.append(job_id)
    return gone
