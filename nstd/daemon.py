"""The daemon: composes intake, the worker's supervisor, filing, health and the gallery.

Everything happens on the main thread in one loop, so no state is shared between threads except
the watcher's event queue. Signal handlers only record the signal; the loop acts on it. The clock
and the worker's maker are parameters, so the unit tests drive a real daemon in-process with a
fake clock and a stand-in worker.

A file's road: `Intake` (seen, settled, confined, inspected off the loop, jobs recorded) ->
`WorkerSupervisor` (each job painted by the worker, or delivered from a twin already painted;
outputs renamed into the outbox; job done) -> `Filing` (archive, or failed/ with an
.error.json). Each step is idempotent, so a crash anywhere is repaired by running the daemon
again. A state file that becomes unwritable pauses the loop; one deleted under the running
daemon stops it.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Callable, Optional

from nstd import __version__
from nstd.config import Config, load_config
from nstd.core import logs
from nstd.core.backoff import Backoff
from nstd.core.errors import ConfigError, StateError, WorkerStartError
from nstd.intake.claim import claim_inbox
from nstd.intake.intake import Intake
from nstd.intake.replan import replan_queued
from nstd.intake.rules import rule_warnings
from nstd.ops.folderfaults import FolderFaults
from nstd.ops.health import Health
from nstd.ops.metrics import REFRESH_SECONDS as REFRESH_METRICS_SECONDS
from nstd.ops.metrics import Metrics
from nstd.ops.notify import Notifications
from nstd.ops.schedule import DispatchGate
from nstd.ops.systemd import Notifier
from nstd.outbox.files import remove_stale_temps
from nstd.outbox.filing import Filing
from nstd.outbox.rebuild import open_for_daemon
from nstd.outbox.results import Upkeep
from nstd.review.gallery import write_gallery
from nstd.review.refresh import GalleryRefresh
from nstd.store import StateDiskUnwritable, StoreUnavailable
from nstd.work.supervisor import WorkerSupervisor
from nstd.work.worker import WorkerProcess

METRICS_RETRY_SECONDS = 60.0
HEARTBEAT_SECONDS = 5.0  # how stale `nstd status`'s "last heartbeat" may be (sooner when arrivals change)


def spawn_worker_process(log_json: bool | None) -> Callable[[Config], WorkerProcess]:
    def spawn(config: Config) -> WorkerProcess:
        return WorkerProcess(config.engine_options.__dict__.copy(), config.worker.max_pixels, log_json)
    return spawn


def worker_settings(config: Config) -> tuple:
    return (config.engine_options, config.worker.max_pixels)


class Daemon:
    def __init__(self, config_path: str | Path, until_idle: bool = False, log_json: bool | None = None,
                 clock: Callable[[], float] = time.monotonic, spawn: Optional[Callable] = None,
                 progress_view: Optional[Callable[[int, dict], None]] = None):
        self.config_path = Path(config_path)
        self.config = load_config(self.config_path)
        self.until_idle = until_idle
        self.progress_view = progress_view  # e.g. the demo's progress bar on a terminal
        self.clock = clock
        self.log = logs.get("daemon")
        # Before the state file: a second daemon on this inbox must not even adopt the folders.
        self.inbox_lock = claim_inbox(self.config.inbox, self.config.state, self.config_path, self.log)
        self.store = open_for_daemon(self.config, self.log)
        self.health = Health(Notifier())
        self.metrics = Metrics()
        self.notifications = Notifications(self.config.notify.urls, self.config.notify.events, self.log,
                                           host=socket.gethostname())
        self.folder_faults = FolderFaults(self.store, self.log, self.metrics, self.notifications)
        self.intake = Intake(self.config, self.store, self.log, on_refused=self._refused, metrics=self.metrics)
        if self.config.worker.backend == "redis":
            from nstd.work.remote.dispatcher import RemoteDispatcher
            self.supervisor = RemoteDispatcher(self.config, self.store, self.log, on_change=lambda: self.gallery.now(),
                                               on_progress=self._progress, metrics=self.metrics,
                                               notifications=self.notifications, folder_faults=self.folder_faults)
        else:
            self.supervisor = WorkerSupervisor(self.config, self.store, self.log,
                                               spawn or spawn_worker_process(log_json),
                                               on_change=lambda: self.gallery.now(), on_progress=self._progress,
                                               metrics=self.metrics, notifications=self.notifications,
                                               folder_faults=self.folder_faults)
        self.upkeep = Upkeep(self.store, self.config.outbox, self.log)
        self.gallery = GalleryRefresh(self.store, self.config.outbox, self.log, clock)
        self.filing = Filing(self.config, self.store, self.log, on_filed=lambda: None,
                             on_replaced=lambda p: self.intake.tracker.observe(p, self.clock()),
                             folder_faults=self.folder_faults)
        self.gate = DispatchGate(self.store.paused, self.config.active_hours, self.log)
        self.signals: list[int] = []
        self.stopping_since: Optional[float] = None
        self.store_pause = Backoff(1.0, 30.0)
        self.was_busy = False
        self.seen_changes: Optional[int] = None  # the store's change count from other processes
        self.beat: tuple[float, Optional[dict]] = (float("-inf"), None)
        self.metrics_retry = float("-inf")  # last heartbeat: when, arrivals

    # -- life cycle ---------------------------------------------------------------------
    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda signum, _frame: self.signals.append(signum))
        try:
            self.start()
            while self.tick():
                pass
        except WorkerStartError as e:
            self.notifications.worker_cannot_start(e.cause)
            raise
        finally:
            self.shutdown()
        return 0

    def start(self) -> None:
        c = self.config
        for folder in (c.inbox, c.outbox, c.archive, c.failed):
            folder.mkdir(parents=True, exist_ok=True)
        for folder in (c.outbox, c.archive, c.failed):
            for p in remove_stale_temps(folder):
                self.log.info("removed stale temp file", path=str(p))
        # Jobs left running by a dead daemon: the local worker died with it; with the redis backend
        # they may still be painted on a worker host, and the dispatcher's lease check decides.
        requeued, failed = self.store.requeue_orphans() if c.worker.backend == "local" else (0, 0)
        if requeued or failed:
            self.log.warning("recovered jobs left running", requeued=requeued, failed=failed)
        replanned = replan_queued(c, self.store)
        if replanned["replanned"] or replanned["withdrawn"]:
            self.log.info("queued jobs re-planned to the config in force", **replanned)
        self.log.info("nstd starting", version=__version__, config=str(c.path), inbox=str(c.inbox),
                      outbox=str(c.outbox), pid=os.getpid(), until_idle=self.until_idle)
        for warning in rule_warnings(c, []):
            self.log.warning("config warning", warning=warning)
        self.store.record_daemon({"pid": os.getpid(), "host": socket.gethostname(), "version": __version__,
                                  "since": time.time(), "heartbeat": time.time(), "config": str(c.path)})
        self.intake.start()
        self._serve_metrics(self.clock())
        self.supervisor.start(self.clock(), wait=True)
        self.intake.rescan("start-up", self.clock())
        self.health.ready("watching " + str(c.inbox))

    def shutdown(self) -> None:
        self.health.stopping()
        self.intake.close()
        try:
            self.supervisor.shutdown()
            write_gallery(self.store, self.config.outbox, stopped=True)  # no running job shown after a stop
        except StoreUnavailable as e:
            self.log.error("cannot requeue the running job now; the next start will", error=e.cause)
        except OSError as e:
            self.log.error("cannot write the gallery", outbox=str(self.config.outbox), error=str(e))
        self.store.close()
        self.metrics.close()
        self.notifications.close()
        self.log.info("nstd stopped", processed=self.supervisor.processed)

    def tick(self) -> bool:
        """One turn of the loop; False when the daemon should stop."""
        now = self.clock()
        self._handle_signals(now)
        if self.stopping_since is not None and not self._may_keep_running(now):
            return False
        if not self.store.still_ours():
            raise StateError(str(self.config.state), "the state file or its lock was deleted or replaced while "
                                                     "running; stopping so that no second daemon paints twice")
        if self.store_pause.due(now):
            try:
                if self.stopping_since is None:
                    self.intake.tick(now)
                stopping = self.stopping_since is not None
                held = self.gate.closed(now)
                self.supervisor.tick(now, dispatching=not stopping and held is None, stopping=stopping)
                self.filing.tick(now)
                self.gallery.write_if_due(now)
                if now - self.metrics.refreshed >= REFRESH_METRICS_SECONDS:
                    self._once_a_second(now, held is not None)
                self.store_pause.succeeded()
                self.folder_faults.fine("state")
            except StoreUnavailable as e:
                wait = self.store_pause.failed(now)
                self.log.error("cannot use the state file: pausing", state=e.file, error=e.cause, retry_in_s=wait)
                if isinstance(e, StateDiskUnwritable):
                    self.folder_faults.failed("state", self.config.state.parent, e.cause)
        else:
            time.sleep(0.2)
        self.health.tick(now, self.intake.alive() and self.supervisor.healthy(now),
                         self.stopping_since is not None, self.store.counts)
        if self.until_idle and self.stopping_since is None and self._idle():
            self.gallery.write_if_due(now)
            self.log.info("queue empty: exiting (until-idle mode)")
            return False
        return True

    def _may_keep_running(self, now: float) -> bool:
        """Stopping: only a running job keeps us, and only for the grace period."""
        if not self.supervisor.busy():
            return False
        if now - self.stopping_since > self.config.worker.grace_seconds:
            self.log.warning("grace period over: stopping the running job; it will be retried",
                             job_id=self.supervisor.job_id)
            return False
        return True

    def _once_a_second(self, now: float, held: bool) -> None:
        counts = self.store.counts()
        self.metrics.refresh(now, counts, self.store.input_counts(), held, self.supervisor.healthy(now))
        busy = counts["queued"] + counts["running"] > 0 or not self.intake.idle()
        if self.was_busy and not busy:
            self.notifications.queue_drained()
        self.was_busy = busy
        arriving = {**self.intake.arriving(), "not_taken": self.intake.not_taken.report()}
        if arriving != self.beat[1] or now - self.beat[0] >= HEARTBEAT_SECONDS:
            self.store.heartbeat(time.time(), arriving)
            self.beat = (now, arriving)
        changes = self.store.change_count()
        if changes != self.seen_changes:  # `nstd pause`, `nstd delete`, the web app: show it
            self.seen_changes = changes
            self.gallery.now()
        self._serve_metrics(now)
        if self.upkeep.tick(now):
            self.gallery.now()

    def _serve_metrics(self, now: float) -> None:
        """Metrics are optional: a taken port is an error in the log, retried, never a stop of painting."""
        listen = self.config.metrics.listen
        if not listen or self.metrics.server is not None or now < self.metrics_retry:
            return
        try:
            self.metrics.serve(listen)
        except OSError as e:
            self.metrics_retry = now + METRICS_RETRY_SECONDS
            self.log.error("cannot serve metrics; painting goes on without them", listen=listen, error=str(e),
                           retry_in_s=METRICS_RETRY_SECONDS)
            return
        self.log.info("serving metrics", listen=listen)

    def _refused(self, name: str, cause: str) -> None:
        self.gallery.now()
        self.notifications.input_refused(name, cause)

    # -- signals and reload -------------------------------------------------------------
    def _handle_signals(self, now: float) -> None:
        while self.signals:
            sig = self.signals.pop(0)
            if sig == signal.SIGHUP:
                self.reload()
            elif self.stopping_since is None:
                self.log.info("stopping: no new files taken", signal=signal.Signals(sig).name,
                              grace_seconds=self.config.worker.grace_seconds)
                self.stopping_since = now
                self.intake.stop()

    def reload(self) -> None:
        """Apply the config file anew, wholly, or refuse it and keep the running one."""
        try:
            new = load_config(self.config_path)
            for folder in (new.outbox, new.archive, new.failed):
                folder.mkdir(parents=True, exist_ok=True)
            self.intake.reconfigure(new)
        except ConfigError as e:
            self._reload_refused(e.problems, e.file)
            return
        except OSError as e:
            self._reload_refused([str(e)], str(self.config_path))
            return
        old, self.config = self.config, new
        self.filing.config = self.supervisor.config = new
        self.upkeep.outbox = self.gallery.outbox = new.outbox
        self.gate.hours = new.active_hours
        if new.state != old.state:
            self.log.warning("state file changes need a restart; keeping the old one", state=str(old.state))
        if worker_settings(new) != worker_settings(old):
            self.log.info("worker settings changed: restarting the worker after its current job")
            self.supervisor.restart_after_job()
        try:
            queued = replan_queued(new, self.store)  # jobs not yet started follow the config in force
        except StoreUnavailable as e:
            queued = {"error": f"not re-planned: {e.cause}"}
        self.log.info("config reloaded", config=str(new.path), rules=len(new.rules), queued_jobs=queued)
        self.gallery.now()
        self._record_reload([])

    def _reload_refused(self, problems: list[str], config: str) -> None:
        self.log.error("config reload refused; keeping the running config", problems=problems, config=config)
        self._record_reload(problems)

    def _record_reload(self, problems: list[str]) -> None:
        try:
            self.store.record_reload({"at": time.time(), "ok": not problems, "problems": problems})
        except StoreUnavailable as e:  # `nstd reload` then says it got no answer; the log has it
            self.log.error("cannot record the reload's outcome", state=e.file, error=e.cause)

    def _progress(self, job_id: int, progress: dict) -> None:
        self.gallery.progressed(job_id, progress)
        if self.progress_view:
            self.progress_view(job_id, progress)

    def _idle(self) -> bool:
        counts = self.store.counts()
        return (self.intake.idle() and counts["queued"] == 0 and counts["running"] == 0
                and self.supervisor.job_id is None and not self.store.open_input_paths())
