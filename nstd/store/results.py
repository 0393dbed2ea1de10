"""The paintings made: which jobs are done, what the outbox should hold, and results deleted."""

from __future__ import annotations

import json
import time

from nstd.core.names import fs_bytes

from .records import JOB_SELECT, NAME, Job
from .schema import NEXT_JOB_ID
from .statefile import StateFile


class Results(StateFile):
    def done_jobs_of(self, input_id: int) -> list[Job]:
        """The paintings of one photo, in the order they were made (its versions)."""
        return [Job.from_row(r) for r in self.db.execute(
            JOB_SELECT + " WHERE input_id=? AND jobs.state='done' ORDER BY jobs.id", (input_id,))]

    def done_twins(self, key: str, job_id: int) -> list["Job"]:
        """Done jobs of other inputs with the same key, newest first: their result is this job's."""
        rows = self.db.execute(JOB_SELECT + " WHERE jobs.job_key=? AND jobs.state='done' AND jobs.id!=? "
                               "ORDER BY jobs.finished DESC", (key, job_id))
        return [Job.from_row(r) for r in rows]

    def done_images(self) -> list[tuple[int, str]]:
        """(job id, result image path) of every done job: what the outbox should hold."""
        return [(r[0], r[1] or "") for r in
                self.db.execute("SELECT id, json_extract(outputs, '$.image') FROM jobs WHERE state='done'")]

    def shown_by_others(self, thumb: str, job_id: int) -> bool:
        """True if a done job other than this one shows this thumbnail (a twin delivered from it)."""
        return self.db.execute("SELECT 1 FROM jobs WHERE state='done' AND id!=? AND instr(outputs, ?) LIMIT 1",
                               (job_id, json.dumps(thumb))).fetchone() is not None

    def jobs_showing(self, thumb: str) -> list[tuple[int, str]]:
        """(id, state) of every done or deleted job whose outputs name this thumbnail."""
        return [(r[0], r[1]) for r in self.db.execute(
            "SELECT id, state FROM jobs WHERE state IN ('done', 'deleted') AND instr(outputs, ?)",
            (json.dumps(thumb),))]

    def raise_job_id_floor(self, highest_seen: int) -> None:
        """No job id at or below `highest_seen` (the highest the folders' files carry) is handed out."""
        with self._tx():
            self.db.execute("INSERT INTO settings (key, value) VALUES ('job_id_floor', ?) ON CONFLICT (key) DO UPDATE "
                            "SET value=MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                            (int(highest_seen),))

    def job_exists(self, job_id: int) -> bool:
        return self.db.execute("SELECT 1 FROM jobs WHERE id=?", (job_id,)).fetchone() is not None

    def restore_result(self, relpath: str, path: str, sha256: str, state: str, job_id: int, key: str, rule: str,
                       style: str, spec: dict, outputs: dict, finished: float) -> int | None:
        """A painting found in the outbox that the state does not count: its photo an input in `state`
        where it lies now, the job under its old id where that is free (its thumbnails are named by
        it); this photo's job of that key recorded but not done (queued, failed, withdrawn, deleted
        in an older copy of the state) is done now. Returns the job's id; None if it was done."""
        now = time.time()
        with self._tx():
            self.db.execute(f"INSERT OR IGNORE INTO inputs (relpath, path, sha256, size, state, created, updated) "
                            f"VALUES ({NAME}, {NAME}, ?, 0, ?, ?, ?)", (fs_bytes(relpath), fs_bytes(path),
                                                                       sha256, state, finished, now))
            input_id = self.db.execute(f"SELECT id FROM inputs WHERE relpath={NAME} AND sha256=?",
                                       (fs_bytes(relpath), sha256)).fetchone()[0]
            known = self.db.execute("SELECT id, state FROM jobs WHERE input_id=? AND job_key=?",
                                    (input_id, key)).fetchone()
            if known is not None:
                if known["state"] == "done":
                    return None
                self.db.execute("UPDATE jobs SET state='done', error=NULL, outputs=?, finished=?, updated=? WHERE id=?",
                                (json.dumps(outputs), finished, now, known["id"]))
                self.db.execute(f"UPDATE inputs SET state=?, path={NAME}, updated=? WHERE id=? AND NOT EXISTS "
                                "(SELECT 1 FROM jobs WHERE input_id=? AND state IN ('queued', 'running'))",
                                (state, fs_bytes(path), now, input_id, input_id))
                return known["id"]
            free = job_id > 0 and not self.job_exists(job_id)
            cursor = self.db.execute(
                "INSERT INTO jobs (id, input_id, job_key, rule, style, spec, state, attempts, outputs, created, "
                f"updated, finished) VALUES (COALESCE(?, {NEXT_JOB_ID}), ?, ?, ?, ?, ?, 'done', 1, ?, ?, ?, ?)",
                (job_id if free else None, input_id, key, rule, style, json.dumps(spec, sort_keys=True),
                 json.dumps(outputs), finished, now, finished))
            return cursor.lastrowid

    def quarantined_paths(self) -> set[str]:
        """Where the inputs refused or failed lie (in failed/), as recorded."""
        return {r[0] for r in self.db.execute("SELECT path FROM inputs WHERE state IN ('refused', 'failed')")}

    def mark_deleted(self, job_ids: list[int]) -> int:
        """Done jobs whose result is gone from the outbox: no longer counted or shown as results."""
        now = time.time()
        with self._tx():
            return sum(self.db.execute("UPDATE jobs SET state='deleted', updated=? WHERE id=? AND state='done'",
                                       (now, jid)).rowcount for jid in job_ids)

    def mark_restored(self, job_id: int) -> bool:
        """A deleted result whose files came back: counted and shown again."""
        with self._tx():
            return self.db.execute("UPDATE jobs SET state='done', updated=? WHERE id=? AND state='deleted'",
                                   (time.time(), job_id)).rowcount == 1

    def deleted_jobs(self, ids: list[int]) -> list[Job]:
        """These jobs, where their result is deleted (the trash's, newest first)."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return [Job.from_row(r) for r in self.db.execute(
            JOB_SELECT + f" WHERE jobs.id IN ({marks}) AND jobs.state='deleted' ORDER BY jobs.updated DESC", ids)]
