"""bfloat16 against float32 over the varied set (issue 31 item 2): does the faster precision paint as well?

    python bench/quality.py --precision [--size 256] [--pairs tubingen:starry_night] [--same-weight]
                            [--out bench-out/quality]   (256 and 512 px unless --size; the varied set unless --pairs)

For each photo x painting of bench/varied.py's set (two photos x a landscape, a portrait and a drawn
graphic painting) and each size, nstd's default is painted twice, the network in float32
(`mixed_precision: off`) and in bfloat16 (`on`), everything else equal; which runs first alternates
so a machine that slows down mid-run does not favour one. Both are scored by one float32 yardstick
(bench/judge.py: Gram and sliced-Wasserstein distances to the painting, relu4_2 distance to the photo),
and the ratios bfloat16 / float32 printed per pair with the worst over the set (goal: every distance
within 2 %, i.e. no ratio above 1.02). The default searches its style weight per picture, so each
precision may settle on a slightly different weight: that is the default as users get it, and the
weights are printed; `--same-weight` paints bfloat16 at the weight float32's search found, without
a search, so that only the precision differs. A sheet per size (precision-<size>.jpg) lays each pair's photo, painting,
float32 and bfloat16 results side by side; precision.json holds the rows.
Where the CPU emulates bfloat16 (no AVX512_BF16 or AMX) it is very slow: run it on such a processor or a GPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from judge import Scorer, find_image, grid_sheet
from varied import PAINTINGS, PHOTOS

from nstd.core.images import load_image
from nstd.engine import Engine, EngineOptions, StyleImage, TransferParams

PRECISIONS = ("float32", "bfloat16")
METRICS = ("gram", "swd", "content")
GOAL = 1.02


def run_size(engines: dict[str, Engine], size: int, out: Path, turn: int, pairs: list[tuple[str, str]],
             same_weight: bool) -> list[dict]:
    rows = []
    tiles = []
    for photo, painting in pairs:
        paths = [find_image(name, out) for name in (photo, painting)]
        content, style = load_image(paths[0]), load_image(paths[1])
        scorer = Scorer(engines["float32"], content, style, size)
        styles = [StyleImage(style, key=str(paths[1]))]
        params = TransferParams(size=size, log_every=50)
        order = PRECISIONS if turn % 2 == 0 or same_weight else PRECISIONS[::-1]
        turn += 1
        painted = {}
        for precision in order:
            if same_weight and precision == "bfloat16":  # the precision alone differs, not the search
                params = params.replace(style_weight=painted["float32"]["style_weight"])
            result = engines[precision].run(content, styles, params)
            assert result.info["precision"] == precision
            cal = result.info["calibration"] or {}
            painted[precision] = {"pair": f"{photo}:{painting}", "size": size, "precision": precision,
                                  "seconds": round(result.info["timings"]["total_seconds"], 1),
                                  "style_weight": cal.get("style_weight", params.style_weight),
                                  **scorer.score(result.image), "image": result.image}
        a, b = painted["float32"], painted["bfloat16"]
        ratios = {m: b[m] / a[m] for m in METRICS}
        print(f"{size:4} {a['pair']:24} " + "  ".join(
            f"{m} {a[m]:.3f}/{b[m]:.3f} ({ratios[m]:.3f})" for m in METRICS) +
            f"  seconds {a['seconds']:.0f}/{b['seconds']:.0f} ({b['seconds'] / a['seconds']:.2f})"
            f"  weight {a['style_weight']:.3g}/{b['style_weight']:.3g}", flush=True)
        rows += [a, b]
        tiles += [(f"{photo}", content, ""), (painting, style, "")] + [
            (f"{p}", painted[p]["image"],
             f"gram {painted[p]['gram']:.3f} swd {painted[p]['swd']:.3f} content {painted[p]['content']:.3f}")
            for p in PRECISIONS]
    grid_sheet(tiles, out / f"precision-{size}.jpg", cols=4, cell=max(300, min(size, 512)))
    return rows


def summary(rows: list[dict]) -> None:
    print(f"\nbfloat16 / float32 (goal: every distance ratio at most {GOAL}):")
    for size in dict.fromkeys(r["size"] for r in rows):
        pairs = {}
        for r in rows:
            if r["size"] == size:
                pairs.setdefault(r["pair"], {})[r["precision"]] = r
        ratio = {m: [p["bfloat16"][m] / p["float32"][m] for p in pairs.values()] for m in METRICS + ("seconds",)}
        worst = max(max(ratio[m]) for m in METRICS)
        print(f"  {size} px, {len(pairs)} pairs: " + "  ".join(
            f"{m} mean {np.mean(ratio[m]):.3f} (range {min(ratio[m]):.3f}..{max(ratio[m]):.3f})"
            for m in METRICS) + f"; time mean {np.mean(ratio['seconds']):.2f}"
              f" (range {min(ratio['seconds']):.2f}..{max(ratio['seconds']):.2f});"
              f" worst distance ratio {worst:.3f}: {'met' if worst <= GOAL else 'NOT met'}")


def run_precision(out: Path, sizes: list[int], pairs: list[str] | None = None, same_weight: bool = False) -> None:
    """`pairs` ("photo:painting") instead of the varied set; `same_weight`: bfloat16 painted at the
    style weight float32's search found, without a search of its own."""
    chosen = [tuple(p.split(":")) for p in pairs] if pairs else [(p, q) for p in PHOTOS for q in PAINTINGS]
    engines = {p: Engine(EngineOptions(mixed_precision="off" if p == "float32" else "on")) for p in PRECISIONS}
    from nstd.engine.precision import cpu_computes_bfloat16
    device = engines["float32"].device
    native = device.type == "cuda" or cpu_computes_bfloat16()
    print(f"sizes {sizes}; device {device}; bfloat16 {'native' if native else 'EMULATED (slow)'}"
          + ("; bfloat16 at float32's weight, no search" if same_weight else ""), flush=True)
    rows: list[dict] = []
    for size in sizes:
        rows += run_size(engines, size, out, len(rows) // 2, chosen, same_weight)
    summary(rows)
    (out / "precision.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "image"} for r in rows],
                                                   indent=1))
    print(f"wrote {out}/precision-*.jpg and precision.json")
