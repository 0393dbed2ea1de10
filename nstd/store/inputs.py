"""Inputs: files that arrived in the inbox, their jobs recorded in one transaction, and where they went."""

from __future__ import annotations

import json
import time
from typing import Iterator, Optional

from nstd.core.jobs import JobState
from nstd.core.names import fs_bytes, shown

from .records import INPUT_OPEN, JOB_SELECT, NAME, Input, Job, input_from_row
from .schema import NEXT_JOB_ID
from .statefile import StateFile


class Inputs(StateFile):
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
                    "INSERT OR IGNORE INTO jobs (id, input_id, job_key, rule, style, spec, priority, created, updated) "
                    f"VALUES ({NEXT_JOB_ID}, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (input_id, key, rule, style, json.dumps(spec, sort_keys=True), priority[0] if priority else 0,
                     now, now))
                if cur.rowcount == 1:
                    new.append(cur.lastrowid)
                    continue
                old = self.db.execute("SELECT id, state FROM jobs WHERE input_id=? AND job_key=?",
                                      (input_id, key)).fetchone()
                if old["state"] in (JobState.FAILED.value, JobState.DELETED.value, JobState.WITHDRAWN.value):
                    self.db.execute("UPDATE jobs SET state='queued', attempts=0, interruptions=0, error=NULL, "
                                    "finished=NULL, updated=? WHERE id=?", (now, old["id"]))
                    new.append(old["id"])
                elif old["state"] == JobState.DONE.value:
                    done_before.append(old["id"])
        return input_id, new, done_before

    def known_input(self, relpath: str, sha256: str) -> Optional[Input]:
        row = self.db.execute(f"SELECT * FROM inputs WHERE relpath={NAME} AND sha256=?",
                              (fs_bytes(relpath), sha256)).fetchone()
        return input_from_row(row) if row else None

    def open_twin(self, input_id: int, sha256: str) -> Optional[Input]:
        """A later input with these very bytes under another name: where a renamed photo went."""
        row = self.db.execute("SELECT * FROM inputs WHERE sha256=? AND id>? ORDER BY id DESC LIMIT 1",
                              (sha256, input_id)).fetchone()
        return input_from_row(row) if row else None

    def input_named(self, relpath: str) -> Optional[Input]:
        """The latest input recorded under this inbox name."""
        row = self.db.execute(f"SELECT * FROM inputs WHERE relpath={NAME} ORDER BY updated DESC LIMIT 1",
                              (fs_bytes(relpath),)).fetchone()
        return input_from_row(row) if row else None

    def input(self, input_id: int) -> Optional[Input]:
        row = self.db.execute("SELECT * FROM inputs WHERE id=?", (input_id,)).fetchone()
        return input_from_row(row) if row else None

    def input_at(self, path: str) -> Optional[Input]:
        row = self.db.execute(f"SELECT * FROM inputs WHERE path={NAME} ORDER BY updated DESC LIMIT 1",
                              (fs_bytes(path),)).fetchone()
        return input_from_row(row) if row else None

    def jobs_of(self, input_id: int) -> list[Job]:
        return [Job.from_row(r) for r in self.db.execute(JOB_SELECT + " WHERE input_id=? ORDER BY jobs.id",
                                                         (input_id,))]

    def open_input_paths(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT path FROM inputs WHERE state=?", (INPUT_OPEN,))}

    def settled_inputs(self) -> Iterator[tuple[Input, list[Job]]]:
        rows = self.db.execute(
            "SELECT * FROM inputs WHERE state=? AND NOT EXISTS (SELECT 1 FROM jobs WHERE "
            "jobs.input_id=inputs.id AND jobs.state IN ('queued','running'))", (INPUT_OPEN,)).fetchall()
        for row in rows:
            jobs = [Job.from_row(r) for r in
                    self.db.execute(JOB_SELECT + " WHERE input_id=? ORDER BY jobs.id", (row["id"],))]
            yield input_from_row(row), jobs

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
        return [input_from_row(r) for r in self.db.execute("SELECT * FROM inputs WHERE state='refused' ORDER BY id")]

    def stuck_inputs(self) -> list[Input]:
        """Inputs painted but not movable out of the inbox (a folder nstd may not write)."""
        return [input_from_row(r) for r in self.db.execute("SELECT * FROM inputs WHERE state='stuck' ORDER BY id")]

    def reopen_input(self, input_id: int) -> None:
        """A stuck input to be filed again (its folder became writable): its jobs are over, so filing takes it."""
        self.db.execute("UPDATE inputs SET state=?, error=NULL, updated=? WHERE id=? AND state='stuck'",
                        (INPUT_OPEN, time.time(), input_id))
