"""The worker: a child process that owns the GPU (or CPU) and runs one job at a time.

Initialise once (load VGG-19, keep it warm and keep style targets cached), loop over jobs sent
by the daemon through a pipe, shut down on request or when the daemon disappears. Errors of one
job are reported back and the loop goes on; only the unexpected ends the process, and the daemon
restarts it. The messages are the typed ones of `nstd.protocol`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
from multiprocessing.connection import Connection

from nstd.core import logs
from nstd.core.childproc import die_with_parent, ignore_terminal_signals, requests

from .painting import Abandoned, paint
from .protocol import BootError, JobOrder, Ping, Pong, Ready, Run, Stop

BOOT_ERROR_EXIT = 3


def main(conn: Connection, engine_options: dict, max_pixels: int, parent_pid: int,
         log_json: bool | None) -> None:
    die_with_parent(parent_pid)
    ignore_terminal_signals()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    logs.configure(json=log_json)
    from nstd.engine import Engine, EngineError, EngineOptions

    try:
        engine = Engine(EngineOptions(**engine_options))
    except EngineError as e:
        conn.send(BootError(str(e)))
        sys.exit(BOOT_ERROR_EXIT)
    conn.send(Ready({"device": str(engine.device), "weights": engine.net.source,
                     "load_seconds": round(engine.load_seconds, 3), "pid": os.getpid(), **engine.threads}))
    for message in requests(conn, parent_pid):
        if isinstance(message, Stop):
            return
        if isinstance(message, Ping):
            conn.send(Pong())
        elif isinstance(message, Run):
            try:
                paint(engine, message.order, max_pixels, conn.send, still_wanted=lambda: os.getppid() == parent_pid)
            except Abandoned:
                sys.exit(1)


class WorkerProcess:
    """The daemon's handle on its worker: start, send, receive, stop."""

    def __init__(self, engine_options: dict, max_pixels: int, log_json: bool | None):
        ctx = mp.get_context("spawn")  # never fork a process that has watchdog threads
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=main, name="nstd-worker", daemon=True,
                                   args=(child, engine_options, max_pixels, os.getpid(), log_json))
        self.process.start()
        child.close()
        self.ready = False
        self.job_id: int | None = None
        self.job_started: float | None = None
        self.death_cause: str | None = None  # set by the daemon when it kills a stalled worker
        self.info: dict = {}

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def exitcode(self) -> int | None:
        return self.process.exitcode

    def alive(self) -> bool:
        return self.process.is_alive()

    def send_job(self, order: JobOrder) -> None:
        self.job_id = order.id
        self.conn.send(Run(order))

    def ping(self) -> None:
        try:
            self.conn.send(Ping())
        except OSError:
            pass  # a dead worker is noticed by alive()

    def terminate_now(self) -> None:
        """SIGKILL, which also ends a stopped (SIGSTOP) process; reaped so that alive() says so."""
        self.process.kill()
        self.process.join(5)

    def messages(self, timeout: float = 0.0) -> list:
        out = []
        try:
            while self.conn.poll(timeout if not out else 0):
                out.append(self.conn.recv())
        except (EOFError, OSError):
            pass
        return out

    def stop(self, timeout: float = 5.0) -> None:
        try:
            self.conn.send(Stop())
        except (OSError, BrokenPipeError):
            pass
        self.process.join(timeout)
        self.kill()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()
