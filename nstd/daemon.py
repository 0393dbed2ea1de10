"""The supervisor: watcher, queue, one worker, signals, health, restarts, sd_notify.

Everything happens on the main thread in one loop, so no state is shared between threads except
the watcher's event queue. Signal handlers only record the signal; the loop acts on it.

A file's road: seen (event or scan) -> settled (size and mtime still) -> accepted (decoded once,
hashed, jobs recorded in the store in one transaction) -> each job run by the worker -> outputs
renamed into the outbox -> job done -> when all its jobs are over, the input goes to the archive
(or to failed/ with an .error.json). Each step is idempotent, so a crash anywhere is repaired by
running the daemon again.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Optional

from . import __version__, logs
from .config import Config, load_config
from .errors import ConfigError, InputError, WorkerStartError
from .gallery import REFRESH_SECONDS, write_gallery
from .fileids import file_sha256, file_stamp
from .images import load_image
from .inbox import InboxWatcher, SettleTracker, is_candidate, scan
from .jobs import JobState, JobSpec
from .outbox import confined, move_input, output_path, remove_stale_temps, write_error_json
from .rules import rule_warnings, targets
from .store import Store
from .systemd import Notifier
from .worker import BOOT_ERROR_EXIT, WorkerProcess

TICK_SECONDS = 0.2
MAX_RESTART_BACKOFF = 60.0
WORKER_BOOT_SECONDS = 300.0
PROGRESS_LOG_SECONDS = 15.0
FINALIZE_RETRY_SECONDS = 5.0


def job_key(sha256: str, spec: JobSpec) -> str:
    """Same content + same style images + same parameters + same output type = the same job."""
    identity = {"input": sha256, "style": spec.style, "ext": spec.output_ext,
                "params": spec.params.as_dict(),
                "images": [[r.path, r.weight, file_stamp(r.path)] for r in spec.images]}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=list).encode()).hexdigest()


def _engine_options(config: Config) -> dict:
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
        self.tracker = SettleTracker(self.config.watch.settle_seconds)
        self.watcher: Optional[InboxWatcher] = None
        self.worker: Optional[WorkerProcess] = None
        self.signals: list[int] = []
        self.unmatched: set[str] = set()
        self.stopping_since: Optional[float] = None
        self.restart_at = 0.0
        self.restart_backoff = 1.0
        self.next_rescan = 0.0
        self.last_ping = 0.0
        self.last_progress_write = 0.0
        self.last_progress_log = time.monotonic()
        self.processed = 0
        self.restart_worker_when_idle = False
        self.finalize_paused_until = 0.0
        self.dispatch_paused_until = 0.0
        self.write_backoff = 1.0
        self.inbox_id: Optional[tuple[int, int]] = None
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
        requeued, failed = self.store.requeue_orphans()
        if requeued or failed:
            self.log.warning("recovered jobs left running", requeued=requeued, failed=failed)
        self.log.info("nstd starting", version=__version__, config=str(c.path), inbox=str(c.inbox),
                      outbox=str(c.outbox), pid=os.getpid(), until_idle=self.until_idle)
        for warning in rule_warnings(c, []):
            self.log.warning("config warning", warning=warning)
        self._start_watcher()
        self._start_worker(wait=True)
        self._rescan("start-up")
        self.notifier.notify(ready="1", status="watching " + str(c.inbox))

    def _shutdown(self) -> None:
        self.notifier.notify(stopping="1")
        if self.watcher:
            self.watcher.close()
        if self.worker:
            if self.worker.job_id is not None:
                self.worker.kill()
                self._release_running("daemon stopping")
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
        else:
            self._watch(now)
        self._supervise_worker(now)
        self._finalize_inputs(now)
        self._write_gallery(now)
        self._health(now)
        if self.until_idle and self.stopping_since is None and self._idle():
            self._write_gallery(now)
            self.log.info("queue empty: exiting (until-idle mode)")
            return False
        return True

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
                if self.watcher:
                    self.watcher.stop()

    def _reload(self) -> None:
        try:
            new = load_config(self.config_path)
        except ConfigError as e:
            self.log.error("config reload refused; keeping the running config", problems=e.problems,
                           config=e.file)
            return
        old, self.config = self.config, new
        self.tracker.settle_seconds = new.watch.settle_seconds
        if new.state != old.state:
            self.log.warning("state file changes need a restart; keeping the old one", state=str(old.state))
        if (new.inbox, new.watch.mode, new.watch.poll_seconds) != (old.inbox, old.watch.mode, old.watch.poll_seconds):
            self._start_watcher()
        if _engine_options(new) != _engine_options(old) or new.worker.max_pixels != old.worker.max_pixels:
            self.log.info("worker settings changed: restarting the worker after its current job")
            self.restart_worker_when_idle = True
        self.unmatched.clear()
        self.next_rescan = 0.0
        self.log.info("config reloaded", config=str(new.path), rules=len(new.rules))

    # -- watching -----------------------------------------------------------------------
    def _start_watcher(self) -> None:
        if self.watcher:
            self.watcher.close()
        w = self.config.watch
        self.watcher = InboxWatcher(self.config.inbox, polling=w.mode == "polling", poll_seconds=w.poll_seconds)
        self.watcher.start()
        self.inbox_id = self._inbox_identity()
        self.log.info("watching", inbox=str(self.config.inbox), mode=w.mode)

    def _rescan(self, why: str) -> None:
        now = time.monotonic()
        open_paths = self.store.open_input_paths()
        seen = 0
        for path in scan(self.config.inbox):
            p = str(path)
            if p not in open_paths and p not in self.tracker.candidates and p not in self.unmatched:
                self.tracker.observe(p, now)
                seen += 1
        self.next_rescan = now + self.config.watch.rescan_minutes * 60
        self.log.info("scanned inbox", why=why, new_candidates=seen)

    def _inbox_identity(self) -> Optional[tuple[int, int]]:
        try:
            st = os.stat(self.config.inbox)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def _watch(self, now: float) -> None:
        identity = self._inbox_identity()
        if identity != self.inbox_id:
            # The inbox folder was removed (and maybe recreated, or a share remounted): the old
            # watches point nowhere. Wait for it, then watch the new folder and rescan.
            if identity is None:
                self.log.error("the inbox folder is missing; waiting for it", inbox=str(self.config.inbox))
                if self.watcher:
                    self.watcher.close()
                    self.watcher = None
            else:
                self.log.warning("the inbox folder is back (or was replaced): watching it again")
                self._start_watcher()
                self.next_rescan = 0.0
            self.inbox_id = identity
            if identity is None:
                return
        if self.inbox_id is None:
            return
        if self.watcher and not self.watcher.alive():
            self.log.error("watcher thread died: restarting it and rescanning")
            self._start_watcher()
            self.next_rescan = 0.0
        if self.watcher and self.watcher.overflowed.is_set():
            self.watcher.overflowed.clear()
            self.log.warning("file event queue overflowed: rescanning")
            self.next_rescan = 0.0
        for kind, path in self.watcher.drain() if self.watcher else []:
            if kind == "dir":
                self._scan_folder(Path(path), now)
            elif is_candidate(self.config.inbox, Path(path)):
                # Queued paths too: a file replaced while queued must be seen (its hash tells).
                self.unmatched.discard(path)
                self.tracker.observe(path, now)
        if now >= self.next_rescan:
            self._rescan("periodic" if self.next_rescan else "requested")
        for path, attempts in self.tracker.poll(now):
            self._accept(Path(path), attempts, now)

    def _scan_folder(self, folder: Path, now: float) -> None:
        if folder.is_dir() and not folder.is_symlink():
            for p in scan(self.config.inbox, folder):
                self.tracker.observe(str(p), now)

    def _accept(self, path: Path, attempts: int, now: float) -> None:
        """A settled file: check it, hash it, record its jobs; or retry it later, or quarantine it."""
        c = self.config
        rel = path.relative_to(c.inbox).as_posix()
        if path.is_symlink() or not os.path.realpath(path).startswith(os.path.realpath(c.inbox) + os.sep):
            self._quarantine(path, rel, "a symbolic link (or inside a linked folder): never followed "
                                        "out of the inbox", sha256="")
            return
        if not path.is_file():
            return
        specs = targets(c, rel)
        if not specs:
            if str(path) not in self.unmatched:
                self.unmatched.add(str(path))
                self.log.warning("no rule matches: left in the inbox", input=rel)
            return
        sha = file_sha256(path)
        if sha is None:
            self.log.warning("cannot read: left in the inbox", input=rel)
            return
        try:
            load_image(path, c.worker.max_pixels)
        except InputError as e:
            if attempts < c.watch.decode_retries:
                # Files on network shares can look settled while still arriving: look again later.
                self.log.info("not decodable yet: will retry", input=rel, cause=e.cause, attempt=attempts + 1)
                self.tracker.observe(str(path), now, attempts=attempts + 1)
            else:
                self._quarantine(path, rel, e.cause, sha256=sha)
            return
        known = self.store.known_input(rel, sha)
        if known and (known.state == "pending" or (known.state == "kept" and known.path == str(path))):
            return  # a stray event on a file already queued (or kept) with this very content
        jobs = [(job_key(sha, s), s.rule, s.style,
                 {"images": [r.__dict__ for r in s.images], "params": s.params.as_dict(),
                  "output_ext": s.output_ext}) for s in specs]
        input_id, new, skipped = self.store.add_input(rel, str(path), sha, path.stat().st_size, jobs)
        for job_id in new:
            job = self.store.job(job_id)
            self.log.info("job queued", job_id=job_id, input=rel, style=job.style, rule=job.rule,
                          state=JobState.QUEUED.value)
        if skipped:
            self.log.info("same content, style and parameters already done: not run again",
                          input=rel, duplicates=len(skipped))

    def _quarantine(self, path: Path, rel: str, cause: str, sha256: str) -> None:
        size = path.lstat().st_size if path.exists() or path.is_symlink() else 0
        report = {"input": rel, "error": cause, "stage": "intake", "time": time.time()}
        try:
            dest = move_input(path, self.config.failed, rel, report)
        except OSError as e:
            self.log.error("cannot move refused input to failed/", input=rel, cause=cause, error=str(e))
            return
        self.store.fail_input(rel, str(dest), sha256, size, cause)
        self.log.warning("input refused", input=rel, cause=cause, moved_to=str(dest))
        self._gallery_now()

    # -- the worker ---------------------------------------------------------------------
    def _start_worker(self, wait: bool = False) -> None:
        c = self.config
        self.worker = WorkerProcess(_engine_options(c), c.worker.max_pixels, self.log_json)
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
            self._on_message(message)
        return got

    def _on_message(self, message: tuple) -> None:
        kind = message[0]
        if kind == "ready":
            self.worker.ready = True
            self.worker.info = message[1]
            self.restart_backoff = 1.0
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
            job_id, outputs = message[1], message[2]
            self.store.finish(job_id, outputs)
            self.worker.job_id = None
            self.processed += 1
            self.write_backoff = 1.0
            self.log.info("job done", job_id=job_id, state=JobState.DONE.value, image=outputs["image"],
                          seconds=outputs.get("seconds"), final_loss=outputs.get("final", {}).get("total"))
            self._gallery_now()
        elif kind == "failed" and len(message) > 4 and message[4]:
            self.worker.job_id = None
            self.store.release(message[1])
            self.dispatch_paused_until = time.monotonic() + self.write_backoff
            self.log.error("cannot write results: pausing the queue", job_id=message[1], error=message[2],
                           retry_in_s=self.write_backoff, state=JobState.QUEUED.value)
            self.write_backoff = min(self.write_backoff * 2, MAX_RESTART_BACKOFF)
        elif kind == "failed":
            job_id, error, permanent = message[1], message[2], message[3]
            state = self.store.fail(job_id, error, permanent, self.config.worker.max_attempts)
            self.worker.job_id = None
            self.log.warning("job failed", job_id=job_id, state=state.value, error=error.splitlines()[0],
                             will_retry=state is JobState.QUEUED)
            self._gallery_now()

    def _supervise_worker(self, now: float) -> None:
        w = self.worker
        if w is not None:
            self._receive(TICK_SECONDS if w.job_id is not None or self.stopping_since is None else 0)
            w = self.worker
        else:
            time.sleep(TICK_SECONDS)
        if w is not None and not w.alive():
            code = w.process.exitcode
            if code == BOOT_ERROR_EXIT and not w.ready:
                raise WorkerStartError(str(self.config.path), "the worker could not start")
            self.log.error("worker died", exit_code=code, job_id=w.job_id,
                           restart_in_s=self.restart_backoff)
            if w.job_id is not None:
                state = self.store.fail(w.job_id, f"the worker process died (exit code {code})",
                                        permanent=False, max_attempts=self.config.worker.max_attempts)
                self.log.warning("job interrupted", job_id=w.job_id, state=state.value)
            w.kill()
            self.worker = None
            self.restart_at = now + self.restart_backoff
            self.restart_backoff = min(self.restart_backoff * 2, MAX_RESTART_BACKOFF)
            return
        if self.stopping_since is not None:
            return
        if w is None:
            if now >= self.restart_at:
                self._start_worker()
            return
        if w.ready and w.job_id is None and now >= self.dispatch_paused_until:
            if self.restart_worker_when_idle:
                self.restart_worker_when_idle = False
                w.stop()
                self.worker = None
                self.restart_at = now
                return
            self._dispatch()

    def _dispatch(self) -> None:
        job = self.store.claim_next()
        if job is None:
            return
        if not Path(job.input_path).is_file():
            self.store.fail(job.id, f"input file is gone: {job.input_path}", permanent=True,
                            max_attempts=self.config.worker.max_attempts)
            self.log.warning("job failed", job_id=job.id, state="failed", error="input file is gone")
            return
        out = output_path(self.config.outbox, job.rule, job.input_relpath, job.style,
                          job.spec["output_ext"], job.id)
        self.log.info("job running", job_id=job.id, input=job.input_relpath, style=job.style,
                      attempt=job.attempts, state=JobState.RUNNING.value)
        self._gallery_now()
        self.worker.send_job({"id": job.id, "input": job.input_path, "relpath": job.input_relpath,
                              "sha256": job.input_sha256, "rule": job.rule, "style": job.style,
                              "images": job.spec["images"], "params": job.spec["params"],
                              "output": str(out), "outbox": str(self.config.outbox),
                              "preview_every": self.config.worker.preview_every})

    def _release_running(self, why: str) -> None:
        """A job interrupted by our own stop goes back to the queue without using an attempt."""
        self.store.release(self.worker.job_id)
        self.log.info("job requeued", job_id=self.worker.job_id, state=JobState.QUEUED.value, why=why)

    # -- inputs whose jobs are over -----------------------------------------------------
    def _finalize_inputs(self, now: float) -> None:
        if now < self.finalize_paused_until:
            return
        c = self.config
        for inp, jobs in self.store.settled_inputs():
            src = Path(inp.path)
            failures = [j for j in jobs if j.state is JobState.FAILED]
            try:
                ours = file_sha256(src) == inp.sha256
                if src.exists() and not ours:
                    # Replaced while queued: the new content is an input of its own; leave it be.
                    self.store.close_input(inp.id, "superseded", str(src))
                    self.tracker.observe(str(src), now)  # the new content, if not already queued
                    self.log.info("input replaced while queued: the new version is processed separately",
                                  input=inp.relpath)
                elif failures:
                    cause = "; ".join(f"{j.style}: {(j.error or '').splitlines()[0]}" for j in failures)
                    report = {"input": inp.relpath, "error": cause, "stage": "processing",
                              "jobs": [{"job_id": j.id, "style": j.style, "state": j.state.value,
                                        "attempts": j.attempts, "error": j.error} for j in jobs],
                              "time": time.time()}
                    if ours:
                        dest = move_input(src, c.failed, inp.relpath, report)
                    else:  # the file vanished: its reason is still worth keeping
                        dest = confined(c.failed, inp.relpath)
                        write_error_json(dest, report)
                    self.store.close_input(inp.id, "failed", str(dest), cause)
                    self.log.warning("input failed", input=inp.relpath, moved_to=str(dest), cause=cause)
                elif not ours:
                    self.store.close_input(inp.id, "gone", str(src))
                elif c.after_success == "delete":
                    src.unlink()
                    self.store.close_input(inp.id, "deleted", str(src))
                elif c.after_success == "keep":
                    self.store.close_input(inp.id, "kept", str(src))
                else:
                    dest = move_input(src, c.archive, inp.relpath)
                    self.store.close_input(inp.id, "archived", str(dest))
                    self.log.info("input archived", input=inp.relpath, moved_to=str(dest))
            except OSError as e:
                self.finalize_paused_until = now + FINALIZE_RETRY_SECONDS
                self.log.error("cannot file the input away; will try again", input=inp.relpath,
                               error=str(e), retry_in_s=FINALIZE_RETRY_SECONDS)
                return

    # -- the gallery ----------------------------------------------------------------------
    def _gallery_now(self) -> None:
        self.gallery_due = 0.0

    def _write_gallery(self, now: float) -> None:
        if self.gallery_due is None or now < self.gallery_due:
            return
        try:
            write_gallery(self.store, self.config.outbox)
        except Exception as e:  # the gallery is a view: never a reason to stop processing
            self.log.error("cannot write the gallery", outbox=str(self.config.outbox),
                           error=f"{type(e).__name__}: {e}", exc_info=not isinstance(e, OSError))
        self.gallery_due = None

    # -- health -------------------------------------------------------------------------
    def _idle(self) -> bool:
        counts = self.store.counts()
        return (not len(self.tracker) and counts["queued"] == 0 and counts["running"] == 0
                and (self.worker is None or self.worker.job_id is None)
                and not self.store.open_input_paths())

    def _health(self, now: float) -> None:
        if not self.notifier.enabled:
            return
        interval = (self.notifier.watchdog_seconds or 30) / 3
        if now - self.last_ping < interval:
            return
        self.last_ping = now
        counts = self.store.counts()
        status = f"{counts['queued']} queued, {counts['running']} running, {counts['done']} done, " \
                 f"{counts['failed']} failed"
        healthy = (self.watcher is not None and self.watcher.alive()
                   and self.worker is not None and self.worker.alive())
        if healthy or self.stopping_since is not None:
            self.notifier.notify(watchdog="1", status=status)
        else:
            self.notifier.notify(status="unhealthy: " + status)
