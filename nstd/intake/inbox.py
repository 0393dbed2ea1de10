"""Watching the inbox and deciding when a file is finished.

`SettleTracker` is pure: it is fed candidate paths (by watchdog events, the start-up scan and the
periodic rescan) and answers which have kept the same size and mtime for the settle time. The
`InboxWatcher` wraps watchdog and only queues paths for the daemon's main loop: a handler that
raised would kill watchdog's observer thread, so handlers do nothing that can fail.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserverVFS


@dataclass
class _Candidate:
    size: int
    mtime_ns: int
    since: float
    attempts: int = 0
    failed_stamp: Optional[tuple[int, int]] = None


class SettleTracker:
    """Which candidate files have stopped changing for `settle_seconds`.

    A file that did not decode is looked at again after a wait that doubles with each retry,
    counted from its last change; a file that changed since it last failed starts its count
    afresh, so an upload that pauses longer than the settle time is never refused while it grows.
    """

    def __init__(self, settle_seconds: float, stat: Callable[[str], os.stat_result] = os.lstat):
        self.settle_seconds = settle_seconds
        self.stat = stat
        self.candidates: dict[str, _Candidate] = {}

    def observe(self, path: str, now: float, attempts: int = 0,
                failed_stamp: Optional[tuple[int, int]] = None) -> None:
        """A sign of life from `path`: (re)start its settle clock."""
        try:
            st = self.stat(path)
        except OSError:
            self.candidates.pop(path, None)
            return
        prior = self.candidates.get(path)
        if prior and failed_stamp is None:
            attempts, failed_stamp = max(attempts, prior.attempts), prior.failed_stamp
        c = _Candidate(st.st_size, st.st_mtime_ns, now, attempts, failed_stamp)
        self.candidates[path] = self._fresh_if_changed(c)

    @staticmethod
    def _fresh_if_changed(c: _Candidate) -> _Candidate:
        if c.failed_stamp is not None and c.failed_stamp != (c.size, c.mtime_ns):
            return _Candidate(c.size, c.mtime_ns, c.since)
        return c

    def wait_for(self, c: _Candidate) -> float:
        return self.settle_seconds * (2 ** c.attempts)

    def poll(self, now: float) -> list[tuple[str, int]]:
        """Paths that are now settled, with how many times they were retried; they leave the tracker."""
        ready = []
        for path, c in list(self.candidates.items()):
            try:
                st = self.stat(path)
            except OSError:
                del self.candidates[path]  # gone (deleted, or moved out) before it settled
                continue
            if (st.st_size, st.st_mtime_ns) != (c.size, c.mtime_ns):
                self.candidates[path] = self._fresh_if_changed(
                    _Candidate(st.st_size, st.st_mtime_ns, now, c.attempts, c.failed_stamp))
            elif now - c.since >= self.wait_for(c):
                del self.candidates[path]
                ready.append((path, c.attempts))
        return ready

    def __len__(self) -> int:
        return len(self.candidates)


class _Handler(FileSystemEventHandler):
    def __init__(self, sink: "queue.SimpleQueue[tuple[str, str]]"):
        self.sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        if event.event_type in ("deleted", "moved") and not event.is_directory:
            # What left a name: a file told as not taken is no longer in the inbox under it.
            self.sink.put(("gone", os.fsdecode(event.src_path)))
            if event.event_type == "deleted":
                return
        path = os.fsdecode(getattr(event, "dest_path", "") or event.src_path)
        if not event.is_directory:
            self.sink.put(("file", path))
        elif event.event_type in ("created", "moved"):
            # A tree moved in raises no events for the files inside it: the folder gets scanned.
            self.sink.put(("dir", path))


class _OverflowAlarm(logging.Handler):
    """watchdog reports a kernel event-queue overflow only as a log record; turn it into a flag."""

    def __init__(self, flag: threading.Event):
        super().__init__(logging.WARNING)
        self.flag = flag

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.flag.set()


class InboxWatcher:
    def __init__(self, inbox: Path, polling: bool, poll_seconds: float):
        self.inbox = inbox
        self.polling = polling
        self.poll_seconds = poll_seconds
        self.events: "queue.SimpleQueue[tuple[str, str]]" = queue.SimpleQueue()
        self.overflowed = threading.Event()
        self._alarm = _OverflowAlarm(self.overflowed)
        logging.getLogger("watchdog").addHandler(self._alarm)
        self.observer: Optional[Observer] = None

    def start(self) -> None:
        # Polling compares snapshots taken with lstat, so it never descends a symlinked folder.
        observer = (PollingObserverVFS(os.lstat, os.scandir, polling_interval=self.poll_seconds)
                    if self.polling else Observer())
        observer.schedule(_Handler(self.events), str(self.inbox), recursive=True)
        observer.daemon = True
        observer.start()
        self.observer = observer

    def alive(self) -> bool:
        return self.observer is not None and self.observer.is_alive()

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            if self.observer.is_alive():
                self.observer.join(timeout=5)
            self.observer = None

    def close(self) -> None:
        self.stop()
        logging.getLogger("watchdog").removeHandler(self._alarm)

    def drain(self) -> list[tuple[str, str]]:
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out
