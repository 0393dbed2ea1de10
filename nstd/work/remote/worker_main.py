"""`nstd worker --config FILE`: one worker host, one job at a time, from Redis.

Loads the engine once and keeps it warm (style images cached, as the local worker does), then runs
a Dramatiq worker with one thread and a prefetch of one, so that a host never holds a job it is
not painting. Each job is the local worker's code (`nstd.painting`); its reports go to the
daemon through Redis. Paths in a job are the daemon's; `worker.path_map` turns them into this
host's (and back, for what is reported). The time limit is `worker.job_timeout_minutes`, or a day.
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

PRESENCE_SECONDS = 5.0
NO_LIMIT_MS = 24 * 3600 * 1000


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
        elif isinstance(message, Done):
            out = dict(message.outputs)
            for k in ("image", "log", "plot"):
                if k in out:
                    out[k] = paths.there(out[k])
            message = Done(message.job_id, {**out, "host": HOST}, key=message.key)
        elif isinstance(message, Failed):
            message = Failed(message.job_id, f"{message.error} (on {HOST})", message.permanent,
                             message.environmental, key=message.key)
        broker.enqueue(shared.report_message(message))

    def stop_host(why: str, job_id, key: str) -> None:
        """This host cannot do the work (it is the host's fault, not the photo's): the job goes back
        without using an attempt, and the host takes no more jobs."""
        blind.append(why)
        log.error("worker host stops: it cannot do the work", cause=why, job_id=job_id)
        if isinstance(job_id, int):
            broker.enqueue(shared.report_message(Failed(job_id, f"{why} (on {HOST})", permanent=False,
                                                        environmental=True, key=key)))
        stop.set()

    def paint_job(fields: dict) -> None:
        try:
            order = shared.order_from(fields)
        except shared.OtherProtocol as e:
            stop_host(str(e), fields.get("id"), str(fields.get("key", "")))
            return
        except (TypeError, KeyError, ValueError) as e:  # not an order at all: nobody's job to give back
            log.error("a paint order that could not be read: dropped", cause=f"{type(e).__name__}: {e}")
            return
        painting["key"] = order.key
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

    limit = int(w.job_timeout_minutes * 60_000) or NO_LIMIT_MS
    dramatiq.actor(paint_job, actor_name="paint", queue_name=shared.PAINT_QUEUE, max_retries=0,
                   time_limit=limit, broker=broker)
    worker = dramatiq.Worker(broker, queues={shared.PAINT_QUEUE}, worker_threads=1)
    worker.queue_prefetch = 1
    stop = threading.Event()
    blind: list[str] = []  # why this host stopped itself, if it did

    def beat() -> None:
        while not stop.wait(PRESENCE_SECONDS):
            publish()

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

