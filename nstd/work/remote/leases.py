"""No job is "running" without a live lease on it.

From its dispatch to its report, a job is held by its message waiting in Redis for a host, or by
a live worker host whose presence names it. A job held by neither for LEASE_SECONDS (its host
gone and Dramatiq has not handed the message on; a host that could not ack through a Redis
outage and went idle; a host stopped for longer than its heartbeat) is taken back: its message is
withdrawn from Redis, so that no host takes it later, and it is finished if its result is in
place, else queued again without using an attempt. A message gone from Redis altogether (acked
with the report lost, Redis restarted without its data) is taken back the same way after a
moment. A job past worker.job_timeout_minutes on a host that did not stop it is failed here, as
the local supervisor fails one.
"""

from __future__ import annotations

from nstd.config import Config
from nstd.core.jobs import JobState
from nstd.outbox.files import log_path_for, result_exists
from nstd.store import Job, Store
from nstd.work.protocol import past_time_limit
from nstd.work.recorder import JobRecorder, result_path

from . import broker as shared

# Presence is published every 5 s and kept across a Redis outage: six beats missed, or a host
# that came back from one and names no job, is no holder.
LEASE_SECONDS = 30.0
GONE_SECONDS = 5.0               # the message is not in Redis at all: two checks agree
TIME_LIMIT_GRACE_SECONDS = 60.0  # the host stops the job itself at its limit; this is the backstop


class Leases:
    def __init__(self, config: Config, store: Store, log, recorder: JobRecorder):
        self.config, self.store, self.log, self.recorder = config, store, log, recorder
        self.unheld: dict[int, float] = {}  # job id -> when first seen held by nothing
        self.taken: dict[int, float] = {}   # job id -> when first seen in a host's hands

    def forget(self) -> None:
        """Redis was away: what was seen before says nothing about now."""
        self.unheld.clear()

    def check(self, client, hosts: list[dict], now: float) -> None:
        running = self.store.jobs_in(JobState.RUNNING, limit=10_000)
        named = {w.get("job") for w in hosts}
        queued = shared.waiting(client)
        seen: set[int] = set()
        for job in running:
            seen.add(job.id)
            in_redis = bool(job.dispatch) and shared.in_redis(client, job.dispatch)
            if in_redis and job.dispatch in queued:
                self.unheld.pop(job.id, None)
                continue
            if job.id in named:     # its message may be gone (Redis flushed): the host's report is not
                self.unheld.pop(job.id, None)
                self.taken.setdefault(job.id, now)
                self._hold_to_time_limit(client, job, now)
                continue
            since = self.unheld.setdefault(job.id, now)
            if now - since >= (LEASE_SECONDS if in_redis else GONE_SECONDS):
                self.take_back(client, job, "no worker host holds it (the host gone, or Redis lost its ack)"
                               if in_redis else "its message is no longer in Redis")
        self.unheld = {k: v for k, v in self.unheld.items() if k in seen}
        self.taken = {k: v for k, v in self.taken.items() if k in seen}

    def take_back(self, client, job: Job, why: str) -> None:
        if job.dispatch:
            shared.withdraw(client, job.dispatch)
        self.unheld.pop(job.id, None)
        self.taken.pop(job.id, None)
        out = result_path(self.config, job)
        if result_exists(out, job.key, job.input_relpath):
            self.log.warning("job finished without a report reaching the daemon", job_id=job.id)
            self.recorder.done(job.id, {"image": str(out), "log": str(log_path_for(out)), "recovered": True})
        else:
            self.store.release(job.id)
            self.log.warning("job taken back: queued again, no attempt used", job_id=job.id, why=why,
                             state=JobState.QUEUED.value)
            self.recorder.on_change()

    def _hold_to_time_limit(self, client, job: Job, now: float) -> None:
        limit = self.config.worker.job_timeout_minutes * 60
        if not limit or now - self.taken[job.id] <= limit + TIME_LIMIT_GRACE_SECONDS:
            return
        if job.dispatch:
            shared.withdraw(client, job.dispatch)
        self.taken.pop(job.id, None)
        self.log.error("a worker host ran a job past its time limit and did not stop it", job_id=job.id,
                       limit_minutes=limit / 60)
        self.recorder.fail(job.id, f"{past_time_limit(limit)}, and its worker host did not stop it",
                           permanent=False)
