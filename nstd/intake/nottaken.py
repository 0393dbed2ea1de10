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
from pathlib import Path
from typing import Callable, Optional

NO_RULE = "no rule matches it: left in the inbox"


class NotTaken:
    def __init__(self, inbox: Path, reason_of: Callable[[str], Optional[str]], log, on_change=None):
        self.inbox, self.reason_of, self.log = inbox, reason_of, log
        self.on_change = on_change or (lambda counts: None)
        self.files: dict[str, str] = {}   # path -> reason, as told

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
        listed = sorted(self.files.items())
        return {"count": len(listed), "first": [{"input": os.path.relpath(p, self.inbox), "reason": r}
                                                for p, r in listed[:shown_at_most]]}
