"""The persistent queue: one SQLite file (WAL) holding every input and every job.

An input is a file that arrived in the inbox (its path relative to the inbox and its SHA-256);
a job is one style applied to one input, so every file dropped gets its own job and its own
result. A job's key hashes the content, the style images and the parameters: jobs that share a key
(the same photo dropped under two names) are painted once and the result delivered to each.

Names are stored as their exact file-system bytes (`CAST(? AS TEXT)` of the bytes, read back with
surrogateescape), so a name that is not UTF-8 round-trips instead of crashing the store. Any
SQLite failure (disk full, I/O error, file removed) surfaces as `StoreUnavailable`, which the
daemon answers by pausing, never by dying mid-step.

Only the daemon writes jobs' states, from its main thread; `nstd status` reads and `nstd retry`
writes from other processes, which WAL and a busy timeout make safe. A claim counts only if its
UPDATE changed exactly one row.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from .errors import StateError
from .jobs import JobState
from .names import fs_bytes, shown

SCHEMA = """
CREATE TABLE IF NOT EXISTS inputs (
    id INTEGER PRIMARY KEY,
    relpath TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    error TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (relpath, sha256)
);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    input_id INTEGER NOT NULL REFERENCES inputs(id),
    job_key TEXT NOT NULL,
    rule TEXT NOT NULL,
    style TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    interruptions INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    outputs TEXT,
    progress TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    started REAL,
    finished REAL,
    priority INTEGER NOT NULL DEFAULT 0,
    dispatch TEXT,
    UNIQUE (input_id, job_key)
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs (job_key, state);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, id);
CREATE INDEX IF NOT EXISTS jobs_order ON jobs (state, priority DESC, id);
CREATE INDEX IF NOT EXISTS jobs_input ON jobs (input_id);
CREATE INDEX IF NOT EXISTS inputs_state ON inputs (state);
"""

MAX_INTERRUPTIONS = 10
NAME = "CAST(? AS TEXT)"  # a parameter holding a name's bytes, stored as TEXT byte for byte


class StoreUnavailable(StateError):
    """The state file cannot be written or read right now (disk full, I/O error)."""


def _decode_text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class _Db:
    """The connection, with every SQLite failure turned into StoreUnavailable naming the file."""

    def __init__(self, path: Path, connection: sqlite3.Connection):
        self.path, self.connection = path, connection

    def execute(self, sql: str, params=()) -> sqlite3.Cursor:
        try:
            return self.connection.execute(sql, params)
        except sqlite3.OperationalError as e:
            raise StoreUnavailable(str(self.path), f"state file unavailable ({e})") from None

    def close(self) -> None:
        self.connection.close()

# Input states: 'pending' while any of its jobs is open, then where the file went.
INPUT_OPEN = "pending"


@dataclass(frozen=True)
class Job:
    id: int
    input_id: int
    key: str
    rule: str
    style: str
    spec: dict
    state: JobState
    attempts: int
    error: Optional[str]
    outputs: Optional[dict]
    progress: Optional[dict]
    input_path: str
    input_relpath: str
    input_sha256: str
    finished: Optional[float] = None
    priority: int = 0
    dispatch: Optional[str] = None  # the redis backend's message id while it is out

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Job":
        return cls(row["id"], row["input_id"], row["job_key"], row["rule"], row["style"],
                   json.loads(row["spec"]), JobState(row["state"]), row["attempts"], row["error"],
                   json.loads(row["outputs"]) if row["outputs"] else None,
                   json.loads(row["progress"]) if row["progress"] else None,
                   row["path"], row["relpath"], row["sha256"], row["finished"], row["priority"],
                   # A state file the daemon has not migrated yet, read by `nstd status` or the web app.
                   row["dispatch"] if "dispatch" in row.keys() else None)


@dataclass(frozen=True)
class Input:
    id: int
    relpath: str
    path: str
    sha256: str
    state: str
    error: Optional[str]


_JOB_SELECT = ("SELECT jobs.*, inputs.path, inputs.relpath, inputs.sha256 FROM jobs "
               "JOIN inputs ON inputs.id = jobs.input_id")


class Store:
    def __init__(self, path: Path, readonly: bool = False, shared: bool = False):
        self.path = Path(path)
        if readonly and not self.path.exists():
            raise StateError(str(self.path), "no state file yet: has the daemon run with this config?")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.created = not self.path.exists() or self.path.stat().st_size == 0
        try:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                         check_same_thread=not shared)
            connection.row_factory = sqlite3.Row
            connection.text_factory = _decode_text
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")  # a finished job must survive a power cut
            connection.execute("PRAGMA foreign_keys=ON")
            if not readonly:
                _migrate(connection)
                connection.executescript(SCHEMA)
            connection.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as e:
            raise StateError(str(self.path), f"state file unusable ({e})") from None
        self.db = _Db(self.path, connection)
        self._lock_fd: Optional[int] = None

    def close(self) -> None:
        self.db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def lock(self) -> None:
        """Take the daemon's exclusive lock, or refuse: two daemons on one queue would double-process."""
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateError(str(self.path), "another nstd daemon is running on this state file") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd
        self._identity = (_inode(self.path), os.fstat(fd).st_ino)

    def still_ours(self) -> bool:
        """False once the state file or its lock was deleted or replaced under the running daemon:
        a second daemon could then take a new lock and paint everything again."""
        try:
            return self._identity == (_inode(self.path), os.stat(f"{self.path}.lock").st_ino)
        except OSError:
            return False

    def _tx(self):
        return _Transaction(self.db)

    # -- arrivals -------------------------------------------------------------------------
    def known_input(self, relpath: str, sha256: str) -> Optional[Input]:
        row = self.db.execute(f"SELECT * FROM inputs WHERE relpath={NAME} AND sha256=?",
                              (fs_bytes(relpath), sha256)).fetchone()
        return _input(row) if row else None

    def input_named(self, relpath: str) -> Optional[Input]:
        """The latest input recorded under this inbox name."""
        row = self.db.execute(f"SELECT * FROM inputs WHERE relpath={NAME} ORDER BY updated DESC LIMIT 1",
                              (fs_bytes(relpath),)).fetchone()
        return _input(row) if row else None

    def input(self, input_id: int) -> Optional[Input]:
        row = self.db.execute("SELECT * FROM inputs WHERE id=?", (input_id,)).fetchone()
        return _input(row) if row else None

    def input_at(self, path: str) -> Optional[Input]:
        row = self.db.execute(f"SELECT * FROM inputs WHERE path={NAME} ORDER BY updated DESC LIMIT 1",
                              (fs_bytes(path),)).fetchone()
        return _input(row) if row else None

    def done_jobs_of(self, input_id: int) -> list[Job]:
        """The paintings of one photo, in the order they were made (its versions)."""
        return [Job.from_row(r) for r in self.db.execute(
            _JOB_SELECT + " WHERE input_id=? AND jobs.state='done' ORDER BY jobs.id", (input_id,))]

    def jobs_of(self, input_id: int) -> list[Job]:
        return [Job.from_row(r) for r in self.db.execute(_JOB_SELECT + " WHERE input_id=? ORDER BY jobs.id",
                                                         (input_id,))]

    def open_input_paths(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT path FROM inputs WHERE state=?", (INPUT_OPEN,))}

    def add_input(self, relpath: str, path: str, sha256: str, size: int,
                  jobs: list[tuple[str, str, str, dict]]) -> tuple[int, list[int], list[str]]:
        """Record an arrival and its jobs (key, rule, style, spec) in one transaction.

        A job may carry a fifth element, its priority (higher runs first; default 0).
        Returns the input id, the ids of new jobs, and the ids of this input's jobs that were done
        before (the same file dropped again under the same name: the caller checks their results).
        A new drop is a new request: the input is reopened and its failed jobs are queued afresh.
        """
        now = time.time()
        with self._tx():
            row = self.db.execute(f"SELECT id FROM inputs WHERE relpath={NAME} AND sha256=?",
                                  (fs_bytes(relpath), sha256)).fetchone()
            if row:
                input_id = row["id"]
                self.db.execute(f"UPDATE inputs SET state=?, path={NAME}, error=NULL, updated=? WHERE id=?",
                                (INPUT_OPEN, fs_bytes(path), now, input_id))
                # Failures of an earlier request (another style file stamp, other parameters) are
                # superseded by this one; their reason stays beside the copy in failed/.
                keys = [key for key, *_ in jobs]
                self.db.execute(f"DELETE FROM jobs WHERE input_id=? AND state='failed' AND job_key NOT IN "
                                f"({','.join('?' * len(keys))})", (input_id, *keys))
            else:
                input_id = self.db.execute(
                    "INSERT INTO inputs (relpath, path, sha256, size, created, updated) "
                    f"VALUES ({NAME}, {NAME}, ?, ?, ?, ?)",
                    (fs_bytes(relpath), fs_bytes(path), sha256, size, now, now)).lastrowid
            new, done_before = [], []
            for key, rule, style, spec, *priority in jobs:
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO jobs (input_id, job_key, rule, style, spec, priority, created, updated) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (input_id, key, rule, style, json.dumps(spec, sort_keys=True), priority[0] if priority else 0,
                     now, now))
                if cur.rowcount == 1:
                    new.append(cur.lastrowid)
                    continue
                old = self.db.execute("SELECT id, state FROM jobs WHERE input_id=? AND job_key=?",
                                      (input_id, key)).fetchone()
                if old["state"] in (JobState.FAILED.value, JobState.DELETED.value):
                    self.db.execute("UPDATE jobs SET state='queued', attempts=0, interruptions=0, error=NULL, "
                                    "finished=NULL, updated=? WHERE id=?", (now, old["id"]))
                    new.append(old["id"])
                elif old["state"] == JobState.DONE.value:
                    done_before.append(old["id"])
        return input_id, new, done_before

    def requeue(self, job_id: int) -> None:
        """A done job whose result has gone (deleted by hand) is painted again."""
        self.db.execute("UPDATE jobs SET state='queued', attempts=0, outputs=NULL, finished=NULL, updated=? "
                        "WHERE id=? AND state='done'", (time.time(), job_id))

    def mark_deleted(self, job_ids: list[int]) -> int:
        """Done jobs whose result is gone from the outbox: no longer counted or shown as results."""
        now = time.time()
        with self._tx():
            return sum(self.db.execute("UPDATE jobs SET state='deleted', updated=? WHERE id=? AND state='done'",
                                       (now, jid)).rowcount for jid in job_ids)

    def done_images(self) -> list[tuple[int, str]]:
        """(job id, result image path) of every done job: what the outbox should hold."""
        return [(r[0], r[1] or "") for r in
                self.db.execute("SELECT id, json_extract(outputs, '$.image') FROM jobs WHERE state='done'")]

    def shown_by_others(self, thumb: str, job_id: int) -> bool:
        """True if a done job other than this one shows this thumbnail (a twin delivered from it)."""
        return self.db.execute("SELECT 1 FROM jobs WHERE state='done' AND id!=? AND instr(outputs, ?) LIMIT 1",
                               (job_id, json.dumps(thumb))).fetchone() is not None

    def change_count(self) -> int:
        """Changes to the file made by other connections (`nstd pause`, the web app): SQLite's
        data_version, which moves when another connection commits."""
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    def daemon_running(self) -> bool:
        """True while a daemon holds this state file's lock."""
        try:
            fd = os.open(f"{self.path}.lock", os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    def done_twins(self, key: str, job_id: int) -> list["Job"]:
        """Done jobs of other inputs with the same key, newest first: their result is this job's."""
        rows = self.db.execute(_JOB_SELECT + " WHERE jobs.job_key=? AND jobs.state='done' AND jobs.id!=? "
                               "ORDER BY jobs.finished DESC", (key, job_id))
        return [Job.from_row(r) for r in rows]

    # -- the job life cycle ---------------------------------------------------------------
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

    def claim_next(self) -> Optional[Job]:
        now = time.time()
        with self._tx():
            row = self.db.execute("SELECT id FROM jobs WHERE state='queued' ORDER BY priority DESC, id "
                                  "LIMIT 1").fetchone()
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
        rows = self.db.execute(_JOB_SELECT + " WHERE jobs.state='queued' ORDER BY jobs.priority DESC, jobs.id "
                               "LIMIT ?", (limit,))
        return [Job.from_row(r) for r in rows]

    def set_priority(self, job_id: int, priority: int) -> bool:
        return self.db.execute("UPDATE jobs SET priority=?, updated=? WHERE id=? AND state IN ('queued', 'running')",
                               (priority, time.time(), job_id)).rowcount == 1

    # -- pause ------------------------------------------------------------------------------
    def pause(self, why: str) -> None:
        """No new job starts until `resume` (the running one finishes); survives restarts."""
        self.db.execute("INSERT INTO settings (key, value) VALUES ('paused', ?) ON CONFLICT (key) DO UPDATE "
                        "SET value=excluded.value", (json.dumps({"since": time.time(), "why": why}),))

    def resume(self) -> bool:
        return self.db.execute("DELETE FROM settings WHERE key='paused'").rowcount == 1

    def paused(self) -> Optional[dict]:
        row = self.db.execute("SELECT value FROM settings WHERE key='paused'").fetchone()
        return json.loads(row[0]) if row else None

    def find_job(self, job_id: int) -> Optional[Job]:
        row = self.db.execute(_JOB_SELECT + " WHERE jobs.id=?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def job(self, job_id: int) -> Job:
        return Job.from_row(self.db.execute(_JOB_SELECT + " WHERE jobs.id=?", (job_id,)).fetchone())

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

    # -- inputs whose jobs are all over ---------------------------------------------------
    def settled_inputs(self) -> Iterator[tuple[Input, list[Job]]]:
        rows = self.db.execute(
            "SELECT * FROM inputs WHERE state=? AND NOT EXISTS (SELECT 1 FROM jobs WHERE "
            "jobs.input_id=inputs.id AND jobs.state IN ('queued','running'))", (INPUT_OPEN,)).fetchall()
        for row in rows:
            jobs = [Job.from_row(r) for r in
                    self.db.execute(_JOB_SELECT + " WHERE input_id=? ORDER BY jobs.id", (row["id"],))]
            yield _input(row), jobs

    def close_input(self, input_id: int, state: str, path: str, error: Optional[str] = None) -> None:
        self.db.execute(f"UPDATE inputs SET state=?, path={NAME}, error=?, updated=? WHERE id=?",
                        (state, fs_bytes(path), shown(error) if error else None, time.time(), input_id))

    def fail_input(self, relpath: str, path: str, sha256: str, size: int, error: str) -> None:
        """An input refused before any job (unreadable, not an image, outside the inbox)."""
        now = time.time()
        self.db.execute(
            "INSERT INTO inputs (relpath, path, sha256, size, state, error, created, updated) "
            f"VALUES ({NAME}, {NAME}, ?, ?, 'refused', ?, ?, ?) ON CONFLICT (relpath, sha256) DO UPDATE SET "
            "state='refused', path=excluded.path, error=excluded.error, updated=excluded.updated",
            (fs_bytes(relpath), fs_bytes(path), sha256, size, shown(error), now, now))

    def mark_returned(self, input_id: int, path: str) -> None:
        """A refused input put back in the inbox by `nstd retry`: no longer a failure."""
        self.close_input(input_id, "returned", path)

    def refused_inputs(self) -> list[Input]:
        """Inputs quarantined at intake (no job ran): `nstd retry` puts them back in the inbox."""
        return [_input(r) for r in self.db.execute("SELECT * FROM inputs WHERE state='refused' ORDER BY id")]

    # -- reporting ------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in JobState}
        counts.update({r[0]: r[1] for r in self.db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")})
        return counts

    def jobs_in(self, state: JobState, limit: int = 20, newest_first: bool = False) -> list[Job]:
        order = "DESC" if newest_first else "ASC"
        rows = self.db.execute(_JOB_SELECT + f" WHERE jobs.state=? ORDER BY jobs.updated {order} LIMIT ?",
                               (state.value, limit))
        return [Job.from_row(r) for r in rows]

    def done_ids_in_order(self) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM jobs WHERE state='done' ORDER BY finished, id")]

    def done_versions(self) -> dict[int, list[int]]:
        """For each done job, the done jobs of its photo (its versions), in the order they were made."""
        of_input: dict[int, list[int]] = {}
        for job_id, input_id in self.db.execute("SELECT id, input_id FROM jobs WHERE state='done' ORDER BY id"):
            of_input.setdefault(input_id, []).append(job_id)
        return {job_id: ids for ids in of_input.values() for job_id in ids}

    def failed_inputs(self, limit: int = 20) -> list[Input]:
        rows = self.db.execute("SELECT * FROM inputs WHERE state IN ('failed', 'refused') "
                               "ORDER BY updated DESC LIMIT ?",
                               (limit,))
        return [_input(r) for r in rows]

    def input_counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.execute("SELECT state, COUNT(*) FROM inputs GROUP BY state")}


def _inode(path: Path) -> int:
    return os.stat(path).st_ino


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a state file of an earlier nstd to this schema."""
    row = db.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='jobs'").fetchone()
    if row is None:
        return
    if "priority" not in row[0]:
        db.execute("ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0")
        row = db.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='jobs'").fetchone()
    if "dispatch" not in row[0]:
        db.execute("ALTER TABLE jobs ADD COLUMN dispatch TEXT")
        row = db.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='jobs'").fetchone()
    if "job_key TEXT NOT NULL UNIQUE" not in row[0]:
        return
    # nstd 0.1 had one job per key across all inputs; make it one per input.
    # The old indexes move with the renamed table and are dropped with it; SCHEMA makes new ones.
    db.executescript("BEGIN IMMEDIATE; ALTER TABLE jobs RENAME TO jobs_v1;" + SCHEMA
                     + "INSERT INTO jobs SELECT * FROM jobs_v1; DROP TABLE jobs_v1; COMMIT;")


def _input(row: sqlite3.Row) -> Input:
    return Input(row["id"], row["relpath"], row["path"], row["sha256"], row["state"], row["error"])


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
