"""Machine faults made real, shared by the fault tests and bench/machine_faults.py: a disk filled
to the last block, another process holding the state file's lock, a page of the state file torn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PAGE = 4096  # SQLite's default page size, which nstd keeps

_LOCK_HOLDER = """
import pathlib, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("holding", flush=True)
while not pathlib.Path(sys.argv[2]).exists():
    time.sleep(0.1)
db.execute("COMMIT")
"""


def fill_disk(folder: Path, name: str = "ballast") -> Path:
    """Write `folder/name` until its filesystem has no block left; delete it to free the disk."""
    ballast = folder / name
    with open(ballast, "wb", buffering=0) as f:
        for chunk in (65536, 512):  # large writes first, then the last few blocks
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError:
                pass
    return ballast


def hold_state_lock(state: Path, release: Path) -> subprocess.Popen:
    """Another process (a backup tool, a second nstd) in an exclusive transaction on `state` until
    `release` exists; returns once the lock is held."""
    holder = subprocess.Popen([sys.executable, "-c", _LOCK_HOLDER, str(state), str(release)],
                              stdout=subprocess.PIPE, text=True)
    if holder.stdout.readline().strip() != "holding":
        holder.kill()
        raise RuntimeError(f"the lock holder did not get its lock on {state}")
    return holder


def tear_a_page(state: Path) -> None:
    """Garbage over the second page, where a table's root lies: what a torn write leaves."""
    data = bytearray(state.read_bytes())
    data[PAGE:2 * PAGE] = bytes(range(256)) * (PAGE // 256)
    state.write_bytes(bytes(data))


def cut_short(state: Path) -> None:
    """The file's second half gone, as a disk that crashed mid-write can leave it."""
    data = state.read_bytes()
    state.write_bytes(data[: len(data) // 2])
