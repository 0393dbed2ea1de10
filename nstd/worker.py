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
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path

from . import logs
from .childproc import die_with_parent, ignore_terminal_signals, requests
from .protocol import BootError, Done, Failed, JobOrder, Ping, Pong, Progress, Ready, Run, Stop

BOOT_ERROR_EXIT = 3


class DaemonGone(Exception):
    pass


def main(conn: Connection, engine_options: dict, max_pixels: int, parent_pid: int,
         log_json: bool | None) -> None:
    die_with_parent(parent_pid)
    ignore_terminal_signals()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    logs.configure(json=log_json)
    from .engine import Engine, EngineError, EngineOptions

    try:
        engine = Engine(EngineOptions(**engine_options))
    except EngineError as e:
        conn.send(BootError(str(e)))
        sys.exit(BOOT_ERROR_EXIT)
    conn.send(Ready({"device": str(engine.device), "weights": engine.net.source,
                     "load_seconds": round(engine.load_seconds, 3), "pid": os.getpid()}))
    for message in requests(conn, parent_pid):
        if isinstance(message, Stop):
            return
        if isinstance(message, Ping):
            conn.send(Pong())
        elif isinstance(message, Run):
            _run_job(engine, conn, message.order, max_pixels, parent_pid)


_STYLE_IMAGES: dict[str, object] = {}  # decoded style images by path and stamp: a 49 MP style once
_STYLE_CACHE_SIZE = 4


def _style_image(path: str, stamp: str, max_pixels: int):
    from .images import load_image

    key = f"{path}:{stamp}"
    if key not in _STYLE_IMAGES:
        if len(_STYLE_IMAGES) >= _STYLE_CACHE_SIZE:
            _STYLE_IMAGES.pop(next(iter(_STYLE_IMAGES)))
        _STYLE_IMAGES[key] = load_image(path, max_pixels)
    return key, _STYLE_IMAGES[key]


def _run_job(engine, conn: Connection, job: JobOrder, max_pixels: int, parent_pid: int) -> None:
    import torch

    from .engine import EngineError, StyleImage, TransferParams
    from .errors import InputError
    from .fileids import file_sha256, file_stamp
    from .thumbs import preview_path, write_jpeg, write_thumbnails
    from .images import load_image
    from .lossplot import write_loss_plot
    from .names import shown
    from .outbox import loss_log, result_exists, write_result

    job_id = job.id
    image_path = Path(job.output)
    outbox = Path(job.outbox)
    preview_every = job.preview_every
    if result_exists(image_path, job.key, job.relpath):
        # A crash came between writing the result and recording it: done already, not again.
        conn.send(Done(job_id, {"image": str(image_path), "log": str(image_path.with_suffix(".json")),
                                "recovered": True}))
        return
    last_sent = [0.0]

    def progress(p) -> None:
        if os.getppid() != parent_pid:
            raise DaemonGone()
        if preview_every and p.done % preview_every == 0 and p.snapshot:
            try:
                write_jpeg(p.snapshot(), preview_path(outbox, job_id), side=512)
            except OSError:
                pass  # a preview is a courtesy; a full disk shows up when the result is written
        now = time.monotonic()
        if now - last_sent[0] >= 1.0 or p.done == p.total:
            last_sent[0] = now
            conn.send(Progress(job_id, {"done": p.done, "total": p.total,
                                            "percent": round(100 * p.fraction, 1),
                                            "it_per_s": round(p.iterations_per_second, 3),
                                            "eta_s": round((p.total - p.done) / p.iterations_per_second, 1)
                                            if p.iterations_per_second else None,
                                            "loss": p.losses["total"] if p.losses else None}))

    try:
        if not Path(job.input).is_file():
            raise FileNotFoundError(job.input)
        if file_sha256(job.input) != job.sha256:
            conn.send(Failed(job_id, "the input was replaced after it was queued; the new version is queued "
                                     "on its own", permanent=True))
            return
        content = load_image(job.input, max_pixels)
        styles = []
        for ref in job.images:
            # Path, size and mtime: an edited style image gets its Gram targets computed afresh.
            key, image = _style_image(ref["path"], file_stamp(ref["path"]), max_pixels)
            styles.append(StyleImage(image, ref["weight"], key))
        params = TransferParams(**{k: tuple(v) if isinstance(v, list) else v for k, v in job.params.items()})
        result = engine.run(content, styles, params, progress=progress)
        log = loss_log(result, job_id=job_id, job_key=job.key, input=job.relpath, input_sha256=job.sha256,
                       rule=job.rule, style=job.style, style_files=list(job.images))
        try:
            # Plot and thumbnails first: once the image and log are in place the job counts as done.
            plot = write_loss_plot(result.trace, image_path, title=f"{shown(job.relpath)} / {job.style}")
            thumbs = write_thumbnails(outbox, job_id, job.sha256, content,
                                      [(s.key, s.image) for s in styles],
                                      result.image)
            image, log_file = write_result(result.image, log, image_path)
            preview_path(outbox, job_id).unlink(missing_ok=True)
        except OSError as e:
            # Outbox not writable, disk full: the job is fine, the place is not. Not an attempt.
            conn.send(Failed(job_id, f"cannot write the results to {image_path.parent}: {e}", permanent=False,
                             environmental=True))
            return
    except DaemonGone:
        sys.exit(1)
    except FileNotFoundError:
        conn.send(Failed(job_id, f"{job.input}: the input file is gone", permanent=True))
    except (InputError, EngineError) as e:
        conn.send(Failed(job_id, str(e), permanent=True))
    except torch.OutOfMemoryError as e:
        conn.send(Failed(job_id, f"out of memory: {e}", permanent=False))
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception as e:  # one job's surprise must not end the worker: report, retry later
        conn.send(Failed(job_id, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}", permanent=False))
    else:
        final = {k: v for k, v in result.final.items() if k != "style_layers"}
        conn.send(Done(job_id, {"image": str(image), "log": str(log_file), "plot": str(plot), "thumbs": thumbs,
                                "final": final, "seconds": result.info["timings"]["total_seconds"],
                                "seconds_per_iteration": result.info["timings"].get("seconds_per_iteration"),
                                "device": result.info["device"]}))


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
