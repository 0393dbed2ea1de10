"""nstd under a real systemd (PID 1 of its own namespaces), installed by the install guide's own
lines (docs/operating/service.md).

One machine for the module, checked in order: READY; a team member's photo, in a folder of their
own made with umask 022, painted and filed; priorities in the journal; the worker's threads; a
folder nstd may not write, said and fixed; `systemctl reload` telling the truth; a stopped worker
replaced; a SIGKILLed daemon finishing its job once; a bad config failing once, without a restart
loop; `nstd-web` read-only; the redis backend with the shipped drop-in and worker unit.
`pytest -m systemd` runs these alone; they are skipped, with the reason, where namespaces cannot
be made (not root, no systemd).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil

import pytest

from conftest import ROOT, make_style, png
from systemd_machine import Machine, install_venv, readme_install_lines, wait_inside, why_not_here

pytestmark = [pytest.mark.slow, pytest.mark.systemd,
              pytest.mark.skipif(why_not_here() is not None, reason=str(why_not_here()))]

MEMBER = "alice"  # the install guide's team member
CONFIG = """\
inbox: /srv/nstd/inbox
outbox: /srv/nstd/outbox
archive: /srv/nstd/archive
failed: /srv/nstd/failed
state: /srv/nstd/state/nstd.sqlite
styles:
  stripes: /srv/nstd/styles/stripes.png
rules:
  - match: "slow/**"
    style: stripes
    params: {{iterations: 600}}
  - match: "**/*"
    style: stripes
defaults:
  size: 40
  iterations: 8
watch:
  settle_seconds: 0.5
worker:
  stall_seconds: 25
{extra}"""


def png_bytes(seed: int) -> bytes:
    return png(seed, size=(48, 36))


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    state = tmp_path_factory.mktemp("systemd")
    lines = readme_install_lines()
    venv = [line for line in lines if "/opt/nstd/venv" in line and "/usr/bin/python3" in line or "pip install" in line]
    assert len(venv) == 2, lines
    install_venv(state, venv)
    m = Machine(state)
    try:
        m.sh(f"useradd --create-home {MEMBER}")
        for line in lines:
            if line in venv:
                continue
            if line.startswith("apt-get install"):  # no registry inside: the host's packages are there
                assert m.sh("command -v setfacl", check=False).returncode == 0, "install acl on the host"
                continue
            if line.startswith("systemctl enable --now nstd"):
                write_config(m)  # the guide's "edit" of the example config
            m.sh(f"cd {shlex.quote(str(ROOT))} && {line}")
        yield m
    finally:
        (state / "journal.txt").write_text(m.sh("journalctl --no-pager -o cat", check=False).stdout)
        m.teardown()
        shutil.rmtree(state / "opt-nstd", ignore_errors=True)  # the venv: 5.5 GB, torch included
        shutil.rmtree(state / "opt-overlay", ignore_errors=True)


def write_config(m: Machine, extra: str = "") -> None:
    import io
    buf = io.BytesIO()
    make_style().save(buf, format="PNG")
    m.write("/srv/nstd/styles/stripes.png", buf.getvalue())
    m.sh("chown nstd:nstd-photos /srv/nstd/styles/stripes.png")
    m.write("/etc/nstd/config.yaml", CONFIG.format(extra=extra).encode())


def drop(m: Machine, relpath: str, data: bytes) -> None:
    """A team member drops a photo, making its folder if need be, with the usual umask 022."""
    path = f"/srv/nstd/inbox/{relpath}"
    temp = f"{os.path.dirname(path)}/.{os.path.basename(path)}.part"
    m.sh(f"umask 022; mkdir -p {shlex.quote(os.path.dirname(path))}", user=MEMBER)
    m.write(temp, data, user=MEMBER)
    m.sh(f"mv {shlex.quote(temp)} {shlex.quote(path)}", user=MEMBER)


def events(m: Machine, unit: str, event: str) -> list[dict]:
    out = []
    for line in m.journal(unit).splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event:
            out.append(record)
    return out


def test_start_reaches_ready_and_a_team_members_photo_is_painted_and_filed(machine):
    m = machine
    assert m.show("nstd", "ActiveState") == "active"
    assert "watching" in m.show("nstd", "StatusText")
    drop(m, "trip/p1.png", png_bytes(1))  # a folder of the member's own, umask 022
    wait_inside(lambda: m.exists("/srv/nstd/archive/trip/p1.png"), 180, "the member's photo painted and filed")
    result = "/srv/nstd/outbox/stripes/p1__stripes.png"
    assert m.exists(result) and not m.exists("/srv/nstd/inbox/trip/p1.png")
    mode, group = m.sh(f"stat -c '%a %G' {result}").stdout.split()
    assert group == "nstd-photos" and mode == "640"  # the team reads results; nobody else does
    assert m.sh(f"cat {result} > /dev/null", user=MEMBER, check=False).returncode == 0


def test_the_journal_has_priorities(machine):
    m = machine
    drop(m, "junk.jpg", b"this is no photo")
    wait_inside(lambda: "junk.jpg" in m.journal("nstd", "-p", "warning"), 60, "the refusal at warning priority")
    assert "watching" not in m.journal("nstd", "-p", "warning")  # info lines stay below warning


def test_the_worker_uses_every_core_under_the_unit(machine):
    ready = events(machine, "nstd", "worker ready")
    assert ready, machine.journal("nstd")
    cpus = len(os.sched_getaffinity(0))
    assert ready[0]["cpus"] == cpus and ready[0]["threads"] == cpus
    assert ready[0]["threads_at_start"] == cpus  # the unit lets OpenMP count and pin its threads


def test_a_folder_nstd_cannot_write_is_said_and_then_fixed(machine):
    m = machine
    m.sh("umask 022; mkdir /srv/nstd/inbox/locked && setfacl -b /srv/nstd/inbox/locked && chmod 755 "
         "/srv/nstd/inbox/locked", user=MEMBER)
    m.write("/srv/nstd/inbox/locked/p2.png", png_bytes(2), user=MEMBER)
    wait_inside(lambda: m.exists("/srv/nstd/outbox/stripes/p2__stripes.png"), 180, "the photo still painted")
    def stuck_status():
        text = m.nstd("status").stdout
        return text if "cannot move it out" in text else None
    status = wait_inside(stuck_status, 60, "status saying why the photo is stuck")
    assert "/srv/nstd/inbox/locked" in status and "setfacl -m u:nstd:rwx" in status
    assert "cannot move it out" in m.sh("cat /srv/nstd/outbox/index.html").stdout  # the gallery says it too
    m.sh("setfacl -m u:nstd:rwx /srv/nstd/inbox/locked", user=MEMBER)  # the fix it names
    wait_inside(lambda: m.exists("/srv/nstd/archive/locked/p2.png"), 90, "the stuck photo filed after the fix")


def test_reload_tells_the_truth(machine):
    m = machine
    good = m.sh("cat /etc/nstd/config.yaml").stdout
    m.write("/etc/nstd/config.yaml", good.replace("size: 40", "size: big").encode())
    r = m.sh("systemctl reload nstd", check=False)
    assert r.returncode != 0
    assert "defaults.size" in m.journal("nstd")
    assert m.show("nstd", "ActiveState") == "active"  # the running config stays
    m.write("/etc/nstd/config.yaml", good.encode())
    assert m.sh("systemctl reload nstd", check=False).returncode == 0


def test_a_stopped_worker_is_replaced_within_the_stall_limit(machine):
    m = machine
    before = len(events(m, "nstd", "worker ready"))
    drop(m, "slow/s1.png", png_bytes(3))
    running = wait_inside(lambda: [e for e in events(m, "nstd", "job running") if e.get("input") == "slow/s1.png"],
                          120, "the slow job running")
    pid = events(m, "nstd", "worker ready")[-1]["pid"]
    m.sh(f"kill -STOP {pid}")
    wait_inside(lambda: len(events(m, "nstd", "worker ready")) > before, 25 + 90, "a new worker")
    assert any("stalled" in e.get("cause", "") for e in events(m, "nstd", "stopping the worker"))
    wait_inside(lambda: m.exists("/srv/nstd/archive/slow/s1.png"), 300, "the job finished by the new worker")
    assert running


def test_sigkill_of_the_daemon_mid_job_finishes_the_job_once(machine):
    m = machine
    starts = m.show("nstd", "NRestarts")
    drop(m, "slow/s2.png", png_bytes(4))
    (job,) = wait_inside(lambda: [e["job_id"] for e in events(m, "nstd", "job running")
                                  if e.get("input") == "slow/s2.png"], 120, "the slow job running")
    wait_inside(lambda: [e for e in events(m, "nstd", "job progress") if e.get("job_id") == job], 120,
                "the job under way")
    m.sh("systemctl kill -s KILL nstd")
    wait_inside(lambda: m.show("nstd", "NRestarts") != starts and m.show("nstd", "ActiveState") == "active",
                120, "systemd restarting the daemon")
    wait_inside(lambda: m.exists("/srv/nstd/archive/slow/s2.png"), 300, "the job finished after the restart")
    history = json.loads(m.nstd("history", "--photo", "s2.png", "--json").stdout)
    assert [j["state"] for j in history["jobs"]] == ["done"]
    assert m.sh("ls /srv/nstd/outbox/stripes/ | grep '^s2__'").stdout.split() == [
        "s2__stripes.json", "s2__stripes.loss.png", "s2__stripes.png"]  # one result: image, log, plot


def test_a_bad_config_at_start_fails_once_without_a_restart_loop(machine):
    m = machine
    good = m.sh("cat /etc/nstd/config.yaml").stdout
    m.sh("systemctl stop nstd")
    m.write("/etc/nstd/config.yaml", good.replace("size: 40", "size: big").encode())
    assert m.sh("systemctl start nstd", check=False).returncode != 0
    wait_inside(lambda: m.show("nstd", "ActiveState") == "failed", 60, "the unit failed")
    import time
    time.sleep(12)  # two RestartSec periods: long enough for a restart loop to show, if there were one
    assert m.show("nstd", "NRestarts") == "0" and m.show("nstd", "ExecMainStatus") == "2"
    assert "defaults.size" in m.journal("nstd", "-p", "err")
    m.write("/etc/nstd/config.yaml", good.encode())
    m.sh("systemctl reset-failed nstd && systemctl start nstd")
    assert m.show("nstd", "ActiveState") == "active"


def test_the_web_app_serves_read_only(machine):
    m = machine
    m.sh(f"cd {shlex.quote(str(ROOT))} && systemctl enable --now nstd-web")
    fetch = ("/opt/nstd/venv/bin/python -c \"import urllib.request as u; "
             "print(u.urlopen('http://127.0.0.1:8040/', timeout=5).read().decode())\"")
    page = wait_inside(lambda: (r := m.sh(fetch, check=False)).returncode == 0 and r.stdout, 60, "nstd web answering")
    assert "read-only" in page and "p1.png" in page


def test_the_redis_backend_paints_under_the_shipped_units(machine):
    m = machine
    m.sh("systemd-run --unit nstd-test-redis --property=User=nobody redis-server --port 6390 --bind 127.0.0.1 "
         "--dir /tmp --save ''")
    units = shlex.quote(str(ROOT / "systemd"))
    m.sh(f"mkdir -p /etc/systemd/system/nstd.service.d && cp {units}/nstd-network.conf "
         f"/etc/systemd/system/nstd.service.d/network.conf && cp {units}/nstd-worker.service /etc/systemd/system/ "
         "&& systemctl daemon-reload")
    write_config(m, extra="  backend: redis\n  redis_url: redis://127.0.0.1:6390/0\n")
    m.sh("systemctl restart nstd && systemctl start nstd-worker")
    drop(m, "remote/r1.png", png_bytes(5))
    wait_inside(lambda: m.exists("/srv/nstd/archive/remote/r1.png"), 240, "the photo painted by the worker host")
    assert events(m, "nstd-worker", "worker ready")
    history = json.loads(m.nstd("history", "--photo", "r1.png", "--json").stdout)
    assert [j["state"] for j in history["jobs"]] == ["done"]
