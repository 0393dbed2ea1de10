"""A result in the outbox as a whole: its image, loss log, loss plot and thumbnails.

One owner for deleting a result (`nstd delete`, the web app) and for noticing a result deleted by
hand (the daemon's audit, `nstd status`), so that the store, the gallery and the metrics never
count a painting that is no longer on disk.
"""

from __future__ import annotations

from pathlib import Path

from nstd.core.errors import NstdError
from nstd.core.jobs import JobState
from nstd.store import Job, Store

from .files import log_path_for


def missing_results(store: Store) -> list[int]:
    """Done jobs whose image is no longer in the outbox."""
    return [job_id for job_id, image in store.done_images() if not image or not Path(image).is_file()]


def audit(store: Store) -> list[int]:
    """Mark done jobs whose image was deleted by hand; returns their ids."""
    gone = missing_results(store)
    if gone:
        store.mark_deleted(gone)
    return gone


def result_files(job: Job, outbox: Path, store: Store) -> list[Path]:
    """The files that belong to this result alone: thumbnails shared with another result (a
    twin's, the photo's, the style's) stay."""
    out = job.outputs or {}
    image = Path(out.get("image", ""))
    files = [image, log_path_for(image), image.with_suffix(".loss.png")]
    thumbs = out.get("thumbs", {})
    files += [outbox / thumbs[k] for k in ("result", "result_view")
              if thumbs.get(k) and not store.shown_by_others(thumbs[k], job.id)]
    return [f for f in files if f.is_absolute() and f.resolve().is_relative_to(outbox.resolve())]


def delete_result(store: Store, outbox: Path, job_id: int) -> list[Path]:
    """Delete a done job's result files and record it as deleted; returns the files removed."""
    job = store.find_job(job_id)
    if job is None or job.state is not JobState.DONE:
        raise NstdError(f"job {job_id}", "no such result (not a finished job, or already deleted)")
    removed = []
    for f in result_files(job, outbox, store):
        try:
            f.unlink()
            removed.append(f)
        except FileNotFoundError:
            pass
    store.mark_deleted([job_id])
    return removed
