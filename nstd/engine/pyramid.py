"""Coarse-to-fine schedules: which sizes a run optimises at, how many iterations each, and fitting
them to a time budget. Pure arithmetic on sizes and seconds, no tensors.

The pyramid (after crowsonkb/style-transfer-pytorch) grows by sqrt(2) per scale up to the output
size, each scale starting from the last one's result upsampled. A scale one step down costs half
an iteration at the output size and settles the layout and the large strokes cheaply; the first
scale, which starts from the photo, runs twice the iterations of the others.

Measured (bench/quality.py, tubingen x starry_night at 512 px, L-BFGS, equal time): starting at
half the output size beat starting at 128 px on style and content distance alike, and giving the
coarse scales more iterations than the fine ones (1.5x or 2x per step down) scored worse than
equal counts. Hence the defaults: three scales (half the output size, then sqrt(2) steps), none
smaller than `first_scale`, equal iterations except the first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

SCALE_STEP = math.sqrt(2)
# The first scale starts from the photo (or noise) and has furthest to go.
FIRST_SCALE_EXTRA = 2.0
# Print sizes: above this longest side the pyramid goes on upwards in sqrt(2) steps, and each of
# those scales gets iterations in inverse proportion to its pixels, so that each costs what the
# scale at this size costs: the layout and strokes are settled below, the top scales add detail.
PRINT_FROM = 1024


@dataclass(frozen=True)
class Scale:
    dims: tuple[int, int]
    iterations: int

    @property
    def pixels(self) -> int:
        return self.dims[0] * self.dims[1]


def scale_dims(final: tuple[int, int], first_side: int, scales: int) -> list[tuple[int, int]]:
    """Sizes from smallest to the output's: at most `scales` of them (0: no limit) up to PRINT_FROM,
    none with a longest side below `first_side`, and above PRINT_FROM every sqrt(2) step to the
    output (the output itself always runs)."""
    longest = max(final)
    above = max(0, math.ceil(math.log(longest / PRINT_FROM) / math.log(SCALE_STEP) - 1e-9))
    base = longest / SCALE_STEP ** above  # the largest scale of the ordinary pyramid
    fit = max(0, math.floor(math.log(base / first_side) / math.log(SCALE_STEP) + 1e-9)) + 1
    count = (fit if scales == 0 else min(scales, fit)) + above
    dims = []
    for k in reversed(range(count)):
        f = SCALE_STEP ** k
        dims.append((max(16, round(final[0] / f)), max(16, round(final[1] / f))))
    return dims


def iteration_weights(dims: Sequence[tuple[int, int]]) -> list[float]:
    """Iterations of each scale relative to `iterations`, smallest scale first."""
    weights = []
    for k, d in enumerate(dims):
        longest = max(d)
        if longest > PRINT_FROM * 1.01:
            weights.append((PRINT_FROM / longest) ** 2)
        else:
            weights.append(FIRST_SCALE_EXTRA if k == 0 and len(dims) > 1 else 1.0)
    return weights


def plan(dims: Sequence[tuple[int, int]], iterations: int) -> list[Scale]:
    """`iterations` at each scale, more at the first, fewer at print sizes."""
    return [Scale(d, max(1, round(iterations * w))) for d, w in zip(dims, iteration_weights(dims))]


# Under a budget the output scale keeps at least this many iterations where the time allows them,
# the coarser scales shrinking instead: the output size is the picture (a 60 s budget on a busy
# machine once left it 1 iteration).
MIN_LAST_ITERATIONS = 10


def stop_now(elapsed: float, seconds_per_iteration: float, budget: float) -> bool:
    """True where stopping now ends nearer the budget than one more iteration would: the end lands
    within half an iteration of it, either side. (Stopping only when one more would not fit ended a
    1024 px run at a 60 s budget 7 % early, an output iteration costing 4.7 s on a 2-core CPU.)"""
    return elapsed + seconds_per_iteration / 2 >= budget


def fit(dims: Sequence[tuple[int, int]], weights: Sequence[float], seconds: float,
        seconds_per_pixel: float, done_at_first: int = 0) -> list[Scale]:
    """Iteration counts for the scales still to run (`dims`, with their `weights` from
    `iteration_weights`; the first may be `done_at_first` iterations in) that spend `seconds`,
    each iteration costing `seconds_per_pixel` per pixel.

    The cost per pixel is measured at the latest scale and taken to hold for the larger ones:
    about true on this project's CPU (13.7 and 13.0 us per pixel at 128 and 256 px), pessimistic
    on a GPU, whose small scales are overhead-bound. The last scale also stops on the clock.
    """
    costs = [d[0] * d[1] * seconds_per_pixel for d in dims]
    total = sum(w * c for w, c in zip(weights, costs))
    base = (max(0.0, seconds) + done_at_first * costs[0]) / total if total > 0 else 1.0
    counts = [max(1, math.floor(base * w)) for w in weights]
    counts[0] = max(counts[0], done_at_first)
    # (Not at print sizes, where the weights already give each scale above 1024 px a 1024 px's time.)
    if len(dims) > 1 and counts[-1] < MIN_LAST_ITERATIONS and weights[-1] >= 1.0:
        earlier = sum(w * c for w, c in zip(weights[:-1], costs[:-1]))
        left = max(0.0, seconds - MIN_LAST_ITERATIONS * costs[-1])
        base = (left + done_at_first * costs[0]) / earlier if earlier > 0 else 0.0
        counts[:-1] = [max(1, math.floor(base * w)) for w in weights[:-1]]
        counts[0] = max(counts[0], done_at_first)
        spent = (counts[0] - done_at_first) * costs[0] + sum(n * c for n, c in zip(counts[1:-1], costs[1:-1]))
        counts[-1] = max(1, math.floor((seconds - spent) / costs[-1])) if costs[-1] > 0 else counts[-1]
    return [Scale(d, n) for d, n in zip(dims, counts)]
