"""Intake under a flood of junk: how soon a real photo is queued, and how fast junk is refused.

    .venv/bin/python bench/intake.py [--junk 2000] [--corrupt 100] [--retries 3]

In one run, on this machine: an inbox holding `--junk` files that are surely no image (empty,
random bytes, text), `--corrupt` truncated JPEGs (they start like a JPEG: only decoding tells) and,
written last, one real photo. A real `nstd run` starts on it (settle 0.3 s, `--retries` decode
retries). Measured from the daemon's start: when the photo's job is in the state file, and when
every junk file is refused. Against two floors measured in the same run: lstat + open + read of
64 bytes of every file in this process (what any intake must do at least), and the inspector
child alone on the corrupt files (what decoding them costs). Prints seconds, files per second
and the ratios to the floors.
"""

from __future__ import annotations

import argparse
import io
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from conftest import make_content, make_style  # noqa: E402
from nstd.intake.inspector import Inspector  # noqa: E402


def jpeg_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    make_content((200, 150), seed).save(buf, format="JPEG")
    return buf.getvalue()


def fill(inbox: Path, junk: int, corrupt: int) -> list[Path]:
    inbox.mkdir(parents=True)
    files = []
    for i in range(junk):
        data = (b"", os.urandom(2000), b"just some words\n" * 40)[i % 3]
        files.append(inbox / f"junk-{i:05d}.jpg")
        files[-1].write_bytes(data)
    truncated = jpeg_bytes(1)[:600]
    for i in range(corrupt):
        files.append(inbox / f"corrupt-{i:04d}.jpg")
        files[-1].write_bytes(truncated + i.to_bytes(4, "big"))
    return files


def counts(state: Path) -> tuple[int, int]:
    """(jobs recorded, inputs refused) in the daemon's state file; (0, 0) before it exists."""
    if not state.exists():
        return 0, 0
    db = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)
    try:
        jobs = db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        refused = db.execute("SELECT COUNT(*) FROM inputs WHERE state='refused'").fetchone()[0]
        return jobs, refused
    except sqlite3.OperationalError:
        return 0, 0
    finally:
        db.close()


def run_daemon(folder: Path, retries: int, expected_refused: int, ceiling: float) -> tuple[float, float]:
    (folder / "styles").mkdir()
    make_style().save(folder / "styles" / "s.png")
    config = folder / "config.yaml"
    config.write_text("inbox: ./inbox\noutbox: ./outbox\nstyles:\n  s: ./styles/s.png\nrules:\n"
                      '  - match: "**/*"\n    style: s\ndefaults:\n  size: 32\n  iterations: 2\n'
                      f"watch:\n  settle_seconds: 0.3\n  decode_retries: {retries}\n")
    log = open(folder / "daemon.log", "w")
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "nstd", "--log-json", "run", "--config", str(config)],
                            cwd=ROOT, stdout=log, stderr=log)
    photo_at = refused_at = None
    try:
        while time.monotonic() - start < ceiling and (photo_at is None or refused_at is None):
            jobs, refused = counts(folder / ".nstd" / "state.sqlite")
            now = time.monotonic() - start
            if jobs and photo_at is None:
                photo_at = now
            if refused >= expected_refused and refused_at is None:
                refused_at = now
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()
    return photo_at or float("nan"), refused_at or float("nan")


def floor_read(files: list[Path]) -> float:
    t0 = time.perf_counter()
    for p in files:
        os.lstat(p)
        with open(p, "rb") as f:
            f.read(64)
    return time.perf_counter() - t0


def floor_inspector(files: list[Path]) -> float:
    inspector = Inspector(max_pixels=50_000_000, max_bytes=10**9)
    t0 = time.perf_counter()
    try:
        for p in files:
            inspector.submit(str(p))
        answered = 0
        while answered < len(files):
            answered += len(inspector.results())
            time.sleep(0.01)
    finally:
        inspector.close()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--junk", type=int, default=2000)
    ap.add_argument("--corrupt", type=int, default=100)
    ap.add_argument("--retries", type=int, default=3)
    ap.add_argument("--ceiling", type=float, default=1800.0)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="nstd-intake-bench-"))
    files = fill(folder / "inbox", args.junk, args.corrupt)
    time.sleep(0.05)
    (folder / "inbox" / "zz-real-photo.jpg").write_bytes(jpeg_bytes(7))
    photo, refused = run_daemon(folder, args.retries, len(files), args.ceiling)

    floor_folder = Path(tempfile.mkdtemp(prefix="nstd-intake-floor-"))
    floor_files = fill(floor_folder / "inbox", args.junk, args.corrupt)
    read = floor_read(floor_files)
    inspect = floor_inspector(floor_files[args.junk:]) if args.corrupt else 0.0
    total = len(files)
    print(f"inbox: {args.junk} junk + {args.corrupt} corrupt JPEGs + 1 photo; decode_retries {args.retries}, "
          f"settle 0.3 s")
    print(f"real photo queued after      {photo:8.2f} s (from the daemon's start, imports included)")
    print(f"all {total} refused after     {refused:8.2f} s  = {total / refused:8.1f} files/s")
    print(f"floor: read 64 B of each      {read:8.3f} s  = {total / read:8.0f} files/s")
    if args.corrupt:
        print(f"floor: inspector on corrupt   {inspect:8.2f} s  = {args.corrupt / inspect:8.1f} files/s")
    print(f"ratio refused / read floor    {refused / read:8.0f}x (retry waits of "
          f"{0.3 * (2 ** (args.retries + 1) - 1):.1f} s per file included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
