"""How long one gallery rewrite takes with a long history: the cost must be the page, not the history.

    .venv/bin/python bench/gallery.py [--results 10000]

Builds a state file with N done results (tiny placeholder images in a temp outbox), writes the
whole gallery once (`nstd gallery`: every page), then times the rewrite the daemon does after each
job (index.html plus any page that just filled) and prints both, with the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nstd.review.gallery import write_gallery  # noqa: E402
from nstd.daemon import AUDIT_SECONDS  # noqa: E402
from nstd.outbox.results import missing_results  # noqa: E402
from nstd.store import Store  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="nstd-gallery-bench-"))
    outbox = folder / "outbox"
    (outbox / "r").mkdir(parents=True)
    store = Store(folder / "state.sqlite")
    image = lambda i: outbox / "r" / f"{i}__s.png"
    for i in range(args.results):
        image(i).write_bytes(b"png")
    spec = {"images": [], "params": {"size": 512, "iterations": 200}, "output_ext": "png"}
    t0 = time.perf_counter()
    store.db.execute("BEGIN")
    for i in range(args.results):
        store.db.execute("INSERT INTO inputs (relpath, path, sha256, size, state, created, updated) "
                         "VALUES (?, ?, ?, 1, 'archived', ?, ?)", (f"{i}.jpg", f"/a/{i}.jpg", f"h{i}", i, i))
        store.db.execute("INSERT INTO jobs (input_id, job_key, rule, style, spec, state, outputs, created, updated, "
                         "finished) VALUES (?, ?, 'r', 's', ?, 'done', ?, ?, ?, ?)",
                         (i + 1, f"k{i}", __import__("json").dumps(spec),
                          __import__("json").dumps({"image": str(image(i)),
                                                    "final": {"total": 1.0}, "seconds": 60, "device": "cpu"}),
                          i, i, i))
    store.db.execute("COMMIT")
    print(f"{args.results} results recorded in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    pages = write_gallery(store, outbox, full=True)
    full = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        write_gallery(store, outbox)
        times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    t0 = time.perf_counter()
    missing_results(store)
    audit = time.perf_counter() - t0
    print(f"full rebuild ({len(pages)} pages): {full * 1000:.0f} ms")
    print(f"audit of every result's file (the daemon's, every {AUDIT_SECONDS:.0f} s): {audit * 1000:.0f} ms")
    print(f"rewrite after a job (median of {args.repeats}): {step * 1000:.1f} ms "
          f"(max {max(times) * 1000:.1f} ms); full / rewrite = {full / step:.0f}x")
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
