"""When new jobs may start: not while paused (`nstd pause`), only inside `worker.active_hours`.

A running job always finishes; these only hold back the next one. The pause lives in the state
file, so it survives a restart and `nstd pause` works from any shell.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable, Optional

from nstd.config import ActiveHours

CHECK_SECONDS = 1.0


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
        probe_due = pause is not None and pause.get("machine_fault") and pause.get("probe_at") is not None \
            and self.wall().timestamp() >= pause["probe_at"]
        if pause is not None and not probe_due:  # a due probe may start: nstd.work.faults picks it
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
