"""Intake: from a path in the inbox to recorded jobs, or to failed/ with the reason.

A file's road here: seen (watcher event, start-up scan, periodic rescan) -> settled (size and
mtime still for the settle time) -> confined (every component checked with lstat: a link is
refused as a link, a pipe as a pipe) -> matched to rules -> cheap checks (size) -> inspected in a
child process (decoded and hashed, off this loop) -> jobs recorded in one transaction. A file that
does not decode is looked at again with a growing wait, and refused only once it has stopped
changing. Every decision takes `now` from the caller.
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import Callable, Optional

from nstd.config import Config
from nstd.core.humane import now_iso
from nstd.ops.metrics import Metrics
from nstd.outbox.files import move_input, safe_component
from nstd.store import Store, StoreUnavailable

from .inbox import InboxWatcher, SettleTracker
from .inspector import Inspection, Inspector, surely_not_an_image
from .recording import record_input
from .nottaken import NO_RULE, NotTaken
from .rules import ignored, make_rule_folders, not_taken, targets
from .verdict import entry_refusal, file_refusal
from .walker import FILE, LINK, PATH_MAX, TOO_LONG, Entry, confine, walk


TICK_BUDGET_SECONDS = 0.25


class Intake:
    def __init__(self, config: Config, store: Store, log, on_refused: Callable[[str, str], None],
                 metrics: Optional[Metrics] = None):
        self.config, self.store, self.log, self.on_refused = config, store, log, on_refused
        self.metrics = metrics or Metrics()
        self.tracker = SettleTracker(config.watch.settle_seconds)
        self.inspector = Inspector(config.worker.max_pixels, config.watch.max_file_mb * 10**6,
                                   root=str(config.inbox))
        self.attempts: dict[str, int] = {}
        self.watcher: Optional[InboxWatcher] = None
        self.inbox_id: Optional[tuple[int, int]] = None
        self.unmatched: set[str] = set()
        self.not_taken = NotTaken(config.inbox, lambda rel: not_taken(self.config, rel), log,
                                  on_change=self.metrics.not_taken_now)
        self.next_rescan = 0.0
        self.settled_new: deque[tuple[str, int]] = deque()    # settled, to be judged: first seen
        self.settled_again: deque[tuple[str, int]] = deque()  # and looked at again after a failure

    # -- the watcher ----------------------------------------------------------------------
    def start(self) -> None:
        """Watch the configured inbox; raises OSError (the old watcher is kept) if it cannot."""
        make_rule_folders(self.config, self.log)
        w = self.config.watch
        watcher = InboxWatcher(self.config.inbox, polling=w.mode == "polling", poll_seconds=w.poll_seconds)
        try:
            watcher.start()
        except BaseException:
            watcher.close()
            raise
        if self.watcher:
            self.watcher.close()
        self.watcher = watcher
        self.inbox_id = self._inbox_identity()
        self.log.info("watching", inbox=str(self.config.inbox), mode=w.mode)

    def stop(self) -> None:
        if self.watcher:
            self.watcher.stop()

    def close(self) -> None:
        if self.watcher:
            self.watcher.close()
        self.inspector.close()

    def reconfigure(self, new: Config) -> None:
        """Apply a reloaded config; raises OSError, leaving the old one in force, if it cannot."""
        old = self.config
        if (new.inbox, new.watch.mode, new.watch.poll_seconds) != (old.inbox, old.watch.mode, old.watch.poll_seconds):
            new.inbox.mkdir(parents=True, exist_ok=True)
            self.config = new
            try:
                self.start()
            except BaseException:
                self.config = old
                raise
        self.config = new
        self.inspector.root = str(new.inbox)
        self.tracker.settle_seconds = new.watch.settle_seconds
        self.inspector.max_pixels = new.worker.max_pixels
        self.inspector.max_bytes = new.watch.max_file_mb * 10**6
        self.unmatched.clear()
        make_rule_folders(new, self.log)
        self.not_taken.restart(new.inbox)
        self.next_rescan = 0.0

    def _inbox_identity(self) -> Optional[tuple[int, int]]:
        try:
            st = os.stat(self.config.inbox)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def alive(self) -> bool:
        return self.watcher is not None and self.watcher.alive()

    def arriving(self, shown_at_most: int = 20) -> dict:
        """Files seen but not yet taken, for `nstd status`: settling, waiting to be read again
        (a decode failed while it may still be arriving), or being inspected."""
        inbox = self.config.inbox
        seen = [(p, "waiting to read again" if c.attempts else "settling") for p, c in self.tracker.candidates.items()]
        seen += [(p, "inspecting") for p in self.inspector.busy_with()]
        seen += [(p, "settled, waiting its turn") for p, _ in (*self.settled_new, *self.settled_again)]
        return {"count": len(seen), "first": [{"input": os.path.relpath(p, inbox), "stage": stage}
                                              for p, stage in sorted(seen)[:shown_at_most]]}

    def idle(self) -> bool:
        return not len(self.tracker) and not len(self.inspector) and not self.settled_new and not self.settled_again

    # -- the loop -------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        if not self._inbox_present():
            return
        if self.watcher and not self.watcher.alive():
            self.log.error("watcher thread died: restarting it and rescanning")
            self.start()
            self.next_rescan = 0.0
        if self.watcher and self.watcher.overflowed.is_set():
            self.watcher.overflowed.clear()
            self.log.warning("file event queue overflowed: rescanning")
            self.metrics.overflows.inc()
            self.next_rescan = 0.0
        for kind, path in self.watcher.drain() if self.watcher else []:
            entry = None if kind == "gone" else confine(self.config.inbox, Path(path))
            self.not_taken.seen(kind, Path(path), entry)
            if entry is None:
                continue
            if kind == "dir" and entry.kind != LINK:
                self._scan(now, Path(path))
            else:
                # Queued paths too: a file replaced while queued must be seen (its hash tells).
                self.unmatched.discard(str(entry.path))
                self.tracker.observe(str(entry.path), now)
        if now >= self.next_rescan:
            self.rescan("periodic" if self.next_rescan else "requested", now)
        for path, attempts in self.tracker.poll(now):
            (self.settled_again if attempts else self.settled_new).append((path, attempts))
        # Within a budget, new files first: refusing thousands of junk files (each reason fsynced)
        # must not keep the inspector waiting, nor a photo that just arrived.
        budget_end = time.monotonic() + TICK_BUDGET_SECONDS
        while (self.settled_new or self.settled_again) and time.monotonic() < budget_end:
            path, attempts = (self.settled_new or self.settled_again).popleft()
            self._settled(Path(path), attempts, now)
        inspections = self.inspector.results(now)
        for i, inspection in enumerate(inspections):
            try:
                self._inspected(inspection, now)
            except StoreUnavailable:
                # Those read with it are not recorded either: seen again now, not at the periodic rescan.
                for later in inspections[i + 1:]:
                    self.tracker.observe(later.path, now)
                raise

    def _inbox_present(self) -> bool:
        identity = self._inbox_identity()
        if identity != self.inbox_id:
            # The inbox folder was removed (and maybe recreated, or a share remounted): the old
            # watches point nowhere. Wait for it, then watch the new folder and rescan.
            if identity is None:
                self.log.error("the inbox folder is missing; waiting for it", inbox=str(self.config.inbox))
                if self.watcher:
                    self.watcher.close()
                    self.watcher = None
            else:
                was = self.inbox_id
                self.log.warning("the inbox folder is back (or was replaced): watching it again",
                                 change="another file system: a share or disk unmounted, or mounted over it"
                                 if was is not None and was[0] != identity[0] else "a new folder")
                self.start()
                self.next_rescan = 0.0
            self.inbox_id = identity
        return self.inbox_id is not None

    def rescan(self, why: str, now: Optional[float] = None) -> None:
        now = time.monotonic() if now is None else now
        self.not_taken.still_there()
        seen = self._scan(now, skip=self.store.open_input_paths() | self.unmatched | self.inspector.busy_with()
                          | {p for p, _ in (*self.settled_new, *self.settled_again)})
        self.next_rescan = now + self.config.watch.rescan_minutes * 60
        self.metrics.rescans.labels(why).inc()
        self.log.info("scanned inbox", why=why, new_candidates=seen)

    def _scan(self, now: float, folder: Optional[Path] = None, skip: frozenset | set = frozenset()) -> int:
        seen = 0
        for entry in walk(self.config.inbox, folder, others=self.not_taken.consider):
            p = str(entry.path)
            if entry.kind == TOO_LONG:
                self._too_long(entry)
                continue
            if p not in skip and p not in self.tracker.candidates:
                self.tracker.observe(p, now)
                seen += 1
        return seen

    # -- decisions ------------------------------------------------------------------------
    def _settled(self, path: Path, attempts: int, now: float) -> None:
        """A file that stopped changing: refuse it at once, or send it to be inspected."""
        c = self.config
        entry = confine(c.inbox, path)
        if entry is None or ignored(c, entry.rel):
            return
        refusal = entry_refusal(entry)
        if refusal:
            self.quarantine(entry, refusal)
            return
        if not targets(c, entry.rel):
            self.unmatched.add(str(path))
            self.not_taken.tell(path, NO_RULE, event="no rule matches: left in the inbox")
            return
        refusal = file_refusal(path, c.inbox, c.watch.max_file_mb * 10**6)
        if refusal:
            self.quarantine(entry, refusal)
            return
        cause = surely_not_an_image(str(path), str(c.inbox))
        if cause is not None:
            st = os.lstat(path)
            self._undecodable(entry, cause, (st.st_size, st.st_mtime_ns), attempts, now)
            return
        self.attempts[str(path)] = attempts
        self.inspector.submit(str(path), again=attempts > 0)

    def _inspected(self, result: Inspection, now: float) -> None:
        path = Path(result.path)
        attempts = self.attempts.pop(result.path, 0)
        entry = confine(self.config.inbox, path)
        if entry is None or entry.kind != FILE:
            if entry is not None:
                self.tracker.observe(str(path), now)  # swapped for a link or pipe: decide afresh
            return
        st = os.lstat(path)
        if result.stamp is not None and result.stamp != (st.st_size, st.st_mtime_ns):
            self.tracker.observe(str(path), now)  # changed while it was read: wait for it again
            return
        if result.error is not None:
            self._undecodable(entry, result.error, result.stamp, attempts, now, result.sha256 or "")
            return
        try:
            record_input(self.config, self.store, self.log, entry, result)
        except StoreUnavailable:
            self.tracker.observe(str(path), now)  # not recorded: look at it again once the store is back
            raise

    def _undecodable(self, entry: Entry, cause: str, stamp, attempts: int, now: float, sha256: str = "") -> None:
        retryable = not cause.startswith(("took longer", "could not be read"))
        if attempts < self.config.watch.decode_retries and retryable:
            # Files on network shares can look settled while still arriving: look again later.
            self.log.info("not decodable yet: will retry", input=entry.rel, cause=cause, attempt=attempts + 1)
            self.tracker.observe(str(entry.path), now, attempts=attempts + 1, failed_stamp=stamp)
        else:
            self.quarantine(entry, cause, sha256=sha256)

    def _too_long(self, entry: Entry) -> None:
        """A path past PATH_MAX: moved (through folder descriptors, which still reach it) to failed/
        under a short name, with the reason."""
        length = len(os.fsencode(str(entry.path)))
        self.quarantine(entry, f"its path is {length} bytes, over the system's limit of {PATH_MAX - 1} (PATH_MAX): "
                               "no program can open it by name; moved here under a shortened name",
                        dest_rel=safe_component(entry.rel.replace("/", "__"), limit=180))

    def quarantine(self, entry: Entry, cause: str, sha256: str = "", dest_rel: Optional[str] = None) -> None:
        report = {"input": entry.rel, "error": cause, "stage": "intake", "time": now_iso()}
        try:
            size = 0 if entry.kind == TOO_LONG else os.lstat(entry.path).st_size
            dest = move_input(entry.path, self.config.failed, dest_rel or entry.rel, report,
                              src_root=self.config.inbox)
        except OSError as e:
            self.log.error("cannot move refused input to failed/", input=entry.rel, cause=cause, error=str(e))
            return
        self.store.fail_input(entry.rel, str(dest), sha256, size, cause)
        self.log.warning("input refused", input=entry.rel, cause=cause, moved_to=str(dest))
        self.on_refused(entry.rel, cause)
