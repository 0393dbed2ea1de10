"""The loss and its exact gradient for an image larger than memory allows, one tile at a time.

The style loss sees the image only through Gram matrices, sums over every position; the content
loss is a sum over positions. So both, and the gradient, come out of two passes over tiles:
1. forward only: each tile's core adds F F^T to each style layer's Gram sum and its squared error
   to the content loss; from the sums follow the loss and dL/dG per layer (C x C, small);
2. forward and backward: a surrogate whose gradient at the core's features is the whole image's,
   <dL/dG, F F^T> / N plus the content error, back-propagated to the tile's pixels and added in.
Every tile pulls towards the same whole-image statistics. A tile is its core with a margin that
covers VGG's receptive field at the deepest layer used, so the core's features are the whole
image's; cores start on the grid of that layer's stride, so pooling windows coincide. The gradient
is then the untiled one up to float rounding (tests/test_tiling.py); the grid still moves by a
random offset every iteration, so that what rounding or bfloat16 leaves along tile borders never
lands twice in the same place. Peak memory is one tile's activations plus image-sized buffers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

import torch

from .losses import Target, total_variation
from .vgg import CONVS, layer_position


@dataclass(frozen=True)
class Geometry:
    """Where the deepest layer used sits in pixels: its stride, and the margin a tile needs."""
    stride: int
    margin: int

    @classmethod
    def of(cls, layers: Sequence[str]) -> "Geometry":
        deepest = max(layer_position(name)[0] for name in layers)
        field, jump = 1, 1
        for i in range(deepest + 1):
            field += 2 * jump  # a 3x3 convolution
            if i < deepest and CONVS[i + 1][0] != CONVS[i][0]:
                field += jump  # 2x2 pooling, stride 2
                jump *= 2
        margin = math.ceil(field / 2 / jump) * jump
        return cls(stride=jump, margin=margin)

    def stride_of(self, layer: str) -> int:
        block = CONVS[layer_position(layer)[0]][0]
        return 2 ** (block - 1)


@dataclass(frozen=True)
class Tile:
    box: tuple[int, int, int, int]    # x0, y0, x1, y1 of the pixels read
    core: tuple[int, int, int, int]   # the pixels whose features this tile owns

    def crop(self, image: torch.Tensor) -> torch.Tensor:
        x0, y0, x1, y1 = self.box
        return image[..., y0:y1, x0:x1]

    def core_of(self, features: torch.Tensor, stride: int) -> torch.Tensor:
        """The core's positions in a feature map of this tile at `stride`."""
        (x0, y0, _, _), (cx0, cy0, cx1, cy1) = self.box, self.core
        h, w = features.shape[-2:]
        top, left = (cy0 - y0) // stride, (cx0 - x0) // stride
        bottom = h if cy1 == self.box[3] else top + (cy1 - cy0) // stride
        right = w if cx1 == self.box[2] else left + (cx1 - cx0) // stride
        return features[..., top:bottom, left:right]


def tiles(dims: tuple[int, int], core: int, geometry: Geometry, offset: tuple[int, int] = (0, 0)) -> list[Tile]:
    """Cores of `core` pixels (a multiple of the stride) shifted by `offset`, covering the image,
    each with its margin, clipped to the image."""
    width, height = dims

    def spans(size: int, shift: int) -> list[tuple[int, int]]:
        cuts = [0] + [c for c in range(shift % core or core, size, core)] + [size]
        return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]

    out = []
    for cy0, cy1 in spans(height, offset[1]):
        for cx0, cx1 in spans(width, offset[0]):
            m = geometry.margin
            box = (max(0, cx0 - m), max(0, cy0 - m), min(width, cx1 + m), min(height, cy1 + m))
            out.append(Tile(box, (cx0, cy0, cx1, cy1)))
    return out


def random_offset(core: int, stride: int, generator: torch.Generator) -> tuple[int, int]:
    steps = core // stride
    ox, oy = torch.randint(0, steps, (2,), generator=generator).tolist()
    return ox * stride, oy * stride


Features = Callable[[torch.Tensor, tuple], dict]


def core_flat(tile: Tile, feats: dict, layer: str, geometry: Geometry) -> torch.Tensor:
    """The tile's core positions of one layer as channels x positions, float32."""
    return tile.core_of(feats[layer], geometry.stride_of(layer)).float().flatten(2)[0]


def add_grams(tile: Tile, feats: dict, layers: Sequence[str], geometry: Geometry,
              sums: dict[str, torch.Tensor], counts: dict[str, int]) -> None:
    """Adds the tile's core to each layer's sum of F F^T and count of positions."""
    for layer in layers:
        flat = core_flat(tile, feats, layer, geometry)
        sums[layer] = sums[layer] + flat @ flat.T if layer in sums else flat @ flat.T
        counts[layer] = counts.get(layer, 0) + flat.shape[1]


def tiled_grams(features: Features, image: torch.Tensor, layers: Sequence[str], core: int) -> dict[str, torch.Tensor]:
    """The Gram matrices of a whole image (1 x C x C, as `losses.gram`), tile by tile."""
    geometry = Geometry.of(layers)
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    with torch.no_grad():
        for tile in tiles((image.shape[-1], image.shape[-2]), _on_grid(core, geometry), geometry):
            add_grams(tile, features(tile.crop(image), tuple(layers)), layers, geometry, sums, counts)
    return {k: (v / counts[k]).unsqueeze(0) for k, v in sums.items()}


def _on_grid(core: int, geometry: Geometry) -> int:
    return max(geometry.stride, core // geometry.stride * geometry.stride)


def whole_maps(features: Features, image: torch.Tensor, layers: Sequence[str], layout: list[Tile],
               geometry: Geometry) -> dict[str, torch.Tensor]:
    """Feature maps of the whole image, assembled from the tiles' cores (the content targets)."""
    pieces: dict[str, list[list[torch.Tensor]]] = {layer: [] for layer in layers}
    rows: dict[int, int] = {}
    with torch.no_grad():
        for tile in layout:
            feats = features(tile.crop(image), tuple(layers))
            row = rows.setdefault(tile.core[1], len(rows))
            for layer in layers:
                part = tile.core_of(feats[layer], geometry.stride_of(layer)).float()
                if row == len(pieces[layer]):
                    pieces[layer].append([])
                pieces[layer][row].append(part)
            del feats  # as in TiledLoss: the next tile's forward must not find these alive
    return {layer: torch.cat([torch.cat(r, dim=-1) for r in rows_], dim=-2) for layer, rows_ in pieces.items()}


class TiledLoss:
    """Content and style loss of a whole image, and their gradient, computed tile by tile."""

    def __init__(self, features: Features, content: torch.Tensor, style_targets: dict[str, Target],
                 layer_weights: dict[str, float], content_layers: Sequence[str], content_weight: float,
                 style_weight: float, core: int, generator: Optional[torch.Generator] = None):
        self.features, self.style_targets, self.layer_weights = features, style_targets, layer_weights
        self.content_layers, self.style_layers = tuple(content_layers), tuple(style_targets)
        self.layers = tuple(dict.fromkeys(self.content_layers + self.style_layers))
        self.content_weight, self.style_weight = content_weight, style_weight
        self.geometry = Geometry.of(self.layers)
        self.core = _on_grid(core, self.geometry)
        self.generator = generator
        self.dims = (content.shape[-1], content.shape[-2])
        targets = whole_maps(features, content, self.content_layers, self.layout(), self.geometry)
        self.content_targets = {k: Target(v) for k, v in targets.items()}

    def layout(self) -> list[Tile]:
        offset = random_offset(self.core, self.geometry.stride, self.generator) if self.generator else (0, 0)
        return tiles(self.dims, self.core, self.geometry, offset)

    def _content_part(self, tile: Tile, feats: dict) -> Iterator[torch.Tensor]:
        """Each content layer's squared error at the tile's core, over the whole map's size."""
        for layer, target in self.content_targets.items():
            stride = self.geometry.stride_of(layer)
            current = tile.core_of(feats[layer], stride).float()
            wanted = tile.core_of(self._target_window(target.value, tile, stride), stride)
            yield (current - wanted).pow(2).sum() / (target.value.numel() * target.scale)

    def _target_window(self, full: torch.Tensor, tile: Tile, stride: int) -> torch.Tensor:
        """The whole content map cut to the tile's box, so `core_of` finds the core in it alike."""
        x0, y0, x1, y1 = tile.box
        return full[..., y0 // stride:math.ceil(y1 / stride), x0 // stride:math.ceil(x1 / stride)]

    def __call__(self, x: torch.Tensor, gradient: bool) -> tuple[dict, dict, Optional[torch.Tensor]]:
        """(terms, per-layer style losses, dLoss/dx or None): the first pass always, the second
        when the gradient is wanted."""
        layout = self.layout()
        content = torch.zeros((), device=x.device)
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        with torch.no_grad():
            for tile in layout:
                feats = self.features(tile.crop(x), self.layers)
                content = content + sum(self._content_part(tile, feats))
                add_grams(tile, feats, self.style_layers, self.geometry, sums, counts)
                del feats  # before the next tile's forward: two tiles' maps must not be alive at once
        grams = {k: (v / counts[k]).unsqueeze(0).requires_grad_(gradient) for k, v in sums.items()}
        with torch.enable_grad() if gradient else torch.no_grad():
            per_layer = {k: self.layer_weights[k] * t.loss(grams[k]) for k, t in self.style_targets.items()}
            style = sum(per_layer.values())
            if gradient:
                style.backward()
        terms = {"content": self.content_weight * content, "style": self.style_weight * style.detach()}
        per_layer = {k: v.detach() for k, v in per_layer.items()}
        if not gradient:
            return terms, per_layer, None
        pulls = {k: self.style_weight * g.grad[0] for k, g in grams.items()}
        return terms, per_layer, self._gradient(x, layout, pulls, counts)

    def _gradient(self, x: torch.Tensor, layout: list[Tile], pulls: dict, counts: dict) -> torch.Tensor:
        grad = torch.zeros_like(x)
        for tile in layout:
            piece = tile.crop(x).detach().requires_grad_(True)
            with torch.enable_grad():
                feats = self.features(piece, self.layers)
                surrogate = self.content_weight * sum(self._content_part(tile, feats))
                for layer, pull in pulls.items():
                    flat = core_flat(tile, feats, layer, self.geometry)
                    surrogate = surrogate + (pull * (flat @ flat.T)).sum() / counts[layer]
                surrogate.backward()
                del feats, surrogate
            x0, y0, x1, y1 = tile.box
            grad[..., y0:y1, x0:x1] += piece.grad
        return grad


class _FromTiles(torch.autograd.Function):
    """The tiled content+style loss as one autograd node: its gradient is computed in the forward
    pass (tile by tile, when wanted) and handed back by backward, so an optimiser's closure that
    calls `loss.backward()` works unchanged."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, loss: TiledLoss, out: dict):
        terms, per_layer, grad = loss(x, gradient=ctx.needs_input_grad[0])
        out.update(terms=terms, per_layer=per_layer)
        ctx.save_for_backward(grad if grad is not None else torch.zeros(()))
        return terms["content"] + terms["style"]

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (grad,) = ctx.saved_tensors
        return grad.mul_(grad_output), None, None  # in place: one image-sized buffer fewer


def tiled_value(x: torch.Tensor, loss: TiledLoss) -> tuple[torch.Tensor, dict, dict]:
    """(content+style as a tensor that back-propagates to x, the terms, the per-layer style losses)."""
    if not (torch.is_grad_enabled() and x.requires_grad):  # a score: the first pass alone
        terms, per_layer, _ = loss(x, gradient=False)
        return terms["content"] + terms["style"], terms, per_layer
    out: dict = {}
    total = _FromTiles.apply(x, loss, out)
    return total, out["terms"], out["per_layer"]


def objective(features: Features, content: torch.Tensor, style_targets: dict[str, Target],
              layer_weights: dict[str, float], params, core: int, rgb01: Callable) -> Callable:
    """The engine's objective (x -> total, terms, per-layer style losses) computed in tiles; the
    total variation, a cheap pixel-level term, over the whole image as usual."""
    generator = torch.Generator().manual_seed(params.seed if params.seed is not None else 0)
    loss = TiledLoss(features, content, style_targets, layer_weights, params.content_layers,
                     params.content_weight, params.style_weight, core, generator)

    def value(x: torch.Tensor):
        total, terms, per_layer = tiled_value(x, loss)
        tv = params.tv_weight * total_variation(rgb01(x))
        return total + tv, {**terms, "tv": tv}, per_layer

    return value
