"""The supervisor: watcher, queue, one worker, signals, health, restarts, sd_notify.

Everything happens on the main thread in one loop, so no state is shared between threads except
the watcher's event queue. Signal handlers only record the signal; the loop acts on it.

A file's road: `Intake` (seen, settled, confined, inspected off the loop, jobs recorded) -> each
job run by the worker, or delivered from a twin already painted -> outputs renamed into the
outbox -> job done -> `Filing` (archive, or failed/ with an .error.json). Each step is idempotent,
so a crash anywhere is repaired by running the daemon again. A worker that goes silent (stopped,
hung) past `worker.stall_seconds` is killed and its job retried; a state file that becomes
unwritable pauses the loop; one deleted under the running daemon stops it.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Optional

from . import __version__, logs
from .backoff import Backoff
from .config import load_config
from .errors import ConfigError, StateError, WorkerStartError
from .filing import Filing, first_line
from .gallery import REFRESH_SECONDS, write_gallery
from .intake import Intake
from .jobs import JobState
from .outbox import atomic_write_bytes, link_or_copy, log_path_for, output_path, probe_writable, remove_stale_temps, result_exists
from .rules import rule_warnings
from .store import Job, Store, StoreUnavailable
from .systemd import Notifier
from .worker import BOOT_ERROR_EXIT, WorkerProcess

TICK_SECONDS = 0.2
MAX_RESTART_BACKOFF = 60.0
WORKER_BOOT_SECONDS = 300.0
PROGRESS_LOG_SECONDS = 15.0


def _engine_options(config) -> dict:
    return config.engine_options.__dict__.copy()


class Daemon:
    def __init__(self, config_path: str | Path, until_idle: bool = False, log_json: bool | None = None):
        self.config_path = Path(config_path)
        self.config = load_config(self.config_path)
        self.until_idle = until_idle
        self.log_json = log_json
        self.log = logs.get("daemon")
        self.store = Store(self.config.state)
        self.store.lock()
        self.notifier = Notifier()
        self.intake = Intake(self.config, self.store, self.log, on_refused=self._gallery_now)
        self.filing = Filing(self.config, self.store, self.log, on_filed=lambda: None,
                             on_replaced=lambda p: self.intake.tracker.observe(p, time.monotonic()))
        self.worker: Optional[WorkerProcess] = None
        self.signals: list[int] = []
        self.stopping_since: Optional[float] = None
        self.restart = Backoff(1.0, MAX_RESTART_BACKOFF)
        self.dispatch_pause = Backoff(1.0, MAX_RESTART_BACKOFF)
        self.store_pause = Backoff(1.0, 30.0)
        self.last_heard = time.monotonic()
        self.last_ping = 0.0          # of the worker, while it is idle
        self.last_ping_systemd = 0.0
        self.last_progress_write = 0.0
        self.last_progress_log = time.monotonic()
        self.processed = 0
        self.restart_worker_when_idle = False
        self.gallery_due: Optional[float] = 0.0  # monotonic time of the next rewrite, None when current

    # -- life cycle ---------------------------------------------------------------------
    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda signum, _frame: self.signals.append(signum))
        try:
            self._start()
            while self._tick():
                pass
        finally:
            self._shutdown()
        return 0

    def _start(self) -> None:
        c = self.config
        for folder in (c.inbox, c.outbox, c.archive, c.failed):
            folder.mkdir(parents=True, exist_ok=True)
        for folder in (c.outbox, c.archive, c.failed):
            for p in remove_stale_temps(folder):
                self.log.info("removed stale temp file", path=str(p))
        if self.store.created:
            results = sum(1 for _ in c.outbox.glob("*/*.json"))
            if results:
                self.log.error("the state file is new but the outbox holds results: was it reset or lost? "
                               "Results are recognised by their loss logs, so nothing is mistaken or painted "
                               "twice, but the history of earlier jobs is gone", state=str(c.state),
                               results=results)
        requeued, failed = self.store.requeue_orphans()
        if requeued or failed:
            self.log.warning("recovered jobs left running", requeued=requeued, failed=failed)
        self.log.info("nstd starting", version=__version__, config=str(c.path), inbox=str(c.inbox),
                      outbox=str(c.outbox), pid=os.getpid(), until_idle=self.until_idle)
        for warning in rule_warnings(c, []):
            self.log.warning("config warning", warning=warning)
        self.intake.start()
        self._start_worker(wait=True)
        self.intake.rescan("start-up")
        self.notifier.notify(ready="1", status="watching " + str(c.inbox))

    def _shutdown(self) -> None:
        self.notifier.notify(stopping="1")
        self.intake.close()
        if self.worker:
            if self.worker.job_id is not None:
                self.worker.kill()
                try:
                    self._release_running("daemon stopping")
                except StoreUnavailable as e:
                    self.log.error("cannot requeue the running job now; the next start will", error=e.cause)
            else:
                self.worker.stop()
        self.store.close()
        self.log.info("nstd stopped", processed=self.processed)

    def _tick(self) -> bool:
        now = time.monotonic()
        self._handle_signals(now)
        if self.stopping_since is not None:
            busy = self.worker is not None and self.worker.alive() and self.worker.job_id is not None
            if not busy:
                return False
            if now - self.stopping_since > self.config.worker.grace_seconds:
                self.log.warning("grace period over: stopping the running job; it will be retried",
                                 job_id=self.worker.job_id)
                return False
        if not self.store.still_ours():
            raise StateError(str(self.config.state), "the state file or its lock was deleted or replaced while "
                                                     "running; stopping so that no second daemon paints twice")
        if not self.store_pause.due(now):
            self._sleep_receiving()
            return True
        try:
            if self.stopping_since is None:
                self.intake.tick(now)
            self._supervise_worker(now)
            self.filing.tick(now)
            self._write_gallery(now)
            self.store_pause.succeeded()
        except StoreUnavailable as e:
            wait = self.store_pause.failed(now)
            self.log.error("cannot use the state file: pausing", state=e.file, error=e.cause, retry_in_s=wait)
        self._health(now)
        if self.until_idle and self.stopping_since is None and self._idle():
            self._write_gallery(now)
            self.log.info("queue empty: exiting (until-idle mode)")
            return False
        return True

    def _sleep_receiving(self) -> None:
        time.sleep(TICK_SECONDS)

    # -- signals and reload -------------------------------------------------------------
    def _handle_signals(self, now: float) -> None:
        while self.signals:
            sig = self.signals.pop(0)
            if sig == signal.SIGHUP:
                self._reload()
            elif self.stopping_since is None:
                self.log.info("stopping: no new files taken", signal=signal.Signals(sig).name,
                              grace_seconds=self.config.worker.grace_seconds)
                self.stopping_since = now
                self.intake.stop()

    def _reload(self) -> None:
        """Apply the config file anew, wholly, or refuse it and keep the running one."""
        try:
            new = load_config(self.config_path)
            for folder in (new.outbox, new.archive, new.failed):
                folder.mkdir(parents=True, exist_ok=True)
            self.intake.reconfigure(new)
        except ConfigError as e:
            self.log.error("config reload refused; keeping the running config", problems=e.problems,
                           config=e.file)
            return
        except OSError as e:
            self.log.error("config reload refused; keeping the running config", problems=[str(e)],
                           config=str(self.config_path))
            return
        old, self.config = self.config, new
        self.filing.config = new
        if new.state != old.state:
            self.log.warning("state file changes need a restart; keeping the old one", state=str(old.state))
        if _engine_options(new) != _engine_options(old) or new.worker.max_pixels != old.worker.max_pixels:
            self.log.info("worker settings changed: restarting the worker after its current job")
            self.restart_worker_when_idle = True
        self.log.info("config reloaded", config=str(new.path), rules=len(new.rules))

    # -- the worker ---------------------------------------------------------------------
    def _start_worker(self, wait: bool = False) -> None:
        c = self.config
        self.worker = WorkerProcess(_engine_options(c), c.worker.max_pixels, self.log_json)
        self.last_heard = time.monotonic()
        self.log.info("worker starting", pid=self.worker.pid)
        if wait:
            deadline = time.monotonic() + WORKER_BOOT_SECONDS
            while not self.worker.ready and time.monotonic() < deadline:
                if not self._receive(0.5) and not self.worker.alive():
                    break
            if not self.worker.ready:
                code = self.worker.process.exitcode
                self.worker.kill()
                raise WorkerStartError(str(c.path), f"the worker could not start (exit code {code}); "
                                                    "see the log above")

    def _receive(self, timeout: float) -> bool:
        got = False
        for message in self.worker.messages(timeout):
            got = True
            self.last_heard = time.monotonic()
            self._on_message(message)
        return got

    def _on_message(self, message: tuple) -> None:
        kind = message[0]
        if kind == "ready":
            self.worker.ready = True
            self.worker.info = message[1]
            self.restart.succeeded()
            self.log.info("worker ready", **message[1])
        elif kind == "boot_error":
            self.log.error("worker cannot start", cause=message[1])
            raise WorkerStartError(str(self.config.path), message[1])
        elif kind == "progress":
            now = time.monotonic()
            if now - self.last_progress_write >= 1.0:
                self.last_progress_write = now
                self.store.set_progress(message[1], message[2])
            if self.gallery_due is None:
                self.gallery_due = now + REFRESH_SECONDS
            if now - self.last_progress_log >= PROGRESS_LOG_SECONDS:
                self.last_progress_log = now
                self.log.info("job progress", job_id=message[1], **message[2])
        elif kind == "done":
            self._done(message[1], message[2])
        elif kind == "failed" and len(message) > 4 and message[4]:
            self.worker.job_id = None
            self.store.release(message[1])
            self._pause_dispatch(message[1], message[2])
        elif kind == "failed":
            job_id, error, permanent = message[1], message[2], message[3]
            self.worker.job_id = None
            self._fail(job_id, error, permanent)

    def _done(self, job_id: int, outputs: dict) -> None:
        self.store.finish(job_id, outputs)
        if self.worker is not None and self.worker.job_id == job_id:
            self.worker.job_id = None
        self.processed += 1
        self.dispatch_pause.succeeded()
        self.log.info("job done", job_id=job_id, state=JobState.DONE.value, image=outputs["image"],
                      seconds=outputs.get("seconds"), final_loss=outputs.get("final", {}).get("total"),
                      **({"delivered_from_job": outputs["twin"]} if "twin" in outputs else {}))
        self._gallery_now()

    def _fail(self, job_id: int, error: str, permanent: bool) -> None:
        state = self.store.fail(job_id, error, permanent, self.config.worker.max_attempts)
        self.log.warning("job failed", job_id=job_id, state=state.value, error=first_line(error),
                         will_retry=state is JobState.QUEUED)
        self._gallery_now()

    def _pause_dispatch(self, job_id: int, error: str) -> None:
        wait = self.dispatch_pause.failed(time.monotonic())
        self.log.error("cannot write results: pausing the queue", job_id=job_id, error=error,
                       retry_in_s=wait, state=JobState.QUEUED.value)

    def _supervise_worker(self, now: float) -> None:
        w = self.worker
        if w is not None:
            self._receive(TICK_SECONDS if w.job_id is not None or self.stopping_since is None else 0)
            w = self.worker
        else:
            time.sleep(TICK_SECONDS)
        if w is not None and w.alive():
            self._watch_for_stall(w, now)
        if w is not None and not w.alive():
            code = w.process.exitcode
            if code == BOOT_ERROR_EXIT and not w.ready:
                raise WorkerStartError(str(self.config.path), "the worker could not start")
            wait = self.restart.failed(now)
            self.log.error("worker died", exit_code=code, job_id=w.job_id, restart_in_s=wait)
            if w.job_id is not None:
                self._fail(w.job_id, getattr(w, "death_cause", None)
                           or f"the worker process died (exit code {code})", permanent=False)
            w.kill()
            self.worker = None
            return
        if self.stopping_since is not None:
            return
        if w is None:
            if self.restart.due(now):
                self._start_worker()
            return
        if w.ready and w.job_id is None and self.dispatch_pause.due(now):
            if self.restart_worker_when_idle:
                self.restart_worker_when_idle = False
                w.stop()
                self.worker = None
                self.restart.succeeded()
                return
            self._dispatch()

    def _watch_for_stall(self, w: WorkerProcess, now: float) -> None:
        """A stopped or hung worker says nothing: no progress while painting, no pong while idle."""
        limit = self.config.worker.stall_seconds
        silent = time.monotonic() - self.last_heard
        cause = None
        if w.ready and silent > limit:
            cause = f"the worker stalled: no sign of life for {silent:.0f} s (worker.stall_seconds: {limit:g})"
        elif w.job_id is not None and self.config.worker.job_timeout_minutes and w.job_started is not None \
                and now - w.job_started > self.config.worker.job_timeout_minutes * 60:
            cause = f"the job ran past worker.job_timeout_minutes ({self.config.worker.job_timeout_minutes:g})"
        if cause:
            self.log.error("stopping the worker", cause=cause, job_id=w.job_id, pid=w.pid)
            w.death_cause = cause
            w.process.kill()
            w.process.join(5)
        elif w.ready and w.job_id is None and now - self.last_ping >= min(limit / 3, 5.0):
            self.last_ping = now
            w.ping()

    def _dispatch(self) -> None:
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
            self._pause_dispatch(job.id, f"cannot write the results to {out.parent}: {e}")
            return
        self.log.info("job running", job_id=job.id, input=job.input_relpath, style=job.style,
                      attempt=job.attempts, state=JobState.RUNNING.value)
        self._gallery_now()
        self.worker.send_job({"id": job.id, "key": job.key, "input": job.input_path,
                              "relpath": job.input_relpath, "sha256": job.input_sha256, "rule": job.rule,
                              "style": job.style, "images": job.spec["images"], "params": job.spec["params"],
                              "output": str(out), "outbox": str(self.config.outbox),
                              "preview_every": self.config.worker.preview_every})
        self.worker.job_started = time.monotonic()

    def _deliver_from_twin(self, job: Job, out: Path) -> bool:
        """The same painting made for another drop of this photo: deliver it under this name too."""
        for twin in self.store.done_twins(job.key, job.id):
            src = Path((twin.outputs or {}).get("image", ""))
            if not result_exists(src, twin.key, twin.input_relpath):
                continue
            log = json.loads(log_path_for(src).read_text())
            log.update(job_id=job.id, input=job.input_relpath, delivered_from_job=twin.id)
            atomic_write_bytes(log_path_for(out), json.dumps(log, indent=1, default=str).encode())
            link_or_copy(src, out)
            plot = src.with_suffix(".loss.png")
            if plot.is_file():
                link_or_copy(plot, out.with_suffix(".loss.png"))
            outputs = {**twin.outputs, "image": str(out), "log": str(log_path_for(out)),
                       "plot": str(out.with_suffix(".loss.png")), "twin": twin.id}
            self._done(job.id, outputs)
            return True
        return False

    def _release_running(self, why: str) -> None:
        """A job interrupted by our own stop goes back to the queue without using an attempt."""
        self.store.release(self.worker.job_id)
        self.log.info("job requeued", job_id=self.worker.job_id, state=JobState.QUEUED.value, why=why)

    # -- the gallery ----------------------------------------------------------------------
    def _gallery_now(self) -> None:
        self.gallery_due = 0.0

    def _write_gallery(self, now: float) -> None:
        if self.gallery_due is None or now < self.gallery_due:
            return
        try:
            write_gallery(self.store, self.config.outbox)
        except StoreUnavailable:
            raise
        except Exception as e:  # the gallery is a view: never a reason to stop processing
            self.log.error("cannot write the gallery", outbox=str(self.config.outbox),
                           error=f"{type(e).__name__}: {e}", exc_info=not isinstance(e, OSError))
        self.gallery_due = None

    # -- health -------------------------------------------------------------------------
    def _idle(self) -> bool:
        counts = self.store.counts()
        return (self.intake.idle() and counts["queued"] == 0 and counts["running"] == 0
                and (self.worker is None or self.worker.job_id is None)
                and not self.store.open_input_paths())

    def _health(self, now: float) -> None:
        if not self.notifier.enabled:
            return
        interval = (self.notifier.watchdog_seconds or 30) / 3
        if now - self.last_ping_systemd < interval:
            return
        self.last_ping_systemd = now
        try:
            counts = self.store.counts()
            status = f"{counts['queued']} queued, {counts['running']} running, {counts['done']} done, " \
                     f"{counts['failed']} failed"
        except StoreUnavailable:
            status = "state file unavailable"
        silent = time.monotonic() - self.last_heard
        healthy = (self.intake.alive() and self.worker is not None and self.worker.alive()
                   and silent <= self.config.worker.stall_seconds)
        if healthy or self.stopping_since is not None:
            self.notifier.notify(watchdog="1", status=status)
        else:
            self.notifier.notify(status="unhealthy: " + status)
