"""How one scale of a run fits a memory cap: untiled, or in tiles, and how much L-BFGS history.

Arithmetic on sizes and bytes, no tensors. What a scale holds:
* VGG-19's activations kept for the backward pass: ACTIVATION_BYTES per pixel of what the network
  sees at once (the whole image, or one tile with its margin), and PASS_BYTES beside;
* image-sized float32 buffers (12 bytes a pixel each): the image, its gradient, the photo, a running
  average and the transient copies of a step (IMAGE_BUFFERS), and L-BFGS's history, two per step
  remembered, up to HISTORY;
* the photo's content-layer feature maps, which a tiled run keeps whole as targets.
The cap counts these, not the fixed ~0.6 GB of torch and the weights that any run has, and the
plan fills HEADROOM of it. On a CPU the cap also needs the C allocator to give back what each tile
frees (release_freed).
"""

from __future__ import annotations

import ctypes
import math
import os
from dataclasses import dataclass
from typing import Callable, Optional

from .errors import ParameterError

# What the network holds while it runs forward and backward over what it sees at once (the whole
# image, or one tile with its margin): its maps kept for the backward pass and their gradients, per
# pixel, and per pass, whatever the size, oneDNN's scratch, the weights' bfloat16 copies and what the
# allocator keeps. Measured as the growth of resident memory (bench/memory.py, the 2-core AMD EPYC,
# VGG-19 to relu4_2): whole images at 1448x1086 and 2048x1536 grew by 2.0 KB a pixel plus 0.18 GB in
# bfloat16, 2048x1536 in float32 by 2.4 KB a pixel less the buffers below (2.25 KB). 4 KB a pixel,
# the figure before, was right for tiles of 232 px (the allocator's share is largest there) and
# twice what a 2048 px scale needs: its tiles came out half as wide as the cap allowed.
ACTIVATION_BYTES = 2304
PASS_BYTES = 128 * 2 ** 20
IMAGE_BYTES = 12           # one float32 RGB pixel
IMAGE_BUFFERS = 8
HISTORY = 100              # L-BFGS's history when nothing is short
MIN_HISTORY = 3
MIN_CORE_STRIDES = 4       # a tile's core at least this many strides of the deepest layer across
# A core this wide spends (1 + 2 * 48 / 512)^2 = 1.4x its own pixels on margins at relu4_2: the
# history gives way to it before the tiles shrink further.
EFFICIENT_CORE = 512
# The plan fills this share of the cap: the rest is for what no count above sees, the allocator's
# pages pinned by small blocks between freed maps among them (512x384 under 0.25 GB, 136 px cores:
# the process grew by 1.03-1.10x the cap planned in full, and by 0.8-0.9x with this margin).
HEADROOM = 0.85
GB = 1024 ** 3


# Without a cap set: this share of the device's memory (a GPU's, or the RAM or cgroup limit of a CPU
# machine), so that any size the worker accepts paints rather than running out.
DEFAULT_SHARE = {"cuda": 0.9, "cpu": 0.75}


def default_cap_gb(device_type: str, total_bytes: int) -> float:
    return DEFAULT_SHARE.get(device_type, 0.75) * total_bytes / GB


def _malloc_trim() -> Callable[[int], int]:
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc's; musl and macOS have none
    return trim if trim is not None else (lambda pad: 0)


_MALLOC_TRIM = _malloc_trim()


def release_freed() -> None:
    """Hands the C allocator's freed pages back to the system. glibc keeps freed blocks below its
    mmap threshold, which rises to 32 MB as large blocks are freed, in its heap; a tiled pass frees
    and allocates many maps of that size, and without this a process grew to 1.4x its cap (1024x768
    under 0.6 GB, 248 px cores, three iterations: 0.85 GiB; with it 0.54-0.56 GiB, the run 7-10 %
    slower from the pages faulted in again). Called before each tile's forward pass on a CPU."""
    _MALLOC_TRIM(0)


def machine_memory_bytes() -> int:
    """Physical memory, or the cgroup's limit where one is set (a systemd MemoryMax=)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def network_bytes(pixels: int) -> int:
    """What VGG-19's forward and backward pass over `pixels` at once holds (see ACTIVATION_BYTES)."""
    return PASS_BYTES + pixels * ACTIVATION_BYTES


@dataclass(frozen=True)
class MemoryPlan:
    core: Optional[int]    # a tile's core side in pixels; None: the whole image at once
    history: int           # L-BFGS history at this scale

    @property
    def tiled(self) -> bool:
        return self.core is not None


def plan(dims: tuple[int, int], cap_gb: Optional[float], margin: int, stride: int,
         content_floats_per_pixel: float, iterations: Optional[int] = None) -> MemoryPlan:
    """The plan for one scale of `dims` under `cap_gb` (None: no cap) that runs `iterations` (None:
    as many as may come). Tiles only when the whole image does not fit; then L-BFGS keeps what
    history fits beside the fixed buffers and a tile of EFFICIENT_CORE (at least MIN_HISTORY), and
    the tiles take the rest. L-BFGS adds one step to its history per iteration, so a scale of 12
    iterations never holds more than 12: what a longer history would take goes to the tiles."""
    pixels = dims[0] * dims[1]
    vector = pixels * IMAGE_BYTES
    fixed = IMAGE_BUFFERS * vector + int(pixels * content_floats_per_pixel * 4)
    if cap_gb is None:
        return MemoryPlan(core=None, history=HISTORY)
    cap = cap_gb * GB * HEADROOM
    most = HISTORY if iterations is None else max(MIN_HISTORY, min(HISTORY, iterations))
    for history in dict.fromkeys((HISTORY, most)):  # a run given more iterations later keeps it all
        if fixed + 2 * history * vector + network_bytes(pixels) <= cap:
            return MemoryPlan(core=None, history=history)
    smallest_tile = network_bytes((MIN_CORE_STRIDES * stride + 2 * margin) ** 2)
    efficient_tile = network_bytes((EFFICIENT_CORE + 2 * margin) ** 2)
    history = max(MIN_HISTORY, min(most, int((cap - fixed - efficient_tile) // (2 * vector))))
    if fixed + 2 * history * vector + smallest_tile > cap:
        need = (fixed + 2 * MIN_HISTORY * vector + smallest_tile) / HEADROOM
        raise ParameterError("max_memory_gb", f"{cap_gb:g} GB cannot hold a {dims[0]}x{dims[1]} painting's "
                                              f"buffers; it needs at least {math.ceil(need / GB * 10) / 10:g} GB")
    side = math.isqrt(int((cap - fixed - 2 * history * vector - PASS_BYTES) // ACTIVATION_BYTES))
    core = (side - 2 * margin) // stride * stride
    return MemoryPlan(core=max(MIN_CORE_STRIDES * stride, core), history=history)
