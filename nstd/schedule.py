"""When new jobs may start: not while paused (`nstd pause`), only inside `worker.active_hours`.

A running job always finishes; these only hold back the next one. The pause lives in the state
file, so it survives a restart and `nstd pause` works from any shell.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Callable, Optional

_SPAN = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")
CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class ActiveHours:
    """A daily span such as 19:00-07:00 (it may cross midnight); start inclusive, end exclusive."""
    start: dt.time
    end: dt.time

    @classmethod
    def parse(cls, text: str) -> "ActiveHours":
        m = _SPAN.match(text)
        if not m:
            raise ValueError(f"{text!r} is not a span like 19:00-07:00")
        h1, m1, h2, m2 = map(int, m.groups())
        if (h1, m1) == (h2, m2):
            raise ValueError(f"{text!r} is empty: start and end are the same")
        return cls(dt.time(h1, m1), dt.time(h2, m2))

    def contains(self, t: dt.time) -> bool:
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


class DispatchGate:
    """Says why no new job may start now (None when one may); logs each change once."""

    def __init__(self, paused: Callable[[], Optional[dict]], hours: Optional[ActiveHours], log,
                 wall: Callable[[], dt.datetime] = dt.datetime.now):
        self.paused, self.hours, self.log, self.wall = paused, hours, log, wall
        self.reason: Optional[str] = None
        self.checked = float("-inf")

    def closed(self, now: float) -> Optional[str]:
        if now - self.checked < CHECK_SECONDS:
            return self.reason
        self.checked = now
        reason = None
        pause = self.paused()
        if pause is not None:
            reason = f"paused ({pause.get('why', 'nstd pause')}); `nstd resume` starts jobs again"
        elif self.hours is not None and not self.hours.contains(self.wall().time()):
            reason = f"outside worker.active_hours ({self.hours})"
        if reason != self.reason:
            if reason:
                self.log.info("no new jobs start", why=reason)
            else:
                self.log.info("jobs start again")
        self.reason = reason
        return reason
