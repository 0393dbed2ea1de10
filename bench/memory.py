"""Peak memory and time of large outputs under a memory cap: `nstd stylize` as a user runs it.

    python bench/memory.py [--sizes 1024 2048 4096] [--cap 6] [--iterations 2] [--device cpu]
                           [--mixed-precision auto|on|off]

Each measurement runs in its own process so that its peak resident set (from wait4) is its own:
* base:   a process that loads VGG-19 and paints 32 px: torch's and the weights' share, which the
          cap does not count; every other figure is printed less this one;
* floor:  VGG-19 forward+backward alone over the whole image (where it fits in this machine);
* whole:  `nstd stylize` with no cap that binds (where it fits);
* capped: `nstd stylize --max-memory-gb CAP`, which paints the scales that do not fit in tiles.
Seconds per iteration at the output size compare the tiled and the whole-image iteration (what
tiling costs); the schedule shows each scale's iterations and tile core. Run it by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "images"
sys.path.insert(0, str(ROOT))

from nstd.engine import memory  # noqa: E402

FLOOR = """
import sys, torch
sys.path.insert(0, {root!r})
from nstd.engine import Engine, EngineOptions, TransferParams
e = Engine(EngineOptions(device={device!r}))
x = torch.randn(1, 3, {h}, {w}, requires_grad=True)
feats = e.features(x, TransferParams().style_layers + TransferParams().content_layers, "max")
sum(f.float().pow(2).mean() for f in feats.values()).backward()
"""


def measured(cmd: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS in GiB of a child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed: {proc.stderr.read().decode()[-2000:]}")
    return time.perf_counter() - start, usage.ru_maxrss / 2 ** 20


def stylize(args, size: int, out: Path, cap: float | None) -> tuple[float, float, dict]:
    cmd = [sys.executable, "-m", "nstd", "stylize", str(args.content), "--style", str(args.style),
           "-o", str(out), "--size", str(size), "--device", args.device, "--log-every", "1000",
           "--style-weight", "15", "--iterations", str(args.iterations), "--mixed-precision", args.mixed_precision]
    if cap:
        cmd += ["--max-memory-gb", str(cap)]
    seconds, peak = measured(cmd)
    return seconds, peak, json.loads(out.with_suffix(".json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--content", type=Path, default=SHARED / "tubingen.jpg")
    ap.add_argument("--style", type=Path, default=SHARED / "starry_night.jpg")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    ap.add_argument("--cap", type=float, default=6.0, help="--max-memory-gb of the capped runs")
    ap.add_argument("--iterations", type=int, default=2, help="nstd's --iterations (fewer at print sizes)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mixed-precision", default="auto", choices=["auto", "on", "off"])
    ap.add_argument("--keep", type=Path, help="keep the capped paintings in this folder")
    args = ap.parse_args()
    from PIL import Image
    w0, h0 = Image.open(args.content).size
    room = memory.machine_memory_bytes() * 0.8 / 2 ** 30
    with tempfile.TemporaryDirectory() as tmp:
        _, base = measured([sys.executable, "-m", "nstd", "stylize", str(args.content), "--style", str(args.style),
                            "-o", str(Path(tmp) / "base.png"), "--size", "32", "--iterations", "1",
                            "--device", args.device, "--mixed-precision", args.mixed_precision])
        precision = json.loads((Path(tmp) / "base.json").read_text())["precision"]
        print(f"base process (torch, VGG-19, a 32 px painting): {base:.2f} GiB, not counted below; "
              f"cap {args.cap:g} GB (nstd's GB are GiB); the network in {precision}", flush=True)
        print(f"{'output':>10} {'floor':>7} {'whole':>7} {'capped':>7} {'s/it whole':>10} {'s/it capped':>11} "
              f"{'seconds':>8}  schedule (side: iterations, tile core / L-BFGS history)")
        for size in args.sizes:
            w, h = round(w0 * size / max(w0, h0)), round(h0 * size / max(w0, h0))
            fits = memory.network_bytes(w * h) / 2 ** 30 + 1 < room
            floor = whole = s_whole = None
            if fits:
                _, floor = measured([sys.executable, "-c", FLOOR.format(root=str(ROOT), device=args.device, w=w, h=h)])
                _, whole, info = stylize(args, size, Path(tmp) / f"whole{size}.png", 1e6)
                s_whole = info["schedule"][-1]["seconds"] / info["schedule"][-1]["iterations"]
            out = (args.keep or Path(tmp)) / f"capped{size}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            seconds, capped, info = stylize(args, size, out, args.cap)
            top = info["schedule"][-1]
            cell = lambda v: f"{v - base:7.2f}" if v is not None else f"{'-':>7}"  # noqa: E731
            per = lambda v: f"{v:.1f}" if v is not None else "-"  # noqa: E731
            steps = ", ".join(f"{max(s['size'])}: {s['iterations']}" + (f" ({s['tile_core']}/{s['history']})"
                                                                         if "tile_core" in s else "")
                              for s in info["schedule"])
            print(f"{w:>5}x{h:<4} {cell(floor)} {cell(whole)} {cell(capped)} {per(s_whole):>10} "
                  f"{per(top['seconds'] / top['iterations']):>11} {seconds:8.0f}  {steps}", flush=True)
    print("GiB of peak resident memory above the base process; '-': not run, it would not fit this machine")


if __name__ == "__main__":
    main()
