"""Peak memory and time of large outputs: `nstd stylize` as a user runs it, one process per size.

    python bench/memory.py [--sizes 1024 2048] [--iterations 20] [--device cpu]

Each size runs in its own process so that its peak resident set (from wait4) is its own; the
floor is a process that only loads VGG-19 and runs one forward+backward at that size. L-BFGS keeps
two image-sized vectors per iteration of a scale (up to its history of 100), so the peak grows with
the iterations at the output size; the table prints that share too. Run it by hand.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--content", type=Path, default=SHARED / "tubingen.jpg")
    ap.add_argument("--style", type=Path, default=SHARED / "starry_night.jpg")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    ap.add_argument("--iterations", type=int, default=None, help="iterations at the output size (default: nstd's)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    from PIL import Image
    w0, h0 = Image.open(args.content).size
    print(f"{'size':>10} {'floor GiB':>10} {'nstd GiB':>9} {'L-BFGS share':>13} {'seconds':>8}  schedule")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            w, h = round(w0 * size / max(w0, h0)), round(h0 * size / max(w0, h0))
            _, floor = measured([sys.executable, "-c", FLOOR.format(root=str(ROOT), device=args.device, w=w, h=h)])
            out = Path(tmp) / f"out{size}.png"
            cmd = [sys.executable, "-m", "nstd", "stylize", str(args.content), "--style", str(args.style),
                   "-o", str(out), "--size", str(size), "--device", args.device, "--log-every", "1000"]
            if args.iterations:
                cmd += ["--iterations", str(args.iterations)]
            seconds, peak = measured(cmd)
            info = json.loads(out.with_suffix(".json").read_text())
            last = info["schedule"][-1]
            lbfgs = 2 * min(100, last["iterations"]) * 3 * w * h * 4 / 2 ** 30
            print(f"{w:>5}x{h:<4} {floor:10.2f} {peak:9.2f} {lbfgs:13.2f} {seconds:8.0f}  "
                  f"{[(s['size'][0], s['iterations']) for s in info['schedule']]}", flush=True)


if __name__ == "__main__":
    main()
