"""Machine faults in turn over a stream of photos, against one real `nstd run` (issue 32 item 8).

    sudo .venv/bin/python bench/machine_faults.py [--per-fault 4] [--hold 8] [--flood 60] [--only NAME ...]
                                                  [--json figures.json]

The workspace is made so that each fault is the real thing: the outbox, the archive and the
state file's folder are small tmpfs mounts (filled up, remounted read-only), the inbox is a bind
mount of a "share" (unmounted as a network share goes away). Without root those faults are
skipped with the reason; the others run anyway.

Each fault in turn: half of its photos dropped, the fault started once one of them is painting,
the other half dropped meanwhile, the fault held until the daemon has said so (its log) and
`--hold` seconds more, then ended. Printed per fault: photos in, photos with a result out,
duplicates (a second result or job for one photo), photos wrongly failed (every photo here is
good), how soon the daemon told the fault, and the time to recover: from the fault's end until
every photo dropped so far is painted and filed. Exits 1 if a photo is missing, duplicated or
failed, or a fault went untold.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from rig import Daemon, photo_bytes, restarted, sql, wait_for

from conftest import make_style
from faultkit import fill_disk, hold_state_lock, tear_a_page

# SQLite waits 30 s for a lock before it gives up: the longest a fault here takes to be told.
TELL_WITHIN_SECONDS = 120.0
FOLDER_TOLD = "a folder cannot be written: the work that needs it waits, and resumes by itself once it can"


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def remount(folder: Path, mode: str) -> None:
    """Remount a tmpfs ro or rw; a file open for writing makes ro refuse (EBUSY) for a moment."""
    for _ in range(50):
        if subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise SystemExit(f"cannot remount {folder} {mode}")


@dataclass
class Workspace:
    folder: Path
    mounted: bool
    daemon: Daemon | None = None
    drop_into: Path | None = None   # where a photo is written now: the inbox, or the share while it is away
    dropped: list[str] = field(default_factory=list)
    holder: subprocess.Popen | None = None

    @property
    def config(self) -> Path:
        return self.folder / "config.yaml"

    @property
    def state(self) -> Path:
        return self.folder / "state" / "nstd.sqlite"

    def drop(self, names: list[str]) -> None:
        for name in names:
            tmp = self.drop_into / f".{name}.part"
            tmp.write_bytes(photo_bytes(len(self.dropped)))
            tmp.rename(self.drop_into / name)  # whole at once, as a copy tool's rename
            self.dropped.append(name)

    def start_daemon(self) -> None:
        self.daemon = Daemon(self.folder, self.config)
        wait_for("the daemon's start-up scan", lambda: restarted(self.daemon), 300, self.daemon)

    def results(self, name: str) -> list[Path]:
        stem = name.rsplit(".", 1)[0]
        return [p for p in (self.folder / "outbox").rglob(f"{stem}__*") if ".nstd" not in p.parts
                and p.suffix in (".png", ".jpg") and not p.name.endswith(".loss.png")]

    def done(self, name: str) -> bool:
        return (self.folder / "archive" / name).is_file() and bool(self.results(name))

    def failed(self, name: str) -> bool:
        return (self.folder / "failed" / name).exists()

    def painting(self, names: list[str]) -> bool:
        """One of `names` is being painted (by the daemon's worker here; a host's in redis_faults.py)."""
        return any(e.get("input") in names for e in self.daemon.saw("job running"))

    def mark(self) -> dict:
        """Where each log is now: what a fault's telling is looked for after."""
        return {"daemon": len(self.daemon.events())}

    def events_since(self, mark: dict) -> list[tuple[Daemon, dict]]:
        """Every log event after `mark` ({}: this run's whole log), with the process that wrote it."""
        return [(self.daemon, e) for e in self.daemon.events()[mark.get("daemon", 0):]]

    def told_since(self, mark: dict, events: tuple[str, ...]) -> bool:
        return any(e.get("event") in events for _, e in self.events_since(mark))


@dataclass
class Fault:
    name: str
    start: Callable[[Workspace], None]
    end: Callable[[Workspace], None]
    told: tuple[str, ...] = ()      # log events that say the daemon (or, with Redis, a host) saw it
    told_by: Callable[[Workspace, dict], bool] | None = None  # or a check of the logs since the mark
    needs_root: bool = False
    restarts: bool = False          # told only once the daemon is started again, at the fault's end


def _kill_worker(ws: Workspace) -> None:
    pid = ws.daemon.saw("worker ready")[-1]["pid"]
    subprocess.run(["kill", "-KILL", str(pid)], check=True)


def _kill_daemon(ws: Workspace) -> None:
    ws.daemon.kill()


def _stop_and_tear_a_page(ws: Workspace) -> None:
    ws.daemon.stop()
    tear_a_page(ws.state)


def _hold_the_state_file(ws: Workspace) -> None:
    ws.holder = hold_state_lock(ws.state, ws.folder / "release")


def _let_go_of_the_state_file(ws: Workspace) -> None:
    (ws.folder / "release").touch()
    ws.holder.wait(60)
    (ws.folder / "release").unlink()


def _unmount_inbox(ws: Workspace) -> None:
    subprocess.run(["umount", "-l", str(ws.folder / "inbox")], check=True)
    ws.drop_into = ws.folder / "share"


def _mount_inbox(ws: Workspace) -> None:
    mount("--bind", str(ws.folder / "share"), str(ws.folder / "inbox"))
    ws.drop_into = ws.folder / "inbox"


def _nothing(ws: Workspace) -> None:
    pass


FAULTS = [
    Fault("none (the baseline)", _nothing, _nothing),
    Fault("outbox disk full", lambda ws: fill_disk(ws.folder / "outbox"),
          lambda ws: (ws.folder / "outbox" / "ballast").unlink(),
          told=(FOLDER_TOLD, "cannot write results: pausing the queue"), needs_root=True),
    Fault("outbox read-only", lambda ws: remount(ws.folder / "outbox", "ro"),
          lambda ws: remount(ws.folder / "outbox", "rw"),
          told=(FOLDER_TOLD, "cannot write results: pausing the queue"), needs_root=True),
    Fault("archive read-only", lambda ws: remount(ws.folder / "archive", "ro"),
          lambda ws: remount(ws.folder / "archive", "rw"),
          told=(FOLDER_TOLD, "cannot file the input away; will try again"), needs_root=True),
    Fault("state file's disk full", lambda ws: fill_disk(ws.folder / "state"),
          lambda ws: (ws.folder / "state" / "ballast").unlink(),
          told=("cannot use the state file: pausing",), needs_root=True),
    # A backup tool's long transaction: SQLite waits 30 s for the lock before the daemon can say so.
    Fault("state file locked by another process", _hold_the_state_file, _let_go_of_the_state_file,
          told=("cannot use the state file: pausing",)),
    Fault("inbox unmounted (a share gone)", _unmount_inbox, _mount_inbox,
          told=("the inbox folder is back (or was replaced): watching it again",
                "machine fault: dispatch paused, photos keep their attempts"), needs_root=True),
    Fault("worker killed (SIGKILL)", _kill_worker, _nothing, told=("worker died",)),
    Fault("daemon killed (SIGKILL), started again", _kill_daemon, Workspace.start_daemon),
    Fault("state file torn, daemon started again", _stop_and_tear_a_page, Workspace.start_daemon, restarts=True,
          told=("the state file was damaged: set aside, and the state rebuilt from the folders",)),
]


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.split(" (")[0]).strip("-")[:24]


def make_workspace(as_root: bool, kind: type[Workspace] = Workspace, iterations: int = 20,
                   extra: str = "") -> Workspace:
    """The folders and config; as root the outbox, archive and state folder are small tmpfs mounts
    and the inbox a bind mount of share/. `extra` is more config (redis_faults.py's worker: part)."""
    folder = Path(tempfile.mkdtemp(prefix="nstd-faults-bench-"))
    for sub in ("styles", "share", "inbox", "outbox", "archive", "state"):
        (folder / sub).mkdir()
    make_style().save(folder / "styles" / "s.png")
    ws = kind(folder, mounted=False, drop_into=folder / "inbox")
    if as_root:
        try:
            for sub, size in (("outbox", "32m"), ("archive", "16m"), ("state", "8m")):
                mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder / sub))
            mount("--bind", str(folder / "share"), str(folder / "inbox"))
            ws.mounted = True
        except subprocess.CalledProcessError as e:
            print(f"  (cannot mount here: {e.stderr.decode().strip()}; the faults that need it are skipped)")
            unmount_all(folder)
    ws.config.write_text("inbox: ./inbox\noutbox: ./outbox\narchive: ./archive\nfailed: ./failed\n"
                         "state: ./state/nstd.sqlite\nstyles:\n  s: ./styles/s.png\n"
                         'rules:\n  - name: all\n    match: "**/*"\n    style: s\n'
                         f"defaults:\n  size: 48\n  iterations: {iterations}\nwatch:\n  settle_seconds: 0.3\n" + extra)
    return ws


def unmount_all(folder: Path) -> None:
    for sub in ("inbox", "state", "archive", "outbox"):
        subprocess.run(["umount", "-l", str(folder / sub)], capture_output=True)


@dataclass
class Row:
    fault: str
    photos: int = 0
    results: int = 0
    duplicates: int = 0
    wrongly_failed: int = 0
    told_after: float | None = None
    recovered_after: float | None = None
    note: str = ""


def jobs_per_photo(ws: Workspace) -> dict[str, int]:
    return dict(sql(ws.state, "SELECT i.relpath, COUNT(*) FROM jobs j JOIN inputs i ON i.id = j.input_id "
                              "GROUP BY i.relpath"))


def tally(ws: Workspace, row: Row, names: list[str]) -> None:
    jobs = jobs_per_photo(ws)
    row.photos = len(names)
    row.results = sum(1 for n in names if ws.results(n))
    row.duplicates = sum(1 for n in names if len(ws.results(n)) > 1 or jobs.get(n, 0) > 1)
    row.wrongly_failed = sum(1 for n in names if ws.failed(n))


def all_done(ws: Workspace) -> bool:
    return all(ws.done(n) or ws.failed(n) for n in ws.dropped)


def run_fault(ws: Workspace, fault: Fault, per_fault: int, hold: float, ceiling: float) -> Row:
    row = Row(fault.name)
    names = [f"{slug(fault.name)}-{i}.jpg" for i in range(per_fault)]
    first, second = names[:math.ceil(per_fault / 2)], names[math.ceil(per_fault / 2):]
    seen = ws.mark()
    ws.drop(first)
    wait_for(f"{fault.name}: a photo painting", lambda: ws.painting(first), ceiling, ws.daemon)
    t_fault = time.monotonic()
    fault.start(ws)
    ws.drop(second)
    told = fault.told_by or (lambda ws, seen: ws.told_since(seen, fault.told))
    if (fault.told or fault.told_by) and not fault.restarts:
        try:
            wait_for(f"{fault.name}: told", lambda: told(ws, seen), TELL_WITHIN_SECONDS, ws.daemon)
            row.told_after = time.monotonic() - t_fault
        except SystemExit as e:
            row.note = str(e)
    time.sleep(hold)  # the fault lasts a while, as a full disk does until someone frees it
    t_end = time.monotonic()
    fault.end(ws)
    if fault.restarts:
        if ws.told_since({}, fault.told):
            row.told_after = time.monotonic() - t_end
        else:
            row.note = "not told at the restart"
    wait_for(f"{fault.name}: every photo painted", lambda: all_done(ws), ceiling, ws.daemon)
    row.recovered_after = time.monotonic() - t_end
    tally(ws, row, names)
    return row


def run_flood(ws: Workspace, photos: int, ceiling: float) -> Row:
    row = Row(f"a flood: {photos} at once")
    names = [f"flood-{i:04d}.jpg" for i in range(photos)]
    t0 = time.monotonic()
    ws.drop(names)
    wait_for("the flood painted", lambda: all_done(ws), ceiling, ws.daemon, every=2.0)
    row.recovered_after = time.monotonic() - t0
    tally(ws, row, names)
    return row


def seconds(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} s"


def print_table(rows: list[Row]) -> None:
    print(f"  {'fault':40s} {'in':>4s} {'out':>4s} {'dup':>4s} {'failed':>6s} {'told after':>11s} "
          f"{'recovered':>10s}")
    for r in rows:
        print(f"  {r.fault:40s} {r.photos:4d} {r.results:4d} {r.duplicates:4d} {r.wrongly_failed:6d} "
              f"{seconds(r.told_after):>11s} {seconds(r.recovered_after):>10s}"
              + (f"  {r.note}" if r.note else ""))


def common_arguments(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    ap.add_argument("--per-fault", type=int, default=4, help="photos dropped per fault (half before it)")
    ap.add_argument("--hold", type=float, default=8.0, help="seconds each fault lasts once told")
    ap.add_argument("--flood", type=int, default=60, help="photos dropped at once at the end (0: none)")
    ap.add_argument("--only", nargs="*", help="faults whose name starts with one of these words")
    ap.add_argument("--ceiling", type=float, default=600.0, help="the longest wait for any one step")
    ap.add_argument("--keep", action="store_true", help="leave the workspace for a look")
    ap.add_argument("--json", type=Path, help="also write the rows and the skipped faults to this file")
    return ap


def run_in_turn(ws: Workspace, faults: list[Fault], args, headline: str, close: Callable[[], None]) -> int:
    """Every fault in turn, then the flood; the table printed (and written to --json). Exits 1 if a
    photo is missing, duplicated or failed, or a fault went untold. `close` stops what else runs."""
    rows, skipped = [], []
    try:
        ws.start_daemon()
        for fault in faults:
            if args.only and not any(fault.name.startswith(w) for w in args.only):
                continue
            if fault.needs_root and not ws.mounted:
                skipped.append(f"{fault.name}: needs root (its folder is a tmpfs or bind mount)")
                continue
            rows.append(run_fault(ws, fault, args.per_fault, args.hold, args.ceiling))
            print(f"  done: {fault.name}", flush=True)
        if args.flood:
            rows.append(run_flood(ws, args.flood, args.ceiling * 4))
        ws.daemon.stop()
    finally:
        if ws.daemon is not None and ws.daemon.proc.poll() is None:
            ws.daemon.kill()
        if ws.holder is not None and ws.holder.poll() is None:
            ws.holder.kill()
        close()
        earlier = [n for n in ws.dropped if not ws.done(n)]
        if ws.mounted:
            unmount_all(ws.folder)
    print(f"{headline} over {len(ws.dropped)} photos, each fault held {args.hold:.0f} s once told")
    print_table(rows)
    for s in skipped:
        print(f"  skipped: {s}")
    bad = [r for r in rows if r.results != r.photos or r.duplicates or r.wrongly_failed or r.note]
    print(f"  photos {len(ws.dropped)}; not done at the end {len(earlier)}; duplicates "
          f"{sum(r.duplicates for r in rows)}; wrongly failed {sum(r.wrongly_failed for r in rows)}; "
          f"faults untold {sum(1 for r in rows if r.note)}")
    if args.json:
        args.json.write_text(json.dumps({"rows": [asdict(r) for r in rows], "skipped": skipped,
                                         "not_done": earlier}, indent=1))
    if args.keep:
        print(f"  workspace kept: {ws.folder}")
    else:
        shutil.rmtree(ws.folder, ignore_errors=True)
    return 1 if bad or earlier else 0


def main() -> int:
    args = common_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0])).parse_args()
    ws = make_workspace(as_root=os.geteuid() == 0)
    return run_in_turn(ws, FAULTS, args, "machine faults in turn, one real nstd run (size 48, 20 iterations),",
                       close=lambda: None)


if __name__ == "__main__":
    sys.exit(main())
