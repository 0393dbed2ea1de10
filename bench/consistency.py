"""The state file and the folders disagreeing, in turn over a stream of photos, against one real
`nstd run` (issue 45 item 8): the machine-faults bench's family, for what an operator does.

    .venv/bin/python bench/consistency.py [--per-fault 4] [--hold 8] [--only NAME ...] [--json figures.json]

Each disagreement in turn, as machine_faults.py runs a fault (half its photos dropped, the
disagreement made once one of them is painting, the other half dropped, held, ended):

* the state file deleted while nstd is stopped (rebuilt from the folders at the next start);
* an older backup restored (taken now, a painting finished after it, then put back as the docs say);
* the whole nstd folder moved (`mv`, relative paths in its config) while nstd is stopped;
* the state file replaced under the running daemon by an older copy (it stops, as systemd would
  start it again);
* the outbox's thumbnails folder swapped for a link to a folder outside.

Printed per disagreement: photos in, results out, duplicates, photos lost (not painted and filed
at the end), misreported (results the state file counts against results on disk, over every
photo so far), files touched outside nstd's folders (a folder beside them, watched whole, the
link's target among it: must be 0), and how soon it was told. Exits 1 on any photo lost,
duplicated or failed, any miscount, any file touched outside, or a disagreement untold.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from machine_faults import Fault, Workspace, make_workspace, print_table, run_fault, seconds
from rig import NSTD, sql, wait_for

ADOPTED = "the folders hold what the state file did not know: adopted"


def snapshot(folder: Path) -> dict[str, tuple]:
    return {p.relative_to(folder).as_posix(): (p.is_dir(), p.read_bytes() if p.is_file() else b"")
            for p in sorted(folder.rglob("*"))}


def _state_files(ws: Workspace) -> list[Path]:
    return [Path(f"{ws.state}{s}") for s in ("", "-wal", "-shm")]


def _stop(ws: Workspace) -> None:
    ws.daemon.stop()


def _delete_state(ws: Workspace) -> None:
    ws.daemon.stop()
    for f in _state_files(ws):
        f.unlink(missing_ok=True)


def _back_up_then_paint_on(ws: Workspace) -> None:
    """Last week's backup: taken now, and at least one painting finishes after it."""
    done = len(ws.daemon.saw("job done"))
    subprocess.run([*NSTD, "backup", "--config", str(ws.config), str(ws.folder / "backup.sqlite")], check=True,
                   capture_output=True)
    wait_for("a painting after the backup", lambda: len(ws.daemon.saw("job done")) > done, 300, ws.daemon)


def _restore_backup(ws: Workspace) -> None:
    ws.daemon.stop()
    for f in _state_files(ws)[1:]:
        f.unlink(missing_ok=True)
    (ws.folder / "backup.sqlite").replace(ws.state)
    ws.start_daemon()


def _move_folder(ws: Workspace) -> None:
    moved = ws.folder.with_name(ws.folder.name + "-moved")
    ws.folder.rename(moved)
    ws.folder, ws.drop_into = moved, moved / "inbox"
    ws.start_daemon()


def _replace_state_under_it(ws: Workspace) -> None:
    """An older copy (the one made at the bench's start) put in the state file's place while it runs,
    as a restore does it but for the stop: its -wal and -shm removed (a WAL left beside another main
    file would be replayed into it by SQLite, which cannot tell the two apart)."""
    copy = ws.folder / "replacement.sqlite"
    shutil.copyfile(ws.folder / "first.sqlite", copy)
    os.replace(copy, ws.state)
    for f in _state_files(ws)[1:]:
        f.unlink(missing_ok=True)
    wait_for("the daemon to stop on a replaced state file", lambda: ws.daemon.proc.poll() is not None, 120)


def _link_thumbs(ws: Workspace) -> None:
    thumbs = ws.folder / "outbox" / ".nstd" / "thumbs"
    thumbs.rename(thumbs.with_name("thumbs-aside"))
    thumbs.symlink_to(ws.folder.parent / f"{ws.folder.name}-outside" / "linked")


def _unlink_thumbs(ws: Workspace) -> None:
    thumbs = ws.folder / "outbox" / ".nstd" / "thumbs"
    thumbs.unlink()
    thumbs.with_name("thumbs-aside").rename(thumbs)


DISAGREEMENTS = [
    Fault("none (the baseline)", lambda ws: None, lambda ws: None),
    Fault("state file deleted, started again", _delete_state, Workspace.start_daemon, restarts=True,
          told=("the state file is new but the outbox holds results: the state rebuilt from the folders",)),
    Fault("older backup restored", _back_up_then_paint_on, _restore_backup, restarts=True, told=(ADOPTED,)),
    Fault("nstd folder moved, started again", _stop, _move_folder, restarts=True,
          told=("a folder moved: the state follows it",)),
    Fault("state file replaced under it", _replace_state_under_it, Workspace.start_daemon, restarts=True,
          told=(ADOPTED,)),
    Fault("thumbnails folder made a link", _link_thumbs, _unlink_thumbs,
          told=("cannot write results: pausing the queue",)),
]


def misreported(ws: Workspace) -> int:
    """Results the state file counts as done against result images on disk."""
    counted = (sql(ws.state, "SELECT COUNT(*) FROM jobs WHERE state='done'") or [(0,)])[0][0]
    on_disk = [p for p in (ws.folder / "outbox").glob("*/*") if not p.parent.name.startswith(".")
               and p.suffix in (".png", ".jpg") and not p.name.endswith(".loss.png")]
    return abs(counted - len(on_disk))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-fault", type=int, default=4, help="photos dropped per disagreement (half before it)")
    ap.add_argument("--hold", type=float, default=8.0, help="seconds each lasts once made")
    ap.add_argument("--only", nargs="*", help="disagreements whose name starts with one of these words")
    ap.add_argument("--ceiling", type=float, default=600.0, help="the longest wait for any one step")
    ap.add_argument("--json", type=Path, help="also write the rows to this file")
    args = ap.parse_args()
    ws = make_workspace(as_root=False)
    outside = ws.folder.parent / f"{ws.folder.name}-outside"
    for n in (1, 2, 3):
        (outside / f"job{n}").mkdir(parents=True)
        (outside / f"job{n}" / "keep.txt").write_text(f"not nstd's {n}")
    (outside / "linked").mkdir()
    before = snapshot(outside)
    rows, extra = [], {}
    try:
        ws.start_daemon()
        subprocess.run([*NSTD, "backup", "--config", str(ws.config), str(ws.folder / "first.sqlite")], check=True,
                       capture_output=True)
        for fault in DISAGREEMENTS:
            if args.only and not any(fault.name.startswith(w) for w in args.only):
                continue
            row = run_fault(ws, fault, args.per_fault, args.hold, args.ceiling)
            after = snapshot(outside)
            extra[fault.name] = {"misreported": misreported(ws),
                                 "touched_outside": sum(1 for k in before.keys() | after.keys()
                                                        if before.get(k) != after.get(k))}
            rows.append(row)
            print(f"  done: {fault.name}", flush=True)
        ws.daemon.stop()
    finally:
        if ws.daemon is not None and ws.daemon.proc.poll() is None:
            ws.daemon.kill()
        lost = [n for n in ws.dropped if not ws.done(n)]
    print(f"the state file and the folders disagreeing, in turn, one real nstd run, over {len(ws.dropped)} photos")
    print_table(rows)
    print(f"  {'disagreement':40s} {'misreported':>11s} {'touched outside':>15s}")
    for r in rows:
        e = extra[r.fault]
        print(f"  {r.fault:40s} {e['misreported']:11d} {e['touched_outside']:15d}")
    bad = [r for r in rows if r.results != r.photos or r.duplicates or r.wrongly_failed or r.note
           or extra[r.fault]["misreported"] or extra[r.fault]["touched_outside"]]
    print(f"  photos {len(ws.dropped)}; lost {len(lost)}; duplicates {sum(r.duplicates for r in rows)}; "
          f"misreported {max((e['misreported'] for e in extra.values()), default=0)}; touched outside "
          f"{max((e['touched_outside'] for e in extra.values()), default=0)}; untold {sum(1 for r in rows if r.note)}")
    print("  told after: " + ", ".join(f"{r.fault} {seconds(r.told_after)}" for r in rows))
    if args.json:
        args.json.write_text(json.dumps({"rows": [{**r.__dict__, **extra[r.fault]} for r in rows], "lost": lost},
                                        indent=1))
    if not os.environ.get("NSTD_BENCH_KEEP"):
        shutil.rmtree(ws.folder, ignore_errors=True)
    shutil.rmtree(outside, ignore_errors=True)
    return 1 if bad or lost else 0


if __name__ == "__main__":
    t0 = time.monotonic()
    code = main()
    print(f"  ({time.monotonic() - t0:.0f} s)")
    sys.exit(code)
