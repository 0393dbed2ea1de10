"""A flood: thousands of photos dropped at once (an event's card copied in), against a real `nstd run`.

    .venv/bin/python bench/flood.py [--photos 5000] [--done 10000] [--paint 30]

In one run, on this machine, with a real daemon (settle 0.3 s, size 32, 2 iterations):
1. The daemon starts paused (the pause is in the state file) on an empty inbox; `--photos` distinct
   JPEGs are copied in as fast as this process can. Measured: how long until every one is a queued
   job, the daemon's memory (RSS sampled every 0.5 s, and its high-water mark).
2. At `--photos` queued: `nstd status` as a user runs it, the status report in-process, the
   gallery's rewrite after a job, and the web app's page (GET /, a real `nstd web`), each the median
   of a few, against two floors: the interpreter starting `nstd --help` (what any command pays) and
   one SQLite COUNT(*) over the jobs.
3. `--done` finished results are written into the state file as history (placeholder images: the
   painting of 10,000 photos is not what is measured) and the same latencies taken again.
4. The pause is lifted until `--paint` jobs are done, the daemon stopped (SIGTERM) and started again
   over the remaining inbox: how long its restart takes, and whether anything was queued twice.
Ends with the count of photos in, jobs, duplicates (two jobs or two results for one photo) and
photos wrongly failed; exits 1 if any.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from rig import NSTD, Daemon, free_port, photo_bytes, restarted, sql, wait_for

from conftest import make_style
from nstd.config import load_config
from nstd.review.gallery import write_gallery
from nstd.review.status import report
from nstd.store import Store


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def latencies(folder: Path, config_path: Path, web_port: int, repeats: int) -> dict:
    config = load_config(config_path)
    state = folder / ".nstd" / "state.sqlite"
    store = Store(state)
    try:
        gallery = median_seconds(lambda: write_gallery(store, config.outbox), repeats)
    finally:
        store.db.close()
    url = f"http://127.0.0.1:{web_port}/"
    return {
        "nstd status (command)": median_seconds(lambda: subprocess.run(
            [*NSTD, "status", "--config", str(config_path)], cwd=folder, check=True,
            stdout=subprocess.DEVNULL), repeats),
        "status report (in-process)": median_seconds(lambda: report(config), repeats),
        "gallery rewrite after a job": gallery,
        "web page GET /": median_seconds(lambda: urllib.request.urlopen(url, timeout=120).read(), repeats),
        "floor: nstd --help": median_seconds(lambda: subprocess.run(
            [*NSTD, "--help"], check=True, stdout=subprocess.DEVNULL), repeats),
        "floor: SELECT COUNT(*) FROM jobs": median_seconds(
            lambda: sql(state, "SELECT state, COUNT(*) FROM jobs GROUP BY state"), repeats),
    }


def add_history(folder: Path, done: int) -> None:
    """`done` finished results as if painted long ago: rows and placeholder files the audit finds."""
    outbox = folder / "outbox" / "history"
    outbox.mkdir(parents=True, exist_ok=True)
    spec = json.dumps({"images": [], "params": {"size": 32, "iterations": 2}, "output_ext": "png"})
    db = sqlite3.connect(folder / ".nstd" / "state.sqlite", timeout=60)
    now = time.time() - 86400
    with db:
        for i in range(done):
            image = outbox / f"old-{i:05d}__s.png"
            image.write_bytes(b"png")
            cur = db.execute("INSERT INTO inputs (relpath, path, sha256, size, state, created, updated) "
                             "VALUES (?, ?, ?, 1, 'archived', ?, ?)",
                             (f"history/old-{i:05d}.jpg", str(folder / "archive" / f"old-{i:05d}.jpg"),
                              f"history{i}", now + i, now + i))
            db.execute("INSERT INTO jobs (input_id, job_key, rule, style, spec, state, attempts, outputs, "
                       "created, updated, started, finished) VALUES (?, ?, 'all', 's', ?, 'done', 1, ?, ?, ?, ?, ?)",
                       (cur.lastrowid, f"history{i}", spec,
                        json.dumps({"image": str(image), "final": {"total": 1.0}, "seconds": 1.0, "device": "cpu"}),
                        now + i, now + i, now + i, now + i))
    db.close()


def print_latencies(title: str, values: dict) -> None:
    print(f"  {title}")
    floor = values["floor: nstd --help"]
    for name, seconds in values.items():
        ratio = f"  {seconds / floor:5.2f}x the start floor" if "command" in name else ""
        print(f"    {name:34s} {seconds * 1000:9.1f} ms{ratio}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=5000)
    ap.add_argument("--done", type=int, default=10_000)
    ap.add_argument("--paint", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ceiling", type=float, default=3600.0)
    ap.add_argument("--keep", action="store_true", help="leave the temp folder for a look")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="nstd-flood-bench-"))
    (folder / "styles").mkdir()
    make_style().save(folder / "styles" / "s.png")
    web_port = free_port()
    config = folder / "config.yaml"
    config.write_text("inbox: ./inbox\noutbox: ./outbox\narchive: ./archive\nstyles:\n  s: ./styles/s.png\n"
                      'rules:\n  - name: all\n    match: "**/*"\n    style: s\n'
                      "defaults:\n  size: 32\n  iterations: 2\nwatch:\n  settle_seconds: 0.3\n"
                      f"web:\n  listen: 127.0.0.1:{web_port}\n")
    (folder / "inbox").mkdir()
    state = folder / ".nstd" / "state.sqlite"
    store = Store(state)
    store.pause("bench/flood.py: measuring at N queued")
    store.db.close()

    staging = folder / "card"
    staging.mkdir()
    for i in range(args.photos):
        (staging / f"IMG_{i:05d}.jpg").write_bytes(photo_bytes(i))

    daemon = Daemon(folder, config)
    wait_for("the daemon's start", lambda: sql(state, "SELECT 1 FROM settings WHERE key='daemon'"), 300, daemon)
    idle = daemon.sample()
    t0 = time.monotonic()
    for p in sorted(staging.iterdir()):
        shutil.copyfile(p, folder / "inbox" / p.name)
    copied = time.monotonic() - t0
    rss_at = {}

    def all_queued():
        n = sql(state, "SELECT COUNT(*) FROM jobs WHERE state='queued'")
        n = n[0][0] if n else 0
        rss_at.setdefault(n // 1000 * 1000, daemon.sample())
        return n >= args.photos
    wait_for(f"{args.photos} queued", all_queued, args.ceiling, daemon)
    queued = time.monotonic() - t0
    after_queue = daemon.sample()

    web_log = open(folder / "web.log", "w")
    web = subprocess.Popen([*NSTD, "web", "--config", str(config)], cwd=folder, stdout=web_log, stderr=web_log)
    try:
        wait_for("the web app", lambda: _answers(web_port), 120)
        at_queued = latencies(folder, config, web_port, args.repeats)
        add_history(folder, args.done)
        time.sleep(6)  # one audit of every result's file passes while history is there (AUDIT_SECONDS 5)
        daemon.sample()
        at_done = latencies(folder, config, web_port, args.repeats)
    finally:
        web.terminate()
        web.wait(60)
        web_log.close()

    subprocess.run([*NSTD, "resume", "--config", str(config)], cwd=folder, check=True, stdout=subprocess.DEVNULL)
    t_paint = time.monotonic()
    painted = lambda: sql(state, "SELECT COUNT(*) FROM jobs WHERE state='done' AND rule='all' "
                                 "AND job_key NOT LIKE 'history%'")[0][0]
    wait_for(f"{args.paint} painted", lambda: painted() >= args.paint, args.ceiling, daemon)
    paint_seconds = time.monotonic() - t_paint
    subprocess.run([*NSTD, "pause", "--config", str(config)], cwd=folder, check=True, stdout=subprocess.DEVNULL)
    after_history = daemon.sample()
    stop_seconds = daemon.stop()
    peak_first = daemon.peak

    jobs_before = sql(state, "SELECT COUNT(*) FROM jobs")[0][0]
    daemon = Daemon(folder, config)
    t_restart = time.monotonic()
    wait_for("the restart's scan", lambda: restarted(daemon), args.ceiling, daemon)
    restart_seconds = time.monotonic() - t_restart
    time.sleep(5)
    daemon.sample()
    daemon.stop()

    photo_jobs = sql(state, "SELECT input_id, COUNT(*) FROM jobs WHERE job_key NOT LIKE 'history%' "
                            "GROUP BY input_id HAVING COUNT(*) > 1")
    per_name = sql(state, "SELECT i.relpath, COUNT(*) FROM jobs j JOIN inputs i ON i.id = j.input_id "
                          "WHERE j.job_key NOT LIKE 'history%' GROUP BY i.relpath HAVING COUNT(*) > 1")
    failed = sql(state, "SELECT COUNT(*) FROM jobs WHERE state IN ('failed', 'quarantined')")[0][0]
    refused = sql(state, "SELECT COUNT(*) FROM inputs WHERE state='refused'")[0][0]
    done_now = painted()
    results = [p for p in (folder / "outbox").rglob("IMG_*") if ".nstd" not in p.parts
               and p.suffix in (".png", ".jpg") and not p.name.endswith(".loss.png")]
    jobs_after = sql(state, "SELECT COUNT(*) FROM jobs")[0][0]

    print(f"flood: {args.photos} distinct 64x48 JPEGs copied into the inbox in {copied:.1f} s, "
          f"the daemon paused; size 32, 2 iterations, settle 0.3 s")
    print(f"  all {args.photos} queued after     {queued:8.1f} s from the copy's start "
          f"= {args.photos / queued:6.1f} photos/s")
    print(f"  daemon RSS: idle {idle / 1024:.0f} MiB, at each 1,000 queued "
          f"{', '.join(f'{v / 1024:.0f}' for _, v in sorted(rss_at.items()))} MiB, all queued "
          f"{after_queue / 1024:.0f} MiB, with the history {after_history / 1024:.0f} MiB, "
          f"high-water mark {peak_first / 1024:.0f} MiB")
    print_latencies(f"at {args.photos} queued, 0 done (median of {args.repeats})", at_queued)
    print_latencies(f"at {args.photos} queued, {args.done} done", at_done)
    print(f"  {args.paint} painted in {paint_seconds:.1f} s after the resume; stop (SIGTERM) took {stop_seconds:.1f} s")
    print(f"  restart over {args.photos - done_now} waiting photos: scanned in {restart_seconds:.1f} s, "
          f"high-water mark {daemon.peak / 1024:.0f} MiB")
    print(f"  photos in {args.photos}; jobs {jobs_before - args.done} before the restart, "
          f"{jobs_after - args.done} after; results {len(results)} for {done_now} done; "
          f"duplicates {len(photo_jobs) + len(per_name) + max(0, len(results) - done_now)}; "
          f"wrongly failed {failed + refused}")
    bad = photo_jobs or per_name or failed or refused or jobs_after != jobs_before or len(results) != done_now
    if args.keep:
        print(f"  folder kept: {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if bad else 0


def _answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
