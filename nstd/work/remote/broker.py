"""What the daemon and the worker hosts share: the Redis broker, the queues, the messages.

Jobs go to the `nstd-paint` queue as Dramatiq messages for the `paint` actor; what workers say back
(Progress, Done, Failed, as in `nstd.protocol`) goes to `nstd-reports`, which the daemon consumes
itself and acknowledges only once it has recorded the report. Dramatiq's Redis broker acks a
message after the actor returns and hands the unacknowledged messages of a worker whose heartbeat
stopped to another; a long job keeps its worker's heartbeat going, so it is never handed out twice
merely for being long. Each worker also keeps its presence (host, device, job, progress) in a Redis
hash for `nstd status`, the web page and the daemon's count of workers.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Optional

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from nstd.work.protocol import Done, Failed, JobOrder, Progress

NAMESPACE = "nstd"
PAINT_QUEUE = "nstd-paint"
REPORT_QUEUE = "nstd-reports"
PRESENCE = f"{NAMESPACE}:workers"
# Maintenance (giving a dead worker's messages to the others) runs on this share of broker
# commands, out of a million; Dramatiq's 0.1 % would leave a dead host's job waiting for minutes
# on a quiet queue. It is a few Redis commands over a handful of keys.
MAINTENANCE_CHANCE = 50_000
REDIS_TIMEOUT_SECONDS = 5.0

REPORTS = {"progress": Progress, "done": Done, "failed": Failed}
# The version of what the daemon and the hosts say to each other: every message carries it, and one
# of another version is refused by name on both sides, never half-understood.
PROTOCOL = 1
OWNER = f"{NAMESPACE}:daemon"
OWNER_SECONDS = 30


def claim_database(client, me: dict) -> Optional[dict]:
    """Hold this Redis database for one install (refreshed while it runs, free 30 s after it stops).
    None when it is ours; else the facts of the other install that holds it: two installs on one
    database would consume each other's reports and record each other's paintings."""
    mine = json.dumps(me, sort_keys=True)
    if client.set(OWNER, mine, nx=True, ex=OWNER_SECONDS):
        return None
    held = client.get(OWNER)
    try:
        other = json.loads(held) if held else None
    except ValueError:
        other = {"id": repr(held)[:80]}
    if other is None or other.get("id") == me["id"]:
        client.set(OWNER, mine, ex=OWNER_SECONDS)
        return None
    return other


def make_broker(url: str, heartbeat_seconds: float) -> RedisBroker:
    broker = RedisBroker(url=url, namespace=NAMESPACE, heartbeat_timeout=int(heartbeat_seconds * 1000),
                         maintenance_chance=MAINTENANCE_CHANCE, socket_timeout=REDIS_TIMEOUT_SECONDS,
                         socket_connect_timeout=REDIS_TIMEOUT_SECONDS, health_check_interval=30)
    broker.declare_queue(PAINT_QUEUE)
    broker.declare_queue(REPORT_QUEUE)
    return broker


def paint_message(order: JobOrder) -> dramatiq.Message:
    return dramatiq.Message(queue_name=PAINT_QUEUE, actor_name="paint",
                            args=({**dataclasses.asdict(order), "protocol": PROTOCOL},), kwargs={}, options={})


def report_message(report) -> dramatiq.Message:
    kind = next(k for k, cls in REPORTS.items() if isinstance(report, cls))
    return dramatiq.Message(queue_name=REPORT_QUEUE, actor_name="report",
                            args=(kind, {**dataclasses.asdict(report), "protocol": PROTOCOL}), kwargs={}, options={})


class OtherProtocol(ValueError):
    """A message of another protocol version: from a host or daemon of another nstd release."""


def _same_protocol(fields: dict, what: str) -> None:
    theirs = fields.get("protocol") if isinstance(fields, dict) else None
    if theirs != PROTOCOL:
        raise OtherProtocol(f"{what} of protocol {theirs if theirs is not None else 'none'}, and this nstd "
                            f"speaks {PROTOCOL}: run one nstd release on the daemon and every worker host")


class MalformedReport(ValueError):
    """A report the daemon cannot read (another nstd version, a stray client): set aside, logged."""


def report_from(message) -> tuple[object, list[str]]:
    """(the report, the fields it carried that this version does not know). A report from a worker
    host of a newer version is read by the fields both know; one missing a field or of an unknown
    kind raises MalformedReport, so the daemon drops it instead of dying on it (and again on the
    redelivery, for ever)."""
    try:
        kind, fields = message.args
        _same_protocol(fields, "a report")
        cls = REPORTS[kind]
        known = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(fields) - known - {"protocol"})
        report = cls(**{k: v for k, v in fields.items() if k in known})
        if not isinstance(report.job_id, int) or isinstance(report.job_id, bool):
            raise TypeError(f"job_id {report.job_id!r} is not a job id")
        return report, extra
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise MalformedReport(f"{type(e).__name__}: {e}") from None


def order_from(fields: dict) -> JobOrder:
    """The paint order in a message; OtherProtocol for one of another release."""
    _same_protocol(fields, "a paint order")
    known = {f.name for f in dataclasses.fields(JobOrder)} - {"images"}
    return JobOrder(**{k: v for k, v in fields.items() if k in known}, images=tuple(fields["images"]))


PAINT_IDS = f"{NAMESPACE}:{PAINT_QUEUE}"          # Dramatiq's list of waiting message ids
PAINT_BODIES = f"{PAINT_IDS}.msgs"                # id -> message, until the ack
PAINT_ACKS = f"{NAMESPACE}:__acks__.*.{PAINT_QUEUE}"  # per worker: ids fetched, not yet acked


def in_redis(client, redis_message_id: str) -> bool:
    """True while a paint message is queued or being painted (Dramatiq drops it on the ack)."""
    return bool(client.hexists(PAINT_BODIES, redis_message_id))


def waiting(client) -> set[str]:
    """Ids of the paint messages no host has taken yet."""
    return {m.decode() if isinstance(m, bytes) else m for m in client.lrange(PAINT_IDS, 0, -1)}


def withdraw(client, redis_message_id: str) -> None:
    """A paint message out of Redis wherever it is (waiting, or fetched by a host that will never
    ack it), so that no host takes it again once the daemon has taken the job back."""
    acks = list(client.scan_iter(match=PAINT_ACKS, count=1000))
    with client.pipeline(transaction=True) as p:
        p.hdel(PAINT_BODIES, redis_message_id)
        p.lrem(PAINT_IDS, 0, redis_message_id)
        for key in acks:
            p.srem(key, redis_message_id)
        p.execute()


SET_ASIDE = f"{NAMESPACE}:set-aside"   # messages nobody could read, newest first, for a person to look at
SET_ASIDE_KEPT = 1000


def set_aside(client, what: str, cause: str, body: str) -> None:
    """Keep an unreadable message where an operator finds it (`redis-cli lrange nstd:set-aside 0 9`)."""
    entry = json.dumps({"what": what, "cause": cause, "body": body[:2000], "at": time.time()})
    with client.pipeline(transaction=True) as p:
        p.lpush(SET_ASIDE, entry)
        p.ltrim(SET_ASIDE, 0, SET_ASIDE_KEPT - 1)
        p.execute()


OUT_OF_ROTATION = f"{NAMESPACE}:out-of-rotation"   # host name -> why the daemon took it out


def take_out_of_rotation(client, host: str, facts: dict) -> None:
    client.hset(OUT_OF_ROTATION, host, json.dumps(facts))


def out_of_rotation(client) -> dict[str, dict]:
    """Hosts the daemon took out of rotation, with why and since when; each stays out until it restarts."""
    hosts = {}
    for host, raw in client.hgetall(OUT_OF_ROTATION).items():
        try:
            hosts[host.decode() if isinstance(host, bytes) else host] = json.loads(raw)
        except ValueError:
            continue
    return hosts


def back_in_rotation(client, host: str) -> bool:
    """A host restarted by its operator is trusted again; True if it had been out."""
    return bool(client.hdel(OUT_OF_ROTATION, host))


PRESENCE_SECONDS = 5.0  # how often a worker host publishes its presence


def workers(client, heartbeat_seconds: float, now: Optional[float] = None) -> list[dict]:
    """Worker hosts seen within their heartbeat (worker.redis_heartbeat_seconds: silent this long is
    dead), and never fewer than three presence beats; each with host, device, job, progress, last seen."""
    now = time.time() if now is None else now
    alive = max(heartbeat_seconds, 3 * PRESENCE_SECONDS)
    seen = []
    for raw in client.hvals(PRESENCE):
        try:
            w = json.loads(raw)
        except ValueError:
            continue
        if now - w.get("seen", 0) <= alive:
            seen.append(w)
    return sorted(seen, key=lambda w: w.get("id", ""))


def ping(url: str) -> Optional[str]:
    """None if Redis answers at `url`, else why not."""
    import redis
    try:
        redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
        return None
    except (redis.RedisError, OSError, ValueError) as e:
        return str(e) or type(e).__name__


def redacted(url: str) -> str:
    """The Redis URL without its password, for logs."""
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    return url.replace(parts.password, "***") if parts.password else url
