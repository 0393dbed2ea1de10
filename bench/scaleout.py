"""Images per hour with one and with two worker hosts (redis backend), and the local backend.

    .venv/bin/python bench/scaleout.py [--photos 20] [--size 64] [--iterations 40]

In one run, on this machine: the same batch of photos (../shared/images crops if present, else
generated pictures) through (a) the local backend (one worker child, torch's default threads),
(b) the redis backend with one `nstd worker` and (c) with two, each worker on one thread
(OMP_NUM_THREADS=1), against a real redis-server on 127.0.0.1. The rate counts from the first job
dispatched to the last one done, from the daemon's own log, so start-up is left out. Prints
images per hour for each and the ratios.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import make_style, png  # noqa: E402

SHARED = ROOT.parent / "shared" / "images"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photos(n: int, size: int) -> list[bytes]:
    from PIL import Image
    source = SHARED / "tubingen.jpg"
    if not source.exists():
        return [png(i, (size, size * 3 // 4)) for i in range(n)]
    big = Image.open(source).convert("RGB")
    out = []
    for i in range(n):  # distinct crops: identical photos would rightly be painted once
        w, h = big.size
        box = (i * 13 % (w // 3), i * 7 % (h // 3), w - w // 3 + i * 13 % (w // 3), h - h // 3 + i * 7 % (h // 3))
        buf = io.BytesIO()
        big.crop(box).resize((size * 2, size * 3 // 2)).save(buf, "JPEG", quality=92)
        out.append(buf.getvalue())
    return out


def stamp(event: dict) -> float:
    return dt.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def run_batch(label: str, images: list[bytes], args, workers: int, redis_port: int | None) -> float:
    folder = Path(tempfile.mkdtemp(prefix=f"nstd-scaleout-{label}-"))
    (folder / "inbox").mkdir()
    (folder / "styles").mkdir()
    style = SHARED / "starry_night.jpg"
    if style.exists():
        shutil.copy(style, folder / "styles" / "style.jpg")
    else:
        make_style().save(folder / "styles" / "style.jpg", "JPEG")
    worker = (f"worker:\n  backend: redis\n  redis_url: redis://127.0.0.1:{redis_port}/0\n"
              if redis_port else "")
    config = folder / "config.yaml"
    config.write_text(f"inbox: ./inbox\noutbox: ./outbox\nstyles:\n  s: ./styles/style.jpg\nrules:\n"
                      f"  - match: '**/*'\n    style: s\ndefaults:\n  size: {args.size}\n"
                      f"  iterations: {args.iterations}\nwatch:\n  settle_seconds: 0.5\n{worker}")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    hosts = []
    for n in range(workers if redis_port else 0):
        log = open(folder / f"worker{n}.log", "w")
        hosts.append(subprocess.Popen([sys.executable, "-m", "nstd", "--log-json", "worker", "--config", str(config)],
                                      stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                      env={**env, "OMP_NUM_THREADS": "1"}))
    for n in range(len(hosts)):
        while "worker ready" not in (folder / f"worker{n}.log").read_text():
            time.sleep(0.5)
    for i, data in enumerate(images):
        (folder / "inbox" / f"photo{i:02d}.jpg").write_bytes(data)
    log_path = folder / "daemon.log"
    with open(log_path, "w") as log:
        subprocess.run([sys.executable, "-m", "nstd", "--log-json", "run", "--until-idle", "--config", str(config)],
                       stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env, check=True)
    for h in hosts:
        h.terminate()
        h.wait(60)
    events = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    started = [stamp(e) for e in events if e.get("event") == "job running"]
    done = [stamp(e) for e in events if e.get("event") == "job done"]
    assert len(done) == len(images), f"{label}: {len(done)} of {len(images)} done; see {folder}"
    seconds = max(done) - min(started)
    shutil.rmtree(folder, ignore_errors=True)
    return len(images) / seconds * 3600


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=20)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=40)
    args = ap.parse_args()
    redis_bin = shutil.which("redis-server")
    if not redis_bin:
        sys.exit("redis-server is not installed (apt-get install -y redis-server)")
    images = photos(args.photos, args.size)
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="nstd-scaleout-redis-"))
    redis = subprocess.Popen([redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
                              "--appendonly", "yes", "--save", ""], stdout=subprocess.DEVNULL)
    time.sleep(1)
    try:
        print(f"{args.photos} photos at {args.size} px, {args.iterations} iterations each; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
        rates = {"local backend (1 worker child, default threads)": run_batch("local", images, args, 1, None)}
        rates["redis, 1 worker host (1 thread)"] = run_batch("one", images, args, 1, port)
        rates["redis, 2 worker hosts (1 thread each)"] = run_batch("two", images, args, 2, port)
    finally:
        redis.terminate()
        redis.wait(30)
        shutil.rmtree(data, ignore_errors=True)
    base = rates["redis, 1 worker host (1 thread)"]
    for label, rate in rates.items():
        print(f"{label:50s} {rate:8.0f} images/hour   x{rate / base:.2f} of one host")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
