"""The parameters of one style transfer: the single home of every default.

The CLI's flags (`nstd stylize`) and the YAML keys (`defaults:`, per-rule `params:`) are derived
from these two dataclasses, so they cannot drift apart.
"""

from __future__ import annotations

import math

import dataclasses
from dataclasses import dataclass, field
from typing import Literal, Optional, Union

from .errors import ParameterError

STYLE_LAYERS_GATYS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
# relu5_1 left out: it is what paints a portrait's face or a painting's moons into the photo, and
# without it the sliced-Wasserstein style distance is the same (bench/subject.py, docs/engine/strength.md).
STYLE_LAYERS_DEFAULT = STYLE_LAYERS_GATYS[:4]
STYLE_STRENGTH_DEFAULT = 0.5


# Bounds on what a user may ask for (a YAML key, a --set, a web form): beyond them a request is a
# mistake or an attack, not a painting. The pixel budget of a job is worker.max_pixels, checked apart.
MAX_SIZE = 32768
MAX_ITERATIONS = 100_000
MAX_WEIGHT = 1e12
ORIGINAL = "original"  # size: the photo's own


def _opt(default, help: str, **kw):
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class TransferParams:
    """What to compute for one content image. Immutable; derive variants with `replace`."""

    size: Union[int, Literal["original"]] = _opt(
        512, "longest side of the output in pixels (aspect ratio kept), or 'original': the photo's own "
             "size (up to worker.max_pixels; above 1024 px the pyramid goes on upwards)")
    iterations: int = _opt(50, "optimiser iterations at each scale (one VGG forward+backward each); "
                                "the first of several scales runs twice as many")
    optimizer: Literal["lbfgs", "adam"] = _opt("lbfgs", "optimiser")
    learning_rate: Optional[float] = _opt(
        None, "step size in ImageNet-normalised pixel units (default: 1 for lbfgs, 0.05 for adam)")
    content_weight: float = _opt(1.0, "weight of the content loss")
    style_strength: float = _opt(
        STYLE_STRENGTH_DEFAULT, "how painterly, 0 (a light touch) to 1 (the painting takes over), the same "
                                "for every painting: the style weight is found per photo and painting at "
                                "the coarse scale")
    style_weight: Optional[float] = _opt(
        None, "a fixed weight of the style loss, for experts: replaces style_strength's search")
    tv_weight: float = _opt(10.0, "weight of the total-variation (smoothness) loss")
    content_layers: tuple[str, ...] = _opt(("relu4_2",), "VGG layers for the content loss")
    style_layers: tuple[str, ...] = _opt(STYLE_LAYERS_DEFAULT, "VGG layers for the style loss")
    style_layer_weights: Optional[tuple[float, ...]] = _opt(
        None, "one weight per style layer (default: equal weights summing to 1)")
    style_scale: float = _opt(1.0, "style image size relative to the output size")
    init: Literal["content", "noise", "image"] = _opt(
        "content", "starting image: the content, noise, or a given image")
    preserve_colors: Literal["none", "luminance", "match"] = _opt(
        "none", "keep the content's colours: luminance-only transfer, or recolour the style first")
    pooling: Literal["max", "avg"] = _opt("max", "VGG pooling")
    scales: int = _opt(3, "coarse-to-fine scales, each sqrt(2) larger, ending at the output size "
                          "(1: the output size alone; 0: as many as first_scale allows)")
    first_scale: int = _opt(128, "no scale smaller than this longest side in pixels (smaller outputs "
                                 "run at their own size alone)")
    average: Optional[float] = _opt(
        None, "decay of the running average of the image over each scale's iterations, which is "
              "what the scale hands on (0: off; default: 0 for lbfgs, 0.9 for adam)")
    budget_seconds: Optional[float] = _opt(
        None, "finish within this many seconds of optimisation: the schedule is planned from the "
              "measured cost of the first iterations (replaces iterations)")
    exact_size: bool = _opt(False, "resize content and style to size x size, ignoring aspect ratio")
    seed: Optional[int] = _opt(0, "random seed; the same seed gives the same CPU result")
    log_every: int = _opt(10, "record the losses every N iterations")

    def __post_init__(self):
        if self.style_strength is None:  # a job stored before the strength was the default
            object.__setattr__(self, "style_strength", STYLE_STRENGTH_DEFAULT)
        numbers = [self.content_weight, self.style_strength, self.tv_weight, self.style_scale,
                   *(v for v in (self.learning_rate, self.budget_seconds, self.average, self.style_weight)
                     if v is not None),
                   *(self.style_layer_weights or ())]
        checks = [
            (all(math.isfinite(v) for v in numbers), "parameters", "numbers must be finite (not NaN or infinity)"),
            (self.size == ORIGINAL or (isinstance(self.size, int) and 16 <= self.size <= MAX_SIZE), "size",
             f"must be from 16 to {MAX_SIZE}, or '{ORIGINAL}'"),
            (1 <= self.iterations <= MAX_ITERATIONS, "iterations", f"must be from 1 to {MAX_ITERATIONS}"),
            (max(self.content_weight, self.style_weight or 0, self.tv_weight) <= MAX_WEIGHT, "weights",
             f"must be at most {MAX_WEIGHT:g}"),
            (self.scales <= 12 and self.first_scale <= MAX_SIZE, "scales", "at most 12, from at most the largest size"),
            (self.budget_seconds is None or self.budget_seconds <= 7 * 86400, "budget_seconds", "at most a week"),
            (self.style_scale <= 8, "style_scale", "must be at most 8"),
            (0 <= self.style_strength <= 1, "style_strength", "must be from 0 to 1"),
            (self.style_weight is not None or self.content_weight > 0, "style_strength",
             "needs a positive content_weight (or give a fixed style_weight)"),
            (self.scales >= 0, "scales", "must be 0 (as many as fit) or more"),
            (self.first_scale >= 16, "first_scale", "must be at least 16"),
            (self.average is None or 0 <= self.average < 1, "average", "must be in [0, 1)"),
            (self.budget_seconds is None or self.budget_seconds > 0, "budget_seconds", "must be positive"),
            (self.style_scale > 0, "style_scale", "must be positive"),
            (self.log_every >= 1, "log_every", "must be at least 1"),
            (len(self.content_layers) > 0, "content_layers", "needs at least one layer"),
            (len(self.style_layers) > 0, "style_layers", "needs at least one layer"),
            (self.learning_rate is None or self.learning_rate > 0, "learning_rate", "must be positive"),
            (min(self.content_weight, self.style_weight or 0, self.tv_weight) >= 0,
             "weights", "content, style and tv weights must not be negative"),
            (self.style_layer_weights is None
             or len(self.style_layer_weights) == len(self.style_layers),
             "style_layer_weights", "needs one weight per style layer"),
        ]
        for ok, name, cause in checks:
            if not ok:
                raise ParameterError(name, cause)

    def replace(self, **changes) -> "TransferParams":
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class EngineOptions:
    """How to run: which network and where. Fixed for the life of an `Engine`."""

    weights: str = _opt("caffe", "VGG-19 weights: 'caffe' (embedded original VGG-19), "
                                 "'torchvision' (ImageNet, downloads once), or a .pth path")
    device: str = _opt("auto", "'auto' (cuda, then mps, then cpu), or a torch device such as cuda:1")
    mixed_precision: Literal["auto", "on", "off"] = _opt(
        "auto", "the network in bfloat16 (Gram matrices, losses, the image and the optimiser in float32): "
                "auto where the device computes bfloat16 natively (CUDA; CPUs with AVX512_BF16 or AMX), "
                "on everywhere, off never")
    max_memory_gb: Optional[float] = _opt(
        None, "cap on a run's working memory in GB (VGG's activations, image-sized buffers, L-BFGS "
              "history; not the ~0.6 GB of torch and the weights): a scale that does not fit is "
              "painted in tiles against the whole image's statistics (default: 90 % of a GPU's "
              "memory, 75 % of the machine's or its cgroup's)")

    def __post_init__(self):
        if self.mixed_precision not in ("auto", "on", "off"):
            raise ParameterError("mixed_precision", f"{self.mixed_precision!r}: expected auto, on or off")
        cap = self.max_memory_gb
        if cap is not None and not (math.isfinite(cap) and 0 < cap <= 1e6):
            raise ParameterError("max_memory_gb", f"{cap} is not a size in GB (a positive, finite number)")


PRESETS: dict[str, TransferParams] = {
    # The recipe of the seed notebook this project grew from: both images squashed to 400x400,
    # Adam on ImageNet-normalised pixels. Its style weight is taken as written; nstd's Gram
    # matrices are size-normalised, so the balance it strikes is the same order, not identical.
    "seed": TransferParams(
        size=400, exact_size=True, optimizer="adam", learning_rate=0.003, iterations=3000,
        content_layers=("conv4_2",),
        style_layers=("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"),
        style_layer_weights=(1.0, 0.75, 0.2, 0.2, 0.2),
        content_weight=1.0, style_weight=1e6, tv_weight=0.0, scales=1,
    ),
}


def params_from(preset: Optional[str] = None, **overrides) -> TransferParams:
    """Defaults, or a named preset, with the given fields changed."""
    if preset is None:
        base = TransferParams()
    elif preset in PRESETS:
        base = PRESETS[preset]
    else:
        raise ParameterError("preset", f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    return base.replace(**overrides) if overrides else base
