"""The state file's tables, and the migration of a state file written by an earlier nstd."""

from __future__ import annotations

import sqlite3

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


# A new job's id: above every id the state file holds and above the floor the folders set (ids found
# in loss logs, thumbnails and the trash), so that an id is never handed out twice, not even after a
# rebuild or a restored backup whose rows end below the folders' files.
NEXT_JOB_ID = ("(SELECT MAX(COALESCE((SELECT MAX(id) FROM jobs), 0), COALESCE((SELECT CAST(value AS INTEGER) "
               "FROM settings WHERE key='job_id_floor'), 0)) + 1)")


def migrate(db: sqlite3.Connection) -> None:
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
