"""Redis misbehaving beyond a restart (issue 32 item 7), against a real redis-server, a real
`nstd worker` host and a real daemon: stalled (SIGSTOP) mid-job, full (at `maxmemory`), and
restarted without its data. Each ends with one result per photo, every job done, none "running"
and no photo failed or blamed."""

from __future__ import annotations

import shutil
import signal
import time

import pytest

from conftest import job_rows, needs_redis, png, wait_for
from test_scaleout import all_done_once, drop, one_photo_on_one_host, redis_config

pytestmark = [pytest.mark.slow, needs_redis]


def nothing_failed(tmp_path) -> bool:
    return not (tmp_path / "failed").exists() or list((tmp_path / "failed").iterdir()) == []


def test_redis_stalled_for_two_minutes_mid_job_the_photo_is_painted_once(tmp_path, daemons, redis_server):
    """SIGSTOP, not a stop: connections stay open and every command hangs, which a client without
    socket timeouts would wait on for ever (the daemon's loop with it)."""
    config, w, d = one_photo_on_one_host(tmp_path, daemons, redis_server, iterations=1500)
    wait_for(lambda: job_rows(config) and job_rows(config)[0]["progress"], 120, what="the job under way")
    redis_server.proc.send_signal(signal.SIGSTOP)
    stalled = time.monotonic()
    try:
        assert not w.saw("job finished", job_id=1)                      # mid-job, not after it
        (tmp_path / "inbox" / "during.png").write_bytes(png(77))          # the daemon still takes photos
        wait_for(lambda: d.saw("cannot reach Redis: jobs wait in the state file"), 60, what="the daemon noticing")
        wait_for(lambda: len(job_rows(config)) == 2, 60, what="the photo dropped during the stall queued")
        wait_for(lambda: time.monotonic() - stalled >= 120, 130, interval=1, what="two minutes stalled")
        assert d.proc.poll() is None and w.proc.poll() is None
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
    all_done_once(tmp_path, config, ["photo.png", "during.png"])
    assert d.saw("Redis reachable again")
    assert [r["attempts"] for r in job_rows(config)] == [1, 1]
    assert len(w.saw("job running", job_id=1)) == 1                      # painted once, not twice
    assert nothing_failed(tmp_path)


def test_redis_at_maxmemory_refuses_writes_and_nothing_is_lost(tmp_path, daemons, redis_server):
    """Redis full (maxmemory with noeviction: every write answered OOM): photos dropped then wait
    in the state file, none failed; once Redis has room they are painted, each once."""
    import redis

    config = redis_config(tmp_path, redis_server.url, iterations=20)
    (tmp_path / "inbox").mkdir()
    w = daemons(config, command="worker")
    wait_for(lambda: w.saw("worker ready"), 120, what="the worker host")
    d = daemons(config)
    d.wait_ready()
    client = redis.Redis.from_url(redis_server.url)
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)                                  # below what Redis already uses
    names = [f"full{i}.png" for i in range(3)]
    drop(tmp_path, names)
    wait_for(lambda: len(job_rows(config)) == 3, 60, what="the photos queued in the state file")
    wait_for(lambda: d.saw("cannot reach Redis: jobs wait in the state file"), 60, what="the refusal noticed")
    refused = d.saw("cannot reach Redis: jobs wait in the state file")[0]
    assert "maxmemory" in refused["error"] and refused["why"].startswith("Redis is at its maxmemory"), refused
    wait_for(lambda: len(d.saw("cannot reach Redis: jobs wait in the state file")) >= 2, 60, what="a retry refused")
    assert {r["state"] for r in job_rows(config)} <= {"queued"} and nothing_failed(tmp_path)
    assert w.proc.poll() is None                                       # the host waits too
    client.config_set("maxmemory", 0)
    all_done_once(tmp_path, config, names)
    assert [r["attempts"] for r in job_rows(config)] == [1, 1, 1] and nothing_failed(tmp_path)
    client.close()


def test_redis_restarted_without_its_data_mid_job_the_photo_is_painted_once(tmp_path, daemons, redis_server):
    """The queue, the host's ack and every presence key gone at once (a Redis on a tmpfs rebooted,
    a FLUSHALL): the host goes on painting and names its job again, so the daemon neither sends it
    a second time nor leaves it running; a photo dropped after the loss is sent anew."""
    config, w, d = one_photo_on_one_host(tmp_path, daemons, redis_server, iterations=1500)
    wait_for(lambda: job_rows(config) and job_rows(config)[0]["progress"], 120, what="the job under way")
    redis_server.stop()
    assert not w.saw("job finished", job_id=1)                          # mid-job, not after it
    shutil.rmtree(redis_server.folder)                                  # its append-only file with it
    redis_server.start()
    (tmp_path / "inbox" / "after.png").write_bytes(png(78))
    all_done_once(tmp_path, config, ["photo.png", "after.png"])
    assert [r["attempts"] for r in job_rows(config)] == [1, 1]
    assert len(w.saw("job running", job_id=1)) == 1                      # painted once, not twice
    assert nothing_failed(tmp_path)
