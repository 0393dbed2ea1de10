"""Leases, time limits and host rotation of the redis backend, against a real redis-server, real
`nstd worker` hosts and a real daemon: no job is "running" without a holder, the time limit holds
on worker hosts, and a host that keeps failing on its own account is taken out, not its photos."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from conftest import ROOT, job_rows, needs_redis, wait_for
from test_scaleout import HOST, all_done_once, drop, one_photo_on_one_host, redis_config

pytestmark = [pytest.mark.slow, needs_redis]


def test_a_job_whose_host_never_acks_it_is_taken_back_and_painted_once(tmp_path, daemons, redis_server):
    """The state Redis stopped mid-job left behind (issue 21.3): a paint message fetched by a host
    that is alive for Dramatiq but never acks it and paints nothing. Without a lease the job was
    "running" for ever."""
    import hashlib

    import redis

    from nstd.config import load_config
    from nstd.core.jobs import job_key
    from nstd.store import Store
    from nstd.work.recorder import job_order, result_path
    from nstd.work.remote import broker as shared

    # A long heartbeat: Dramatiq itself would hand the message on only after ten minutes.
    config = redis_config(tmp_path, redis_server.url, iterations=4)
    config.write_text(config.read_text().replace("redis_heartbeat_seconds: 3", "redis_heartbeat_seconds: 600"))
    c = load_config(config)
    photo = tmp_path / "inbox" / "held.png"
    photo.parent.mkdir()
    drop(tmp_path, ["held.png"])
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    spec = c.rules[0].jobs[0]
    store = Store(c.state)
    store.add_input("held.png", str(photo), sha, photo.stat().st_size,
                    [(job_key(sha, spec), spec.rule, spec.style, spec.as_stored())])
    job = store.claim_next()
    out = result_path(c, job)
    broker = shared.make_broker(redis_server.url, 600)
    sent = broker.enqueue(shared.paint_message(job_order(job, out, c)))
    mid = sent.options["redis_message_id"]
    store.set_dispatch(job.id, mid)
    store.close()
    client = redis.Redis.from_url(redis_server.url)
    ghost_acks = f"{shared.NAMESPACE}:__acks__.ghost.{shared.PAINT_QUEUE}"
    client.lrem(shared.PAINT_IDS, 0, mid)                      # fetched by the ghost, never acked
    client.sadd(ghost_acks, mid)
    client.zadd(f"{shared.NAMESPACE}:__heartbeats__", {"ghost": int(time.time() * 1000)})
    w = daemons(config, command="worker")
    d = daemons(config)
    d.wait_ready()
    taken = wait_for(lambda: d.saw("job taken back: queued again, no attempt used", job_id=1), 120,
                     what="the lease to run out")
    assert "no worker host holds it" in taken[0]["why"]
    all_done_once(tmp_path, config, ["held.png"])
    assert w.saw("job finished", job_id=1) and job_rows(config)[0]["attempts"] == 1
    assert not client.hexists(shared.PAINT_BODIES, mid) and not client.sismember(ghost_acks, mid)
    broker.close()
    client.close()


def test_redis_stopped_for_two_minutes_mid_job_the_photo_is_painted_once(tmp_path, daemons, redis_server):
    config, w, d = one_photo_on_one_host(tmp_path, daemons, redis_server, iterations=1500)
    wait_for(lambda: job_rows(config) and job_rows(config)[0]["progress"], 120, what="the job under way")
    redis_server.stop()
    stopped = time.monotonic()
    wait_for(lambda: w.saw("cannot reach Redis: progress not reported", job_id=1), 60,
             what="the host painting on without Redis")
    wait_for(lambda: time.monotonic() - stopped >= 120, 130, interval=1, what="two minutes without Redis")
    redis_server.start()
    all_done_once(tmp_path, config, ["photo.png"])
    assert job_rows(config)[0]["attempts"] == 1
    assert len(w.saw("job running", job_id=1)) == 1                  # painted once, not twice
    assert d.saw("Redis reachable again")


def test_the_time_limit_holds_on_a_worker_host(tmp_path, daemons, redis_server):
    config = redis_config(tmp_path, redis_server.url, iterations=20000)
    config.write_text(config.read_text() + "  job_timeout_minutes: 0.05\n  max_attempts: 2\n")
    (tmp_path / "inbox").mkdir()
    w = daemons(config, command="worker")
    d = daemons(config)
    d.wait_ready()
    drop(tmp_path, ["slow.png"])
    wait_for(lambda: (tmp_path / "failed" / "slow.png.error.json").is_file(), 240, what="the photo in failed/")
    reason = json.loads((tmp_path / "failed" / "slow.png.error.json").read_text())
    assert "ran past worker.job_timeout_minutes (0.05)" in json.dumps(reason)
    row = job_rows(config)[0]
    assert row["state"] == "failed" and row["attempts"] == 2
    assert w.proc.poll() is None and len(w.saw("job finished")) == 2   # stopped by the host, which goes on
    assert not d.saw("a worker host failed on its own account")        # the limit is not the host's fault


def test_a_host_failing_on_its_own_account_is_taken_out_of_rotation_not_the_photo(tmp_path, daemons,
                                                                                  redis_server):
    config = redis_config(tmp_path, redis_server.url, iterations=4)
    broken = tmp_path / "broken.yaml"                                  # its outbox mount cannot be written
    broken.write_text(config.read_text() + f"  path_map:\n    {tmp_path / 'outbox'}: /proc/nstd-no-outbox\n")
    (tmp_path / "inbox").mkdir()
    d = daemons(config)
    d.wait_ready()
    bad = daemons(broken, command="worker")
    wait_for(lambda: bad.saw("worker ready"), 120, what="the broken host")
    drop(tmp_path, ["photo.png"])
    wait_for(lambda: bad.proc.poll() is not None, 180, what="the broken host to stop")
    assert bad.proc.returncode == 3
    assert "out of rotation" in bad.saw("worker host stops: it cannot do the work")[-1]["cause"]
    out = d.saw("worker host taken out of rotation: restart `nstd worker` there once it is mended")
    assert out and out[0]["host"] == HOST and out[0]["failures_in_a_row"] == 3
    status = subprocess.run([sys.executable, "-m", "nstd", "status", "--config", str(config)],
                            capture_output=True, text=True, cwd=ROOT).stdout
    assert f"OUT OF ROTATION: {HOST}" in status
    # The photo waits (queued, or sent to Redis for the next host), blamed for nothing.
    assert job_rows(config)[0]["state"] in ("queued", "running") and job_rows(config)[0]["attempts"] <= 1
    good = daemons(config, command="worker")                           # mended and restarted
    all_done_once(tmp_path, config, ["photo.png"])
    assert good.saw("worker host back in rotation: restarted after the daemon took it out")
    assert job_rows(config)[0]["attempts"] == 1
    assert not (tmp_path / "failed").exists() or list((tmp_path / "failed").iterdir()) == []


def test_a_burst_over_two_hosts_survives_redis_host_and_daemon_faults(tmp_path):
    """The short run of `tests/fleet_soak.py`: every photo once, one result naming its hash, none failed."""
    from fleet_chaos import kept_the_promise, run_fleet_chaos

    r = run_fleet_chaos(tmp_path, inputs=8, faults=6, seed=21, iterations=150)  # jobs span the faults
    assert kept_the_promise(r), {k: v for k, v in r.items() if k != "config"}


def test_a_host_partitioned_mid_job_loses_it_to_the_other_and_one_result_stands(tmp_path, daemons, redis_server):
    """SIGSTOP: the host is alive but silent (a network partition, a hung kernel). Its job goes to
    the other host; when it wakes, it finishes painting, finds the other's result in place and
    leaves it (image and loss log untouched), and its report changes nothing."""
    import signal

    config, first, d = one_photo_on_one_host(tmp_path, daemons, redis_server, iterations=600)
    wait_for(lambda: job_rows(config)[0]["progress"], 60, what="the first host painting")
    first.proc.send_signal(signal.SIGSTOP)  # before the second host starts, or the first may finish first
    try:
        second = daemons(config, command="worker")
        wait_for(lambda: second.saw("worker ready"), 120, what="the second worker host")
        wait_for(lambda: second.saw("job running", job_id=1), 180, what="the job handed to the second host")
        all_done_once(tmp_path, config, ["photo.png"])
        image = next((tmp_path / "outbox").rglob("photo__stripes.png"))
        standing = image.stat().st_ino, image.read_bytes(), image.with_suffix(".json").read_bytes()
    finally:
        first.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: first.saw("job finished", job_id=1), 180, what="the woken host to end its copy")
    assert first.saw("result already in place: not painted over", job_id=1)
    assert first.proc.poll() is None
    all_done_once(tmp_path, config, ["photo.png"])                    # still one result, one job, done
    assert (image.stat().st_ino, image.read_bytes(), image.with_suffix(".json").read_bytes()) == standing
    assert job_rows(config)[0]["attempts"] == 1
