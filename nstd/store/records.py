"""What the store hands out: jobs and inputs as frozen records, and how rows become them."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Optional

from nstd.core.jobs import JobState

NAME = "CAST(? AS TEXT)"  # a parameter holding a name's bytes, stored as TEXT byte for byte
# Input states: 'pending' while any of its jobs is open, then where the file went.
INPUT_OPEN = "pending"
JOB_SELECT = ("SELECT jobs.*, inputs.path, inputs.relpath, inputs.sha256 FROM jobs "
              "JOIN inputs ON inputs.id = jobs.input_id")


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
    created: Optional[float] = None
    started: Optional[float] = None
    updated: Optional[float] = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Job":
        return cls(row["id"], row["input_id"], row["job_key"], row["rule"], row["style"],
                   json.loads(row["spec"]), JobState(row["state"]), row["attempts"], row["error"],
                   json.loads(row["outputs"]) if row["outputs"] else None,
                   json.loads(row["progress"]) if row["progress"] else None,
                   row["path"], row["relpath"], row["sha256"], row["finished"], row["priority"],
                   # A state file the daemon has not migrated yet, read by `nstd status` or the web app.
                   row["dispatch"] if "dispatch" in row.keys() else None,
                   row["created"], row["started"], row["updated"])


@dataclass(frozen=True)
class Input:
    id: int
    relpath: str
    path: str
    sha256: str
    state: str
    error: Optional[str]


def input_from_row(row: sqlite3.Row) -> Input:
    return Input(row["id"], row["relpath"], row["path"], row["sha256"], row["state"], row["error"])
