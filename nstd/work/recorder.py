"""A job's record as it runs and ends: one owner for the local supervisor and the remote dispatcher.

Claiming the next job (with the checks before any painting: the input still there, the outbox
writable, a twin's painting to deliver instead), progress, done and failed, each with its metrics,
notification and log line.
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Callable, Optional

from nstd.config import Config
from nstd.core.fileids import present
from nstd.core.mounts import MountWatch
from nstd.core.backoff import Backoff
from nstd.core.humane import first_line, size_words
from nstd.core.jobs import JobState
from nstd.ops.folderfaults import FolderFaults, free_bytes
from nstd.ops.metrics import Metrics
from nstd.ops.notify import Notifications
from nstd.outbox.files import atomic_write_bytes, link_or_copy, log_path_for, output_path, probe_writable, result_exists
from nstd.store import Job, Store

from .faults import MachineFaults
from .protocol import CANNOT_WRITE, JobOrder

MAX_DISPATCH_BACKOFF = 60.0
PROGRESS_LOG_SECONDS = 15.0
PROGRESS_WRITE_SECONDS = 1.0


class JobRecorder:
    def __init__(self, config: Config, store: Store, log, on_change: Callable[[], None],
                 on_progress: Callable[[int, dict], None] = lambda *_: None, metrics: Optional[Metrics] = None,
                 notifications: Optional[Notifications] = None, folder_faults: Optional[FolderFaults] = None):
        self.config, self.store, self.log = config, store, log
        self.metrics = metrics or Metrics()
        self.notifications = notifications or Notifications([], [], log)
        self.folders = folder_faults or FolderFaults(store, log, self.metrics, self.notifications)
        # The room a painting takes (its last one's files) and the free space a painting last did not
        # fit in: a full outbox is not painted into again until it has more room than then.
        self.painting_bytes: Optional[int] = None
        self.did_not_fit: Optional[int] = None
        self.on_change, self.on_progress = on_change, on_progress
        self.dispatch_pause = Backoff(1.0, MAX_DISPATCH_BACKOFF)
        self.faults = MachineFaults(store, log, self.metrics, self.notifications)
        self.mounts = MountWatch(config.inbox)
        self.last_progress_write: dict[int, float] = {}
        self.last_progress_log = 0.0
        self.processed = 0

    def claim(self, now: float) -> Optional[tuple[Job, Path]]:
        """The next job to paint and where its result goes; None if there is none, or if it was
        settled here (input gone: failed; a twin's painting: delivered; outbox unwritable: back
        in the queue and dispatch paused)."""
        if not self.faults.may_claim():
            return None
        job = self.store.claim_next(behind=self.faults.watch.retry_behind)
        if job is None:
            return None
        if not self._still_there(job):
            self._left(job)
            return None
        out = result_path(self.config, job)
        try:
            probe_writable(out.parent)
            self._check_room(out.parent)
            self.folders.fine("outbox")
            if self._deliver_from_twin(job, out):
                return None
        except OSError as e:
            # Outbox not writable or full: find out before painting, not after. Not an attempt.
            self.store.release(job.id)
            self.pause_dispatch(job.id, f"{CANNOT_WRITE}{out.parent}: {e}", now, painted=False)
            return None
        self.log.info("job running", job_id=job.id, input=job.input_relpath, style=job.style,
                      attempt=job.attempts, state=JobState.RUNNING.value)
        self.on_change()
        return job, out

    def progress(self, job_id: int, progress: dict, now: float) -> None:
        if now - self.last_progress_write.get(job_id, float("-inf")) >= PROGRESS_WRITE_SECONDS:
            self.last_progress_write[job_id] = now
            self.store.set_progress(job_id, progress)
        self.on_progress(job_id, progress)
        if now - self.last_progress_log >= PROGRESS_LOG_SECONDS:
            self.last_progress_log = now
            self.log.info("job progress", job_id=job_id, **progress)

    def done(self, job_id: int, outputs: dict) -> None:
        self.last_progress_write.pop(job_id, None)
        self.store.finish(job_id, outputs)
        self.painting_bytes = self._bytes_of(outputs) or self.painting_bytes
        self.did_not_fit = None
        self.metrics.job_done(self.store.job(job_id).rule, outputs)
        self.notifications.job_done()
        self.metrics.last_success.set(time.time())
        self.processed += 1
        self.dispatch_pause.succeeded()
        self.faults.succeeded()
        self.log.info("job done", job_id=job_id, state=JobState.DONE.value, image=outputs["image"],
                      seconds=outputs.get("seconds"), final_loss=outputs.get("final", {}).get("total"),
                      **({"delivered_from_job": outputs["twin"]} if "twin" in outputs else {}),
                      **({"host": outputs["host"]} if "host" in outputs else {}))
        self.on_change()

    def fail(self, job_id: int, error: str, permanent: bool) -> JobState:
        self.last_progress_write.pop(job_id, None)
        if not permanent and self.faults.failed(self.store.job(job_id), error):
            self.on_change()
            return JobState.QUEUED
        job = self.store.job(job_id)
        if permanent and not self._still_there(job):
            return self._left(job)  # not the photo's failure: it left, or its folder's file system did
        state = self.store.fail(job_id, error, permanent, self.config.worker.max_attempts)
        self.metrics.job_failed(job.rule, final=state is JobState.FAILED)
        if state is JobState.FAILED:
            self.notifications.job_failed(job.input_relpath, job.style, first_line(error))
        self.log.warning("job failed", job_id=job_id, state=state.value, error=first_line(error),
                         will_retry=state is JobState.QUEUED)
        self.on_change()
        return state

    def withdraw(self, job: Job) -> None:
        """The photo left before it was painted: the job is over, with no failure, reason file or
        notification; a photo renamed in the inbox is painted under its new name as an input of its own."""
        self.last_progress_write.pop(job.id, None)
        renamed = self.store.open_twin(job.input_id, job.input_sha256)
        why = (f"renamed to {renamed.relpath} before it was painted" if renamed else
               "no longer in the inbox (moved, deleted, or a folder on its way replaced) before it was painted")
        self.store.withdraw(job.id, why)
        self.metrics.job_withdrawn(job.rule)
        self.log.info("job withdrawn: its photo left", job_id=job.id, input=job.input_relpath, why=why,
                      state=JobState.WITHDRAWN.value)
        self.on_change()

    def _left(self, job: Job) -> JobState:
        """The photo is not where it was: withdrawn if it left (renamed, deleted, its folder swapped);
        a machine fault if the inbox's share or disk went away with it, and the photo waits."""
        if not self.mounts.gone(self.config.inbox):
            self.withdraw(job)
            return JobState.WITHDRAWN
        self.faults.declare(f"the inbox {self.config.inbox} is gone or on another file system than at start "
                            "(a share unmounted, a disk pulled): no photo is blamed; they wait, and painting "
                            "resumes once it is back", job.id)
        self.on_change()
        return JobState.QUEUED

    def _still_there(self, job: Job) -> bool:
        """The input is at its recorded path, reached from its folder without following a link."""
        root = self.config.input_root(job.input_path)
        return root is not None and present(job.input_path, root)

    def pause_dispatch(self, job_id: int, error: str, now: float, painted: bool = True) -> None:
        """The job is back in the queue, not by its fault: a worker host that cannot work, or the
        outbox that cannot take its results (`painted`: found after painting, not before)."""
        wait = self.dispatch_pause.failed(now)
        self.log.error("cannot write results: pausing the queue", job_id=job_id, error=error,
                       retry_in_s=wait, state=JobState.QUEUED.value)
        if not error.startswith(CANNOT_WRITE):
            return
        folder = result_path(self.config, self.store.job(job_id)).parent
        if painted and _full(error):
            self.did_not_fit = free_bytes(folder)
        self.folders.failed("outbox", folder, error.split(": ", 1)[-1], needs=self._room_needed()[1])

    def _room_needed(self) -> tuple[Optional[int], str]:
        """The bytes a painting needs in the outbox, as far as nstd knows, and the words for it."""
        known, short = self.painting_bytes, self.did_not_fit
        if known and (short is None or known > short):
            return known, f"a painting needs about {size_words(known)} (the last one's files)"
        if short is not None:
            return short + 1, f"a painting needs more than the {size_words(short)} the last one did not fit in"
        return None, ""

    def _check_room(self, folder: Path) -> None:
        """ENOSPC before painting where the outbox has less room than a painting takes."""
        (needs, words), free = self._room_needed(), free_bytes(folder)
        if needs is not None and free is not None and free < needs:
            raise OSError(errno.ENOSPC, f"No space left on device: {size_words(free)} free; {words}")

    def _bytes_of(self, outputs: dict) -> int:
        """What the painting's files take: the image, its loss log and plot, its thumbnails."""
        thumbs = []
        for value in (outputs.get("thumbs") or {}).values():
            thumbs += value if isinstance(value, list) else [value]
        total = 0
        for f in [outputs.get("image"), outputs.get("log"), outputs.get("plot"),
                  *(self.config.outbox / t for t in thumbs if isinstance(t, str))]:
            try:
                total += os.stat(f).st_size if f else 0
            except OSError:
                pass
        return total

    def _deliver_from_twin(self, job: Job, out: Path) -> bool:
        """The same painting made for another drop of this photo: deliver it under this name too."""
        for twin in self.store.done_twins(job.key, job.id):
            src = Path((twin.outputs or {}).get("image", ""))
            if not result_exists(src, twin.key, twin.input_relpath):
                continue
            log = json.loads(log_path_for(src).read_text())
            log.update(job_id=job.id, input=job.input_relpath, input_sha256=job.input_sha256,
                       delivered_from_job=twin.id)
            atomic_write_bytes(log_path_for(out), json.dumps(log, indent=1, default=str).encode())
            link_or_copy(src, out)
            plot = src.with_suffix(".loss.png")
            if plot.is_file():
                link_or_copy(plot, out.with_suffix(".loss.png"))
            self.done(job.id, {**twin.outputs, "image": str(out), "log": str(log_path_for(out)),
                                "plot": str(out.with_suffix(".loss.png")), "twin": twin.id})
            return True
        return False



def _full(error: str) -> bool:
    return any(words in error for words in (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT)))


def result_path(config: Config, job: Job) -> Path:
    """Where the job's painting goes (and is looked for, after a crash or a lost report)."""
    return output_path(config.outbox, job.rule, job.input_relpath, job.style, job.spec["output_ext"], job.key)


def job_order(job: Job, out: Path, config: Config) -> JobOrder:
    # Outside every folder: the worker refuses it beneath its own folder.
    root = str(config.input_root(job.input_path) or Path(job.input_path).parent)
    return JobOrder(id=job.id, key=job.key, input=job.input_path, relpath=job.input_relpath,
                    sha256=job.input_sha256, rule=job.rule, style=job.style,
                    images=tuple(job.spec["images"]), params=job.spec["params"], output=str(out),
                    outbox=str(config.outbox), preview_every=config.worker.preview_every, root=root,
                    timeout_s=config.worker.job_timeout_minutes * 60)
