"""The default over a varied set (issue 22): photos x a landscape, a portrait and a graphic painting.

    python bench/quality.py --varied [--size 256] [--out bench-out/quality]

For each photo:painting pair, in one run: the previous default (the pyramid at style weight 50 with
relu1_1..relu5_1), the current default at strengths 0.25, 0.5 (the default) and 0.75, and the
default once more at the style weight its search found, without the search (the search's cost is
the ratio of the two times). Each output is scored on `quality.py`'s yardstick (Gram and
sliced-Wasserstein distances to the painting, relu4_2 distance to the photo; lower is better) and
laid on a contact sheet per pair (varied-<pair>.jpg), and the old and new default of every pair
side by side on defaults.jpg: only the eye says whether a face or a moon came with the style.
Run it by hand (2-core CPU, idle: about 40 s per output at 256 px, 30 outputs); not in the test suite.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from judge import PREVIOUS, Scorer, find_image, fit, grid_sheet

from nstd.core.images import load_image
from nstd.engine import Engine, StyleImage, TransferParams
from nstd.engine.calibration import target_distance

PHOTOS = ("tubingen", "boston")
PAINTINGS = {"starry_night": "landscape", "frida_kahlo": "portrait", "graphic": "graphic"}
STRENGTHS = (0.25, 0.5, 0.75)
NEW = f"new default ({TransferParams().style_strength:g})"


def settings(size: int) -> dict[str, TransferParams]:
    new = TransferParams(size=size, log_every=50)
    runs = {"old default (weight 50, relu5_1)": PREVIOUS.replace(size=size, log_every=50)}
    for s in STRENGTHS:
        runs[NEW if s == new.style_strength else f"strength {s:g}"] = new.replace(style_strength=s)
    return runs


def run_pair(engine: Engine, photo: str, painting: str, size: int, out: Path) -> list[dict]:
    paths = [find_image(name, out) for name in (photo, painting)]
    content, style = load_image(paths[0]), load_image(paths[1])
    scorer = Scorer(engine, content, style, size)
    styles = [StyleImage(style, key=str(paths[1]))]
    rows = []

    def paint(name: str, params: TransferParams) -> dict:
        result = engine.run(content, styles, params)
        cal = result.info["calibration"] or {}
        row = {"pair": f"{photo}:{painting}", "kind": PAINTINGS[painting], "setting": name,
               "seconds": round(result.info["timings"]["total_seconds"], 1), **scorer.score(result.image),
               "style_weight": cal.get("style_weight", params.style_weight),
               "target_content": cal.get("target_content_distance"), "image": result.image}
        rows.append(row)
        target = f"  (target {row['target_content']:.2f})" if row["target_content"] else ""
        print(f"{row['pair']:24} {name:34} {row['seconds']:6.1f} s  gram {row['gram']:.3f}  swd {row['swd']:.3f}  "
              f"content {row['content']:.3f}  weight {row['style_weight']:.3g}{target}", flush=True)
        return row

    for name, params in settings(size).items():
        paint(name, params)
    found = next(r for r in rows if r["setting"] == NEW)["style_weight"]
    paint("new default at its weight, no search", TransferParams(size=size, log_every=50, style_weight=found))
    contact_sheet(rows, content, style, out / f"varied-{photo}-{painting}.jpg")
    return rows


def contact_sheet(rows: list[dict], content: Image.Image, style: Image.Image, path: Path) -> None:
    grid_sheet([("photo", content, ""), ("painting", style, "")] +
               [(r["setting"], r["image"], f"swd {r['swd']:.2f} content {r['content']:.2f} w {r['style_weight']:.3g}")
                for r in rows], path)


def defaults_sheet(rows: list[dict], path: Path) -> None:
    """Old and new default of every pair, side by side: docs/assets/defaults-256.jpg."""
    pairs = list(dict.fromkeys(r["pair"] for r in rows))
    cell, height = 240, 180 + 16
    sheet = Image.new("RGB", (cell * 2, height * len(pairs) + 16), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 2), "old default (style weight 50, relu5_1)", fill="black")
    draw.text((cell + 4, 2), f"{NEW}", fill="black")
    for i, pair in enumerate(pairs):
        for j, setting in enumerate(("old default (weight 50, relu5_1)", NEW)):
            r = next(r for r in rows if r["pair"] == pair and r["setting"] == setting)
            sheet.paste(fit(r["image"], cell - 4, 180), (cell * j, 16 + height * i + 16))
            draw.text((cell * j + 4, 16 + height * i + 2), f"{pair}: content {r['content']:.2f}", fill="black")
    sheet.save(path, quality=85)


def run_varied(out: Path, size: int) -> None:
    engine = Engine()
    print(f"size {size}; device {engine.device}; targets: " +
          ", ".join(f"strength {s:g} -> content {target_distance(s):.2f}" for s in STRENGTHS), flush=True)
    rows: list[dict] = []
    for photo in PHOTOS:
        for painting in PAINTINGS:
            rows += run_pair(engine, photo, painting, size, out)
    defaults_sheet(rows, out / "defaults.jpg")
    print("\nper setting, mean over the pairs:")
    for setting in dict.fromkeys(r["setting"] for r in rows):
        mine = [r for r in rows if r["setting"] == setting]
        print(f"  {setting:38} gram {np.mean([r['gram'] for r in mine]):.3f}"
              f"  swd {np.mean([r['swd'] for r in mine]):.3f}"
              f"  content {np.mean([r['content'] for r in mine]):.3f} (spread {min(r['content'] for r in mine):.2f}"
              f"..{max(r['content'] for r in mine):.2f})  seconds {np.mean([r['seconds'] for r in mine]):.1f}")
    ratios = []
    for pair in dict.fromkeys(r["pair"] for r in rows):
        by = {r["setting"]: r for r in rows if r["pair"] == pair}
        ratios.append(by[NEW]["seconds"] / by["new default at its weight, no search"]["seconds"])
    print(f"search cost: default / same weight without search = {np.mean(ratios):.3f} "
          f"(per pair {', '.join(f'{x:.3f}' for x in ratios)})")
    (out / "varied.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "image"} for r in rows],
                                                indent=1))
    print(f"wrote {out}/varied-*.jpg, defaults.jpg and varied.json")
