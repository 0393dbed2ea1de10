"""One small backoff type: how long to wait before trying something again."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    """Doubling waits from `initial` up to `maximum`; `due` says whether to try now."""
    initial: float = 1.0
    maximum: float = 60.0
    failures: int = 0
    next_try: float = 0.0

    @property
    def delay(self) -> float:
        return min(self.initial * 2 ** max(self.failures - 1, 0), self.maximum)

    def failed(self, now: float) -> float:
        """Record a failure at `now`; returns the wait before the next try."""
        self.failures += 1
        self.next_try = now + self.delay
        return self.delay

    def succeeded(self) -> None:
        self.failures, self.next_try = 0, 0.0

    def due(self, now: float) -> bool:
        return now >= self.next_try
