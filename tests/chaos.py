"""Crash-anywhere driver shared by the test suite (short) and the soak run (long, by hand).

It drops N inputs into a fresh workspace, then repeatedly starts `nstd run` and SIGKILLs it at a
random moment, K times, and finally lets one daemon run until the queue is empty. Then it checks
the promise: every input is done (archived, with exactly one result and loss log) or failed (in
failed/ with an .error.json); no output twice; no temp file left; the state file intact; no
worker outlived its daemon.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, pid_alive, png, wait_for, write_config
from nstd.outbox.files import safe_component

# Hostile entries dropped beside the photos (hostile=True): how each must end.
NOT_UTF8 = os.fsdecode(b"caf\xe9.png")
HOSTILE_DONE = [NOT_UTF8, "copy-of-in0001.png"]       # painted, each under its own name
HOSTILE_REFUSED = ["junk.jpg", "pipe.png", "ext"]      # quarantined with a reason


def _drop_hostile(folder: Path, inbox: Path) -> None:
    outside = folder / "outside"
    outside.mkdir()
    (outside / "private.png").write_bytes(png(99999, (40, 30)))
    (inbox / "ext").symlink_to(outside)
    os.mkfifo(inbox / "pipe.png")
    (inbox / "junk.jpg").write_bytes(os.urandom(3000))
    (inbox / NOT_UTF8).write_bytes(png(77777, (40, 30)))
    (inbox / "copy-of-in0001.png").write_bytes(png(1, (40, 30)))


def _start(config: Path, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nstd", "--log-json", "run", "--config", str(config)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _worker_pids(log_path: Path) -> set[int]:
    pids = set()
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "worker ready":
            pids.add(event["pid"])
    return pids


def run_chaos(folder: Path, inputs: int, kills: int, seed: int, max_wait: float = 6.0,
              params: dict | None = None, hostile: bool = False) -> dict:
    rng = random.Random(seed)
    config = write_config(folder, defaults=params or {"size": 32, "iterations": 6},
                          watch={"settle_seconds": 0.2, "decode_retries": 1},
                          extra="worker:\n  max_attempts: 5\n")
    inbox = folder / "inbox"
    (inbox / "sub").mkdir(parents=True)
    names = []
    for i in range(inputs):
        rel = f"sub/in{i:04d}.png" if i % 3 == 0 else f"in{i:04d}.png"
        (inbox / rel).write_bytes(png(i, (40, 30)))
        names.append(rel)
    if hostile:
        _drop_hostile(folder, inbox)
        names += HOSTILE_DONE + HOSTILE_REFUSED
    log_path = folder / "chaos.log"
    start = time.monotonic()
    with open(log_path, "w") as log:
        for _ in range(kills):
            proc = _start(config, log)
            time.sleep(rng.uniform(0.2, max_wait))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        final = subprocess.run([sys.executable, "-m", "nstd", "--log-json", "run", "--config", str(config),
                                "--until-idle"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, timeout=1800)
    minutes = (time.monotonic() - start) / 60
    for pid in _worker_pids(log_path):
        wait_for(lambda: not pid_alive(pid), 15, what=f"worker {pid} to exit")
    return {"config": config, "names": names, "final_rc": final.returncode, "minutes": minutes,
            "kills": kills, "inputs": inputs, **check_promise(folder, names)}


def check_promise(folder: Path, names: list[str]) -> dict:
    archive, failed, outbox, inbox = (folder / d for d in ("archive", "failed", "outbox", "inbox"))
    done = [n for n in names if (archive / n).is_file()]
    quarantined = [n for n in names if (failed / n).exists() and (failed / f"{n}.error.json").is_file()]
    left = sorted(p.relative_to(inbox).as_posix() for p in inbox.rglob("*")
                  if (not p.is_dir() or p.is_symlink()) and p.name != ".nstd-daemon.lock")  # the daemon's own
    visible = [p for p in outbox.glob("*/*") if not p.parent.name.startswith(".")]  # not .nstd/: the gallery's
    results = sorted(p.name for p in visible if p.suffix == ".png" and not p.name.endswith(".loss.png"))
    logs = sorted(p.name for p in visible if p.suffix == ".json")
    temps = [str(p) for d in (outbox, archive, failed) for p in d.rglob(".nstd-tmp-*")]
    db = sqlite3.connect(folder / ".nstd" / "state.sqlite")
    integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    states = dict(db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
    inputs = dict(db.execute("SELECT state, COUNT(*) FROM inputs GROUP BY state").fetchall())
    db.close()
    expected = sorted(f"{safe_component(Path(n).stem)}__stripes.png" for n in done)
    return {"done": len(done), "failed": len(quarantined), "left_in_inbox": left, "results": results,
            "expected_results": expected, "logs": len(logs), "temps": temps, "integrity": integrity,
            "job_states": states, "input_states": inputs,
            "lost": len(names) - len(done) - len(quarantined),
            "outside_untouched": not (folder / "outside").exists() or (folder / "outside" / "private.png").is_file()}


def print_figures(r: dict, figures: dict, folder: Path, ok: bool) -> None:
    """A soak's figures for the record, then PASS or FAIL."""
    print(json.dumps(figures, indent=1, default=str))
    print(f"duplicates: {len(r['results']) - len(set(r['results']))}, results match done inputs: "
          f"{r['results'] == r['expected_results']}")
    print(f"workspace: {folder}\n{'PASS' if ok else 'FAIL'}")
