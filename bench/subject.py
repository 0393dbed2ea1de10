"""What paints a painting's subject into the photo (issue 22): one knob at a time, measured.

    python bench/subject.py [--size 256] [--pairs tubingen:frida_kahlo boston:frida_kahlo]
                            [--out bench-out/subject]

For each photo:painting pair (from ../shared/images; "graphic" is a drawn painting), nstd's default
and variants that each change one thing the issue suspects: the style weight, the deep layers'
share (crowsonkb's 256:64:16:4:1, or relu5_1 put back), the style image's scale relative to the
output. Each output is scored with `bench/quality.py`'s yardstick (Gram and sliced-Wasserstein
distances to the painting, relu4_2 distance to the photo; lower is better) and laid on a contact
sheet (contact-<pair>.jpg) to be looked at: the metrics say how far from the photo, only the eye
says whether a face came with it.

The style_strength variants ask whether a strength means the same for every painting: their
content distance should land near the strength's target (printed), whatever the pair.
Run it by hand (2-core CPU: about a minute per output at 256 px); not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from judge import ROOT, Scorer, find_image, grid_sheet  # noqa: E402

from nstd.core.images import load_image  # noqa: E402
from nstd.engine import Engine, StyleImage, TransferParams  # noqa: E402
from nstd.engine.params import STYLE_LAYERS_GATYS  # noqa: E402

CROWSON = tuple(w / 341 for w in (256, 64, 16, 4, 1))
WITH_RELU5 = {"style_layers": STYLE_LAYERS_GATYS}
VARIANTS = {
    "default": {},
    "old default (weight 50, relu5_1)": {"style_weight": 50.0, **WITH_RELU5},
    "style_weight 5, relu5_1": {"style_weight": 5.0, **WITH_RELU5},
    "weight 50, 256:64:16:4:1": {"style_weight": 50.0, **WITH_RELU5, "style_layer_weights": CROWSON},
    "default with relu5_1": WITH_RELU5,
    "style_scale 0.5": {"style_scale": 0.5},
    "strength 0.25": {"style_strength": 0.25},
    "strength 0.75": {"style_strength": 0.75},
    "default, 256:64:16:4:1": {**WITH_RELU5, "style_layer_weights": CROWSON},
}


def contact_sheet(rows: list[dict], content: Image.Image, style: Image.Image, path: Path) -> None:
    grid_sheet([("photo", content, ""), ("painting", style, "")] +
               [(r["variant"], r["image"], f"gram {r['gram']:.2f} swd {r['swd']:.2f} content {r['content']:.2f}")
                for r in rows], path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--pairs", nargs="+", default=["tubingen:frida_kahlo", "boston:frida_kahlo"])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out" / "subject")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    engine = Engine()
    rows: list[dict] = []
    for pair in args.pairs:
        c, s = pair.split(":")
        paths = [find_image(name, args.out) for name in (c, s)]
        content, style = load_image(paths[0]), load_image(paths[1])
        scorer = Scorer(engine, content, style, args.size)
        pair_rows = []
        for name in args.variants:
            result = engine.run(content, [StyleImage(style, key=str(paths[1]))],
                                TransferParams(size=args.size, log_every=50, **VARIANTS[name]))
            cal = result.info.get("calibration") or {}
            row = {"pair": pair, "variant": name, "seconds": round(result.info["timings"]["total_seconds"], 1),
                   **scorer.score(result.image), "image": result.image,
                   "style_weight": cal.get("style_weight", result.info["params"]["style_weight"]),
                   "target_content": cal.get("target_content_distance")}
            pair_rows.append(row)
            print(f"{pair:26} {name:28} {row['seconds']:6.1f} s  gram {row['gram']:.3f}  swd {row['swd']:.3f}  "
                  f"content {row['content']:.3f}  style_weight {row['style_weight']:.3g}"
                  + (f"  (target content {row['target_content']:.2f})" if row["target_content"] else ""), flush=True)
        contact_sheet(pair_rows, content, style, args.out / f"contact-{c}-{s}.jpg")
        rows += pair_rows
    (args.out / "rows.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "image"} for r in rows],
                                                   indent=1))
    print(f"wrote {args.out}/contact-*.jpg and rows.json")


if __name__ == "__main__":
    main()
