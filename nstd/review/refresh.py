"""When the daemon rewrites the outbox's pages: at once after a change (a job done, a deletion, a
pause), within REFRESH_SECONDS while a job only makes progress, never twice for nothing. A page
that cannot be written is logged; the gallery is a view, never a reason to stop painting."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from nstd.store import Store, StoreUnavailable

from .gallery import REFRESH_SECONDS, write_gallery


class GalleryRefresh:
    def __init__(self, store: Store, outbox: Path, log, clock: Callable[[], float]):
        self.store, self.outbox, self.log, self.clock = store, outbox, log, clock
        self.due: Optional[float] = 0.0  # clock time of the next rewrite, None while the pages are current

    def now(self) -> None:
        self.due = 0.0

    def soon(self) -> None:
        if self.due is None:
            self.due = self.clock() + REFRESH_SECONDS

    def write_if_due(self, now: float) -> None:
        if self.due is None or now < self.due:
            return
        try:
            write_gallery(self.store, self.outbox)
        except StoreUnavailable:
            raise
        except Exception as e:
            self.log.error("cannot write the gallery", outbox=str(self.outbox),
                           error=f"{type(e).__name__}: {e}", exc_info=not isinstance(e, OSError))
        self.due = None
