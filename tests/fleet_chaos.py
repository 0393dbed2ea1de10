"""Faults-anywhere driver for the redis backend, shared by the suite (short) and `fleet_soak.py` (long).

A burst of photos over two worker hosts, while Redis, the hosts and the daemon are killed,
stopped (SIGSTOP) and restarted at random; then everything is left to finish. The promise
checked: every input once, done, with one result whose loss log names its input's hash; nothing
in failed/ (no fault here is a photo's); the state file intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from chaos import check_promise
from conftest import ROOT, RedisServer, png, wait_for, write_config

FAULTS = ("kill redis", "restart redis", "stop redis", "flush redis", "kill host", "stop host", "kill daemon")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Process:
    def __init__(self, config: Path, command: str, log: Path):
        self.config, self.command, self.log = config, command, log
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "nstd", "--log-json", self.command, "--config",
                                          str(self.config)], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.kill()


def _outage(seconds: float) -> None:
    """How long a fault lasts: the fault itself, chosen at random, not a wait for something to happen
    (every wait on the system's state goes through wait_for)."""
    time.sleep(seconds)


def _paused(proc: subprocess.Popen, seconds: float) -> None:
    proc.send_signal(signal.SIGSTOP)
    _outage(seconds)
    proc.send_signal(signal.SIGCONT)


def _fault(kind: str, rng: random.Random, redis: RedisServer, hosts: list[_Process], daemon: _Process) -> None:
    if kind == "kill redis":        # its AOF is fsynced on every write: it comes back with its data
        redis.proc.kill()
        redis.proc.wait()
        _outage(rng.uniform(1, 6))
        redis.start()
    elif kind == "restart redis":
        redis.stop()
        _outage(rng.uniform(1, 6))
        redis.start()
    elif kind == "stop redis":
        _paused(redis.proc, rng.uniform(2, 20))
    elif kind == "flush redis":     # a Redis that came back without its data
        import redis as client
        client.Redis(port=redis.port, socket_timeout=5).flushall()
    elif kind == "kill host":
        host = rng.choice(hosts)
        host.kill()
        host.start()
    elif kind == "stop host":
        _paused(rng.choice(hosts).proc, rng.uniform(2, 20))
    elif kind == "kill daemon":
        daemon.kill()
        _outage(rng.uniform(0, 3))
        daemon.start()


def _hashes_named(folder: Path, names: list[str]) -> list[str]:
    """Inputs whose result's loss log does not name the hash of the photo archived under that name."""
    wrong = []
    logs = {}
    for p in (folder / "outbox").glob("*/*.json"):
        if not p.parent.name.startswith("."):
            log = json.loads(p.read_text())
            logs[log.get("input")] = log.get("input_sha256")
    for n in names:
        archived = folder / "archive" / n
        if archived.is_file() and logs.get(n) != hashlib.sha256(archived.read_bytes()).hexdigest():
            wrong.append(n)
    return wrong


def run_fleet_chaos(folder: Path, inputs: int, faults: int, seed: int, max_gap: float = 8.0,
                    iterations: int = 30, finish_within: float = 1200.0) -> dict:
    rng = random.Random(seed)
    redis = RedisServer(folder / "redis", _free_port())
    config = write_config(folder, defaults={"size": 32, "iterations": iterations},
                          watch={"settle_seconds": 0.2, "decode_retries": 1},
                          extra=f"worker:\n  backend: redis\n  redis_url: {redis.url}\n"
                                "  redis_heartbeat_seconds: 5\n  max_attempts: 5\n")
    inbox = folder / "inbox"
    inbox.mkdir()
    names = [f"in{i:04d}.png" for i in range(inputs)]
    hosts = [_Process(config, "worker", folder / f"host{i}.log") for i in range(2)]
    daemon = _Process(config, "run", folder / "daemon.log")
    for i, name in enumerate(names):
        (inbox / name).write_bytes(png(i, (40, 30)))
    start = time.monotonic()
    done_faults = []
    try:
        for _ in range(faults):
            _outage(rng.uniform(0.5, max_gap))  # the system runs unharmed this long between faults
            kind = rng.choice(FAULTS)
            _fault(kind, rng, redis, hosts, daemon)
            done_faults.append(kind)
        faults_over = time.monotonic()

        def settled() -> bool:
            r = check_promise(folder, names)
            return r["lost"] == 0 and not r["left_in_inbox"]
        wait_for(settled, finish_within, interval=1.0, what="every photo done or quarantined")
        tail = time.monotonic() - faults_over
    finally:
        for p in (daemon, *hosts):
            p.stop()
        redis.stop()
    r = check_promise(folder, names)
    return {"inputs": inputs, "faults": done_faults, "minutes": (time.monotonic() - start) / 60,
            "settled_after_last_fault_s": round(tail, 1), "wrong_hash": _hashes_named(folder, names),
            "config": config, **r}


def kept_the_promise(r: dict) -> bool:
    return (r["lost"] == 0 and r["failed"] == 0 and r["done"] == r["inputs"] and not r["left_in_inbox"]
            and r["results"] == r["expected_results"] and not r["wrong_hash"] and not r["temps"]
            and r["integrity"] == "ok")
