"""Redis and worker-host faults in turn over a stream of photos (issue 32 items 7 and 8): a real
redis-server, two real `nstd worker` hosts and one real `nstd run` with `backend: redis`.

    .venv/bin/python bench/redis_faults.py [--per-fault 4] [--hold 8] [--iterations 200] [--flood 20]
                                           [--only NAME ...] [--json figures.json]

The faults: Redis stalled (SIGSTOP: connections open, every command hangs), Redis restarted
without its data (its append-only file deleted mid-job), Redis at `maxmemory` (every write
refused), and a worker host frozen (SIGSTOP) past its lease while the other host takes its job,
then woken (it must leave the other's result standing). Each runs as in machine_faults.py (half
its photos dropped, the fault started once one is painting on a host, the rest dropped, the fault
held, ended) and prints the same table: photos in, results out, duplicates, photos wrongly
failed, how soon the fault was told, the time to recover. Exits 1 if a photo is missing,
duplicated or failed, or a fault went untold. Needs redis-server on PATH; no root.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field

from machine_faults import Fault, Workspace, common_arguments, make_workspace, run_in_turn
from rig import Daemon, free_port, wait_for

from conftest import RedisServer

# A short heartbeat, so that a frozen host's job is handed on within seconds, not Dramatiq's minute.
HEARTBEAT_SECONDS = 5
REDIS_WAITS = "cannot reach Redis: jobs wait in the state file"


@dataclass
class RedisWorkspace(Workspace):
    redis: RedisServer | None = None
    hosts: list[Daemon] = field(default_factory=list)
    frozen: tuple[Daemon, int] | None = None   # the host stopped, and the job it was painting

    def start_hosts(self, count: int = 2) -> None:
        for i in range(count):
            host = Daemon(self.folder, self.config, command="worker", log_name=f"host{i}.log")
            wait_for(f"worker host {i}", lambda host=host: host.saw("worker ready"), 300)
            self.hosts.append(host)

    def painting(self, names: list[str]) -> bool:
        return any(e.get("input") in names for h in self.hosts for e in h.saw("job running"))

    def mark(self) -> dict:
        return {"daemon": len(self.daemon.events()), **{h.log_path.name: len(h.events()) for h in self.hosts}}

    def events_since(self, mark: dict) -> list[tuple[Daemon, dict]]:
        return super().events_since(mark) + [(h, e) for h in self.hosts
                                             for e in h.events()[mark.get(h.log_path.name, 0):]]

    def close(self) -> None:
        for host in self.hosts:
            if host.proc.poll() is None:
                host.proc.send_signal(signal.SIGCONT)
                host.stop()
        if self.redis is not None:
            self.redis.proc.send_signal(signal.SIGCONT)
            self.redis.stop()


def _client(ws: RedisWorkspace):
    import redis
    return redis.Redis(port=ws.redis.port, socket_timeout=10)


def _stall_redis(ws: RedisWorkspace) -> None:
    ws.redis.proc.send_signal(signal.SIGSTOP)


def _wake_redis(ws: RedisWorkspace) -> None:
    ws.redis.proc.send_signal(signal.SIGCONT)


def _lose_redis_data(ws: RedisWorkspace) -> None:
    """A Redis on a tmpfs rebooted: the queue, the hosts' acks and every presence key gone at once."""
    ws.redis.stop()
    shutil.rmtree(ws.redis.folder)
    ws.redis.start()


def _fill_redis(ws: RedisWorkspace) -> None:
    with _client(ws) as client:
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", 1)  # below what Redis already uses: every write answered OOM


def _make_room_in_redis(ws: RedisWorkspace) -> None:
    with _client(ws) as client:
        client.config_set("maxmemory", 0)


def _unfinished(host: Daemon) -> list[int]:
    finished = {e.get("job_id") for e in host.saw("job finished")}
    return [e["job_id"] for e in host.saw("job running") if e.get("job_id") not in finished]


def _freeze_a_painting_host(ws: RedisWorkspace) -> None:
    host, job_id = next((h, jobs[-1]) for h in ws.hosts if (jobs := _unfinished(h)))
    host.proc.send_signal(signal.SIGSTOP)
    ws.frozen = (host, job_id)


def _its_job_taken_by_another(ws: RedisWorkspace, mark: dict) -> bool:
    frozen, job_id = ws.frozen
    return any(proc in ws.hosts and proc is not frozen and e.get("event") == "job running"
               and e.get("job_id") == job_id for proc, e in ws.events_since(mark))


def _wake_the_frozen_host(ws: RedisWorkspace) -> None:
    """Woken, it paints on, finds the other's result in place and leaves it (tallied as a duplicate
    if it did not)."""
    host, job_id = ws.frozen
    host.proc.send_signal(signal.SIGCONT)
    wait_for("the woken host to end its copy", lambda: any(e.get("job_id") == job_id for e in host.saw("job finished")),
             300)
    ws.frozen = None


REDIS_FAULTS = [
    Fault("none (the baseline)", lambda ws: None, lambda ws: None),
    Fault("Redis stalled (SIGSTOP)", _stall_redis, _wake_redis, told=(REDIS_WAITS,)),
    # Nothing to tell: the hosts name their running jobs again and the daemon sends what Redis lost.
    Fault("Redis restarted without its data", _lose_redis_data, lambda ws: None),
    Fault("Redis at maxmemory", _fill_redis, _make_room_in_redis, told=(REDIS_WAITS,)),
    Fault("worker host frozen past its lease", _freeze_a_painting_host, _wake_the_frozen_host,
          told_by=_its_job_taken_by_another),
]


def main() -> int:
    ap = common_arguments(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    ap.add_argument("--iterations", type=int, default=200, help="per photo: long enough that faults land mid-job")
    ap.set_defaults(flood=20)
    args = ap.parse_args()
    if shutil.which("redis-server") is None:
        print("redis-server is not on PATH (apt-get install redis-server)")
        return 2
    port = free_port()
    ws = make_workspace(as_root=False, kind=RedisWorkspace, iterations=args.iterations,
                        extra=f"worker:\n  backend: redis\n  redis_url: redis://127.0.0.1:{port}/0\n"
                              f"  redis_heartbeat_seconds: {HEARTBEAT_SECONDS}\n")
    ws.redis = RedisServer(ws.folder / "redis", port)
    t0 = time.monotonic()
    try:
        ws.start_hosts()
    except BaseException:
        ws.close()
        raise
    print(f"  redis-server and two worker hosts up in {time.monotonic() - t0:.0f} s", flush=True)
    return run_in_turn(ws, REDIS_FAULTS, args, f"Redis and worker-host faults in turn, one real nstd run, two "
                       f"hosts (size 48, {args.iterations} iterations),", close=ws.close)


if __name__ == "__main__":
    sys.exit(main())
