"""Health: what systemd hears (READY, STATUS, WATCHDOG, STOPPING) and when.

The watchdog is fed only while the watcher and the worker are alive and the worker has shown
life within its stall limit, so systemd restarts a daemon that is stuck, not one that is busy.
"""

from __future__ import annotations

from typing import Callable

from nstd.store import StoreUnavailable

from .systemd import Notifier


class Health:
    def __init__(self, notifier: Notifier):
        self.notifier = notifier
        self.last_ping = float("-inf")

    def tick(self, now: float, healthy: bool, stopping: bool, counts: Callable[[], dict]) -> None:
        if not self.notifier.enabled:
            return
        interval = (self.notifier.watchdog_seconds or 30) / 3
        if now - self.last_ping < interval:
            return
        self.last_ping = now
        try:
            c = counts()
            status = f"{c['queued']} queued, {c['running']} running, {c['done']} done, {c['failed']} failed"
        except StoreUnavailable:
            status = "state file unavailable"
        if healthy or stopping:
            self.notifier.notify(watchdog="1", status=status)
        else:
            self.notifier.notify(status="unhealthy: " + status)

    def ready(self, status: str) -> None:
        self.notifier.notify(ready="1", status=status)

    def stopping(self) -> None:
        self.notifier.notify(stopping="1")
