"""The yardstick every quality benchmark scores with (bench/quality.py, varied.py, subject.py,
tiled.py), the images they paint and the sheets they lay out. Not a benchmark itself.

Scorer: VGG-19 at the output size, the style image scaled to the output's longest side; the
relative Gram distance (relu1_1..relu5_1, and "gram4" over relu1_1..relu4_1, the default's own
style layers), a sliced-Wasserstein distance between feature distributions (relu1_1..relu4_1, 64
random directions each) and the relative relu4_2 content distance.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nstd.engine import Engine, EngineOptions, TransferParams  # noqa: E402
from nstd.engine.losses import gram  # noqa: E402

SHARED = ROOT.parent / "shared" / "images"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
SWD_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
# The current default's style layers: relu5_1 was left out because it paints the painting's subject
# (docs/engine/strength.md), so a Gram distance that counts it scores the default on a term it
# declines to minimise; "gram4" scores both recipes on the layers they share.
GRAM4_LAYERS = SWD_LAYERS
# The defaults that came before, pinned: each later default changed one thing measured here.
PREVIOUS = TransferParams(style_weight=50.0, style_layers=STYLE_LAYERS)  # the pyramid, until the strength
OLD = PREVIOUS.replace(iterations=200, scales=1)  # before the pyramid


def graphic_painting(path: Path, size: int = 512) -> Path:
    """A graphic painting, drawn: flat primaries in black-ruled fields (after Mondrian). The shared
    images hold a landscape, a seascape and a portrait but no graphic work; this one is drawn here
    the same every time."""
    if not path.exists():
        image = Image.new("RGB", (size, size), (238, 234, 222))
        draw = ImageDraw.Draw(image)
        u = size / 16
        fills = [((0, 0, 6, 7), (200, 32, 36)), ((11, 10, 16, 16), (24, 60, 150)), ((0, 13, 3, 16), (242, 200, 30)),
                 ((13, 0, 16, 3), (242, 200, 30)), ((6, 10, 11, 12), (20, 20, 24))]
        for (x0, y0, x1, y1), colour in fills:
            draw.rectangle((x0 * u, y0 * u, x1 * u, y1 * u), fill=colour)
        for x in (6, 11, 13):
            draw.rectangle((x * u - u / 5, 0, x * u + u / 5, size), fill=(16, 16, 18))
        for y in (3, 7, 10, 13):
            draw.rectangle((0, y * u - u / 5, size, y * u + u / 5), fill=(16, 16, 18))
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
    return path


def find_image(name: str, out: Path) -> Path:
    """A photo or painting from ../shared/images by stem, or "graphic", drawn into `out`."""
    if name == "graphic":
        return graphic_painting(out / "graphic.png")
    return next(SHARED.glob(f"{name}.*"))


_FLOAT32: dict[str, Engine] = {}


def float32_engine(engine: Engine) -> Engine:
    """`engine`, or one like it in float32: the yardstick must not move with the precision it judges
    (`mixed_precision: auto` paints in bfloat16 on a CPU with AVX512_BF16 or AMX)."""
    if engine.precision == "float32":
        return engine
    key = str(engine.device)
    if key not in _FLOAT32:
        _FLOAT32[key] = Engine(EngineOptions(device=key, mixed_precision="off"))
    return _FLOAT32[key]


class Scorer:
    """One yardstick for every tool's output, always in float32."""

    def __init__(self, engine: Engine, content: Image.Image, style: Image.Image, size: int):
        self.engine = float32_engine(engine)
        w, h = content.size
        self.dims = (round(w * size / max(w, h)), round(h * size / max(w, h)))
        sw, sh = style.size
        sdims = (round(sw * size / max(sw, sh)), round(sh * size / max(sw, sh)))
        with torch.no_grad():
            self.content = self._features(content, self.dims, ("relu4_2",))["relu4_2"]
            style_feats = self._features(style, sdims, STYLE_LAYERS)
        self.style_grams = {k: gram(v) for k, v in style_feats.items()}
        gen = torch.Generator().manual_seed(0)
        self.directions = {k: torch.nn.functional.normalize(torch.randn(64, style_feats[k].shape[1], generator=gen),
                                                            dim=1) for k in SWD_LAYERS}
        self.style_proj = {k: self._project(style_feats[k], k) for k in SWD_LAYERS}

    def _features(self, image: Image.Image, dims, layers):
        return self.engine.features(self.engine.to_tensor(image, dims), layers, "max")

    def _project(self, feats: torch.Tensor, layer: str) -> torch.Tensor:
        flat = feats[0].flatten(1).float()  # C x positions
        return (self.directions[layer] @ flat).sort(dim=1).values

    def score(self, image: Image.Image) -> dict:
        with torch.no_grad():
            feats = self._features(image, self.dims, STYLE_LAYERS + ("relu4_2",))
            per_layer = {k: ((gram(feats[k]) - g).norm() / g.norm()).item() for k, g in self.style_grams.items()}
            swd = np.mean([self._swd(feats[k], k) for k in SWD_LAYERS])
            content_d = ((feats["relu4_2"] - self.content).norm() / self.content.norm()).item()
        return {"gram": float(np.mean(list(per_layer.values()))),
                "gram4": float(np.mean([per_layer[k] for k in GRAM4_LAYERS])),
                "swd": float(swd), "content": content_d}

    def _swd(self, feats: torch.Tensor, layer: str) -> float:
        out, ref = self._project(feats, layer), self.style_proj[layer]
        n = min(out.shape[1], ref.shape[1])
        q = torch.linspace(0, 1, n)
        out_q, ref_q = torch.quantile(out, q, dim=1), torch.quantile(ref, q, dim=1)
        return ((out_q - ref_q).pow(2).mean() / ref.var(dim=1).mean()).sqrt().item()


def grid_sheet(tiles: list[tuple[str, Image.Image, str]], path: Path, cols: int = 4, cell: int = 300) -> None:
    """Images in a grid, each under its title and a line of figures (the sheets bench/subject.py
    and bench/varied.py write)."""
    height = cell * 3 // 4 + 24
    sheet = Image.new("RGB", (cell * cols, height * ((len(tiles) + cols - 1) // cols)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (title, image, figures) in enumerate(tiles):
        x, y = cell * (i % cols), height * (i // cols)
        sheet.paste(fit(image, cell, cell * 3 // 4), (x, y + 24))
        draw.text((x + 4, y + 2), title, fill="black")
        draw.text((x + 4, y + 12), figures, fill="black")
    sheet.save(path, quality=90)


def fit(image: Image.Image, w: int, h: int) -> Image.Image:
    copy = image.copy()
    copy.thumbnail((w, h))
    return copy
