"""The state file itself: the SQLite connection (WAL, full sync), transactions, and the daemon's lock.

Any SQLite failure (disk full, I/O error, file removed, a lock another process holds) surfaces as
`StoreUnavailable`, which the daemon answers by pausing, never by dying mid-step. A file that fails
SQLite's own check when opened (a torn page, a file cut short by a disk's crash) is
`DamagedStateFile`: the daemon sets it aside and rebuilds the state from the folders.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from pathlib import Path
from typing import Optional

from nstd.core.errors import StateError

from .schema import SCHEMA, migrate


class StoreUnavailable(StateError):
    """The state file cannot be written or read right now (disk full, I/O error, locked)."""


class StateDiskUnwritable(StoreUnavailable):
    """The state file's disk is full, or its file system read-only: the machine's fault, waited out."""


class DamagedStateFile(StateError):
    """The state file is not a sound SQLite database (`PRAGMA quick_check` fails, or SQLite says it
    is malformed or not a database): waiting will not mend it."""


# SQLite's words for a file that waiting will not mend, and for one another process holds.
DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
HELD = ("SQLITE_BUSY", "SQLITE_LOCKED")
UNWRITABLE = ("SQLITE_FULL", "SQLITE_READONLY")


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
            raise _unavailable(self.path, e) from None

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
            verdict = [row[0] for row in connection.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as e:
            raise _opening_error(self.path, e) from None
        if verdict != ["ok"]:
            connection.close()
            said = "; ".join(line for row in verdict for line in row.splitlines())
            raise DamagedStateFile(str(self.path), f"state file damaged (SQLite's quick_check: {said[:200]})")
        self.db = _Db(self.path, connection)
        self._lock_fd: Optional[int] = None
        self._opened = _identity_of(self.path)

    def close(self) -> None:
        self.db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def lock(self, fd: Optional[int] = None) -> None:
        """Take the daemon's exclusive lock (or adopt `fd`, taken by `take_lock` before this file was
        opened), or refuse: two daemons on one queue would double-process."""
        fd = take_lock(self.path) if fd is None else fd
        self._lock_fd = fd
        self._identity = (_inode(self.path), os.fstat(fd).st_ino)

    def still_ours(self) -> bool:
        """False once the state file or its lock was deleted or replaced under the running daemon:
        a second daemon could then take a new lock and paint everything again."""
        try:
            return self._identity == (_inode(self.path), os.stat(f"{self.path}.lock").st_ino)
        except OSError:
            return False

    def replaced(self) -> bool:
        """True once the file at this path is another than the one this connection reads (a rebuild
        set it aside, a backup was restored over it, it was deleted): a reader must open it anew."""
        return _identity_of(self.path) != self._opened

    def _tx(self):
        return _Transaction(self.db)

    def check_writable(self) -> None:
        """An empty write transaction: StoreUnavailable if another process holds the file (after
        SQLite's 30 s busy wait) or it cannot be written. Opening only reads."""
        with self._tx():
            pass

    def change_count(self) -> int:
        """Changes to the file made by other connections (`nstd pause`, the web app): SQLite's
        data_version, which moves when another connection commits."""
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    def daemon_running(self) -> bool:
        return daemon_running_on(self.path)


def _unavailable(path: Path, e: sqlite3.OperationalError) -> StoreUnavailable:
    if getattr(e, "sqlite_errorname", "") in HELD:
        return StoreUnavailable(str(path), f"state file locked by another process ({e}): a backup tool holding "
                                           "a transaction, or a second nstd pointed at it")
    if getattr(e, "sqlite_errorname", "").startswith(UNWRITABLE):
        return StateDiskUnwritable(str(path), f"state file unavailable ({e})")
    return StoreUnavailable(str(path), f"state file unavailable ({e})")


def _opening_error(path: Path, e: sqlite3.DatabaseError) -> StateError:
    name = getattr(e, "sqlite_errorname", "")
    if name in HELD:
        return _unavailable(path, e)
    if name in DAMAGED:
        return DamagedStateFile(str(path), f"state file damaged ({e})")
    return StateError(str(path), f"state file unusable ({e})")


def take_lock(path: Path) -> int:
    """The daemon's lock beside the state file (flock: the kernel drops it with the process)."""
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StateError(str(path), "another nstd daemon is running on this state file") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def set_aside(path: Path, now: Optional[float] = None) -> Path:
    """Rename a damaged state file (and its WAL and shared-memory files) to a dated name beside it,
    never over another: kept for a person to look at or mend, out of the daemon's way."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    n, dest = 1, path.with_name(f"{path.name}.damaged-{stamp}")
    while any(Path(f"{dest}{s}").exists() for s in ("", "-wal", "-shm")):
        n += 1
        dest = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    for suffix in ("-wal", "-shm", ""):  # the WAL first: a new state file must never meet the old one's
        if Path(f"{path}{suffix}").exists():
            os.rename(f"{path}{suffix}", f"{dest}{suffix}")
    return dest


def _inode(path: Path) -> int:
    return os.stat(path).st_ino


def _identity_of(path: Path) -> Optional[tuple[int, int]]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


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
