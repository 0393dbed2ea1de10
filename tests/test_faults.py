"""Nothing lost: crashes, bursts, moving targets and full disks, against the real daemon."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chaos import HOSTILE_DONE, HOSTILE_REFUSED, run_chaos
from conftest import ROOT, job_rows, png, wait_for, write_config
from faultkit import fill_disk
from test_operations import Hook, free_port, sample, scrape

pytestmark = pytest.mark.slow


def status_of(config: Path) -> str:
    """`nstd status` as a person runs it beside the daemon."""
    done = subprocess.run([sys.executable, "-m", "nstd", "status", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr




def test_sigkill_at_random_moments_loses_nothing_and_duplicates_nothing(tmp_path):
    report = run_chaos(tmp_path, inputs=30, kills=20, seed=1234, hostile=True)
    assert report["final_rc"] == 0
    assert report["lost"] == 0 and report["left_in_inbox"] == []
    assert report["done"] + report["failed"] == 30 + len(HOSTILE_DONE) + len(HOSTILE_REFUSED)
    # Kills of the daemon are not the jobs' fault: only the hostile entries are refused.
    assert report["failed"] == len(HOSTILE_REFUSED) and report["outside_untouched"]
    assert report["results"] == report["expected_results"]  # one result per done input, none twice
    assert report["logs"] == report["done"]
    assert report["temps"] == [] and report["integrity"] == "ok"
    assert report["job_states"].get("queued", 0) == report["job_states"].get("running", 0) == 0
    assert report["input_states"].get("pending", 0) == 0


@pytest.mark.timeout(1800)  # 530 jobs: 2.5 minutes idle, up to 15 under a load of 8
def test_burst_of_500_files_and_a_copied_tree_with_event_overflow(tmp_path):
    config = write_config(tmp_path, defaults={"size": 16, "iterations": 1},
                          watch={"settle_seconds": 0.5, "rescan_minutes": 60})
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    tree = tmp_path / "tree"
    for i in range(30):
        (tree / f"d{i % 3}" / f"e{i % 2}").mkdir(parents=True, exist_ok=True)
        (tree / f"d{i % 3}" / f"e{i % 2}" / f"t{i}.png").write_bytes(png(1000 + i, (16, 12)))
    limit = Path("/proc/sys/fs/inotify/max_queued_events")
    shrink = os.access(limit, os.W_OK)
    saved = limit.read_text() if shrink else None
    if shrink:  # a tiny kernel queue for the daemon's inotify instance: the burst must overflow it
        limit.write_text("64")
    log = open(tmp_path / "daemon.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "nstd", "--log-json", "run", "--config", str(config)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait_for(lambda: "scanned inbox" in (tmp_path / "daemon.log").read_text(), 60, what="start-up")
        if shrink:
            limit.write_text(saved)
        data = [png(i, (16, 12)) for i in range(500)]
        proc.send_signal(signal.SIGSTOP)  # no thread of the daemon reads events: the kernel queue must overflow
        try:
            for i, blob in enumerate(data):
                (inbox / f"b{i:03d}.png").write_bytes(blob)
            shutil.copytree(tree, inbox / "tree")
        finally:
            proc.send_signal(signal.SIGCONT)
        wait_for(lambda: len(list((tmp_path / "archive").rglob("*.png"))) == 530, 900, interval=1,
                 what="all 530 inputs archived")
    finally:
        if shrink and limit.read_text() != saved:
            limit.write_text(saved)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()
    rows = job_rows(config)
    assert len(rows) == 530 and all(r["state"] == "done" for r in rows)
    assert len({r["relpath"] for r in rows}) == 530
    results = [p for p in (tmp_path / "outbox").glob("stripes/*.png") if not p.name.endswith(".loss.png")]
    assert len(results) == 530 and not any("__job" in p.name for p in results)
    if shrink:
        assert "file event queue overflowed: rescanning" in (tmp_path / "daemon.log").read_text()


LONG_JOB = {"size": 48, "iterations": 150}


def test_input_deleted_while_queued_is_withdrawn_with_the_reason_and_blames_nobody(tmp_path, daemon_with):
    config, d = daemon_with({"first.png": png(1)}, defaults=LONG_JOB)
    inbox = tmp_path / "inbox"
    wait_for(lambda: d.saw("job running", input="first.png"), 60, what="the first job to run")
    (inbox / "second.png").write_bytes(png(2))
    (inbox / "early.png").write_bytes(png(3))
    (inbox / "early.png").unlink()  # gone before it settles: never a job
    wait_for(lambda: d.saw("job queued", input="second.png"), 30, what="second queued")
    (inbox / "second.png").unlink()
    wait_for(lambda: [r["state"] for r in job_rows(config) if r["relpath"] == "second.png"] == ["withdrawn"], 120,
             what="the job withdrawn")
    (second,) = [r for r in job_rows(config) if r["relpath"] == "second.png"]
    assert second["error"].startswith("no longer in the inbox")
    assert not (tmp_path / "failed").exists() or not list((tmp_path / "failed").iterdir())  # no reason without a photo
    assert not list(inbox.glob("*.error.json")) and not d.saw("job failed", job_id=second["id"])
    wait_for(lambda: (tmp_path / "archive" / "first.png").exists(), 60, what="first archived")
    assert not d.saw("job queued", input="early.png")
    assert d.proc.poll() is None


def test_input_replaced_while_its_job_runs_gets_both_versions_painted(tmp_path, daemon_with):
    config, d = daemon_with({"photo.png": png(1)}, defaults=LONG_JOB)
    inbox = tmp_path / "inbox"
    # Progress means the worker has read and hashed the first version and is painting it.
    wait_for(lambda: job_rows(config) and job_rows(config)[0]["progress"], 60, what="the job to be painting")
    new = png(7, (44, 30))
    (inbox / ".photo.png.part").write_bytes(new)
    os.rename(inbox / ".photo.png.part", inbox / "photo.png")
    wait_for(lambda: len(job_rows(config)) == 2 and all(r["state"] == "done" for r in job_rows(config)), 120,
             what="both versions painted")
    wait_for(lambda: (tmp_path / "archive" / "photo.png").exists(), 30, what="archive")
    assert (tmp_path / "archive" / "photo.png").read_bytes() == new
    assert not (inbox / "photo.png").exists()
    results = sorted(p.name for p in (tmp_path / "outbox" / "stripes").glob("*.png") if ".loss" not in p.name)
    assert results[0] == "photo__stripes.png" and len(results) == 2
    assert re.fullmatch(r"photo__stripes__[0-9a-f]{10}\.png", results[1])   # the new version's own name


def test_inbox_removed_and_recreated_is_watched_again(tmp_path, daemon_with):
    _, d = daemon_with({})
    inbox = tmp_path / "inbox"
    shutil.rmtree(inbox)
    wait_for(lambda: d.saw("the inbox folder is missing; waiting for it"), 30, what="the daemon to notice")
    inbox.mkdir()
    wait_for(lambda: d.saw("the inbox folder is back (or was replaced): watching it again"), 30, what="re-watch")
    (inbox / "after.png").write_bytes(png())
    wait_for(lambda: (tmp_path / "archive" / "after.png").exists(), 60, what="the new file processed")


def test_unwritable_outbox_and_archive_pause_then_resume(tmp_path, daemons):
    config = write_config(tmp_path)
    for folder in ("outbox", "archive"):
        (tmp_path / folder).mkdir()
    # Root ignores permission bits, so block the folders nstd needs with plain files instead.
    (tmp_path / "outbox" / "stripes").write_text("in the way")
    (tmp_path / "archive" / "sub").write_text("in the way")
    (tmp_path / "inbox" / "sub").mkdir(parents=True)
    (tmp_path / "inbox" / "sub" / "a.png").write_bytes(png())
    d = daemons(config)
    d.wait_ready()
    wait_for(lambda: d.saw("cannot write results: pausing the queue"), 60, what="the write failure")
    (tmp_path / "outbox" / "stripes").unlink()
    wait_for(lambda: d.saw("job done"), 60, what="the job to resume and finish")
    wait_for(lambda: d.saw("cannot file the input away; will try again"), 30, what="archive failure")
    (tmp_path / "archive" / "sub").unlink()
    wait_for(lambda: (tmp_path / "archive" / "sub" / "a.png").exists(), 30, what="archived after the fix")
    (row,) = job_rows(config)
    assert row["state"] == "done" and row["attempts"] == 1  # the blocked writes did not count as attempts


def test_full_disk_pauses_and_resumes(tmp_path, daemons):
    """The outbox's disk full from the start: the painting that did not fit is not painted again
    until there is more room than then; the daemon says what is full, with the room there is and
    needs, in its log, `nstd status`, /metrics and one notification; freed, it goes on by itself."""
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(outbox)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    hook, port = Hook(), free_port()
    try:
        filler = fill_disk(outbox)
        config = write_config(tmp_path, extra=f"metrics:\n  listen: 127.0.0.1:{port}\nnotify:\n  urls:\n"
                                              f"    - json://127.0.0.1:{hook.port}/nstd\n")
        (tmp_path / "inbox").mkdir()
        (tmp_path / "inbox" / "a.png").write_bytes(png())
        d = daemons(config)
        d.wait_ready()
        wait_for(lambda: d.saw("cannot write results: pausing the queue"), 60, what="the full disk")
        assert "No space left" in d.saw("cannot write results: pausing the queue")[0]["error"]
        (told,) = wait_for(lambda: d.saw("a folder cannot be written: the work that needs it waits, and resumes "
                                         "by itself once it can"), 30, what="the fault told")
        assert told["folder"] == "outbox" and told["level"] == "warning" and told["free_bytes"] < 16384
        # Refused before painting from then on: more retries, no second painting.
        wait_for(lambda: len(d.saw("cannot write results: pausing the queue")) >= 3, 60, what="retries")
        assert len(d.saw("job running")) == 1 and len(d.saw("a folder cannot be written: the work that needs "
                                                            "it waits, and resumes by itself once it can")) == 1
        assert "a painting needs more than the" in d.saw("cannot write results: pausing the queue")[-1]["error"]
        assert not list(outbox.rglob(".nstd-tmp-*"))
        (line,) = [x for x in status_of(config).splitlines() if x.startswith("CANNOT WRITE")]
        assert f"the outbox {outbox}" in line and "No space left on device" in line and "free" in line, line
        assert sample(scrape(port), "nstd_folder_unwritable", folder="outbox") == 1
        wait_for(lambda: any("outbox" in m["message"] for m in hook.received
                             if m["title"] == "nstd: painting paused, the machine is at fault"), 30,
                 what="the notification")
        filler.unlink()
        wait_for(lambda: (tmp_path / "archive" / "a.png").exists(), 60, what="resumed")
        assert (outbox / "stripes" / "a__stripes.png").is_file()
        assert d.saw("the folder can be written again: the work goes on", folder="outbox")
        assert sample(scrape(port), "nstd_folder_unwritable", folder="outbox") == 0
        assert "CANNOT WRITE" not in status_of(config)
        assert len([m for m in hook.received if m["title"] == "nstd: painting paused, the machine is at fault"]) == 1
        d.stop()
    finally:
        hook.close()
        subprocess.run(["umount", "-l", str(outbox)])


def test_stale_temp_files_are_removed_at_start(tmp_path, daemons):
    config = write_config(tmp_path)
    stale = tmp_path / "outbox" / "stripes" / ".nstd-tmp-999-abc"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half")
    d = daemons(config)
    d.wait_ready()
    assert not stale.exists() and d.saw("removed stale temp file")


def test_a_full_disk_under_the_state_file_is_waited_out_and_every_photo_painted(tmp_path, daemons):
    """SQLite on a full file system: nothing recorded is lost, and once space is back the daemon
    goes on by itself (it once stayed paused: 1 of 3 photos painted 150 s after the disk was freed)."""
    state = tmp_path / "state"
    state.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(state)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        config = write_config(tmp_path, extra=f"state: {state / 'nstd.sqlite'}\n",
                              defaults={"size": 32, "iterations": 20})
        (tmp_path / "inbox").mkdir()
        d = daemons(config)
        d.wait_ready()
        for i in range(3):
            (tmp_path / "inbox" / f"p{i}.png").write_bytes(png(i))
        wait_for(lambda: d.saw("job running"), 60, what="the first job painting")
        filler = fill_disk(state)  # the state's disk full mid-job
        # Held full through a few of the daemon's retries (1, 2, 4 s apart), as a disk stays full a while.
        wait_for(lambda: len(d.saw("cannot use the state file: pausing")) >= 3, 60, what="the full disk noticed")
        # Two more dropped while nothing can be recorded, read together: the first's record fails, and
        # the second was once forgotten with it until the periodic rescan, ten minutes on. Three more
        # retries (8, 16, 30 s apart) see them arrive, settle and be read.
        for i in (3, 4):
            (tmp_path / "inbox" / f"p{i}.png").write_bytes(png(i))
        wait_for(lambda: len(d.saw("cannot use the state file: pausing")) >= 6, 120, what="both read meanwhile")
        told = d.saw("a folder cannot be written: the work that needs it waits, and resumes by itself once it can")
        assert [e["folder"] for e in told] == ["state"] and told[0]["level"] == "warning", told
        assert f"STATE FILE'S DISK FULL: 0 B free under {state}" in status_of(config)
        filler.unlink()
        wait_for(lambda: all((tmp_path / "archive" / f"p{i}.png").exists() for i in range(5)), 120,
                 what="all five painted once space is back")
        assert not d.saw("scanned inbox", why="periodic")  # none of them waited for it
        import sqlite3
        db = sqlite3.connect(state / "nstd.sqlite")
        states = [s for (s,) in db.execute("SELECT state FROM jobs ORDER BY id")]
        db.close()
        assert states == ["done"] * 5 and not list((tmp_path / "failed").glob("*"))
        assert d.saw("the folder can be written again: the work goes on", folder="state")
        assert d.stop() == 0
    finally:
        subprocess.run(["umount", "-l", str(state)])


def test_an_inbox_unmounted_under_the_daemon_blames_no_photo_and_work_resumes_when_it_is_back(tmp_path, daemons):
    """The inbox is a mount (a bind mount here, as a share would be); unmounted while photos are
    queued, its mount point is an empty folder of another device: the photos are not withdrawn or
    failed, dispatch pauses as a machine fault, and once the share is back the probe paints them."""
    share = tmp_path / "share"
    share.mkdir()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(2):
        (share / f"p{i}.png").write_bytes(png(i))
    bind = ["mount", "--bind", str(share), str(inbox)]
    if subprocess.run(bind, capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount here (needs root)")
    try:
        config = write_config(tmp_path, defaults=LONG_JOB)
        d = daemons(config)
        d.wait_ready()
        wait_for(lambda: len(d.saw("job queued")) == 2 and d.saw("job running"), 60, what="both queued, one running")
        subprocess.run(["umount", "-l", str(inbox)], check=True)       # the share goes away
        wait_for(lambda: d.saw("machine fault: dispatch paused, photos keep their attempts"), 120,
                 what="the fault declared")
        states = {r["relpath"]: r["state"] for r in job_rows(config)}
        assert "withdrawn" not in states.values() and "failed" not in states.values(), states
        subprocess.run(bind, check=True)                                # and comes back
        (inbox / "p2.png").write_bytes(png(2))     # inotify on the old mount sees nothing: watched anew
        wait_for(lambda: all((tmp_path / "archive" / f"p{i}.png").exists() for i in range(3)), 300,
                 what="all painted after the share came back (the first probe is due after 60 s)")
        assert [r["state"] for r in job_rows(config)] == ["done"] * 3
        assert not (tmp_path / "failed").exists() or not list((tmp_path / "failed").iterdir())
    finally:
        subprocess.run(["umount", "-l", str(inbox)], capture_output=True)
