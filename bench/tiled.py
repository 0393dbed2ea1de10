"""Tiled against whole-image painting where both fit (issue 24): the same picture, and no seams.

    python bench/tiled.py [--size 512] [--cap 0.5] [--out bench-out/tiled]

In one run, the same photo and painting at a size that fits whole: nstd's default untiled, and the
same under `max_memory_gb` small enough that its top scales run in tiles. Both are scored on
`bench/quality.py`'s yardstick (Gram and sliced-Wasserstein distances to the painting, relu4_2
distance to the photo) beside the final losses, and searched for seams: the image's gradient
energy (squared differences of neighbouring pixels) on the columns and rows where tile borders
can fall (every position on the tile grid, each offset the run could draw), over its mean
elsewhere. A seam shows as a ratio above 1 at some offset; the untiled image gives the ratio the
picture itself has on the same lines. Writes side.jpg (the two side by side) into --out.
Run it by hand; not part of the test suite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from judge import ROOT, Scorer, find_image  # noqa: E402

from nstd.core.images import load_image  # noqa: E402
from nstd.engine import Engine, EngineOptions, StyleImage, TransferParams  # noqa: E402
from nstd.engine.tiling import Geometry  # noqa: E402


def border_energy(image: Image.Image, core: int, stride: int) -> float:
    """The worst, over every grid offset, of the gradient energy on that offset's tile borders
    over the mean energy elsewhere."""
    a = np.asarray(image, dtype=np.float64) / 255
    dx = ((a[:, 1:] - a[:, :-1]) ** 2).sum(axis=2)   # between column i and i+1
    dy = ((a[1:, :] - a[:-1, :]) ** 2).sum(axis=2)
    cols, rows = dx.mean(axis=0), dy.mean(axis=1)
    worst = 0.0
    for offset in range(0, core, stride):
        on_c = [c - 1 for c in range(offset or core, len(cols) + 1, core) if 0 <= c - 1 < len(cols)]
        on_r = [r - 1 for r in range(offset or core, len(rows) + 1, core) if 0 <= r - 1 < len(rows)]
        off_c, off_r = np.delete(cols, on_c), np.delete(rows, on_r)
        ratio = (np.mean(cols[on_c]) / off_c.mean() + np.mean(rows[on_r]) / off_r.mean()) / 2
        worst = max(worst, float(ratio))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--content", default="tubingen")
    ap.add_argument("--style", default="starry_night")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--cap", type=float, default=0.5, help="max_memory_gb of the tiled run")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out" / "tiled")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    content, style = (load_image(find_image(n, args.out)) for n in (args.content, args.style))
    styles = [StyleImage(style, key=args.style)]
    params = TransferParams(size=args.size, log_every=50)
    whole_engine, tiled_engine = Engine(), Engine(EngineOptions(max_memory_gb=args.cap))
    scorer = Scorer(whole_engine, content, style, args.size)
    geometry = Geometry.of(params.content_layers + params.style_layers)
    rows = {}
    for name, engine in (("whole", whole_engine), ("tiled", tiled_engine)):
        result = engine.run(content, styles, params)
        top = result.info["schedule"][-1]
        rows[name] = {"result": result, **scorer.score(result.image), "top": top}
        print(f"{name}: {result.info['timings']['total_seconds']:.0f} s, schedule "
              f"{[(max(s['size']), s['iterations'], s.get('tile_core')) for s in result.info['schedule']]}, "
              f"total loss {result.final['total']:.4f} (content {result.final['content']:.4f}, "
              f"style {result.final['style']:.4f}), gram {rows[name]['gram']:.4f}, swd {rows[name]['swd']:.4f}, "
              f"content distance {rows[name]['content']:.4f}", flush=True)
    core = next((s["tile_core"] for s in rows["tiled"]["result"].info["schedule"][::-1] if "tile_core" in s), None)
    if core is None:
        raise SystemExit(f"--cap {args.cap} did not make the run tile at {args.size} px; give a smaller one")
    for key in ("gram", "swd", "content"):
        print(f"  {key}: tiled / whole = {rows['tiled'][key] / rows['whole'][key]:.4f}")
    totals = [rows[name]["result"].final["total"] for name in ("tiled", "whole")]
    print(f"  total loss: tiled / whole = {totals[0] / totals[1]:.4f}")
    for name in ("whole", "tiled"):
        print(f"  border energy over elsewhere, worst grid offset (core {core}, stride {geometry.stride}): "
              f"{name} {border_energy(rows[name]['result'].image, core, geometry.stride):.3f}")
    a, b = rows["whole"]["result"].image, rows["tiled"]["result"].image
    side = Image.new("RGB", (a.width * 2 + 8, a.height), "white")
    side.paste(a, (0, 0))
    side.paste(b, (a.width + 8, 0))
    side.save(args.out / "side.jpg", quality=90)
    print(f"wrote {args.out}/side.jpg (whole | tiled)")


if __name__ == "__main__":
    main()
