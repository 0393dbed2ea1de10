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

import time
from collections import deque
from typing import Callable, Optional

from nstd.config import Config
from nstd.core.backoff import Backoff
from nstd.core.errors import WorkerStartError
from nstd.core.jobs import JobState
from nstd.ops.folderfaults import FolderFaults
from nstd.ops.metrics import Metrics
from nstd.ops.notify import Notifications
from nstd.store import Store

from .protocol import BootError, Done, Failed, Pong, Progress, Ready, past_time_limit
from .recorder import JobRecorder, job_order
from .worker import BOOT_ERROR_EXIT

TICK_SECONDS = 0.2
MAX_RESTART_BACKOFF = 60.0
WORKER_BOOT_SECONDS = 300.0


class WorkerSupervisor:
    def __init__(self, config: Config, store: Store, log, spawn: Callable[[Config], object],
                 on_change: Callable[[], None], on_progress: Callable[[int, dict], None] = lambda *_: None,
                 metrics: Optional[Metrics] = None, notifications: Optional[Notifications] = None,
                 folder_faults: Optional[FolderFaults] = None):
        self.config, self.store, self.log, self.spawn = config, store, log, spawn
        self.metrics = metrics or Metrics()
        self.recorder = JobRecorder(config, store, log, on_change, on_progress, self.metrics, notifications,
                                    folder_faults)
        self.worker = None
        self.restart = Backoff(1.0, MAX_RESTART_BACKOFF)
        self.last_heard = 0.0
        self.last_ping = 0.0
        self.restart_when_idle = False
        self.pending: deque = deque()

    # -- life cycle ---------------------------------------------------------------------
    def start(self, now: float, wait: bool = False) -> None:
        if self.restart.failures:
            self.metrics.worker_restarts.inc()
        self.worker = self.spawn(self.config)
        self.last_heard = now
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
    def processed(self) -> int:
        return self.recorder.processed

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
        if dispatching and w.ready and w.job_id is None and self.recorder.dispatch_pause.due(now):
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
        elif w.job_id is not None and timeout and w.job_started is not None and now - w.job_started > timeout + limit:
            # The child stops a job at its limit itself; this is for one stuck where it cannot look.
            cause = past_time_limit(timeout)
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
            self.recorder.progress(message.job_id, message.progress, now)
        elif isinstance(message, Done):
            self._done(message.job_id, message.outputs)
        elif isinstance(message, Failed):
            w.job_id = None
            if message.environmental:
                self.store.release(message.job_id)
                self.recorder.pause_dispatch(message.job_id, message.error, now)
            else:
                self._fail(message.job_id, message.error, message.permanent)
        elif not isinstance(message, Pong):
            self.log.warning("unknown message from the worker", message=repr(message)[:200])

    def _done(self, job_id: int, outputs: dict) -> None:
        self.recorder.done(job_id, outputs)
        if self.worker is not None and self.worker.job_id == job_id:
            self.worker.job_id = None

    def _fail(self, job_id: int, error: str, permanent: bool) -> None:
        self.recorder.fail(job_id, error, permanent)

    def dispatch(self, now: float) -> None:
        claimed = self.recorder.claim(now)
        if claimed is not None:
            job, out = claimed
            self.worker.send_job(job_order(job, out, self.config))
            self.worker.job_started = now
