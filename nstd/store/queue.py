"""The queue: claiming the next job atomically, its life cycle to done or failed, priorities, pause."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Optional

from nstd.core.jobs import JobState
from nstd.core.names import shown

from .records import INPUT_OPEN, JOB_SELECT, Job
from .statefile import StateFile

MAX_INTERRUPTIONS = 10


class JobQueue(StateFile):
    def claim_next(self, behind: Optional[int] = None) -> Optional[Job]:
        """The next job by priority, then first come; `behind` goes after the others of its priority.
        None while paused by an operator: read in the same transaction as the claim, so once `nstd
        pause` has returned no job starts (the daemon's gate only sees the pause a moment later)."""
        now = time.time()
        with self._tx():
            pause = self.paused()
            if pause is not None and not pause.get("machine_fault"):
                return None
            row = self.db.execute("SELECT id FROM jobs WHERE state='queued' ORDER BY priority DESC, id = ?, id "
                                  "LIMIT 1", (behind if behind is not None else -1,)).fetchone()
            if row is None:
                return None
            cur = self.db.execute("UPDATE jobs SET state='running', attempts=attempts+1, started=?, "
                                  "updated=?, progress=NULL WHERE id=? AND state='queued'",
                                  (now, now, row["id"]))
            if cur.rowcount != 1:
                return None
        return self.job(row["id"])

    def queue(self, limit: int = 20) -> list[Job]:
        """Queued jobs in the order they will run: higher priority first, then first come."""
        rows = self.db.execute(JOB_SELECT + " WHERE jobs.state='queued' ORDER BY jobs.priority DESC, jobs.id "
                               "LIMIT ?", (limit,))
        return [Job.from_row(r) for r in rows]

    def find_job(self, job_id: int) -> Optional[Job]:
        row = self.db.execute(JOB_SELECT + " WHERE jobs.id=?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def job(self, job_id: int) -> Job:
        return Job.from_row(self.db.execute(JOB_SELECT + " WHERE jobs.id=?", (job_id,)).fetchone())

    def set_priority(self, job_id: int, priority: int) -> bool:
        return self.db.execute("UPDATE jobs SET priority=?, updated=? WHERE id=? AND state='queued'",
                               (priority, time.time(), job_id)).rowcount == 1

    def set_dispatch(self, job_id: int, message_id: str) -> None:
        self.db.execute("UPDATE jobs SET dispatch=? WHERE id=? AND state='running'", (message_id, job_id))

    def set_progress(self, job_id: int, progress: dict) -> None:
        self.db.execute("UPDATE jobs SET progress=?, updated=? WHERE id=? AND state='running'",
                        (json.dumps(progress), time.time(), job_id))

    def finish(self, job_id: int, outputs: dict) -> None:
        now = time.time()
        self.db.execute("UPDATE jobs SET state='done', outputs=?, error=NULL, finished=?, updated=? "
                        "WHERE id=?", (json.dumps(outputs), now, now, job_id))

    def fail(self, job_id: int, error: str, permanent: bool, max_attempts: int) -> JobState:
        """Record a failed attempt; the job is queued again unless it is out of attempts."""
        now = time.time()
        job = self.job(job_id)
        state = JobState.FAILED if permanent or job.attempts >= max_attempts else JobState.QUEUED
        self.db.execute("UPDATE jobs SET state=?, error=?, finished=?, updated=?, progress=NULL "
                        "WHERE id=?", (state.value, shown(error),
                                       now if state is JobState.FAILED else None, now, job_id))
        return state

    def replan(self, job_id: int, key: str, spec: dict, priority: int) -> bool:
        """A queued job takes the spec the config in force gives it; False if it is no longer queued
        or this photo has a job of that key already."""
        try:
            return self.db.execute("UPDATE jobs SET job_key=?, spec=?, priority=?, updated=? WHERE id=? AND "
                                   "state='queued'", (key, json.dumps(spec, sort_keys=True), priority,
                                                      time.time(), job_id)).rowcount == 1
        except sqlite3.IntegrityError:
            return False

    def withdraw(self, job_id: int, why: str) -> None:
        """A job whose photo left the inbox before it was painted: over, and no failure of anyone's."""
        now = time.time()
        self.db.execute("UPDATE jobs SET state='withdrawn', error=?, finished=?, updated=?, progress=NULL "
                        "WHERE id=?", (shown(why), now, now, job_id))

    def give_back(self, job_id: int) -> None:
        """A failed attempt that was the machine's, not the job's: queued again with the attempt returned."""
        self.db.execute("UPDATE jobs SET state='queued', attempts=MAX(attempts-1, 0), progress=NULL, finished=NULL, "
                        "updated=? WHERE id=? AND state IN ('running', 'queued', 'failed')", (time.time(), job_id))

    def release(self, job_id: int) -> None:
        """A running job back to the queue without using an attempt (our stop, or a full disk)."""
        self.db.execute("UPDATE jobs SET state='queued', attempts=MAX(attempts-1, 0), progress=NULL, "
                        "updated=? WHERE id=? AND state='running'", (time.time(), job_id))

    def retry(self, job_ids: Optional[list[int]] = None) -> int:
        """Failed jobs (all, or these) back to the queue with fresh attempts; reopens their inputs."""
        where = "state='failed'" + (f" AND id IN ({','.join('?' * len(job_ids))})" if job_ids else "")
        now = time.time()
        with self._tx():
            ids = [r[0] for r in self.db.execute(f"SELECT id FROM jobs WHERE {where}", job_ids or [])]
            for jid in ids:
                self.db.execute("UPDATE jobs SET state='queued', attempts=0, error=NULL, finished=NULL, "
                                "updated=? WHERE id=?", (now, jid))
                self.db.execute("UPDATE inputs SET state=?, updated=? WHERE id=(SELECT input_id FROM "
                                "jobs WHERE id=?)", (INPUT_OPEN, now, jid))
        return len(ids)

    def requeue(self, job_id: int) -> None:
        """A done job whose result has gone (deleted by hand) is painted again."""
        self.db.execute("UPDATE jobs SET state='queued', attempts=0, outputs=NULL, finished=NULL, updated=? "
                        "WHERE id=? AND state='done'", (time.time(), job_id))

    def requeue_orphans(self) -> tuple[int, int]:
        """Jobs left running when the daemon died go back to the queue.

        The daemon's death (kill -9, reboot, power) is not the job's fault, so the attempt is given
        back; only a job present at MAX_INTERRUPTIONS such deaths is suspected and failed, so that
        a job that somehow takes the daemon down cannot loop forever.
        """
        now = time.time()
        with self._tx():
            self.db.execute("UPDATE jobs SET interruptions=interruptions+1 WHERE state='running'")
            failed = self.db.execute(
                "UPDATE jobs SET state='failed', finished=?, updated=?, error=? "
                "WHERE state='running' AND interruptions>=?",
                (now, now, f"the daemon died {MAX_INTERRUPTIONS} times while running it", MAX_INTERRUPTIONS)).rowcount
            requeued = self.db.execute("UPDATE jobs SET state='queued', attempts=MAX(attempts-1, 0), "
                                       "updated=?, progress=NULL WHERE state='running'", (now,)).rowcount
        return requeued, failed

    def pause(self, why: str, **facts) -> None:
        """No new job starts until `resume` (the running one finishes); survives restarts. `facts`
        are kept with it (a machine fault's next probe)."""
        self.db.execute("INSERT INTO settings (key, value) VALUES ('paused', ?) ON CONFLICT (key) DO UPDATE "
                        "SET value=excluded.value", (json.dumps({"since": time.time(), "why": why, **facts}),))

    def resume(self) -> bool:
        return self.db.execute("DELETE FROM settings WHERE key='paused'").rowcount == 1

    def paused(self) -> Optional[dict]:
        row = self.db.execute("SELECT value FROM settings WHERE key='paused'").fetchone()
        return json.loads(row[0]) if row else None
