"""A result in the outbox as a whole: its image, loss log, loss plot and thumbnails.

One owner for deleting a result (`nstd delete`, the web app: to the trash), for restoring it, and
for noticing a result deleted by hand (the daemon's audit, `nstd status`, `nstd gallery`), so that
the store, the gallery and the metrics never count a painting that is no longer on disk.
"""

from __future__ import annotations

import os
from pathlib import Path

from nstd.core import confine
from nstd.core.errors import NstdError
from nstd.core.jobs import JobState
from nstd.store import Job, Store

from .files import log_path_for
from .trash import empty_trash, in_trash, move_to_trash, restore_from_trash


def missing_results(store: Store) -> list[int]:
    """Done jobs whose image is no longer in the outbox."""
    # os.path, not Path: at 10,000 results pathlib's parsing cost twice the stat calls themselves.
    return [job_id for job_id, image in store.done_images() if not image or not os.path.isfile(image)]


def audit(store: Store) -> list[int]:
    """Mark done jobs whose image was deleted by hand; returns their ids."""
    gone = missing_results(store)
    if gone:
        store.mark_deleted(gone)
    return gone


class Upkeep:
    """The outbox's own chores in the daemon's loop: results deleted by hand noticed (a stat per
    result: 10k results cost ~30 ms), the trash emptied of what is older than TRASH_DAYS."""

    AUDIT_SECONDS = 5.0
    SWEEP_SECONDS = 3600.0

    def __init__(self, store: Store, outbox: Path, log):
        self.store, self.outbox, self.log = store, outbox, log
        self.audit_due = self.sweep_due = float("-inf")

    def tick(self, now: float) -> bool:
        """True when what the gallery shows changed."""
        if now >= self.sweep_due:
            self.sweep_due = now + self.SWEEP_SECONDS
            try:
                emptied = empty_trash(self.outbox)
            except OSError as e:  # a link where the trash was: named, never followed
                self.log.warning("the trash cannot be emptied", path=e.filename, cause=e.strerror)
                emptied = []
            if emptied:
                self.log.info("emptied the trash of results deleted over a week ago", job_ids=emptied)
                forget_photo_copies(self.store, self.outbox, emptied)
        if now < self.audit_due:
            return False
        self.audit_due = now + self.AUDIT_SECONDS
        gone = audit(self.store)
        if gone:
            self.log.warning("results deleted from the outbox: no longer counted or shown", job_ids=gone)
        return bool(gone)


def result_files(job: Job, outbox: Path, store: Store) -> list[Path]:
    """The files that belong to this result alone: thumbnails shared with another result (a twin's,
    the photo's, the style's) stay; the photo's copies go when the trash is emptied of its last
    painting (`forget_photo_copies`)."""
    out = job.outputs or {}
    image = Path(out.get("image", ""))
    files = [image, log_path_for(image), image.with_suffix(".loss.png")]
    thumbs = out.get("thumbs", {})
    files += [outbox / thumbs[k] for k in ("result", "result_view")
              if thumbs.get(k) and not store.shown_by_others(thumbs[k], job.id)]
    return [f for f in files if f.is_absolute() and f.resolve().is_relative_to(outbox.resolve())]


def forget_photo_copies(store: Store, outbox: Path, emptied: list[int]) -> list[Path]:
    """The photo's thumbnail and viewing copy of paintings whose trash was emptied, where no painting
    shown or still restorable shows them: a deleted photo does not stay in the outbox at viewing size."""
    restorable = set(in_trash(outbox))
    removed = []
    for job_id in emptied:
        job = store.find_job(job_id)
        thumbs = (job.outputs or {}).get("thumbs", {}) if job else {}
        for rel in (thumbs.get("content"), thumbs.get("content_view")):
            if not isinstance(rel, str) or any(state == "done" or other in restorable
                                               for other, state in store.jobs_showing(rel)):
                continue
            confine.unlink(outbox / rel, missing_ok=True)
            removed.append(outbox / rel)
    return removed


def delete_result(store: Store, outbox: Path, job_id: int) -> list[Path]:
    """Move a done job's result files to the trash and record it as deleted; returns where they went."""
    job = store.find_job(job_id)
    if job is None or job.state is not JobState.DONE:
        raise NstdError(f"job {job_id}", "no such result (not a finished job, or already deleted)")
    try:
        moved = move_to_trash(outbox, job_id, job.key, result_files(job, outbox, store))
    except OSError as e:
        raise NstdError(f"job {job_id}", f"not deleted: {e.filename}: {e.strerror}") from None
    store.mark_deleted([job_id])
    return moved


def restore_result(store: Store, outbox: Path, job_id: int) -> Path:
    """Bring a deleted result back from the trash and count it again; returns its image."""
    job = store.find_job(job_id)
    if job is None or job.state is not JobState.DELETED:
        raise NstdError(f"job {job_id}", "not a deleted result (`nstd history --state deleted` lists them)")
    try:
        restore_from_trash(outbox, job_id, job.key)
    except OSError as e:
        raise NstdError(f"job {job_id}", f"not restored: {e.filename}: {e.strerror}") from None
    image = Path((job.outputs or {}).get("image", ""))
    if not image.is_file():
        raise NstdError(f"job {job_id}", f"its image was not in the trash; only its other files came back ({image})")
    store.mark_restored(job_id)
    return image
