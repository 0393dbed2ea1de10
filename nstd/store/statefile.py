"""The state file itself: the SQLite connection (WAL, full sync), transactions, and the daemon's lock.

Any SQLite failure (disk full, I/O error, file removed) surfaces as `StoreUnavailable`, which the
daemon answers by pausing, never by dying mid-step.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path
from typing import Optional

from nstd.core.errors import StateError

from .schema import SCHEMA, migrate


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


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


class StateFile:
    """Opens (and migrates) the file; the parts of `Store` share its connection as `self.db`."""

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
                migrate(connection)
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

    def change_count(self) -> int:
        """Changes to the file made by other connections (`nstd pause`, the web app): SQLite's
        data_version, which moves when another connection commits."""
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    def daemon_running(self) -> bool:
        return daemon_running_on(self.path)


def _inode(path: Path) -> int:
    return os.stat(path).st_ino


def daemon_running_on(state: Path) -> bool:
    """True while a daemon holds this state file's lock (it is released when the daemon dies)."""
    try:
        fd = os.open(f"{state}.lock", os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
