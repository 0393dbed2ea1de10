"""Style against content, and time: nstd's default, its old recipe and the `pastiche` CLI.

    python bench/quality.py [--size 512] [--pairs tubingen:starry_night boston:shipwreck]
                            [--weights 1 5] [--strengths 0.5 0.9] [--old-layers gatys|default]
                            [--out bench-out/quality]
    python bench/quality.py --varied [--size 256]    (bench/varied.py: the defaults over a varied set)
    python bench/quality.py --precision [--size 256] [--pairs P:Q] [--same-weight]
                                                      (bench/precision.py: bfloat16 against float32 on that set)

For each photo:painting pair (from ../shared/images; "graphic" is a drawn painting) and each point
(a style-weight multiplier m of the old recipe's and pastiche's own default weight, paired with a
style strength for the current default), in one run:
* old:      nstd's default before the pyramid: one scale, 200 L-BFGS iterations, relu1_1..relu5_1 at
            style weight 50; a snapshot at 1/3 of its iterations is kept too ("old@1/3");
            `--old-layers default` runs it on the current default's relu1_1..relu4_1 instead, so
            that both recipes minimise the same terms and only the schedule and precision differ;
* new:      nstd's current default (the pyramid, relu1_1..relu4_1, the strength's search) at that strength;
* pastiche: the `pastiche` CLI (same original VGG-19, L-BFGS) given the new default's wall time,
            from its per-step cost measured here;
all scored by one yardstick (VGG-19 at the output size; style image scaled to the output's longest side):
* gram:    the relative Gram distance to the style, mean over relu1_1..relu5_1 (what the old
           recipe and pastiche minimise, up to weighting);
* gram4:   the same over relu1_1..relu4_1 (what the current default minimises);
* swd:     a sliced-Wasserstein distance between the VGG feature distributions of output and style
           (relu1_1..relu4_1, 64 random directions each, relative to the style's spread): a style
           metric no tool minimises;
* content: the relative relu4_2 distance to the photo.
Lower is better on every axis. It prints the table, checks the goals (new default on or below the
old frontier in at most a third of its time; at equal time no pastiche point better on both axes),
draws the frontiers (frontier.png) and a contact sheet (contact-<pair>.jpg) into --out.
Run it by hand (2-core CPU: about 17 minutes per pair and weight at 512 px); not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nstd.engine import Engine, StyleImage, TransferParams  # noqa: E402
from nstd.core.images import load_image  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from judge import OLD, Scorer, find_image, fit, float32_engine  # noqa: E402

def pastiche(content: Path, style: Path, size: int, steps: int, weight: float, out: Path) -> float:
    exe = shutil.which("pastiche") or str(Path(sys.executable).parent / "pastiche")
    cmd = [exe, "--content", str(content), "--styles", str(style), "--output", str(out), "--size", str(size),
           "--num-steps", str(steps), "--device", "cpu", "--seed", "0", "--no-verbose",
           "--style-weights", str(weight)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def pastiche_step_cost(content: Path, style: Path, size: int, tmp: Path) -> tuple[float, float]:
    """Seconds per step and fixed start-up seconds, from two runs (weights load ~10 s per process)."""
    short, long_ = 3, 15
    t_short = pastiche(content, style, size, short, 1.0, tmp / "short.png")
    t_long = pastiche(content, style, size, long_, 1.0, tmp / "long.png")
    per_step = (t_long - t_short) / (long_ - short)
    return per_step, max(0.0, t_short - short * per_step)


AXES = ("gram", "gram4", "swd")


def run_pair(engine: Engine, content_path: Path, style_path: Path, args, tmp: Path) -> list[dict]:
    """The old recipe in float32, as it ran then; the new default in the precision `auto` picks here."""
    content, style = load_image(content_path), load_image(style_path)
    old_recipe = OLD if args.old_layers == "gatys" else OLD.replace(style_layers=TransferParams().style_layers)
    scorer = Scorer(engine, content, style, args.size)
    styles = [StyleImage(style, key=str(style_path))]
    per_step, startup = pastiche_step_cost(content_path, style_path, args.size, tmp)
    rows = []
    third = OLD.iterations // 3
    for m, strength in zip(args.weights, args.strengths):
        snaps: dict = {}

        def keep_third(p, snaps=snaps):
            if p.done == third:
                snaps["image"], snaps["elapsed"] = p.snapshot(), p.elapsed

        old = float32_engine(engine).run(content, styles, old_recipe.replace(
            size=args.size, style_weight=OLD.style_weight * m, log_every=50), progress=keep_third)
        new = engine.run(content, styles, TransferParams(size=args.size, style_strength=strength, log_every=50))
        t_old, t_new = old.info["timings"]["total_seconds"], new.info["timings"]["total_seconds"]
        steps = max(1, round(t_new / per_step))
        out = tmp / f"pastiche-{m}.png"
        wall = pastiche(content_path, style_path, args.size, steps, m, out)
        for tool, image, seconds, iterations in (
                ("old", old.image, t_old, OLD.iterations),
                ("old@1/3", snaps["image"], snaps["elapsed"], third),
                ("new", new.image, t_new, new.info["timings"]["iterations"]),
                ("pastiche", Image.open(out).convert("RGB"), wall - startup, steps)):
            rows.append({"pair": f"{content_path.stem}:{style_path.stem}", "tool": tool, "weight": m,
                         "strength": strength if tool == "new" else None,
                         "seconds": round(seconds, 1), "iterations": iterations, **scorer.score(image),
                         "image": image})
        print(f"  {content_path.stem}:{style_path.stem} x{m}: old {t_old:.0f} s, new {t_new:.0f} s "
              f"({new.info['schedule']}), pastiche {steps} steps", flush=True)
    return rows


def frontier_style_at(points: list[tuple[float, float]], content: float) -> float | None:
    """The style distance of a frontier (its points joined in order of content distance) at `content`."""
    pts = sorted(points)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    if not xs[0] <= content <= xs[-1]:
        return None
    return float(np.interp(content, xs, ys))


def goals(rows: list[dict], axis: str) -> list[str]:
    lines = []
    for pair in sorted({r["pair"] for r in rows}):
        get = lambda tool, pair=pair: [r for r in rows if r["pair"] == pair and r["tool"] == tool]
        old, new, peer = get("old"), get("new"), get("pastiche")
        ratio = np.mean([n["seconds"] / o["seconds"] for n, o in zip(new, old)])
        old_front = [(r["content"], r[axis]) for r in old]
        gaps = []
        for r in new:
            at = frontier_style_at(old_front, r["content"])
            gaps.append("outside" if at is None else f"{100 * (r[axis] / at - 1):+.1f}%")
        dominated = sum(any(o["content"] < r["content"] and o[axis] < r[axis] for o in old) for r in new)
        beaten = sum(any(p["content"] < r["content"] and p[axis] < r[axis] for r in new) for p in peer)
        peer_below = 0
        for p in peer:
            at = frontier_style_at([(r["content"], r[axis]) for r in new], p["content"])
            peer_below += at is not None and p[axis] < at
        lines.append(f"  {pair} [{axis}]: new/old time {ratio:.2f}; new vs old frontier at equal content "
                     f"{', '.join(gaps)}; new points dominated by an old one {dominated}/{len(new)}; "
                     f"pastiche points better on both axes than a new one {beaten}/{len(peer)}, "
                     f"below the new frontier {peer_below}/{len(peer)}")
    return lines


def draw_frontiers(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pairs = sorted({r["pair"] for r in rows})
    fig, axes = plt.subplots(len(AXES), len(pairs), figsize=(5 * len(pairs), 4.2 * len(AXES)), squeeze=False)
    style_of = {"old": "o-", "old@1/3": "o:", "new": "s-", "pastiche": "^--"}
    for col, pair in enumerate(pairs):
        for row, axis in enumerate(AXES):
            ax = axes[row][col]
            for tool, fmt in style_of.items():
                pts = sorted((r["content"], r[axis], r["seconds"]) for r in rows
                             if r["pair"] == pair and r["tool"] == tool)
                if pts:
                    secs = np.mean([p[2] for p in pts])
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], fmt, label=f"{tool} ({secs:.0f} s)")
            ax.set_xlabel("content distance (relu4_2, relative)")
            ax.set_ylabel({"gram": "Gram distance to style, relu1..5 (relative)",
                           "gram4": "Gram distance to style, relu1..4 (relative)",
                           "swd": "sliced Wasserstein to style"}[axis])
            ax.set_title(pair)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle("lower left is better; each point one style weight")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def contact_sheet(rows: list[dict], pair: str, content: Image.Image, style: Image.Image, path: Path) -> None:
    tools = ["old", "old@1/3", "new", "pastiche"]
    weights = sorted({r["weight"] for r in rows if r["pair"] == pair})
    cell = 320
    sheet = Image.new("RGB", (cell * (len(weights) + 1), (cell * 3 // 4 + 20) * len(tools)), "white")
    draw = ImageDraw.Draw(sheet)
    height = cell * 3 // 4 + 20
    for i, ref in enumerate((content, style)):
        sheet.paste(fit(ref, cell, cell * 3 // 4), (0, i * height + 20))
    for ti, tool in enumerate(tools):
        for wi, m in enumerate(weights):
            r = next(r for r in rows if r["pair"] == pair and r["tool"] == tool and r["weight"] == m)
            sheet.paste(fit(r["image"], cell, cell * 3 // 4), (cell * (wi + 1), ti * height + 20))
            draw.text((cell * (wi + 1) + 4, ti * height + 4),
                      f"{tool} x{m}: {r['seconds']:.0f} s, gram {r['gram']:.2f}, content {r['content']:.2f}",
                      fill="black")
    sheet.save(path, quality=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--pairs", nargs="+", default=["tubingen:starry_night", "boston:shipwreck"])
    ap.add_argument("--weights", nargs="+", type=float, default=[1.0, 5.0],
                    help="multipliers of the old recipe's and pastiche's default style weights")
    ap.add_argument("--strengths", nargs="+", type=float, default=[0.5, 0.9],
                    help="the current default's style_strength at each point, paired with --weights")
    ap.add_argument("--old-layers", choices=("gatys", "default"), default="gatys",
                    help="the old recipe's style layers: relu1_1..relu5_1 as it ran (gatys), or the current "
                         "default's relu1_1..relu4_1, so that only the schedule and precision differ")
    ap.add_argument("--varied", action="store_true",
                    help="instead: old and new default and strengths over photos x landscape, portrait and "
                         "graphic paintings (bench/varied.py)")
    ap.add_argument("--precision", action="store_true",
                    help="instead: the default in bfloat16 against float32 over that varied set, at 256 and "
                         "512 px unless --size (bench/precision.py)")
    ap.add_argument("--same-weight", action="store_true",
                    help="with --precision: bfloat16 painted at the style weight float32's search found, so "
                         "that only the precision differs")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out" / "quality")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.varied:
        from varied import run_varied
        return run_varied(args.out, args.size if "--size" in sys.argv else 256)
    if args.precision:
        from precision import run_precision
        return run_precision(args.out, [args.size] if "--size" in sys.argv else [256, 512],
                             args.pairs if "--pairs" in sys.argv else None, args.same_weight)
    if len(args.weights) != len(args.strengths):
        ap.error("--weights and --strengths pair up: give as many of each")
    engine = Engine()
    print(f"size {args.size}; device {engine.device}; torch threads {torch.get_num_threads()}; "
          f"old recipe in float32 on {args.old_layers} layers, new default in {engine.precision}; "
          f"new default {TransferParams().iterations} iterations at the output size, pyramid from "
          f"{TransferParams().first_scale} px", flush=True)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for pair in args.pairs:
            c, s = pair.split(":")
            found = [find_image(name, args.out) for name in (c, s)]
            pair_rows = run_pair(engine, found[0], found[1], args, Path(tmp))
            rows += pair_rows
            contact_sheet(rows, f"{c}:{s}", load_image(found[0]), load_image(found[1]),
                          args.out / f"contact-{c}-{s}.jpg")
    print(f"\n{'pair':28} {'tool':9} {'weight':>6} {'seconds':>8} {'iters':>6} {'gram':>7} {'gram4':>7} {'swd':>7} "
          f"{'content':>8}")
    for r in rows:
        print(f"{r['pair']:28} {r['tool']:9} {r['weight']:6g} {r['seconds']:8.1f} {r['iterations']:6d} "
              f"{r['gram']:7.3f} {r['gram4']:7.3f} {r['swd']:7.3f} {r['content']:8.3f}")
    print("\ngoals (gaps: the new default's style distance against the old frontier's at the same content "
          "distance; negative is better)")
    for axis in AXES:
        print("\n".join(goals(rows, axis)))
    draw_frontiers(rows, args.out / "frontier.png")
    (args.out / "rows.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "image"} for r in rows],
                                                   indent=1))
    print(f"\nwrote {args.out}/frontier.png, contact sheets and rows.json")


if __name__ == "__main__":
    main()
