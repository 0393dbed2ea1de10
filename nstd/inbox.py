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
from typing import Callable, Iterator, Optional

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from .images import IMAGE_SUFFIXES
from .rules import is_transient


@dataclass
class _Candidate:
    size: int
    mtime_ns: int
    since: float
    attempts: int = 0


class SettleTracker:
    """Which candidate files have stopped changing for `settle_seconds`."""

    def __init__(self, settle_seconds: float, stat: Callable[[str], os.stat_result] = os.stat):
        self.settle_seconds = settle_seconds
        self.stat = stat
        self.candidates: dict[str, _Candidate] = {}

    def observe(self, path: str, now: float, attempts: int = 0) -> None:
        """A sign of life from `path`: (re)start its settle clock."""
        try:
            st = self.stat(path)
        except OSError:
            self.candidates.pop(path, None)
            return
        prior = self.candidates.get(path)
        self.candidates[path] = _Candidate(st.st_size, st.st_mtime_ns, now,
                                           max(attempts, prior.attempts if prior else 0))

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
                self.candidates[path] = _Candidate(st.st_size, st.st_mtime_ns, now, c.attempts)
            elif now - c.since >= self.settle_seconds:
                del self.candidates[path]
                ready.append((path, c.attempts))
        return ready

    def __len__(self) -> int:
        return len(self.candidates)


def is_candidate(inbox: Path, path: Path) -> bool:
    """An image-named, non-transient file under the inbox (not yet checked for symlinks)."""
    try:
        rel = path.relative_to(inbox).as_posix()
    except ValueError:
        return False
    return path.suffix.lower() in IMAGE_SUFFIXES and not is_transient(rel)


def scan(inbox: Path, folder: Optional[Path] = None) -> Iterator[Path]:
    """Every candidate under the inbox (or one folder of it); symlinked folders are not entered."""
    for root, dirs, files in os.walk(folder or inbox, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            p = Path(root) / name
            if is_candidate(inbox, p):
                yield p


class _Handler(FileSystemEventHandler):
    def __init__(self, sink: "queue.SimpleQueue[tuple[str, str]]"):
        self.sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("deleted", "opened", "closed_no_write"):
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
        observer = PollingObserver(timeout=self.poll_seconds) if self.polling else Observer()
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
