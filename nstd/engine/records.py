"""The engine's plain records: a style image, a run's result, and the progress it reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from PIL import Image


@dataclass(frozen=True)
class StyleImage:
    image: Image.Image
    weight: float = 1.0
    # A stable identity (e.g. path and mtime) lets the engine reuse this style's Gram targets
    # across runs; None disables caching for it.
    key: Optional[str] = None


@dataclass
class TransferResult:
    image: Image.Image
    trace: list[dict]
    final: dict
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Progress:
    level: int
    levels: int
    iteration: int
    iterations: int
    done: int
    total: int
    elapsed: float
    losses: Optional[dict] = None  # present on the iterations the trace records
    # The current image, computed only if asked for (a preview costs a device-to-host copy).
    snapshot: Optional[Callable[[], object]] = field(default=None, repr=False, compare=False)
    # Share of the planned work done: iterations weighted by their size, as the scales differ; under
    # a time budget, the share of the budget spent.
    fraction: float = 0.0
    estimated: bool = False  # `total` is the plan so far: a time budget re-plans it as it measures

    @property
    def iterations_per_second(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> Optional[float]:
        f = self.fraction
        return self.elapsed * (1 - f) / f if f > 0 else None


ProgressCallback = Callable[[Progress], None]
