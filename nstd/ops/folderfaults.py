"""Folders nstd cannot write right now: which, why, the room there is and the room it needs.

A full disk or quota, a read-only remount or a changed owner under the outbox, the archive,
failed/ or the state file is the machine's fault, and the work waits it out (the recorder, filing
and the daemon's loop each retry on their own backoff). This keeps the one account of it: the
first failure of a folder is told once, at warning level, as a notification (the machine_fault
event) and as `nstd_folder_unwritable{folder}`; `nstd status` shows it from the state file while
it lasts (the state file's own disk is told by status itself, which can read a full disk); the
first success after it ends all of that with one line in the log.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Callable, Optional

from nstd.core.humane import first_line, size_words
from nstd.store import StoreUnavailable

from .metrics import Metrics
from .notify import Notifications

# Once per episode; a folder that flaps (full, freed, full again) is told again after this long.
RENOTIFY_SECONDS = 3600.0
NAMES = {"inbox": "the inbox", "outbox": "the outbox", "archive": "the archive", "failed": "failed/",
         "state": "the state file's folder"}


def free_bytes(folder: Path) -> Optional[int]:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _kind(cause: str) -> str:
    """What a failure is, whatever path or figures its message carries: '[Errno 28]' for ENOSPC."""
    found = re.search(r"\[Errno \d+\]", cause)
    return found.group(0) if found else cause


def fault_words(role: str, fault: dict) -> str:
    """'the outbox /srv/out cannot be written (No space left on device): 0 B free; a painting needs
    about 1.2 MiB': the sentence the log, the notification and `nstd status` share."""
    room = f"{size_words(fault['free'])} free" if fault.get("free") is not None else "free space unknown"
    return f"{NAMES.get(role, role)} {fault['path']} cannot be written ({fault['error']}): {room}" + (
        f"; {fault['needs']}" if fault.get("needs") else "")


class FolderFaults:
    def __init__(self, store, log, metrics: Optional[Metrics] = None, notifications: Optional[Notifications] = None,
                 clock: Callable[[], float] = time.time):
        self.store, self.log = store, log
        self.metrics = metrics or Metrics()
        self.notifications = notifications or Notifications([], [], log)
        self.clock = clock
        self.current: dict[str, dict] = {}
        self.notified: dict[str, float] = {}
        self._record()  # a fault the last daemon recorded is found again on the first try, or is over

    def failed(self, role: str, folder: Path, error, needs: str = "") -> None:
        """A write into `folder` (the inbox, outbox, archive, failed or state) failed for the machine's
        reason; `needs` says how much room the waiting work needs ('a painting needs about 1.2 MiB')."""
        now = self.clock()
        cause = first_line(str(error))
        known = self.current.get(role)
        fault = {"path": str(folder), "error": cause, "since": known["since"] if known else now,
                 "free": free_bytes(folder), "needs": needs}
        self.current[role] = fault
        self.metrics.folder_unwritable.labels(role).set(1)
        if known and _kind(known["error"]) == _kind(cause) and known["path"] == fault["path"]:
            self._record()
            return  # the same fault, still there: told already
        words = fault_words(role, fault)
        self.log.warning("a folder cannot be written: the work that needs it waits, and resumes by itself "
                         "once it can", folder=role, path=str(folder), error=cause, free_bytes=fault["free"],
                         why=words)
        if now - self.notified.get(role, float("-inf")) >= RENOTIFY_SECONDS:
            self.notified[role] = now
            self.notifications.machine_fault(f"{words}. No photo is blamed: they wait, and nstd goes on by "
                                             "itself once there is room (or the folder is writable again).")
        self._record()

    def fine(self, role: str) -> None:
        """A write into the folder worked: whatever stopped it is over."""
        fault = self.current.pop(role, None)
        if fault is None:
            return
        self.metrics.folder_unwritable.labels(role).set(0)
        self.log.info("the folder can be written again: the work goes on", folder=role, path=fault["path"],
                      lasted_s=round(self.clock() - fault["since"], 1))
        self._record()

    def _record(self) -> None:
        shown = {role: fault for role, fault in self.current.items() if role != "state"}
        try:
            self.store.record_folder_faults(shown)
        except StoreUnavailable:
            pass  # the state file's own disk: status reads that from the disk itself
