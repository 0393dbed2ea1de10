"""`nstd worker --config FILE`: one worker host, one job at a time, from Redis.

Loads the engine once and keeps it warm (style images cached, as the local worker does), then runs
a Dramatiq worker with one thread and a prefetch of one, so that a host never holds a job it is
not painting. Each job is the local worker's code (`nstd.painting`); its reports go to the
daemon through Redis. Paths in a job are the daemon's; `worker.path_map` turns them into this
host's (and back, for what is reported). The time limit is the daemon's `worker.job_timeout_minutes`,
carried in each order and enforced by the painting itself.

Redis away mid-job: progress is dropped, the job goes on, and its last report (Done or Failed) is
sent again until Redis answers, for up to REPORT_PATIENCE_SECONDS; past that the daemon's lease
check takes the job back (finished, if its result is in place). A host the daemon took out of
rotation (repeated failures of its own) stops with exit 3 and is trusted again when restarted.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import structlog

from nstd.config import Config
from nstd.core.errors import WorkerStartError
from nstd.work.painting import HOST, paint
from nstd.work.protocol import Done, Failed, Progress

from . import broker as shared

# Dramatiq's own time limit is off: its timer thread starts only under the `dramatiq` command,
# and an exception thrown into a painting thread would skip the job's Failed report.
NO_LIMIT_MS = 365 * 24 * 3600 * 1000
REPORT_PATIENCE_SECONDS = 600.0
PROGRESS_MUTE_SECONDS = 15.0


class PathMap:
    """The daemon's paths to this host's and back, by longest matching prefix."""

    def __init__(self, mapping: dict[str, str]):
        self.there_here = sorted(((a.rstrip("/"), b.rstrip("/")) for a, b in mapping.items()),
                                 key=lambda p: -len(p[0]))

    def _swap(self, path: str, pairs) -> str:
        for src, dst in pairs:
            if path == src or path.startswith(src + "/"):
                return dst + path[len(src):]
        return path

    def here(self, path: str) -> str:
        return self._swap(path, self.there_here)

    def there(self, path: str) -> str:
        return self._swap(path, [(b, a) for a, b in self.there_here])


def folders_unseen(config: Config, paths: PathMap) -> str | None:
    """Why this host cannot do the work through its mounts (the inbox not a folder here, the outbox
    there but not writable); None when it can. An outbox not made yet is made with the first result."""
    from nstd.outbox.files import probe_writable

    inbox = paths.here(str(config.inbox))
    if not os.path.isdir(inbox):
        return (f"the inbox {config.inbox} is {inbox} on this host (worker.path_map), which is not a folder: "
                "mount the share or fix the map")
    outbox = Path(paths.here(str(config.outbox)))
    if outbox.is_dir():
        try:
            probe_writable(outbox)
        except OSError as e:
            return f"cannot write the outbox here: {e}"
    return None


def wait_for_the_folders(config: Config, paths: PathMap, log) -> None:
    """A host takes no job before it sees the shared folders: it would fail every photo it took.
    It waits for them (a share mounted later, a daemon started later) and says why every 30 s."""
    said = float("-inf")
    while (why := folders_unseen(config, paths)) is not None:
        if time.monotonic() - said >= 30:
            said = time.monotonic()
            log.error("worker host waits: it does not see the shared folders", cause=why)
        time.sleep(2)


def run(config: Config) -> int:
    import dramatiq

    from nstd.engine import Engine, EngineError

    structlog.contextvars.bind_contextvars(host=HOST)  # every line of a worker host names it
    log = structlog.get_logger("nstd.worker")
    w = config.worker
    try:
        engine = Engine(config.engine_options)
    except EngineError as e:
        log.error("worker cannot start", cause=str(e))
        raise WorkerStartError(str(config.path), str(e)) from None
    paths = PathMap(w.path_map)
    wait_for_the_folders(config, paths, log)
    broker = shared.make_broker(w.redis_url, w.redis_heartbeat_seconds)
    dramatiq.set_broker(broker)
    me = {"id": f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:6]}", "host": HOST, "pid": os.getpid(),
          "device": str(engine.device), "job": None, "progress": None, "started": time.time()}
    lock = threading.Lock()
    painting = {"key": ""}  # the key of the job in hand: every report names it
    progress_mute = [float("-inf")]

    def publish() -> None:
        with lock:
            me["seen"] = time.time()
            data = json.dumps(me)
        try:
            broker.client.hset(shared.PRESENCE, me["id"], data)
        except Exception as e:  # Redis away: the next beat tries again; Dramatiq reconnects itself
            log.warning("cannot reach Redis", error=str(e))

    def report(message) -> None:
        message = dataclasses.replace(message, key=painting["key"])
        if isinstance(message, Progress):
            with lock:
                me["progress"] = message.progress
            if time.monotonic() < progress_mute[0]:
                return
            try:
                broker.enqueue(shared.report_message(message))
            except Exception as e:  # a lost progress report costs nothing: the painting goes on
                # Not tried again for a while: a Redis that hangs costs each try a socket timeout.
                progress_mute[0] = time.monotonic() + PROGRESS_MUTE_SECONDS
                log.warning("cannot reach Redis: progress not reported", error=str(e), job_id=message.job_id,
                            next_try_in_s=PROGRESS_MUTE_SECONDS)
            return
        elif isinstance(message, Done):
            out = dict(message.outputs)
            if out.get("recovered"):
                log.info("result already in place: not painted over", job_id=message.job_id, image=out.get("image"))
            for k in ("image", "log", "plot"):
                if k in out:
                    out[k] = paths.there(out[k])
            message = Done(message.job_id, {**out, "host": HOST}, key=message.key)
        elif isinstance(message, Failed):
            message = Failed(message.job_id, f"{message.error} (on {HOST})", message.permanent,
                             message.environmental, key=message.key, host=HOST)
        send_until_delivered(message)

    def send_until_delivered(message) -> None:
        """The job's outcome is worth waiting for Redis: the presence still names the job meanwhile."""
        wait, given_up = 1.0, time.monotonic() + REPORT_PATIENCE_SECONDS
        while True:
            try:
                broker.enqueue(shared.report_message(message))
                return
            except Exception as e:
                if time.monotonic() > given_up:
                    log.error("cannot reach Redis: the job's report is given up; the daemon will take the job "
                              "back", error=str(e), job_id=message.job_id, report=type(message).__name__)
                    return
                log.warning("cannot reach Redis: the job's report waits", error=str(e), job_id=message.job_id,
                            retry_in_s=wait)
                time.sleep(wait)
                wait = min(wait * 2, 30.0)

    def stop_host(why: str, job_id, key: str) -> None:
        """This host cannot do the work (it is the host's fault, not the photo's): the job goes back
        without using an attempt, and the host takes no more jobs."""
        blind.append(why)
        log.error("worker host stops: it cannot do the work", cause=why, job_id=job_id)
        if isinstance(job_id, int):
            send_until_delivered(Failed(job_id, f"{why} (on {HOST})", permanent=False, environmental=True,
                                        key=key, host=HOST))
        stop.set()

    def benched() -> str | None:
        """Why the daemon took this host out of rotation, if it did."""
        try:
            facts = shared.out_of_rotation(broker.client).get(HOST)
        except Exception:
            return None  # Redis away: nothing is dispatched either
        return None if facts is None else (f"the daemon took this host out of rotation after {facts.get('failures')} "
                                           f"failures in a row (the last: {facts.get('last')}): fix it, then "
                                           "restart nstd worker")

    def paint_job(fields: dict) -> None:
        try:
            order = shared.order_from(fields)
        except shared.OtherProtocol as e:
            stop_host(str(e), fields.get("id"), str(fields.get("key", "")))
            return
        except (TypeError, KeyError, ValueError) as e:  # not an order at all: nobody's job to give back
            cause = f"{type(e).__name__}: {e}"
            try:
                shared.set_aside(broker.client, "paint order", cause, repr(fields))
            except Exception:
                pass  # Redis away: the log line below is the record
            log.error("a paint order that could not be read: set aside", cause=cause, kept_in=shared.SET_ASIDE)
            return
        painting["key"] = order.key
        if (why := benched()) is not None:
            stop_host(why, order.id, order.key)
            return
        order = dataclasses.replace(order, images=tuple({**r, "path": paths.here(r["path"])} for r in order.images),
                                    input=paths.here(order.input), output=paths.here(order.output),
                                    outbox=paths.here(order.outbox), root=paths.here(order.root) if order.root else "")
        if order.root and not os.path.isdir(order.root):
            # The daemon found the photo in this folder: if this host cannot see it, the host is
            # wrong (worker.path_map, a share not mounted), not the photo.
            stop_host(f"this host does not see the shared folders: {fields.get('root')} is {order.root} here "
                      "(worker.path_map), which is not a folder", order.id, order.key)
            return
        with lock:
            me["job"], me["progress"] = order.id, None
        publish()
        log.info("job running", job_id=order.id, input=order.relpath, style=order.style)
        try:
            paint(engine, order, w.max_pixels, report)
        finally:
            with lock:
                me["job"], me["progress"] = None, None
            publish()
        log.info("job finished", job_id=order.id)

    dramatiq.actor(paint_job, actor_name="paint", queue_name=shared.PAINT_QUEUE, max_retries=0,
                   time_limit=NO_LIMIT_MS, broker=broker)
    worker = dramatiq.Worker(broker, queues={shared.PAINT_QUEUE}, worker_threads=1)
    worker.queue_prefetch = 1
    stop = threading.Event()
    blind: list[str] = []  # why this host stopped itself, if it did

    def beat() -> None:
        while not stop.wait(shared.PRESENCE_SECONDS):
            publish()
            if me["job"] is None and (why := benched()) is not None:
                stop_host(why, None, "")

    try:
        if shared.back_in_rotation(broker.client, HOST):
            log.warning("worker host back in rotation: restarted after the daemon took it out")
    except Exception as e:
        log.warning("cannot reach Redis", error=str(e))

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    publish()
    threading.Thread(target=beat, name="nstd-presence", daemon=True).start()
    worker.start()
    log.info("worker ready", id=me["id"], pid=me["pid"], device=me["device"], redis=shared.redacted(w.redis_url),
             **engine.threads)
    stop.wait()
    log.info("worker stopping: the running job finishes first")
    worker.stop()
    try:
        broker.client.hdel(shared.PRESENCE, me["id"])
    except Exception:
        pass
    broker.close()
    if blind:
        raise WorkerStartError(str(config.path), blind[0])  # exit 3: systemd does not restart a blind host
    return 0

