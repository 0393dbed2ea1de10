"""The redis backend against a real redis-server, real `nstd worker` hosts and a real daemon:
nothing lost and nothing painted twice when a worker host, the daemon or Redis dies mid-burst."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys

import pytest

from conftest import ROOT, job_rows, needs_redis, png, wait_for, write_config
from test_operations import free_port

pytestmark = [pytest.mark.slow, needs_redis]

HOST = socket.gethostname()


def redis_config(folder, url: str, iterations: int = 40):
    return write_config(folder, defaults={"size": 40, "iterations": iterations},
                        extra=f"worker:\n  backend: redis\n  redis_url: {url}\n  redis_heartbeat_seconds: 3\n")


def results(outbox) -> list[str]:
    return sorted(p.name for p in outbox.rglob("*.png") if not p.name.endswith(".loss.png")
                  and ".nstd" not in p.parts)


def drop(folder, names: list[str]) -> None:
    for n, name in enumerate(names):
        (folder / "inbox" / name).write_bytes(png(40 + n))


def all_done_once(folder, config, names: list[str]) -> None:
    wait_for(lambda: all((folder / "archive" / n).exists() for n in names), 240, what=f"{len(names)} photos done")
    rows = job_rows(config)
    assert sorted(r["relpath"] for r in rows) == sorted(names)          # one job each
    assert {r["state"] for r in rows} == {"done"}
    assert results(folder / "outbox") == sorted(f"{n[:-4]}__stripes.png" for n in names)  # one result each


def one_photo_on_one_host(tmp_path, daemons, redis_server, iterations: int):
    """A worker host, then the daemon, then one photo dropped and running on that host: (config, host, daemon)."""
    config = redis_config(tmp_path, redis_server.url, iterations=iterations)
    (tmp_path / "inbox").mkdir()
    host = daemons(config, command="worker")
    wait_for(lambda: host.saw("worker ready"), 120, what="the first worker host")
    d = daemons(config)
    d.wait_ready()
    drop(tmp_path, ["photo.png"])
    wait_for(lambda: host.saw("job running", job_id=1), 60, what="the job on the first host")
    return config, host, d


def test_a_worker_host_killed_mid_job_hands_the_job_to_the_other(tmp_path, daemons, redis_server):
    config, first, d = one_photo_on_one_host(tmp_path, daemons, redis_server, iterations=600)
    wait_for(lambda: f"on {HOST}" in (tmp_path / "outbox" / "index.html").read_text(), 60,
             what="the running card naming its host")
    # Frozen mid-job before the second host starts, killed once it is up: left running, the first
    # host finished its 600 iterations (16 s) before a busy machine had the second one ready (18 s).
    first.proc.send_signal(signal.SIGSTOP)
    second = daemons(config, command="worker")
    wait_for(lambda: second.saw("worker ready"), 120, what="the second worker host")
    first.proc.send_signal(signal.SIGKILL)
    all_done_once(tmp_path, config, ["photo.png"])
    assert second.saw("job finished", job_id=1) and not first.saw("job finished")
    assert job_rows(config)[0]["attempts"] == 1            # a dead host is not the job's fault


def burst(tmp_path, daemons, redis_server):
    """One worker host, the daemon, five photos dropped: (config, worker, daemon, names)."""
    config = redis_config(tmp_path, redis_server.url, iterations=60)
    (tmp_path / "inbox").mkdir()
    names = [f"p{i}.png" for i in range(5)]
    w = daemons(config, command="worker")
    wait_for(lambda: w.saw("worker ready"), 120, what="the worker host")
    d = daemons(config)
    d.wait_ready()
    drop(tmp_path, names)
    return config, w, d, names


def test_the_daemon_killed_while_jobs_are_in_redis(tmp_path, daemons, redis_server):
    config, w, d, names = burst(tmp_path, daemons, redis_server)
    wait_for(lambda: w.saw("job running"), 60, what="a job on the worker")
    d.proc.send_signal(signal.SIGKILL)                    # a job out in Redis, reports on their way
    d.proc.wait(30)
    again = daemons(config)
    again.wait_ready()
    all_done_once(tmp_path, config, names)


def test_redis_restarted_mid_burst_loses_nothing(tmp_path, daemons, redis_server):
    config, _, d, names = burst(tmp_path, daemons, redis_server)
    wait_for(lambda: d.saw("job done"), 120, what="the first job done")
    redis_server.stop()
    wait_for(lambda: d.saw("cannot reach Redis: jobs wait in the state file"), 60, what="the daemon noticing")
    redis_server.start()
    all_done_once(tmp_path, config, names)
    assert d.saw("Redis reachable again")


def test_redis_down_the_daemon_takes_inputs_and_catches_up(tmp_path, daemons):
    from conftest import RedisServer
    port = free_port()
    config = redis_config(tmp_path, f"redis://127.0.0.1:{port}/0")
    names = ["a.png", "b.png"]
    (tmp_path / "inbox").mkdir()
    r = subprocess.run([sys.executable, "-m", "nstd", "check", "--config", str(config)], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 0 and "Redis does not answer" in r.stderr
    d = daemons(config)
    d.wait_ready()
    drop(tmp_path, names)
    wait_for(lambda: len([r for r in job_rows(config) if r["state"] == "queued"]) == 2, 60,
             what="both inputs accepted and queued in SQLite")
    status = subprocess.run([sys.executable, "-m", "nstd", "status", "--config", str(config)], capture_output=True,
                            text=True, cwd=ROOT)
    assert "REDIS DOWN" in status.stdout
    facts = json.loads(subprocess.run([sys.executable, "-m", "nstd", "status", "--json", "--config", str(config)],
                                      capture_output=True, text=True, cwd=ROOT).stdout)
    assert facts["redis"]["reachable"] is False
    server = RedisServer(tmp_path / "redis", port)
    try:
        w = daemons(config, command="worker")
        all_done_once(tmp_path, config, names)
        facts = json.loads(subprocess.run([sys.executable, "-m", "nstd", "status", "--json", "--config",
                                           str(config)], capture_output=True, text=True, cwd=ROOT).stdout)
        assert facts["redis"]["reachable"] and [h["host"] for h in facts["redis"]["workers"]] == [HOST]
        assert w.saw("worker ready")
    finally:
        server.stop()


def test_a_worker_host_that_cannot_start_says_why(tmp_path, redis_server):
    config = redis_config(tmp_path, redis_server.url)
    config.write_text(config.read_text() + "  weights: /nonexistent/vgg19.pth\n")
    r = subprocess.run([sys.executable, "-m", "nstd", "worker", "--config", str(config)], capture_output=True,
                       text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 3 and "vgg19.pth" in r.stderr
    local = write_config(tmp_path / "local")
    r = subprocess.run([sys.executable, "-m", "nstd", "worker", "--config", str(local)], capture_output=True,
                       text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2 and "worker.backend" in r.stderr


def test_a_job_recorded_as_sent_but_not_in_redis_is_sent_again(tmp_path, daemons, redis_server):
    """The daemon killed between claiming a job and sending it, or Redis restarted without its data:
    the state file says running, Redis holds nothing. The reconcile queues it again."""
    from nstd.config import load_config
    from nstd.core.jobs import job_key
    from nstd.store import Store
    import hashlib

    config = redis_config(tmp_path, redis_server.url)
    c = load_config(config)
    photo = tmp_path / "inbox" / "lost.png"
    photo.parent.mkdir()
    photo.write_bytes(png(7))
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    spec = c.rules[0].jobs[0]
    store = Store(c.state)
    store.add_input("lost.png", str(photo), sha, photo.stat().st_size,
                    [(job_key(sha, spec), spec.rule, spec.style, spec.as_stored())])
    store.claim_next()
    store.set_dispatch(1, "a-message-redis-never-saw")
    store.close()
    w = daemons(config, command="worker")
    d = daemons(config)
    d.wait_ready()
    wait_for(lambda: d.saw("job taken back: queued again, no attempt used", job_id=1), 60, what="the lease check")
    all_done_once(tmp_path, config, ["lost.png"])
    assert w.saw("job finished", job_id=1)


def test_reports_the_daemon_cannot_read_are_set_aside_and_painting_goes_on(tmp_path, daemons, redis_server):
    """A worker host of another version sends a field more; a stray client sends garbage; a report
    names a job this daemon never had. None of them may stop the daemon (the redelivery after a
    restart would stop it again, for ever)."""
    from nstd.work.remote import broker as shared
    from nstd.work.protocol import Progress

    config = redis_config(tmp_path, redis_server.url, iterations=4)
    (tmp_path / "inbox").mkdir()
    d = daemons(config)
    d.wait_ready()
    broker = shared.make_broker(redis_server.url, 3)
    v = {"protocol": shared.PROTOCOL}
    stray = [("failed", {"job_id": "x' OR 1", "error": 3, **v}), ("exploded", {"job_id": 1, **v}),
             ("done", {"outputs": {}, **v}), ("done", {"job_id": 1, "outputs": {}}),   # the last: no protocol
             ("progress", {"job_id": 1, "progress": {}, "from_a_newer_version": 1, **v})]
    for kind, fields in stray:
        broker.enqueue(shared.dramatiq.Message(queue_name=shared.REPORT_QUEUE, actor_name="report",
                                               args=(kind, fields), kwargs={}, options={}))
    broker.enqueue(shared.report_message(Progress(job_id=999, progress={})))
    wait_for(lambda: len(d.saw("a worker's report could not be read: set aside")) == 4, 60, what="four set aside")
    assert any("of protocol none, and this nstd speaks" in e["cause"]
               for e in d.saw("a worker's report could not be read: set aside"))
    aside = [json.loads(e) for e in broker.client.lrange(shared.SET_ASIDE, 0, -1)]
    assert len(aside) == 4 and {a["what"] for a in aside} == {"report"} and any("x' OR 1" in a["body"] for a in aside)
    assert d.saw("a worker's report has fields this version does not know (another nstd version on a worker "
                 "host?): read without them", fields=["from_a_newer_version"])
    wait_for(lambda: d.saw("a worker's report names no job of this daemon: dropped", job_id=999), 60,
             what="the report for no job")
    w = daemons(config, command="worker")
    drop(tmp_path, ["photo.png"])
    all_done_once(tmp_path, config, ["photo.png"])
    assert d.proc.poll() is None and w.saw("job finished", job_id=1)
    broker.close()


def test_a_host_that_cannot_see_the_folders_stops_and_blames_no_photo(tmp_path, daemons, redis_server):
    config = redis_config(tmp_path, redis_server.url, iterations=4)
    blind_config = tmp_path / "blind.yaml"
    mount = tmp_path.parent / f"{tmp_path.name}-mount"               # the share as this host mounts it
    blind_config.write_text(config.read_text() + f"  path_map:\n    {tmp_path}: {mount}\n")
    (tmp_path / "inbox").mkdir()
    d = daemons(config)
    d.wait_ready()
    blind = daemons(blind_config, command="worker")
    waits = wait_for(lambda: blind.saw("worker host waits: it does not see the shared folders"), 120,
                     what="the host waiting for its share")
    assert f"the inbox {tmp_path / 'inbox'} is {mount / 'inbox'} on this host" in waits[0]["cause"]
    mount.symlink_to(tmp_path)                                          # mounted: the host starts
    wait_for(lambda: blind.saw("worker ready"), 120, what="the host, once it sees the share")
    mount.unlink()                                                      # the share goes away under it
    drop(tmp_path, ["photo.png"])
    wait_for(lambda: blind.proc.poll() is not None, 120, what="the blind host to stop itself")
    assert blind.proc.returncode == 3 and blind.saw("worker host stops: it cannot do the work", job_id=1)
    good = daemons(config, command="worker")
    all_done_once(tmp_path, config, ["photo.png"])                     # painted, never quarantined
    assert good.saw("job finished", job_id=1) and job_rows(config)[0]["attempts"] == 1
    assert not (tmp_path / "failed").exists() or list((tmp_path / "failed").iterdir()) == []


def test_two_installs_on_one_redis_database_never_record_each_others_paintings(tmp_path, daemons, redis_server):
    config_a = redis_config(tmp_path / "a", redis_server.url, iterations=4)
    config_b = redis_config(tmp_path / "b", redis_server.url, iterations=4)
    for folder in ("a", "b"):
        (tmp_path / folder / "inbox").mkdir()
    a = daemons(config_a)
    a.wait_ready()
    wait_for(lambda: a.saw("dispatching to Redis"), 60, what="the first install dispatching")
    b = daemons(config_b)
    b.wait_ready()
    refusal = ("another nstd install uses this Redis database: not dispatching or reading reports until it "
               "stops (give each install its own database, e.g. redis://host:6379/1)")
    wait_for(lambda: b.saw(refusal), 60, what="the second install refusing the shared database")
    w = daemons(config_a, command="worker")
    drop(tmp_path / "a", ["photo.png"])
    drop(tmp_path / "b", ["other.png"])
    all_done_once(tmp_path / "a", config_a, ["photo.png"])
    wait_for(lambda: len(job_rows(config_b)) == 1, 60, what="the second install's photo queued")
    assert job_rows(config_b)[0]["state"] == "queued"                  # nothing of the first install's applied
    assert not b.saw("job done") and b.proc.poll() is None
    assert a.stop() == 0                                               # the first install goes away
    wait_for(lambda: b.saw("this Redis database is ours again: dispatching"), 120, what="the database free")
    all_done_once(tmp_path / "b", config_b, ["other.png"])
    assert w.saw("job finished", job_id=1)
