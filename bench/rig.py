"""A real `nstd run` under a benchmark: started, watched through its JSON log, sampled, stopped.

Shared by the benchmarks that drive the whole daemon (`flood.py`, `machine_faults.py`); the test
suite's own harness is `tests/conftest.py`.
"""

from __future__ import annotations

import io
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from PIL import ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from conftest import make_content  # noqa: E402

NSTD = [sys.executable, "-m", "nstd"]


def photo_bytes(i: int) -> bytes:
    """A small JPEG unlike every other: its index is drawn in as colours, so no two share a job key."""
    img = make_content((64, 48), i % 5)
    d = ImageDraw.Draw(img)
    for bit in range(16):
        d.rectangle([bit * 4, 0, bit * 4 + 3, 3], fill=(255, 255, 255) if i >> bit & 1 else (0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def sql(state: Path, query: str, *args):
    """Rows of one read-only query; [] while the file cannot be read (locked, being rebuilt)."""
    try:
        db = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=30)
    except sqlite3.OperationalError:
        return []
    try:
        return db.execute(query, args).fetchall()
    except sqlite3.DatabaseError:
        return []
    finally:
        db.close()


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB of one process; (0, 0) once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    values = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return int(values["VmRSS"].split()[0]), int(values["VmHWM"].split()[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """One `nstd --log-json run` (or another command: `worker` for a worker host), its log appended
    to folder/daemon.log (or folder/`log_name`)."""

    def __init__(self, folder: Path, config: Path, command: str = "run", log_name: str = "daemon.log"):
        self.folder, self.config = folder, config
        self.log_path = folder / log_name
        self.log_from = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.log = open(self.log_path, "a")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([*NSTD, "--log-json", command, "--config", str(config)],
                                     cwd=folder, stdout=self.log, stderr=self.log)
        self.peak = 0

    def events(self) -> list[dict]:
        """This run's log events, oldest first."""
        with open(self.log_path, errors="replace") as f:
            f.seek(self.log_from)
            text = f.read()
        out = []
        for line in text.splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # the line being written
        return out

    def saw(self, event: str, **fields) -> list[dict]:
        return [e for e in self.events() if e.get("event") == event
                and all(e.get(k) == v for k, v in fields.items())]

    def sample(self) -> int:
        rss, hwm = rss_kib(self.proc.pid)
        self.peak = max(self.peak, hwm)
        return rss

    def stop(self) -> float:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(300)
        self.log.close()
        return time.monotonic() - t0

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(60)
        self.log.close()


def wait_for(what: str, condition, ceiling: float, daemon: Daemon | None = None, every: float = 0.5):
    """Poll condition() until it returns a true value; the daemon's memory is sampled meanwhile."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < ceiling:
        if daemon is not None:
            daemon.sample()
            if daemon.proc.poll() is not None:
                raise SystemExit(f"the daemon exited ({daemon.proc.returncode}) while waiting for {what}")
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise SystemExit(f"{what}: not within {ceiling:.0f} s")


def restarted(daemon: Daemon) -> bool:
    """True once this run of the daemon has finished its start-up scan of the inbox."""
    return bool(daemon.saw("nstd starting")) and bool(daemon.saw("scanned inbox"))
