"""`worker.active_hours`: a daily span such as 19:00-07:00, parsed and tested against a time of day."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_SPAN = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")


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
