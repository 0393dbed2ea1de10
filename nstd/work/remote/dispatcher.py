"""The daemon's side of the redis backend: jobs out to Redis, reports in, nothing lost between.

It answers the daemon as the local supervisor does (tick, busy, healthy, shutdown) and records
outcomes through the same `JobRecorder`. It keeps as many jobs in Redis as there are live worker
hosts (at least one), so that the queue's order, priorities and pauses stay the daemon's: once in
Redis, a job is first come, first served. Reports are acknowledged only after they are recorded.

Redis away: intake goes on into SQLite, dispatch waits with backoff, and `nstd status` says so.
Every running job holds a lease (`leases.py`): one held by no message and no host is taken back.
Failures that are a host's own count against it (`rotation.py`), never against the photo.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable, Optional

from nstd.config import Config
from nstd.core.backoff import Backoff
from nstd.core.jobs import JobState
from nstd.ops.folderfaults import FolderFaults
from nstd.ops.metrics import Metrics
from nstd.ops.notify import Notifications
from nstd.store import Store
from nstd.work.protocol import PAST_TIME_LIMIT, Done, Failed, Progress
from nstd.work.recorder import JobRecorder, job_order

from . import broker as shared
from .leases import Leases
from .rotation import HostRotation

TICK_SECONDS = 0.2
LEASE_CHECK_SECONDS = 5.0
PRESENCE_REFRESH_SECONDS = 2.0
REPORTS_PER_TICK = 200
REDIS_FULL = ("Redis is at its maxmemory and refuses writes: nothing is lost, the jobs wait here; give it room "
              "(raise maxmemory, free memory there) and dispatch resumes by itself")
OWNER_REFRESH_SECONDS = 5.0


class RemoteDispatcher:
    def __init__(self, config: Config, store: Store, log, on_change: Callable[[], None],
                 on_progress: Callable[[int, dict], None] = lambda *_: None, metrics: Optional[Metrics] = None,
                 notifications: Optional[Notifications] = None,
                 folder_faults: Optional[FolderFaults] = None):
        self.config, self.store, self.log = config, store, log
        self.recorder = JobRecorder(config, store, log, on_change, on_progress, metrics, notifications,
                                    folder_faults)
        self.broker = None
        self.consumer = None
        self.pending: deque = deque()   # reports read but not yet recorded (the state file was full)
        self.redis_backoff = Backoff(1.0, 30.0)
        self.redis_error: Optional[str] = None
        self.leases = Leases(config, store, log, self.recorder)
        self.rotation = HostRotation(log, self.recorder.metrics, self.recorder.notifications)
        self.lease_check_due = 0.0
        self.presence_due = 0.0
        self.hosts: list[dict] = []
        self.owner_due = 0.0
        self.other_install: Optional[dict] = None

    # -- what the daemon asks of a supervisor ---------------------------------------------
    @property
    def processed(self) -> int:
        return self.recorder.processed

    @property
    def job_id(self) -> None:
        return None  # nothing runs in this process: a stop need not wait for a job

    def busy(self) -> bool:
        return False

    def healthy(self, now: float) -> bool:
        return True  # Redis away is not the daemon's ill health: it goes on taking inputs

    def restart_after_job(self) -> None:
        self.log.info("worker hosts read their own config: restart `nstd worker` there for new worker settings")

    def start(self, now: float, wait: bool = False) -> None:
        self.log.info("dispatching to Redis", redis=shared.redacted(self.config.worker.redis_url))

    def shutdown(self) -> None:
        """Jobs out in Redis go on; their reports wait there for the next start."""
        if self.broker is not None:
            try:
                self.consumer and self.consumer.close()
                self.broker.close()
            except Exception:
                pass
        self.broker = self.consumer = None

    # -- the loop ---------------------------------------------------------------------------
    def tick(self, now: float, dispatching: bool, stopping: bool = False) -> None:
        if not self.redis_backoff.due(now):
            time.sleep(TICK_SECONDS)
            return
        import redis
        from dramatiq.errors import ConnectionError as BrokerConnectionError
        try:
            self._connect()
            if now >= self.owner_due:
                self.owner_due = now + OWNER_REFRESH_SECONDS
                self._claim_database()
            if self.other_install is not None:
                time.sleep(TICK_SECONDS)
                return  # another install's reports are not ours to consume, nor its workers ours to feed
            quiet = self._receive(now)
            if now >= self.presence_due:
                self.presence_due = now + PRESENCE_REFRESH_SECONDS
                out = self.rotation.refresh(self.broker.client)
                self.hosts = shared.workers(self.broker.client, self.config.worker.redis_heartbeat_seconds)
                self.hosts = [w for w in self.hosts if w.get("host") not in out]
            if quiet and now >= self.lease_check_due:
                self.lease_check_due = now + LEASE_CHECK_SECONDS
                self.leases.check(self.broker.client, self.hosts, now)
            if dispatching and not stopping and self.recorder.dispatch_pause.due(now):
                self._dispatch(now)
        except (redis.RedisError, BrokerConnectionError, OSError) as e:
            wait = self.redis_backoff.failed(now)
            self.redis_error = str(e) or type(e).__name__
            self.log.error("cannot reach Redis: jobs wait in the state file", error=self.redis_error,
                           retry_in_s=wait, **({"why": REDIS_FULL} if "maxmemory" in self.redis_error else {}))
            self.shutdown()
            self.leases.forget()
            return
        if self.redis_error is not None:
            self.log.info("Redis reachable again")
            self.redis_error = None
        self.redis_backoff.succeeded()

    def _claim_database(self) -> None:
        import socket
        me = {"id": self.store.install_id(), "host": socket.gethostname(), "state": str(self.config.state)}
        other = shared.claim_database(self.broker.client, me)
        if other is not None and other != self.other_install:
            self.log.error("another nstd install uses this Redis database: not dispatching or reading reports "
                           "until it stops (give each install its own database, e.g. redis://host:6379/1)",
                           redis=shared.redacted(self.config.worker.redis_url), other=other)
        elif other is None and self.other_install is not None:
            self.log.info("this Redis database is ours again: dispatching")
        self.other_install = other

    def _connect(self) -> None:
        if self.broker is None:
            w = self.config.worker
            self.broker = shared.make_broker(w.redis_url, w.redis_heartbeat_seconds)
            self.consumer = self.broker.consume(shared.REPORT_QUEUE, prefetch=REPORTS_PER_TICK,
                                                timeout=int(TICK_SECONDS * 1000))

    def _receive(self, now: float) -> bool:
        """Record what the workers said; True if nothing was waiting."""
        for _ in range(REPORTS_PER_TICK):
            if not self.pending:
                message = next(self.consumer)
                if message is None:
                    return True
                self.pending.append(message)
            message = self.pending[0]
            try:
                report, extra = shared.report_from(message)
            except shared.MalformedReport as e:
                shared.set_aside(self.broker.client, "report", str(e), repr(message.args))
                self.log.error("a worker's report could not be read: set aside", cause=str(e), kept_in=shared.SET_ASIDE,
                               message_id=getattr(message, "message_id", None), args=repr(message.args)[:300])
            else:
                if extra:
                    self.log.warning("a worker's report has fields this version does not know (another nstd "
                                     "version on a worker host?): read without them", fields=extra)
                self._record(report, now)   # StoreUnavailable: kept, tried again
            self.consumer.ack(message)
            self.pending.popleft()
        return False

    def _record(self, report, now: float) -> None:
        job = self.store.find_job(report.job_id)
        if job is None:
            self.log.warning("a worker's report names no job of this daemon: dropped", job_id=report.job_id,
                             report=type(report).__name__)
            return
        if report.key and report.key != job.key:
            self.log.warning("a worker's report is for another painting than this job's: dropped",
                             job_id=job.id, report=type(report).__name__)
            return
        if isinstance(report, Progress):
            if job.state is JobState.RUNNING:
                self.recorder.progress(job.id, report.progress, now)
        elif isinstance(report, Done):
            recovered_before = job.state is JobState.DONE and (job.outputs or {}).get("recovered")
            self.rotation.succeeded(report.outputs.get("host", ""))
            if job.state in (JobState.RUNNING, JobState.QUEUED):
                self.recorder.done(job.id, report.outputs)
            elif recovered_before and not report.outputs.get("recovered"):
                self.store.finish(job.id, report.outputs)  # the full outputs, thumbnails included
        elif isinstance(report, Failed) and job.state is JobState.RUNNING:
            if not report.permanent and not report.error.startswith(PAST_TIME_LIMIT):
                self.rotation.failed(self.broker.client, report.host, report.error)
            if report.environmental:
                self.store.release(job.id)
                self.recorder.pause_dispatch(job.id, report.error, now)
            else:
                self.recorder.fail(job.id, report.error, report.permanent)

    def _dispatch(self, now: float) -> None:
        capacity = max(1, len(self.hosts))
        for _ in range(capacity + 10):  # a bound: claims settled here (twins) do not fill a slot
            if self.store.counts()["running"] >= capacity:
                return
            claimed = self.recorder.claim(now)
            if claimed is None:
                if not self.store.queue(1):
                    return
                continue
            job, out = claimed
            try:
                sent = self.broker.enqueue(shared.paint_message(job_order(job, out, self.config)))
            except Exception:
                self.store.release(job.id)  # not sent: back in line, no attempt used
                raise
            self.store.set_dispatch(job.id, sent.options["redis_message_id"])
