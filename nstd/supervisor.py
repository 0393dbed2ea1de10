"""The worker's supervisor: start it, restart it with backoff, hand it jobs, read what it says.

It owns every decision about the worker, each taking `now` from the caller: when to restart a dead
one (doubling waits, reset once one is ready), when a silent one is stalled (no progress while
painting, no answer to a ping while idle, past `worker.stall_seconds`) or a job is over its time,
when to pause dispatch (the outbox cannot be written), when to restart for new settings (after
the running job). A job whose painting another drop of the same photo already has is delivered
from that twin instead of painted again. `spawn` makes the worker: the real child process, or a
stand-in in the unit tests.
"""

from __future__ import annotations

import json
import time
from collections import deque
from pathlib import Path
from typing import Callable, Optional

from .backoff import Backoff
from .config import Config
from .errors import WorkerStartError
from .humane import first_line
from .jobs import JobState
from .metrics import Metrics
from .notify import Notifications
from .outbox import atomic_write_bytes, link_or_copy, log_path_for, output_path, probe_writable, result_exists
from .protocol import BootError, Done, Failed, JobOrder, Pong, Progress, Ready
from .store import Job, Store
from .worker import BOOT_ERROR_EXIT

TICK_SECONDS = 0.2
MAX_RESTART_BACKOFF = 60.0
WORKER_BOOT_SECONDS = 300.0
PROGRESS_LOG_SECONDS = 15.0
PROGRESS_WRITE_SECONDS = 1.0


class WorkerSupervisor:
    def __init__(self, config: Config, store: Store, log, spawn: Callable[[Config], object],
                 on_change: Callable[[], None], on_progress: Callable[[], None] = lambda: None,
                 metrics: Optional[Metrics] = None, notifications: Optional[Notifications] = None):
        self.config, self.store, self.log, self.spawn = config, store, log, spawn
        self.metrics = metrics or Metrics()
        self.notifications = notifications or Notifications([], [], log)
        self.on_change, self.on_progress = on_change, on_progress
        self.worker = None
        self.restart = Backoff(1.0, MAX_RESTART_BACKOFF)
        self.dispatch_pause = Backoff(1.0, MAX_RESTART_BACKOFF)
        self.last_heard = 0.0
        self.last_ping = 0.0
        self.last_progress_write = -PROGRESS_WRITE_SECONDS
        self.last_progress_log = 0.0
        self.restart_when_idle = False
        self.processed = 0
        self.pending: deque = deque()

    # -- life cycle ---------------------------------------------------------------------
    def start(self, now: float, wait: bool = False) -> None:
        if self.restart.failures:
            self.metrics.worker_restarts.inc()
        self.worker = self.spawn(self.config)
        self.last_heard = self.last_progress_log = now
        self.log.info("worker starting", pid=self.worker.pid)
        if not wait:
            return
        deadline = time.monotonic() + WORKER_BOOT_SECONDS
        while not self.worker.ready and time.monotonic() < deadline:
            if not self.receive(now, 0.5) and not self.worker.alive():
                break
        if not self.worker.ready:
            code = self.worker.exitcode
            self.worker.kill()
            raise WorkerStartError(str(self.config.path), f"the worker could not start (exit code {code}); "
                                                          "see the log above")

    @property
    def job_id(self) -> Optional[int]:
        return self.worker.job_id if self.worker is not None else None

    def busy(self) -> bool:
        return self.worker is not None and self.worker.alive() and self.worker.job_id is not None

    def healthy(self, now: float) -> bool:
        return (self.worker is not None and self.worker.alive()
                and now - self.last_heard <= self.config.worker.stall_seconds)

    def restart_after_job(self) -> None:
        self.restart_when_idle = True

    def shutdown(self) -> None:
        """Our own stop: a running job goes back to the queue without using an attempt."""
        if self.worker is None:
            return
        if self.worker.job_id is not None:
            self.worker.kill()
            self.store.release(self.worker.job_id)
            self.log.info("job requeued", job_id=self.worker.job_id, state=JobState.QUEUED.value,
                          why="daemon stopping")
        else:
            self.worker.stop()

    # -- the loop -------------------------------------------------------------------------
    def tick(self, now: float, dispatching: bool, stopping: bool = False) -> None:
        """Read messages, watch for stalls and deaths, restart (unless stopping), and start the next
        job if `dispatching` (not stopping, not paused, inside the active hours)."""
        w = self.worker
        if w is not None:
            self.receive(now, TICK_SECONDS if w.job_id is not None or not stopping else 0)
            w = self.worker
        else:
            time.sleep(TICK_SECONDS)
        if w is not None and w.alive():
            self._watch_for_stall(w, now)
        if w is not None and not w.alive():
            self._buried(w, now)
            return
        if stopping:
            return
        if w is None:
            if self.restart.due(now):
                self.start(now)
            return
        if dispatching and w.ready and w.job_id is None and self.dispatch_pause.due(now):
            if self.restart_when_idle:
                self.restart_when_idle = False
                w.stop()
                self.worker = None
                self.restart.succeeded()
                return
            self.dispatch(now)

    def _buried(self, w, now: float) -> None:
        code = w.exitcode
        if code == BOOT_ERROR_EXIT and not w.ready:
            raise WorkerStartError(str(self.config.path), "the worker could not start")
        wait = self.restart.failed(now)
        self.log.error("worker died", exit_code=code, job_id=w.job_id, restart_in_s=wait)
        if w.job_id is not None:
            self._fail(w.job_id, w.death_cause or f"the worker process died (exit code {code})", permanent=False)
        w.kill()
        self.worker = None

    def _watch_for_stall(self, w, now: float) -> None:
        """A stopped or hung worker says nothing: no progress while painting, no pong while idle."""
        limit = self.config.worker.stall_seconds
        timeout = self.config.worker.job_timeout_minutes * 60
        silent = now - self.last_heard
        cause = None
        if w.ready and silent > limit:
            cause = f"the worker stalled: no sign of life for {silent:.0f} s (worker.stall_seconds: {limit:g})"
        elif w.job_id is not None and timeout and w.job_started is not None and now - w.job_started > timeout:
            cause = f"the job ran past worker.job_timeout_minutes ({timeout / 60:g})"
        if cause:
            self.log.error("stopping the worker", cause=cause, job_id=w.job_id, pid=w.pid)
            w.death_cause = cause
            w.terminate_now()
        elif w.ready and w.job_id is None and now - self.last_ping >= min(limit / 3, 5.0):
            self.last_ping = now
            w.ping()

    # -- messages -------------------------------------------------------------------------
    def receive(self, now: float, timeout: float) -> bool:
        """Read and act on the worker's messages. One whose effect could not be recorded (the state
        file is full) stays first in line and is acted on again next time, never lost."""
        self.pending.extend(self.worker.messages(0 if self.pending else timeout))
        got = bool(self.pending)
        if got:
            self.last_heard = max(self.last_heard, now)
        while self.pending:
            self.on_message(self.pending[0], now)
            self.pending.popleft()
        return got

    def on_message(self, message, now: float) -> None:
        w = self.worker
        if isinstance(message, Ready):
            w.ready, w.info = True, message.info
            self.restart.succeeded()
            self.log.info("worker ready", **message.info)
        elif isinstance(message, BootError):
            self.log.error("worker cannot start", cause=message.cause)
            raise WorkerStartError(str(self.config.path), message.cause)
        elif isinstance(message, Progress):
            if now - self.last_progress_write >= PROGRESS_WRITE_SECONDS:
                self.last_progress_write = now
                self.store.set_progress(message.job_id, message.progress)
            self.on_progress()
            if now - self.last_progress_log >= PROGRESS_LOG_SECONDS:
                self.last_progress_log = now
                self.log.info("job progress", job_id=message.job_id, **message.progress)
        elif isinstance(message, Done):
            self._done(message.job_id, message.outputs)
        elif isinstance(message, Failed):
            w.job_id = None
            if message.environmental:
                self.store.release(message.job_id)
                self._pause_dispatch(message.job_id, message.error, now)
            else:
                self._fail(message.job_id, message.error, message.permanent)
        elif not isinstance(message, Pong):
            self.log.warning("unknown message from the worker", message=repr(message)[:200])

    def _done(self, job_id: int, outputs: dict) -> None:
        self.store.finish(job_id, outputs)
        self.metrics.job_done(self.store.job(job_id).rule, outputs)
        self.notifications.job_done()
        self.metrics.last_success.set(time.time())
        if self.worker is not None and self.worker.job_id == job_id:
            self.worker.job_id = None
        self.processed += 1
        self.dispatch_pause.succeeded()
        self.log.info("job done", job_id=job_id, state=JobState.DONE.value, image=outputs["image"],
                      seconds=outputs.get("seconds"), final_loss=outputs.get("final", {}).get("total"),
                      **({"delivered_from_job": outputs["twin"]} if "twin" in outputs else {}))
        self.on_change()

    def _fail(self, job_id: int, error: str, permanent: bool) -> None:
        state = self.store.fail(job_id, error, permanent, self.config.worker.max_attempts)
        job = self.store.job(job_id)
        self.metrics.job_failed(job.rule, final=state is JobState.FAILED)
        if state is JobState.FAILED:
            self.notifications.job_failed(job.input_relpath, job.style, first_line(error))
        self.log.warning("job failed", job_id=job_id, state=state.value, error=first_line(error),
                         will_retry=state is JobState.QUEUED)
        self.on_change()

    def _pause_dispatch(self, job_id: int, error: str, now: float) -> None:
        wait = self.dispatch_pause.failed(now)
        self.log.error("cannot write results: pausing the queue", job_id=job_id, error=error,
                       retry_in_s=wait, state=JobState.QUEUED.value)

    # -- dispatch -------------------------------------------------------------------------
    def dispatch(self, now: float) -> None:
        job = self.store.claim_next()
        if job is None:
            return
        if not Path(job.input_path).is_file():
            self._fail(job.id, f"input file is gone: {job.input_path}", permanent=True)
            return
        out = output_path(self.config.outbox, job.rule, job.input_relpath, job.style,
                          job.spec["output_ext"], job.key)
        try:
            probe_writable(out.parent)
            if self._deliver_from_twin(job, out):
                return
        except OSError as e:
            # Outbox not writable or full: find out before painting, not after. Not an attempt.
            self.store.release(job.id)
            self._pause_dispatch(job.id, f"cannot write the results to {out.parent}: {e}", now)
            return
        self.log.info("job running", job_id=job.id, input=job.input_relpath, style=job.style,
                      attempt=job.attempts, state=JobState.RUNNING.value)
        self.on_change()
        self.worker.send_job(job_order(job, out, self.config))
        self.worker.job_started = now

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
            self._done(job.id, {**twin.outputs, "image": str(out), "log": str(log_path_for(out)),
                                "plot": str(out.with_suffix(".loss.png")), "twin": twin.id})
            return True
        return False


def job_order(job: Job, out: Path, config: Config) -> JobOrder:
    return JobOrder(id=job.id, key=job.key, input=job.input_path, relpath=job.input_relpath,
                    sha256=job.input_sha256, rule=job.rule, style=job.style,
                    images=tuple(job.spec["images"]), params=job.spec["params"], output=str(out),
                    outbox=str(config.outbox), preview_every=config.worker.preview_every)
