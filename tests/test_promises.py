"""Nothing lost, nothing wrong: the cases of issue 13, each against the real daemon.

Each test ends with every input done (a result under its own name), pending, or quarantined with a
true reason, and the daemon alive and answering SIGTERM.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import ROOT, job_rows, make_style, png, wait_for, write_config

pytestmark = pytest.mark.slow

LONG_JOB = {"size": 48, "iterations": 150}


def results(outbox):
    return sorted(p.relative_to(outbox).as_posix() for p in outbox.rglob("*.png")
                  if not p.name.endswith(".loss.png") and ".nstd" not in p.parts)


def stops_cleanly(d):
    assert d.proc.poll() is None, "the daemon died"
    assert d.stop(timeout=60) == 0


def test_polling_never_follows_a_link_out_of_the_inbox_and_quarantines_the_link(tmp_path, daemon_with):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "private.png").write_bytes(png(9))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "ext").symlink_to(outside)
    (inbox / "loop").symlink_to(".")
    config, d = daemon_with({"photo.png": png(1)}, watch={"mode": "polling", "settle_seconds": 0.3,
                                                          "poll_seconds": 0.2})
    failed = tmp_path / "failed"
    wait_for(lambda: (failed / "ext.error.json").exists() and (failed / "loop.error.json").exists(), 60,
             what="both links quarantined")
    wait_for(lambda: (tmp_path / "archive" / "photo.png").exists(), 60, what="the photo painted")
    assert (failed / "ext").is_symlink() and (failed / "loop").is_symlink()
    assert (outside / "private.png").read_bytes() == png(9)          # the target was not touched
    assert "symbolic link" in json.loads((failed / "ext.error.json").read_text())["error"]
    assert [r["relpath"] for r in job_rows(config)] == ["photo.png"]  # seen once, through no link
    assert results(tmp_path / "outbox") == ["stripes/photo__stripes.png"]
    stops_cleanly(d)


def test_a_reset_state_file_never_passes_an_old_painting_off_as_a_new_photo(tmp_path, daemon_with, daemons):
    config, d = daemon_with({"photo.png": png(1)})
    wait_for(lambda: (tmp_path / "archive" / "photo.png").exists(), 60, what="first painting")
    assert d.stop() == 0
    old = (tmp_path / "outbox" / "stripes" / "photo__stripes.png").read_bytes()
    for p in (tmp_path / ".nstd").glob("state.sqlite*"):
        p.unlink()
    (tmp_path / "inbox" / "photo.png").write_bytes(png(2))        # another photo, the same name
    d2 = daemons(config)
    d2.wait_ready()
    # The old painting is recorded again from its loss log (the gallery and status stay true), as the
    # painting of the photo it names by content: the new photo of that name is a photo of its own.
    assert d2.saw("the state file is new but the outbox holds results: the state rebuilt from the folders",
                  results=1)
    wait_for(lambda: len(results(tmp_path / "outbox")) == 2, 60, what="the new photo painted")
    wait_for(lambda: all(r["state"] == "done" for r in job_rows(config)), 60, what="the new job recorded")
    restored, painted = job_rows(config)
    assert json.loads(restored["outputs"])["rebuilt"] and restored["id"] == 1
    assert restored["sha256"] == hashlib.sha256(png(1)).hexdigest()
    new_result = json.loads(open(json.loads(painted["outputs"])["log"]).read())
    assert new_result["input_sha256"] == painted["sha256"] == hashlib.sha256(png(2)).hexdigest()
    assert (tmp_path / "outbox" / "stripes" / "photo__stripes.png").read_bytes() == old
    stops_cleanly(d2)


def test_a_name_that_is_not_utf8_is_painted_filed_and_shown(tmp_path, daemon_with):
    name = os.fsdecode(b"caf\xe9.png")
    config, d = daemon_with({name: png(3)})
    wait_for(lambda: os.path.exists(tmp_path / "archive" / name), 60, what="archived under its own bytes")
    assert d.stop() == 0
    d2 = subprocess.run([sys.executable, "-m", "nstd", "status", "--config", str(config)],
                        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert d2.returncode == 0 and "1 done" in d2.stdout
    assert "caf_" in " ".join(results(tmp_path / "outbox"))
    html = (tmp_path / "outbox" / "index.html").read_text(encoding="utf-8")
    assert "caf\\xe9.png" in html


def test_a_named_pipe_swapped_in_for_a_queued_photo_cannot_hang_the_daemon(tmp_path, daemon_with):
    config, d = daemon_with({"first.png": png(1)}, defaults=LONG_JOB)
    wait_for(lambda: d.saw("job running", input="first.png"), 60, what="the first job")
    (tmp_path / "inbox" / "second.png").write_bytes(png(2))
    wait_for(lambda: d.saw("job queued", input="second.png"), 60, what="second queued")
    (tmp_path / "inbox" / "second.png").unlink()
    os.mkfifo(tmp_path / "inbox" / "second.png")
    report = tmp_path / "failed" / "second.png.error.json"
    wait_for(report.exists, 120, what="the pipe filed away with a reason")
    assert "named pipe" in json.loads(report.read_text())["error"]
    wait_for(lambda: (tmp_path / "archive" / "first.png").exists(), 120, what="the first photo, undisturbed")
    stops_cleanly(d)


def test_a_stopped_worker_is_noticed_killed_and_its_job_retried(tmp_path, daemon_with):
    config, d = daemon_with({"a.png": png()}, defaults=LONG_JOB, extra="worker:\n  stall_seconds: 10\n")
    wait_for(lambda: d.saw("job running"), 60, what="the job to start")
    worker = d.worker_pid()
    os.kill(worker, signal.SIGSTOP)
    wait_for(lambda: d.saw("stopping the worker"), 60, what="the stall noticed")
    assert "no sign of life" in d.saw("stopping the worker")[0]["cause"]
    wait_for(lambda: job_rows(config)[0]["state"] == "done", 120, what="the retried job")
    assert job_rows(config)[0]["attempts"] == 2
    stops_cleanly(d)


def test_an_idle_stopped_worker_is_noticed_too(tmp_path, daemon_with):
    config, d = daemon_with({}, extra="worker:\n  stall_seconds: 10\n")
    os.kill(d.worker_pid(), signal.SIGSTOP)
    wait_for(lambda: len(d.saw("worker ready")) == 2, 90, what="a fresh worker")
    (tmp_path / "inbox" / "a.png").write_bytes(png())
    wait_for(lambda: job_rows(config) and job_rows(config)[0]["state"] == "done", 90, what="the job")
    stops_cleanly(d)


def test_an_input_that_cannot_be_filed_does_not_hold_up_the_others(tmp_path, daemon_with):
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "sub").write_text("in the way")   # archive/sub cannot become a folder
    config, d = daemon_with({"sub/a.png": png(1)})
    wait_for(lambda: d.saw("cannot file the input away; will try again", input="sub/a.png"), 60,
             what="the blocked filing")
    (tmp_path / "inbox" / "b.png").write_bytes(png(2))
    wait_for(lambda: (tmp_path / "archive" / "b.png").exists(), 60, what="a later photo filed meanwhile")
    assert (tmp_path / "inbox" / "sub" / "a.png").exists()
    stops_cleanly(d)


def test_an_upload_that_pauses_longer_than_the_settle_time_is_taken_once_complete(tmp_path, daemon_with):
    # Retries wait 0.3, 0.6, 1.2, 2.4 s from the last change: 4.5 s of quiet before a refusal.
    config, d = daemon_with({}, watch={"settle_seconds": 0.3, "decode_retries": 3})
    data = png(6, (200, 150))
    step = len(data) // 5 + 1
    tried = lambda: len(d.saw("not decodable yet: will retry", input="slow.png"))
    with open(tmp_path / "inbox" / "slow.png", "wb") as f:
        for i in range(0, len(data), step):
            before = tried()
            f.write(data[i:i + step])
            f.flush()
            if i + step < len(data):  # the writer pauses until the daemon has settled on and tried the partial file
                wait_for(lambda before=before: tried() > before, 30, what="the daemon to try the partial upload")
    assert tried() >= 4                           # it looked at every partial state and refused none
    wait_for(lambda: (tmp_path / "archive" / "slow.png").exists(), 90, what="the complete upload painted")
    assert not (tmp_path / "failed" / "slow.png").exists()
    stops_cleanly(d)


def test_retry_returns_a_refused_input_to_the_inbox(tmp_path, daemon_with):
    config, d = daemon_with({"junk.png": b"not yet an image"}, watch={"settle_seconds": 0.3, "decode_retries": 0})
    wait_for(lambda: (tmp_path / "failed" / "junk.png.error.json").exists(), 60, what="the refusal")
    (tmp_path / "failed" / "junk.png").write_bytes(png(4))     # the operator repairs the file
    r = subprocess.run([sys.executable, "-m", "nstd", "retry", "--config", str(config)],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0 and "1 refused input moved back to the inbox" in r.stdout
    assert not (tmp_path / "failed" / "junk.png.error.json").exists()
    wait_for(lambda: (tmp_path / "archive" / "junk.png").exists(), 60, what="painted after the retry")
    stops_cleanly(d)


def test_a_photo_dropped_again_after_it_failed_is_tried_again_and_every_name_gets_a_result(tmp_path, daemon_with):
    config, d = daemon_with({}, extra="worker:\n  max_attempts: 1\n")
    style = tmp_path / "styles" / "stripes.png"
    style.write_bytes(b"broken")                          # the style breaks: the job fails
    (tmp_path / "inbox" / "photo.png").write_bytes(png(5))
    wait_for(lambda: (tmp_path / "failed" / "photo.png.error.json").exists(), 60, what="the failure")
    make_style().save(style)                              # fixed; the same photo dropped again, twice
    (tmp_path / "inbox" / "photo.png").write_bytes(png(5))
    (tmp_path / "inbox" / "again.png").write_bytes(png(5))
    wait_for(lambda: (tmp_path / "archive" / "photo.png").exists()
             and (tmp_path / "archive" / "again.png").exists(), 90, what="both painted")
    assert results(tmp_path / "outbox") == ["stripes/again__stripes.png", "stripes/photo__stripes.png"]
    a, b = (tmp_path / "outbox" / "stripes" / n for n in ("again__stripes.png", "photo__stripes.png"))
    assert a.read_bytes() == b.read_bytes()                # painted once, delivered to each name
    assert json.loads(a.with_suffix(".json").read_text())["input"] == "again.png"
    stops_cleanly(d)


def test_a_huge_file_is_refused_before_it_is_read_and_the_daemon_stays_responsive(tmp_path, daemon_with):
    config, d = daemon_with({}, watch={"settle_seconds": 0.3, "max_file_mb": 100})
    with open(tmp_path / "inbox" / "huge.jpg", "wb") as f:
        f.truncate(20 * 10**9)                            # sparse: 20 GB that is never read
    (tmp_path / "inbox" / "normal.png").write_bytes(png(1))
    wait_for(lambda: (tmp_path / "failed" / "huge.jpg.error.json").exists(), 60, what="the refusal")
    assert "over the limit of 100 MB" in json.loads((tmp_path / "failed" / "huge.jpg.error.json").read_text())["error"]
    wait_for(lambda: (tmp_path / "archive" / "normal.png").exists(), 60, what="the normal photo")
    stops_cleanly(d)


def test_reload_to_an_inbox_that_does_not_exist_yet_creates_and_watches_it(tmp_path, daemon_with):
    config, d = daemon_with({})
    config.write_text(config.read_text().replace("inbox: ./inbox", "inbox: ./new-inbox"))
    d.signal(signal.SIGHUP)
    wait_for(lambda: d.saw("config reloaded"), 30, what="the reload")
    (tmp_path / "new-inbox" / "a.png").write_bytes(png(1))
    wait_for(lambda: (tmp_path / "archive" / "a.png").exists(), 60, what="a photo from the new inbox")
    stops_cleanly(d)


def test_a_deleted_state_folder_stops_the_daemon_rather_than_let_a_second_one_in(tmp_path, daemon_with):
    import shutil
    config, d = daemon_with({})
    shutil.rmtree(tmp_path / ".nstd")
    assert d.proc.wait(60) == 4
    assert d.saw("nstd stopped")


def test_a_terminal_hang_up_does_not_kill_the_worker(tmp_path, daemon_with):
    config, d = daemon_with({"a.png": png()}, defaults=LONG_JOB)
    wait_for(lambda: d.saw("job running"), 60, what="the job to start")
    worker = d.worker_pid()
    os.kill(worker, signal.SIGHUP)                    # what a closing terminal sends the group
    wait_for(lambda: job_rows(config)[0]["state"] == "done", 120, what="the job")
    assert job_rows(config)[0]["attempts"] == 1 and not d.saw("worker died")
    stops_cleanly(d)


def test_ignored_files_raise_no_warnings(tmp_path, daemon_with):
    config, d = daemon_with({"drafts/x.png": png(1), "y.png": png(2)}, extra="ignore:\n  - \"drafts/**\"\n")
    wait_for(lambda: (tmp_path / "archive" / "y.png").exists(), 60, what="the other file, settled with it")
    assert not d.saw("no rule matches: left in the inbox")
    stops_cleanly(d)


def test_a_full_state_disk_pauses_the_daemon_and_it_resumes_by_itself(tmp_path, daemons):
    state = tmp_path / "state"
    state.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(state)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        config = write_config(tmp_path, extra="state: ./state/nstd.sqlite\n")
        (tmp_path / "inbox").mkdir()
        d = daemons(config)
        d.wait_ready()
        filler = state / "filler"
        with open(filler, "wb", buffering=0) as f:       # fill the state disk completely
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        for i in range(3):
            (tmp_path / "inbox" / f"p{i}.png").write_bytes(png(i))
        wait_for(lambda: d.saw("cannot use the state file: pausing"), 60, what="the pause")
        assert d.proc.poll() is None
        filler.unlink()
        wait_for(lambda: len(list((tmp_path / "archive").glob("*.png"))) == 3, 120, what="all three after the pause")
        stops_cleanly(d)
    finally:
        subprocess.run(["umount", "-l", str(state)])

