"""Counts and lists for `nstd status`, the gallery, the metrics and the web app."""

from __future__ import annotations

from typing import Optional

from nstd.core.jobs import JobState
from nstd.core.names import fs_bytes

from .records import JOB_SELECT, Input, Job, input_from_row
from .statefile import StateFile


class Reports(StateFile):
    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in JobState}
        counts.update({r[0]: r[1] for r in self.db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")})
        return counts

    def jobs_in(self, state: JobState, limit: int = 20, newest_first: bool = False) -> list[Job]:
        order = "DESC" if newest_first else "ASC"
        rows = self.db.execute(JOB_SELECT + f" WHERE jobs.state=? ORDER BY jobs.updated {order} LIMIT ?",
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
        rows = self.db.execute("SELECT * FROM inputs WHERE state IN ('failed', 'refused', 'stuck') "
                               "ORDER BY updated DESC LIMIT ?",
                               (limit,))
        return [input_from_row(r) for r in rows]

    def input_counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.execute("SELECT state, COUNT(*) FROM inputs GROUP BY state")}

    def history(self, state: Optional[str] = None, rule: Optional[str] = None, style: Optional[str] = None,
                photo: Optional[str] = None, since: Optional[float] = None, limit: int = 20,
                offset: int = 0) -> tuple[int, list[Job]]:
        """Every job, newest first (by its last change), filtered; `photo` matches part of the inbox
        name. Returns the number that match and one page of them."""
        where, args = [], []
        for column, value in (("jobs.state", state), ("jobs.rule", rule), ("jobs.style", style)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        if photo:
            where.append("instr(inputs.relpath, CAST(? AS TEXT)) > 0")
            args.append(fs_bytes(photo))
        if since is not None:
            where.append("jobs.updated >= ?")
            args.append(since)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        total = self.db.execute("SELECT COUNT(*) FROM jobs JOIN inputs ON inputs.id = jobs.input_id" + clause,
                                args).fetchone()[0]
        rows = self.db.execute(JOB_SELECT + clause + " ORDER BY jobs.updated DESC, jobs.id DESC LIMIT ? OFFSET ?",
                               (*args, limit, offset))
        return total, [Job.from_row(r) for r in rows]
