"""Files in the inbox that nstd does not take, each with its reason: never silently ignored.

A photo left in the inbox with no word (a format nstd did not know, a name no rule matches, a
browser's `.part` that never finished, the video of a Live Photo) looks like nstd lost it. So
every such file is logged once, counted by reason in a metric, and listed with its reason in
`nstd status` (through the state file's heartbeat). Hidden files (`.DS_Store`, nstd's own lock)
are not photos anyone dropped, and are left out.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Callable, Optional

from nstd.core.images import IMAGE_SUFFIXES
from nstd.core.livephotos import photo_of

NO_RULE = "no rule matches it: left in the inbox"
LOOK_EVERY_SECONDS = 5.0


class NotTaken:
    def __init__(self, inbox: Path, reason_of: Callable[[str], Optional[str]], log, on_change=None):
        self.inbox, self.reason_of, self.log = inbox, reason_of, log
        self.on_change = on_change or (lambda counts: None)
        self.files: dict[str, str] = {}   # path -> reason, as told
        self.looked = float("-inf")

    def restart(self, inbox: Path) -> None:
        """A reloaded config (another inbox, other rules): told anew from the next scan."""
        self.inbox, self.files = inbox, {}
        self.on_change({})

    def seen(self, kind: str, path: Path, entry) -> None:
        """A watcher's event: a name that left or became an entry of intake's is forgotten; any other
        file in the inbox (no photo) is told."""
        if kind == "gone" or entry is not None:
            self._forget(str(entry.path if entry is not None else path))
        elif kind != "dir" and path.is_relative_to(self.inbox):
            self.consider(path)

    def consider(self, path: Path) -> None:
        """A path the intake does not take: told once if it is a file someone dropped; forgotten once gone."""
        rel = path.relative_to(self.inbox).as_posix()
        try:
            st = os.lstat(path)
        except OSError:
            self._forget(str(path))
            return
        if any(part.startswith(".") for part in rel.split("/")) or stat.S_ISDIR(st.st_mode):
            return
        photo = photo_of(path, IMAGE_SUFFIXES)
        if photo is not None:
            self.tell(path, f"the video of a Live Photo ({photo.name}): it goes to the archive with its photo")
            return
        self.tell(path, self.reason_of(rel) or "not taken")

    def tell(self, path: Path, reason: str, event: str = "not taken: left in the inbox") -> None:
        key = str(path)
        if self.files.get(key) == reason:
            return
        self.files[key] = reason
        self.log.warning(event, input=path.relative_to(self.inbox).as_posix(), reason=reason)
        self.on_change(self.counts())

    def taken(self, path: str) -> None:
        self._forget(path)

    def still_there(self) -> None:
        """Forget files that left (moved, deleted, renamed into a photo)."""
        for key in [k for k in self.files if not os.path.lexists(k)]:
            self._forget(key)

    def _forget(self, key: str) -> None:
        if self.files.pop(key, None) is not None:
            self.on_change(self.counts())

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for reason in self.files.values():
            short = reason.split(":")[0].split(" (")[0]
            found[short] = found.get(short, 0) + 1
        return found

    def report(self, shown_at_most: int = 20) -> dict:
        # A look at each now and then (a stat each): a file that left without an event (moved out by
        # filing, a share's change) leaves the list all the same.
        if time.monotonic() - self.looked >= LOOK_EVERY_SECONDS:
            self.looked = time.monotonic()
            self.still_there()
        listed = sorted(self.files.items())
        return {"count": len(listed), "first": [{"input": os.path.relpath(p, self.inbox), "reason": r}
                                                for p, r in listed[:shown_at_most]]}
