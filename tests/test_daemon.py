"""`nstd run` end to end: the real daemon process, real watchdog, real worker, temp folders."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


from conftest import ROOT, job_rows, pid_alive, png, wait_for, write_config

pytestmark = pytest.mark.slow




def outputs(outbox: Path) -> list[str]:
    """Results and loss logs; not the gallery, loss plots or anything hidden."""
    return sorted(rel for p in outbox.rglob("*") if p.is_file()
                  and not (rel := p.relative_to(outbox).as_posix()).startswith(".")
                  and rel != "index.html" and not rel.endswith(".loss.png"))


def all_done(config: Path, n: int):
    rows = job_rows(config)
    return len(rows) == n and all(r["state"] == "done" for r in rows)


def test_files_of_every_arrival_kind_end_as_expected(tmp_path, daemons):
    config = write_config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "before.png").write_bytes(png(0))           # present before the daemon starts
    d = daemons(config)
    d.wait_ready()
    (inbox / "flat.png").write_bytes(png(1))
    (inbox / "sub" / "deeper").mkdir(parents=True)
    (inbox / "sub" / "deeper" / "nested.png").write_bytes(png(2))
    (tmp_path / "outside.png").write_bytes(png(3))
    os.rename(tmp_path / "outside.png", inbox / "renamed.png")  # moved into place
    (inbox / ".hidden.png").write_bytes(png(4))
    (inbox / "upload.png.part").write_bytes(png(5))
    slow = png(6, (120, 90))
    with open(inbox / "slow.png", "wb") as f:               # written in chunks over ~3 s
        for i in range(0, len(slow), len(slow) // 15 + 1):
            f.write(slow[i:i + len(slow) // 15 + 1])
            f.flush()
            time.sleep(0.2)
    wait_for(lambda: all_done(config, 5), 120, what="five jobs done")
    stems = ["before", "flat", "nested", "renamed", "slow"]
    wait_for(lambda: len(list((tmp_path / "archive").rglob("*.png"))) == 5, 30, what="inputs archived")
    assert outputs(tmp_path / "outbox") == sorted(f"stripes/{s}__stripes.{e}" for s in stems for e in ("json", "png"))
    assert sorted(p.name for p in inbox.rglob("*") if p.is_file()) == [".hidden.png", ".nstd-daemon.lock",
                                                                        "upload.png.part"]
    assert (tmp_path / "archive" / "sub" / "deeper" / "nested.png").is_file()
    slow_row = [r for r in job_rows(config) if r["relpath"] == "slow.png"][0]
    assert slow_row["sha256"] == hashlib.sha256(slow).hexdigest()  # taken only once complete
    log = json.loads((tmp_path / "outbox" / "stripes" / "slow__stripes.json").read_text())
    assert log["job_id"] == slow_row["id"] and log["input"] == "slow.png" and log["trace"]
    # One structured event per state change, each with the job id.
    assert len(d.saw("job queued")) == 5 and len(d.saw("job done")) == 5
    r = subprocess.run([sys.executable, "-m", "nstd", "status", "--config", str(config)],
                       capture_output=True, text=True, cwd=ROOT)
    assert "0 queued, 0 running, 5 done, 0 failed" in r.stdout
    assert d.stop() == 0


def test_sigkill_mid_job_then_restart_finishes_everything_once(tmp_path, daemons):
    config = write_config(tmp_path, defaults={"size": 48, "iterations": 200})
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(3):
        (inbox / f"p{i}.png").write_bytes(png(i))
    d = daemons(config)
    d.wait_ready()
    wait_for(lambda: any(r["progress"] for r in job_rows(config)), 60, what="a job to be painting")
    worker = d.worker_pid()
    d.proc.kill()                                              # SIGKILL: no clean-up at all
    d.proc.wait()
    wait_for(lambda: not pid_alive(worker), 10, what="the orphaned worker to exit")
    assert any(r["state"] == "running" for r in job_rows(config))
    d2 = daemons(config)
    d2.wait_ready()
    assert d2.saw("recovered jobs left running")
    wait_for(lambda: all_done(config, 3), 180, what="all jobs done after restart")
    pngs = [p for p in outputs(tmp_path / "outbox") if p.endswith(".png")]
    assert pngs == [f"stripes/p{i}__stripes.png" for i in range(3)]  # none twice
    # No temp files left: checked once the new daemon has stopped, as a running one may be mid-write
    # (its gallery pages) at any moment.
    assert d2.stop() == 0
    assert not list((tmp_path / "outbox").rglob(".nstd-tmp-*"))
    assert max(r["attempts"] for r in job_rows(config)) == 1  # the daemon's death is not the job's fault
    assert max(r["interruptions"] for r in job_rows(config)) == 1
    assert d2.stop() == 0


def test_sigterm_requeues_the_running_job_and_exits_zero(tmp_path, daemon_with):
    config, d = daemon_with({"a.png": png()}, defaults={"size": 48, "iterations": 2000},
                            extra="worker:\n  grace_seconds: 0.5\n")
    wait_for(lambda: d.saw("job running"), 60, what="the job to start")
    worker = d.worker_pid()
    d.signal(signal.SIGTERM)
    assert d.proc.wait(30) == 0
    wait_for(lambda: not pid_alive(worker), 10, what="the worker to exit")
    (row,) = job_rows(config)
    assert (row["state"], row["attempts"]) == ("queued", 0)   # a stop is not a failed attempt
    assert (tmp_path / "inbox" / "a.png").exists()


def test_sighup_reloads_rules_and_refuses_a_bad_config(tmp_path, daemons):
    config = write_config(tmp_path, rules='  - match: "portraits/**"\n    style: stripes\n')
    inbox = tmp_path / "inbox"
    (inbox / "holidays").mkdir(parents=True)
    d = daemons(config)
    d.wait_ready()
    assert (inbox / "portraits").is_dir()                          # the folder its rule names, made at start
    (inbox / "holidays" / "beach.png").write_bytes(png())
    wait_for(lambda: d.saw("no rule matches: left in the inbox"), 30, what="the unmatched warning")
    good = config.read_text()
    config.write_text(good.replace("inbox: ./inbox", "inbox: ./inbox\nbogus_key: 1"))
    d.signal(signal.SIGHUP)
    wait_for(lambda: d.saw("config reload refused; keeping the running config"), 30, what="refusal")
    refusal = d.saw("config reload refused; keeping the running config")[0]
    assert any("bogus_key: unknown key" in p for p in refusal["problems"])
    config.write_text(good.replace('  - match: "portraits/**"\n    style: stripes\n',
                                   '  - match: "holidays/*"\n    style: stripes\n'
                                   '  - match: "monet/**"\n    style: stripes\n'))
    d.signal(signal.SIGHUP)
    wait_for(lambda: all_done(config, 1), 60, what="the file to be processed under the new rule")
    assert (inbox / "monet").is_dir()                              # a style's new rule: its folder to drop into
    assert d.proc.poll() is None


def test_a_bad_config_is_refused_with_the_key(tmp_path):
    config = write_config(tmp_path, extra="wacth:\n  mode: native\n")
    r = subprocess.run([sys.executable, "-m", "nstd", "run", "--config", str(config)], capture_output=True,
                       text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and "wacth: unknown key" in r.stderr


def test_killed_worker_is_restarted_and_the_job_retried(tmp_path, daemon_with):
    config, d = daemon_with({"a.png": png()}, defaults={"size": 48, "iterations": 300})
    wait_for(lambda: d.saw("job running"), 60, what="the job to start")
    os.kill(d.worker_pid(), signal.SIGKILL)
    wait_for(lambda: d.saw("worker died"), 30, what="the daemon to notice")
    wait_for(lambda: all_done(config, 1), 120, what="the retried job to finish")
    assert len(d.saw("worker ready")) == 2 and job_rows(config)[0]["attempts"] == 2


def test_bad_inputs_and_symlinks_are_quarantined_with_a_reason(tmp_path, daemons):
    config = write_config(tmp_path, watch={"settle_seconds": 0.3, "decode_retries": 1})
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    secret = tmp_path / "secret.png"
    secret.write_bytes(png())
    d = daemons(config)
    d.wait_ready()
    (inbox / "noise.jpg").write_bytes(os.urandom(2000))
    (inbox / "evil.png").symlink_to(secret)
    (inbox / "fine.png").write_bytes(png(1))
    failed = tmp_path / "failed"
    wait_for(lambda: (failed / "noise.jpg.error.json").exists() and (failed / "evil.png.error.json").exists(),
             60, what="both quarantined")
    assert "not an image" in json.loads((failed / "noise.jpg.error.json").read_text())["error"]
    assert "symbolic link" in json.loads((failed / "evil.png.error.json").read_text())["error"]
    assert (failed / "evil.png").is_symlink() and secret.read_bytes() == png()  # moved the link only
    wait_for(lambda: all_done(config, 1), 60, what="the good file")
    assert d.proc.poll() is None


def test_a_second_daemon_on_the_same_state_refuses(tmp_path, daemons):
    config = write_config(tmp_path)
    d = daemons(config)
    d.wait_ready()
    r = subprocess.run([sys.executable, "-m", "nstd", "run", "--config", str(config)], capture_output=True,
                       text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 4 and "another nstd daemon" in r.stderr


def test_a_second_daemon_with_its_own_state_file_on_the_same_inbox_is_refused_naming_the_first(tmp_path, daemons):
    config = write_config(tmp_path)
    second = tmp_path / "second.yaml"
    second.write_text(config.read_text() + "state: ./.other/state.sqlite\n")
    d = daemons(config)
    d.wait_ready()
    r = subprocess.run([sys.executable, "-m", "nstd", "run", "--config", str(second)], capture_output=True,
                       text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 4, r.stderr
    assert "another nstd daemon watches this inbox" in r.stderr and f"pid {d.proc.pid}" in r.stderr
    assert str(config) in r.stderr and not (tmp_path / ".other").exists()   # refused before its state file
    assert d.stop() == 0
    after = daemons(second)                                         # the first one gone: the inbox is free
    after.wait_ready()
    assert after.proc.poll() is None


def test_sd_notify_ready_status_watchdog_and_stopping(tmp_path, daemons):
    import socket
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.5)
    d = daemons(write_config(tmp_path), env={"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "900000"})
    messages: list[str] = []

    def received(text):
        try:
            messages.append(sock.recv(4096).decode())
        except socket.timeout:
            pass
        return any(text in m for m in messages)

    try:
        wait_for(lambda: received("READY=1"), 60, interval=0, what="READY=1")
        wait_for(lambda: received("WATCHDOG=1"), 10, interval=0, what="a watchdog ping")
        assert any("STATUS=" in m and "queued" in m for m in messages)
        d.signal(signal.SIGTERM)
        wait_for(lambda: received("STOPPING=1"), 30, interval=0, what="STOPPING=1")
        assert d.proc.wait(30) == 0
    finally:
        sock.close()


def test_a_worker_that_cannot_start_stops_the_daemon_with_exit_code_3(tmp_path):
    config = write_config(tmp_path, extra="worker:\n  weights: ./missing-weights.pth\n")
    r = subprocess.run([sys.executable, "-m", "nstd", "run", "--config", str(config)], capture_output=True,
                       text=True, cwd=ROOT, timeout=240)
    assert r.returncode == 3 and "missing-weights.pth" in r.stderr
