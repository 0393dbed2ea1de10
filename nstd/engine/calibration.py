"""A style strength that means the same for every painting and photo.

Each painting's style loss has its own scale, so one style weight is a light touch with one
painting and over-painting with another. `style_strength` (0 to 1) names instead how far the
result may move from the photo: a content distance (relu4_2, relative, as `bench/quality.py`
measures it) between CONTENT_DISTANCE_AT_0 and _AT_1. The style weight that lands there is found
during the coarse scale, where iterations are cheap: at CHECKPOINTS points the distance reached is
read from the loss already computed, and the weight is moved by interpolation in log-log space (L-BFGS
restarts, its history being of the old objective). The finer scales keep the weight found. No
forward pass is added: the cost is the restarted optimiser's first steps.
"""

from __future__ import annotations

import math
from typing import Optional

CONTENT_DISTANCE_AT_0 = 0.35
CONTENT_DISTANCE_AT_1 = 0.95
CHECKPOINTS = 3
START_WEIGHT = 15.0  # where the search starts: among the weights it finds (3 to 30, bench/quality.py --varied)
MAX_STEP = 8.0       # the weight moves at most this factor at a checkpoint before it is bracketed


STRENGTH_STEP = 0.2   # "lighter" and "stronger" on a result's card
STRENGTH_UNKNOWN = 0.5  # a result painted by style weight alone is taken as the middle


def lighter(strength: Optional[float]) -> float:
    return round(max(0.0, (STRENGTH_UNKNOWN if strength is None else strength) - STRENGTH_STEP), 2)


def stronger(strength: Optional[float]) -> float:
    return round(min(1.0, (STRENGTH_UNKNOWN if strength is None else strength) + STRENGTH_STEP), 2)


def target_distance(strength: float) -> float:
    return CONTENT_DISTANCE_AT_0 + (CONTENT_DISTANCE_AT_1 - CONTENT_DISTANCE_AT_0) * strength


def checkpoints(iterations: int) -> set[int]:
    """The iterations of the coarse scale after which the weight is reconsidered."""
    step = iterations // (CHECKPOINTS + 1)
    return {step * k for k in range(1, CHECKPOINTS + 1)} if step >= 2 else set()


class WeightSearch:
    """The style weight for one run, from the content distances it reached at the checkpoints."""

    def __init__(self, strength: float, start_weight: float):
        self.strength, self.target = strength, target_distance(strength)
        self.weight = start_weight
        self.low: Optional[tuple[float, float]] = None   # (weight, distance) closer to the photo than the target
        self.high: Optional[tuple[float, float]] = None  # one that went further
        self.steps: list[dict] = []

    def observe(self, distance: float) -> float:
        """The next weight, given the content distance the current one reached."""
        self.steps.append({"style_weight": round(self.weight, 4), "content_distance": round(distance, 4)})
        if distance < self.target:
            self.low = (self.weight, distance)
        else:
            self.high = (self.weight, distance)
        if self.low is not None and self.high is not None:
            self.weight = self._between(self.low, self.high)
        else:
            # Unbracketed: a step by the miss, as distance grows roughly with a power of the weight.
            ratio = (self.target / max(distance, 1e-6)) ** 4
            self.weight *= min(MAX_STEP, max(1 / MAX_STEP, ratio))
        return self.weight

    def _between(self, low: tuple[float, float], high: tuple[float, float]) -> float:
        """Inside the bracket, where the line through its ends in log-log space meets the target:
        exact if the distance is a power of the weight, as it roughly is; kept off the ends, so a
        bracket still shrinks when it is not."""
        (w0, d0), (w1, d1) = (math.log(low[0]), math.log(max(low[1], 1e-6))), (math.log(high[0]), math.log(high[1]))
        at = (math.log(self.target) - d0) / (d1 - d0) if d1 > d0 else 0.5
        return math.exp(w0 + (w1 - w0) * min(0.9, max(0.1, at)))

    def record(self) -> dict:
        return {"style_strength": self.strength, "target_content_distance": round(self.target, 4),
                "style_weight": round(self.weight, 4), "steps": self.steps}
