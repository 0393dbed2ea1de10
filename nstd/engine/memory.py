"""How one scale of a run fits a memory cap: untiled, or in tiles, and how much L-BFGS history.

Pure arithmetic on sizes and bytes, no tensors. What a scale holds:
* VGG-19's activations kept for the backward pass: ACTIVATION_BYTES per pixel of what the network
  sees at once (the whole image, or one tile with its margin);
* image-sized float32 buffers (12 bytes a pixel each): the image, its gradient, the photo, a running
  average and the transient copies of a step (IMAGE_BUFFERS), and L-BFGS's history, two per step
  remembered, up to HISTORY;
* the photo's content-layer feature maps, which a tiled run keeps whole as targets.
The cap counts these, not the fixed ~0.6 GB of torch and the weights that any run has.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional

from .errors import ParameterError

# Measured on this project's CPU, float32, VGG-19 to relu4_2, as the growth of the process's peak
# resident memory per pixel (tests/test_tiling.py's child at 512x384): 3.1 KB for the whole image at
# once, 3.8 KB per pixel of 264 px tiles (the allocator's share grows with many smaller blocks).
ACTIVATION_BYTES = 4096
IMAGE_BYTES = 12           # one float32 RGB pixel
IMAGE_BUFFERS = 8
HISTORY = 100              # L-BFGS's history when nothing is short
MIN_HISTORY = 3
MIN_CORE_STRIDES = 4       # a tile's core at least this many strides of the deepest layer across
# A core this wide spends (1 + 2 * 48 / 512)^2 = 1.4x its own pixels on margins at relu4_2: the
# history gives way to it before the tiles shrink further.
EFFICIENT_CORE = 512
GB = 1024 ** 3


# Without a cap set: this share of the device's memory (a GPU's, or the RAM or cgroup limit of a CPU
# machine), so that any size the worker accepts paints rather than running out.
DEFAULT_SHARE = {"cuda": 0.9, "cpu": 0.75}


def default_cap_gb(device_type: str, total_bytes: int) -> float:
    return DEFAULT_SHARE.get(device_type, 0.75) * total_bytes / GB


def machine_memory_bytes() -> int:
    """Physical memory, or the cgroup's limit where one is set (a systemd MemoryMax=)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


@dataclass(frozen=True)
class MemoryPlan:
    core: Optional[int]    # a tile's core side in pixels; None: the whole image at once
    history: int           # L-BFGS history at this scale

    @property
    def tiled(self) -> bool:
        return self.core is not None


def plan(dims: tuple[int, int], cap_gb: Optional[float], margin: int, stride: int,
         content_floats_per_pixel: float) -> MemoryPlan:
    """The plan for one scale of `dims` under `cap_gb` (None: no cap). Tiles only when the whole
    image does not fit; then L-BFGS keeps what history fits beside the fixed buffers and a tile of
    EFFICIENT_CORE (at least MIN_HISTORY), and the tiles take the rest."""
    pixels = dims[0] * dims[1]
    vector = pixels * IMAGE_BYTES
    fixed = IMAGE_BUFFERS * vector + int(pixels * content_floats_per_pixel * 4)
    if cap_gb is None or fixed + 2 * HISTORY * vector + pixels * ACTIVATION_BYTES <= cap_gb * GB:
        return MemoryPlan(core=None, history=HISTORY)
    cap = cap_gb * GB
    smallest_tile = (MIN_CORE_STRIDES * stride + 2 * margin) ** 2 * ACTIVATION_BYTES
    efficient_tile = (EFFICIENT_CORE + 2 * margin) ** 2 * ACTIVATION_BYTES
    history = max(MIN_HISTORY, min(HISTORY, int((cap - fixed - efficient_tile) // (2 * vector))))
    if fixed + 2 * history * vector + smallest_tile > cap:
        need = fixed + 2 * MIN_HISTORY * vector + smallest_tile
        raise ParameterError("max_memory_gb", f"{cap_gb:g} GB cannot hold a {dims[0]}x{dims[1]} painting's "
                                              f"buffers; it needs at least {math.ceil(need / GB * 10) / 10:g} GB")
    side = math.isqrt(int((cap - fixed - 2 * history * vector) // ACTIVATION_BYTES))
    core = (side - 2 * margin) // stride * stride
    return MemoryPlan(core=max(MIN_CORE_STRIDES * stride, core), history=history)

