"""When the daemon rewrites the outbox's pages: at once after a change (a job done, a deletion, a
pause, a running card that gains its host or its first preview), within REFRESH_SECONDS while a
job only makes progress, never twice for nothing. A page that cannot be written is logged once and
tried again every REFRESH_SECONDS until it is; the gallery is a view, never a reason to stop painting."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from nstd.outbox.thumbs import preview_path
from nstd.store import Store, StoreUnavailable

from .gallery import REFRESH_SECONDS, write_gallery


class GalleryRefresh:
    def __init__(self, store: Store, outbox: Path, log, clock: Callable[[], float]):
        self.store, self.outbox, self.log, self.clock = store, outbox, log, clock
        self.due: Optional[float] = 0.0  # clock time of the next rewrite, None while the pages are current
        self.cards: dict[int, tuple[bool, bool]] = {}  # per running job: (host named, preview there) as shown
        self.failing = False

    def now(self) -> None:
        self.due = 0.0

    def soon(self) -> None:
        if self.due is None:
            self.due = self.clock() + REFRESH_SECONDS

    def progressed(self, job_id: int, progress: dict) -> None:
        """A job's progress: its card is rewritten at once when it has something new to show (a
        short job would otherwise end before its host or preview was ever on the page)."""
        card = (bool(progress.get("host")), preview_path(self.outbox, job_id).exists())
        if self.cards.get(job_id) == card:
            return self.soon()
        if len(self.cards) > 64:  # jobs long finished: a bound, not a record
            self.cards.clear()
        self.cards[job_id] = card
        self.now()

    def write_if_due(self, now: float) -> None:
        if self.due is None or now < self.due:
            return
        try:
            write_gallery(self.store, self.outbox)
        except StoreUnavailable:
            raise
        except Exception as e:
            if not self.failing:  # told once per spell, not at every retry
                self.log.error("cannot write the gallery; trying again", outbox=str(self.outbox),
                               error=f"{type(e).__name__}: {e}", exc_info=not isinstance(e, OSError))
            self.failing = True
            self.due = now + REFRESH_SECONDS  # the pages are out of date until a rewrite succeeds
            return
        if self.failing:
            self.log.info("the gallery is written again", outbox=str(self.outbox))
        self.failing = False
        self.due = None
