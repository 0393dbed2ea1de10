"""Phone-sensor photos (50, 108 and 200 MP JPEGs) decoded as nstd decodes them, against a full-size
decode (what nstd did before it decoded reduced): time and peak memory, each in a fresh process.

    .venv/bin/python bench/big_photos.py [--sizes 50 108 200] [--photo ../shared/images/X.jpg]

The JPEGs are made here from a real photo (the first JPEG in ../shared/images, or --photo) scaled
up to each sensor's size, saved at quality 90 as a phone does. "nstd" is `load_image(path,
fit=1280)` at the default worker.max_pixels (50 MP): the painting's content and its viewing copy;
"full" is Pillow's whole decode to RGB. Peak memory is the process's high-water mark,
the interpreter and the imports included (the "baseline" row: the same process, no decode): its
VmHWM, since ru_maxrss would carry over the high-water mark of the process that started it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SENSORS = {50: (8160, 6120), 108: (12000, 9000), 200: (16320, 12240)}

PROBE = """
import json, sys, time
sys.path.insert(0, {root!r})
from PIL import Image
from nstd.core.images import load_image
how, path = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if how == "nstd":
    size = load_image(path, fit=1280).size
elif how == "full":
    Image.MAX_IMAGE_PIXELS = None
    with Image.open(path) as img:
        size = img.convert("RGB").size
else:
    size = None
# VmHWM, not ru_maxrss: the latter keeps the high-water mark of the process that spawned this one.
peak = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
print(json.dumps({{"seconds": time.perf_counter() - t0, "peak_mib": peak, "size": size}}))
"""


def probe(how: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT)), how, str(path)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=sorted(SENSORS), choices=sorted(SENSORS))
    ap.add_argument("--photo", type=Path, help="the photo to scale up (default: the first JPEG in ../shared/images)")
    args = ap.parse_args()
    from PIL import Image
    photo = args.photo or next(iter(sorted((ROOT.parent / "shared" / "images").glob("*.jpg"))), None)
    if photo is None:
        raise SystemExit("no photo: pass --photo")
    with tempfile.TemporaryDirectory() as folder:
        print(f"from {photo.name}; each row a fresh process; peak memory includes the interpreter")
        print(f"  {'sensor':>8s} {'file':>8s} {'decode':>6s} {'seconds':>8s} {'peak MiB':>9s} {'decoded':>12s}")
        base = probe("baseline", photo)
        print(f"  {'':>8s} {'':>8s} {'none':>6s} {0:8.2f} {base['peak_mib']:9.0f}")
        for mp in args.sizes:
            path = Path(folder) / f"{mp}mp.jpg"
            with Image.open(photo) as img:
                img.convert("RGB").resize(SENSORS[mp], Image.Resampling.BILINEAR).save(path, quality=90)
            rows = {how: probe(how, path) for how in ("full", "nstd")}
            for how, r in rows.items():
                print(f"  {mp:>5d} MP {path.stat().st_size / 1e6:6.1f} MB {how:>6s} {r['seconds']:8.2f} "
                      f"{r['peak_mib']:9.0f} {'x'.join(map(str, r['size'])):>12s}")
            full, ours = rows["full"], rows["nstd"]
            print(f"  {'':>8s} {'':>8s} nstd/full: time {ours['seconds'] / full['seconds']:.2f}, memory above the "
                  f"baseline {(ours['peak_mib'] - base['peak_mib']) / (full['peak_mib'] - base['peak_mib']):.3f}")
            path.unlink()
    return 0


if __name__ == "__main__":
    t0 = time.monotonic()
    code = main()
    print(f"  ({time.monotonic() - t0:.0f} s)")
    sys.exit(code)
