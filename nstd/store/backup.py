"""`nstd backup`: a consistent copy of the state file while the daemon runs.

The state file is SQLite in WAL mode, so a `cp` of it alone can miss the newest transactions (they
are in the -wal file beside it) or catch a page half written. SQLite's online backup API copies a
snapshot page by page while others keep writing. The copy is made under a temp name beside the
destination, checked (`PRAGMA integrity_check`), then renamed into place; an existing file is never
overwritten.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

from nstd.core.errors import NstdError, StateError


def backup_name(now: float | None = None) -> str:
    return time.strftime("nstd-state-%Y%m%d-%H%M%S.sqlite", time.localtime(now))


def backup_state(state: Path, dest: Path) -> tuple[Path, int]:
    """Copy the state file to `dest` (a folder: a dated name in it); returns the copy and its job count."""
    if not state.is_file():
        raise StateError(str(state), "no state file yet: has the daemon run with this config?")
    if dest.is_dir():
        dest = dest / backup_name()
    if dest.exists() or dest.is_symlink():
        raise NstdError(str(dest), "exists already; a backup never overwrites a file (give a new name or a folder)")
    if not dest.parent.is_dir():
        raise NstdError(str(dest), f"its folder {dest.parent} does not exist: make it first, or name another")
    tmp = dest.with_name(f".nstd-tmp-{os.getpid()}-{dest.name}")
    # A URI, for mode=ro: '#', '?' and '%' in the path are escaped, or SQLite would cut the name there.
    source = sqlite3.connect(f"file:{quote(str(state))}?mode=ro", uri=True, timeout=30)
    try:
        try:
            copy = sqlite3.connect(tmp)
        except sqlite3.Error as e:
            raise NstdError(str(dest), f"cannot write the copy there: {e}") from None
        try:
            source.backup(copy, pages=256, sleep=0.01)  # in steps: the daemon's writes go on between them
            verdict = copy.execute("PRAGMA integrity_check").fetchone()[0]
            jobs = copy.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        finally:
            copy.close()
        if verdict != "ok":
            raise StateError(str(state), f"the copy failed SQLite's integrity check ({verdict}); the state file "
                                         "itself may be damaged")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        _place(tmp, dest)
    except sqlite3.Error as e:
        raise StateError(str(state), f"cannot back up: {e}") from None
    finally:
        source.close()
        tmp.unlink(missing_ok=True)
    return dest, jobs


def _place(tmp: Path, dest: Path) -> None:
    """Rename into place, never over a file that took the name meanwhile: a hard link fails if the
    name is taken; where the file system has no hard links (some shares), a checked rename."""
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise NstdError(str(dest), "exists already; a backup never overwrites a file") from None
    except OSError:
        if dest.exists():
            raise NstdError(str(dest), "exists already; a backup never overwrites a file") from None
        os.rename(tmp, dest)
