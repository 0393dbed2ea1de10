"""A state file that is damaged or held by another process (issue 32 item 3): a lock is waited out
with a message; a torn or cut-short file is set aside under a dated name and the state rebuilt from
the folders, so that nothing painted is painted again and nothing waiting is lost. Real daemons,
real SQLite, a real second process holding the lock."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from conftest import ROOT, job_rows, png, wait_for, write_config
from faultkit import cut_short, hold_state_lock, tear_a_page

pytestmark = pytest.mark.slow


def nstd(config, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nstd", *args, "--config", str(config)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def painted(tmp_path, names) -> bool:
    return all((tmp_path / "archive" / n).is_file() for n in names)


def quick_check_fails(state) -> bool:
    try:
        db = sqlite3.connect(state)
        try:
            return [r[0] for r in db.execute("PRAGMA quick_check")] != ["ok"]
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return True


@pytest.mark.parametrize("damage", [tear_a_page, cut_short], ids=["torn page", "cut short"])
def test_a_damaged_state_file_is_set_aside_and_the_state_rebuilt_from_the_folders(tmp_path, daemons, damage):
    config = write_config(tmp_path)
    (tmp_path / "inbox").mkdir()
    for n in (1, 2):
        (tmp_path / "inbox" / f"p{n}.png").write_bytes(png(n))
    d = daemons(config)
    wait_for(lambda: painted(tmp_path, ["p1.png", "p2.png"]) and len(d.saw("job done")) == 2, 90,
             what="the first two photos painted")
    assert d.stop() == 0
    outbox = tmp_path / "outbox" / "stripes"
    before = {p.name: p.stat().st_mtime_ns for p in outbox.iterdir()}
    state = tmp_path / ".nstd" / "state.sqlite"
    assert not (tmp_path / ".nstd" / "state.sqlite-wal").exists()  # a clean stop checkpoints the WAL
    for _ in range(20):  # more rows, so that half the file holds some of them
        nstd(config, "pause")
        nstd(config, "resume")
    damage(state)
    assert quick_check_fails(state)
    (tmp_path / "inbox" / "p3.png").write_bytes(png(3))

    d2 = daemons(config)
    wait_for(lambda: painted(tmp_path, ["p3.png"]) or d2.proc.poll() is not None, 90,
             what="the photo dropped while the daemon was down")
    assert d2.proc.poll() is None, d2.log_path.read_text()[-3000:]
    (event,) = d2.saw("the state file was damaged: set aside, and the state rebuilt from the folders")
    assert event["results"] == 2 and "damaged" in event["cause"]
    kept = [p for p in sorted((tmp_path / ".nstd").glob("state.sqlite.damaged-*"))
            if not p.name.endswith(("-wal", "-shm"))]  # its WAL, if any, moves with it
    assert [str(p) for p in kept] == [event["set_aside_as"]]
    assert quick_check_fails(kept[0]) and not quick_check_fails(state)  # the damaged file, kept; a sound new one

    # Nothing painted twice: the first two results untouched, no job run for them.
    assert not [e for e in d2.saw("job running") if e.get("input") in ("p1.png", "p2.png")]
    assert {n: t for n, t in ((p.name, p.stat().st_mtime_ns) for p in outbox.iterdir()) if n in before} == before
    wait_for(lambda: [r["state"] for r in job_rows(config)] == ["done"] * 3, 60, what="three jobs done")
    rows = job_rows(config)
    assert sorted(r["relpath"] for r in rows) == ["p1.png", "p2.png", "p3.png"]
    assert [bool(json.loads(r["outputs"]).get("rebuilt")) for r in rows] == [True, True, False]
    assert all(json.loads(r["outputs"])["thumbs"].get("result") for r in rows)  # the gallery's pictures found

    status = nstd(config, "status")
    assert status.returncode == 0, status.stderr
    assert "STATE REBUILT FROM THE FOLDERS" in status.stdout and str(kept[0]) in status.stdout
    assert "2 results recorded again" in status.stdout and "3 done" in status.stdout
    wait_for(lambda: all(f"p{n}__stripes" in (tmp_path / "outbox" / "index.html").read_text() for n in (1, 2, 3)),
             60, what="the gallery showing all three")
    assert d2.stop() == 0


def test_a_state_file_held_by_another_process_is_waited_out_with_a_message(tmp_path, daemons):
    config = write_config(tmp_path)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "p1.png").write_bytes(png(1))
    d = daemons(config)
    wait_for(lambda: painted(tmp_path, ["p1.png"]), 90, what="the first photo painted")
    assert d.stop() == 0
    release = tmp_path / "release"
    holder = hold_state_lock(tmp_path / ".nstd" / "state.sqlite", release)
    try:
        (tmp_path / "inbox" / "p2.png").write_bytes(png(2))
        d2 = daemons(config)
        (event,) = wait_for(lambda: d2.saw("waiting for the state file") or d2.proc.poll() is not None, 120,
                            what="the wait said")
        assert "locked by another process" in event["cause"] and d2.proc.poll() is None
        assert not (tmp_path / "archive" / "p2.png").exists()
        release.touch()
        wait_for(lambda: painted(tmp_path, ["p2.png"]) or d2.proc.poll() is not None, 90,
                 what="the photo painted once the lock is let go")
        assert d2.proc.poll() is None, d2.log_path.read_text()[-3000:]
        assert d2.saw("state file free again: starting")
        assert not list((tmp_path / ".nstd").glob("*.damaged-*"))  # held is not damaged
        assert [r["relpath"] for r in job_rows(config)] == ["p1.png", "p2.png"]
        assert d2.stop() == 0
    finally:
        release.touch()
        holder.wait(30)
