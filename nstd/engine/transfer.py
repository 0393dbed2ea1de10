"""Gatys et al. style transfer: PIL images in, a PIL image and a loss trace out.

An `Engine` loads VGG-19 once and serves many runs (the daemon's worker keeps one warm); it caches
the style Gram targets of recent style images, so a style used for many photos is analysed once
per size. The engine never touches the disk apart from reading its weights, and reports progress
through a callback.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
from collections import OrderedDict
from contextlib import nullcontext
from time import perf_counter
from typing import Callable, Optional, Sequence

import PIL
import torch
import torchvision
import torchvision.transforms.functional as TF
from PIL import Image

from . import memory, tiling
from .color import keep_content_chroma, match_colors
from .errors import DeviceError, ParameterError
from .losses import Target, content_loss, gram, style_layer_losses, total_variation
from .optimisation import Optimisation
from .params import ORIGINAL, EngineOptions, TransferParams
from .precision import network_precision
from .records import ProgressCallback, StyleImage, TransferResult
from .vgg import CONV_CHANNELS, CONVS, IMAGENET_MEAN, IMAGENET_STD, layer_position, load_vgg19

STYLE_CACHE_SIZE = 32


def select_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise DeviceError(name, f"not a torch device name ({e})") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(name, "CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(name, f"only {torch.cuda.device_count()} CUDA device(s) present")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(name, "MPS is not available on this machine")
    return device


def output_dims(width: int, height: int, params: TransferParams) -> tuple[int, int]:
    if params.size == ORIGINAL:
        return width, height
    if params.exact_size:
        return params.size, params.size
    scale = params.size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def cpu_threads() -> dict:
    """Use every CPU this process may run on. OpenMP counts them at start-up with a call a sandbox
    may refuse (sched_setaffinity under systemd's SystemCallFilter=~@resources), and then runs on
    one thread, silently; a thread count the user set (OMP_NUM_THREADS, MKL_NUM_THREADS) stands."""
    cpus = len(os.sched_getaffinity(0))
    at_start = torch.get_num_threads()
    if at_start < cpus and not any(v in os.environ for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")):
        torch.set_num_threads(cpus)
    return {"cpus": cpus, "threads_at_start": at_start, "threads": torch.get_num_threads()}


class Engine:
    def __init__(self, options: EngineOptions = EngineOptions()):
        start = perf_counter()
        self.options = options
        self.device = select_device(options.device)
        self.threads = cpu_threads() if self.device.type == "cpu" else {}
        self.net = load_vgg19(options.weights).to(self.device)
        self.precision = network_precision(options.mixed_precision, self.device)
        self.autocast = self.precision == "bfloat16"
        if self.device.type == "cuda":
            self.net = self.net.to(memory_format=torch.channels_last)
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        self._style_cache: OrderedDict[tuple, dict[str, torch.Tensor]] = OrderedDict()
        total = (torch.cuda.get_device_properties(self.device).total_memory if self.device.type == "cuda"
                 else memory.machine_memory_bytes())
        self.memory_cap_gb = options.max_memory_gb or memory.default_cap_gb(self.device.type, total)
        self.load_seconds = perf_counter() - start

    # -- pixel space conversions: the optimiser works on ImageNet-normalised RGB ------------
    def to_tensor(self, image: Image.Image, dims: tuple[int, int]) -> torch.Tensor:
        image = image.convert("RGB")
        if image.size != dims:
            image = image.resize(dims, Image.Resampling.LANCZOS)
        rgb01 = TF.pil_to_tensor(image).float().div(255).unsqueeze(0).to(self.device)
        return self.normalise(rgb01)

    def normalise(self, rgb01: torch.Tensor) -> torch.Tensor:
        return (rgb01 - self.mean) / self.std

    def rgb01(self, normalised: torch.Tensor) -> torch.Tensor:
        return normalised * self.std + self.mean

    def to_image(self, normalised: torch.Tensor) -> Image.Image:
        rgb = self.rgb01(normalised.detach()).clamp(0, 1).mul(255).round().byte().squeeze(0).cpu()
        return TF.to_pil_image(rgb)

    def features(self, x: torch.Tensor, layers, pooling: str) -> dict[str, torch.Tensor]:
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        # Only the network runs in bfloat16: Gram matrices, losses, the image and the optimiser's
        # state stay float32 (losses.py casts each feature map before use).
        ctx = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.autocast else nullcontext()
        with ctx:
            return self.net(x, layers, pooling)

    # -- targets --------------------------------------------------------------------------
    def memory_plan(self, dims: tuple[int, int], params: TransferParams,
                    iterations: Optional[int] = None) -> memory.MemoryPlan:
        """Untiled, or the tile size and L-BFGS history under EngineOptions.max_memory_gb, for a
        scale that runs `iterations` (None: unknown)."""
        geometry = tiling.Geometry.of(params.content_layers + params.style_layers)
        floats = sum(CONV_CHANNELS[CONVS[layer_position(k)[0]][0]] / geometry.stride_of(k) ** 2
                     for k in params.content_layers)
        return memory.plan(dims, self.memory_cap_gb, geometry.margin, geometry.stride, floats, iterations)

    def style_targets(self, styles: Sequence[StyleImage], dims: tuple[int, int],
                      params: TransferParams, content: torch.Tensor,
                      plan: Optional[memory.MemoryPlan] = None) -> dict[str, Target]:
        """Gram targets of the styles at this level, blended by weight (jcjohnson's approach)."""
        total_weight = sum(s.weight for s in styles)
        blended: dict[str, torch.Tensor] = {}
        for style in styles:
            grams = self._style_grams(style, dims, params, content, plan)
            for layer, g in grams.items():
                contribution = g * (style.weight / total_weight)
                blended[layer] = blended[layer] + contribution if layer in blended else contribution
        return {layer: Target(g) for layer, g in blended.items()}

    def _style_grams(self, style: StyleImage, dims, params: TransferParams, content, plan) -> dict:
        w, h = style.image.size
        if params.exact_size:
            side = max(16, round(max(dims) * params.style_scale))
            sdims = (side, side)
        else:
            scale = params.style_scale * max(dims) / max(w, h)
            sdims = (max(16, round(w * scale)), max(16, round(h * scale)))
        recolour = params.preserve_colors == "match"
        key = (style.key, sdims, params.pooling, params.style_layers)
        if style.key is not None and not recolour and key in self._style_cache:
            self._style_cache.move_to_end(key)
            return self._style_cache[key]
        x = self.to_tensor(style.image, sdims)
        if recolour:
            x = self.normalise(match_colors(self.rgb01(x), self.rgb01(content)))
        if plan is not None and plan.tiled:  # the style image is as large as the painting
            grams = tiling.tiled_grams(self._tile_features(params), x, params.style_layers, plan.core)
        else:
            with torch.no_grad():
                feats = self.features(x, params.style_layers, params.pooling)
                grams = {k: gram(v).detach() for k, v in feats.items()}
        if style.key is not None and not recolour:
            self._style_cache[key] = grams
            while len(self._style_cache) > STYLE_CACHE_SIZE:
                self._style_cache.popitem(last=False)
        return grams

    def _tile_features(self, params: TransferParams) -> Callable:
        """The network over one tile at a time; on a CPU each pass first hands back the memory the
        tile before freed, which the cap counts (memory.release_freed)."""
        release = memory.release_freed if self.device.type == "cpu" else (lambda: None)

        def features(x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
            release()
            return self.features(x, layers, params.pooling)

        return features

    def objective(self, content: torch.Tensor, styles: Sequence[StyleImage], dims: tuple[int, int],
                  params: TransferParams, plan: Optional[memory.MemoryPlan] = None) -> Callable:
        """The loss at one size: targets computed here once, then x -> (total, terms, per-layer style).
        Under a memory plan with tiles, the same loss and gradient computed tile by tile (tiling.py)."""
        if params.style_weight is None:  # a run finds it (calibration.py); a score needs one given
            raise ParameterError("style_weight", "this objective needs a fixed style weight")
        style_targets = self.style_targets(styles, dims, params, content, plan)
        layer_weights = params.style_layer_weights or (1.0 / len(params.style_layers),) * len(params.style_layers)
        weights_by_layer = dict(zip(params.style_layers, layer_weights))
        if plan is not None and plan.tiled:
            return tiling.objective(self._tile_features(params), content, style_targets, weights_by_layer,
                                    params, plan.core, self.rgb01)
        with torch.no_grad():
            content_targets = {k: Target(v) for k, v in
                               self.features(content, params.content_layers, params.pooling).items()}
        layers = tuple(dict.fromkeys(params.content_layers + params.style_layers))

        def loss(x: torch.Tensor):
            feats = self.features(x, layers, params.pooling)
            per_layer = style_layer_losses(feats, style_targets, weights_by_layer)
            terms = {
                "content": params.content_weight * content_loss(feats, content_targets),
                "style": params.style_weight * sum(per_layer.values()),
                "tv": params.tv_weight * total_variation(self.rgb01(x)),
            }
            return sum(terms.values()), terms, per_layer

        return loss

    def evaluate(self, image: Image.Image, content: Image.Image, styles: Sequence[StyleImage],
                 params: TransferParams) -> dict[str, float]:
        """nstd's loss terms for any image (e.g. another tool's output) at the output size."""
        dims = output_dims(*content.size, params)
        objective = self.objective(self.to_tensor(content, dims), styles, dims, params)
        with torch.no_grad():
            total, terms, _ = objective(self.to_tensor(image, dims))
        return {"total": total.item(), **{k: v.item() for k, v in terms.items()}}

    # -- the optimisation -----------------------------------------------------------------
    def run(self, content: Image.Image, styles: Sequence[StyleImage], params: TransferParams,
            init_image: Optional[Image.Image] = None,
            progress: Optional[ProgressCallback] = None) -> TransferResult:
        if not styles:
            raise ParameterError("styles", "at least one style image is needed")
        if any(s.weight <= 0 for s in styles):
            raise ParameterError("styles", "style weights must be positive")
        if params.init == "image" and init_image is None:
            raise ParameterError("init", "init 'image' needs an init image")
        start = perf_counter()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        final_dims = output_dims(*content.size, params)
        run = Optimisation(self, content, styles, params, final_dims, init_image, progress)
        x = run.run()
        final = run.final_losses(x)
        image = self.to_image(x)
        if params.preserve_colors == "luminance":
            image = keep_content_chroma(image, content)
        elapsed = perf_counter() - start
        info = {
            "params": params.as_dict(),
            "weights": self.net.source,
            "device": str(self.device),
            "device_name": (torch.cuda.get_device_name(self.device) if self.device.type == "cuda"
                            else platform.processor() or platform.machine()),
            "mixed_precision": self.autocast, "precision": self.precision,
            "output_size": list(final_dims),
            "schedule": run.ran,
            # style_strength: the weight it became, and the distances that chose it
            "calibration": run.search.record() if run.search else None,
            "styles": [{"key": s.key, "weight": s.weight, "size": list(s.image.size)} for s in styles],
            "losses_are": "weighted contributions to the total",
            "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                         "torchvision": torchvision.__version__, "pillow": PIL.__version__},
            "timings": {"load_seconds": round(self.load_seconds, 4),
                        "targets_seconds": round(run.target_seconds, 4),
                        "total_seconds": round(elapsed, 4),
                        # at the output size: the figure comparable across runs and with the floor
                        "seconds_per_iteration": round(run.ran[-1]["seconds"] / run.ran[-1]["iterations"], 5),
                        "iterations": run.done},
            "peak_memory_bytes": self._peak_memory(),
        }
        final = {k: final[k] for k in ("content", "style", "style_layers", "tv", "total")}
        return TransferResult(image=image, trace=run.trace, final=final, info=info)

    def _peak_memory(self) -> dict:
        if self.device.type == "cuda":
            return {"bytes": torch.cuda.max_memory_allocated(self.device), "what": "cuda allocated"}
        # ru_maxrss is KiB on Linux: the process's peak, not this run's alone.
        return {"bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "what": "process peak RSS"}
