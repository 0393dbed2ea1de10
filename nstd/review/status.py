"""`nstd status`: what the queue holds, what runs now, what is next, what failed and why.

`facts` gathers everything once; the text view and `--json` are two renderings of the same facts.
"""

from __future__ import annotations

import datetime as dt
import json
import time

from nstd.config import Config
from nstd.core.humane import duration, first_line, iso, plural, progress_words, size_words
from nstd.core.jobs import JobState, variant_words
from nstd.core.names import shown
from nstd.ops.folderfaults import fault_words, free_bytes
from nstd.outbox.results import missing_results
from nstd.store import Job, Store


STATE_ROOM = 1 << 20   # under this, SQLite's next checkpoint or page may not fit


def _job(job: Job) -> dict:
    return {"job_id": job.id, "input": shown(job.input_relpath), "style": job.style, "rule": job.rule,
            "priority": job.priority, "attempts": job.attempts, "variant": variant_words(job.spec)}


def facts(config: Config, failures: int = 10, queued: int = 10) -> dict:
    store = Store(config.state, readonly=True)
    try:
        failed_jobs = store.jobs_in(JobState.FAILED, failures, newest_first=True)
        failed_inputs = [i for i in store.failed_inputs(failures) if not any(j.input_id == i.id for j in failed_jobs)]
        hours = config.active_hours
        counts = store.counts()
        # Results deleted by hand while no daemon was looking: counted as what they are now.
        gone = missing_results(store)
        counts["done"] -= len(gone)
        counts["deleted"] += len(gone)
        return {
            "state": str(config.state),
            "daemon": _daemon_facts(store),
            "arriving": store.arriving() if store.daemon_running() else {"count": 0, "first": []},
            "jobs": counts,
            "inputs": store.input_counts(),
            "paused": store.paused(),
            "rebuilt": store.rebuild_facts(),
            # The daemon's account of folders it cannot write, while it runs to keep it true; the state
            # file's own disk is looked at here, as a full one cannot take the daemon's account.
            "unwritable": store.folder_faults() if store.daemon_running() else {},
            "state_disk_free": free_bytes(config.state.parent),
            "active_hours": str(hours) if hours else None,
            "inside_active_hours": hours.contains(dt.datetime.now().time()) if hours else True,
            "running": [{**_job(j), "progress": j.progress} for j in store.jobs_in(JobState.RUNNING)],
            "queue": [_job(j) for j in store.queue(queued)],
            "backend": config.worker.backend,
            "redis": _redis_facts(config) if config.worker.backend == "redis" else None,
            "failures": [{**_job(j), "error": shown(first_line(j.error))} for j in failed_jobs]
                        + [{"input": shown(i.relpath), "error": shown(i.error or "?"), "stage": i.state}
                           for i in failed_inputs],
        }
    finally:
        store.close()


def _daemon_facts(store: Store) -> dict:
    """Alive is the lock's word (the kernel drops it with the process); the rest is the daemon's record."""
    record = store.daemon_facts() or {}
    beat = record.get("heartbeat")
    return {"running": store.daemon_running(), "pid": record.get("pid"), "host": record.get("host"),
            "version": record.get("version"), "since": iso(record.get("since")), "heartbeat": iso(beat),
            "heartbeat_age_s": round(time.time() - beat, 1) if beat else None}


def _daemon_line(d: dict) -> str:
    if d["running"]:
        return (f"daemon: running, pid {d['pid']} on {d['host']} since {_short(d['since'])}, last heartbeat "
                f"{duration(d['heartbeat_age_s'])} ago")
    if d["pid"] is None:
        return "daemon: NOT RUNNING (none has run on this state file yet): `nstd run --config FILE` starts one"
    return (f"daemon: NOT RUNNING (the last one, pid {d['pid']} on {d['host']}, was last seen "
            f"{_short(d['heartbeat'])}): start it with `nstd run` or `systemctl start nstd`")


def _variant(job: dict) -> str:
    return f" [{job['variant']}]" if job.get("variant") else ""


def _rebuilt_line(r: dict) -> str:
    aside = f"; the damaged file is kept as {r['set_aside_as']}" if r.get("set_aside_as") else ""
    unread = f", {plural(r['unreadable'], 'loss log')} unreadable" if r.get("unreadable") else ""
    more = "".join(f", {plural(r[k], what)}" for k, what in (("refused", "photo in failed/"),
                                                           ("deleted", "deletion in the trash")) if r.get(k))
    lost = r.get("not_recovered") or "a pause, attempt counts, failed jobs' history"
    return (f"STATE REBUILT FROM THE FOLDERS on {_short(iso(r['when']))} ({r['cause']}){aside}: "
            f"{plural(r['results'], 'result')} recorded again from their loss logs{more}{unread}; the inbox was "
            f"queued again; not in the folders, so not brought back: {lost}")


def _short(stamp: str | None) -> str:
    return stamp.replace("T", " ")[:19] if stamp else "?"


def _redis_facts(config: Config) -> dict:
    """Whether Redis answers, and the worker hosts it has seen lately."""
    import redis

    from nstd.work.remote.broker import out_of_rotation, workers
    w = config.worker
    client = redis.Redis.from_url(w.redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return {"reachable": True, "error": None, "workers": workers(client, w.redis_heartbeat_seconds),
                "out_of_rotation": out_of_rotation(client)}
    except (redis.RedisError, OSError) as e:
        return {"reachable": False, "error": str(e) or type(e).__name__, "workers": [], "out_of_rotation": {}}
    finally:
        client.close()


def report(config: Config, failures: int = 10) -> str:
    f = facts(config, failures)
    lines = [_daemon_line(f["daemon"]), f"state: {f['state']}",
             "jobs: " + ", ".join(f"{f['jobs'][s.value]} {s.value}" for s in JobState),
             "inputs: " + (", ".join(f"{n} {s}" for s, n in sorted(f["inputs"].items())) or "none")]
    if f["rebuilt"]:
        lines.append(_rebuilt_line(f["rebuilt"]))
    for role, fault in f["unwritable"].items():
        since = dt.datetime.fromtimestamp(fault["since"]).strftime("%Y-%m-%d %H:%M")
        lines.append(f"CANNOT WRITE since {since}: {fault_words(role, fault)}; the work that needs it waits "
                     "and goes on by itself once it can")
    if f["state_disk_free"] is not None and f["state_disk_free"] < STATE_ROOM:
        lines.append(f"STATE FILE'S DISK FULL: {size_words(f['state_disk_free'])} free under {config.state.parent}; "
                     "the daemon waits (nothing recorded is lost) and goes on once there is room")
    arriving = f["arriving"]
    if arriving["count"]:
        more = arriving["count"] - len(arriving["first"])
        lines.append(f"arriving: {plural(arriving['count'], 'file')} seen, not yet taken: "
                     + ", ".join(f"{shown(a['input'])} ({a['stage']})" for a in arriving["first"])
                     + (f" and {more} more" if more > 0 else ""))
    left = arriving.get("not_taken") or {"count": 0}
    if left["count"]:
        more = left["count"] - len(left["first"])
        lines.append(f"NOT TAKEN: {plural(left['count'], 'file')} left in the inbox: "
                     + "; ".join(f"{shown(a['input'])} ({a['reason']})" for a in left["first"])
                     + (f"; and {more} more" if more > 0 else ""))
    if f["paused"]:
        since = dt.datetime.fromtimestamp(f["paused"]["since"]).strftime("%Y-%m-%d %H:%M")
        lines.append(f"PAUSED since {since} ({f['paused'].get('why')}): no new job starts; `nstd resume`")
    if f["active_hours"]:
        lines.append(f"active hours: {f['active_hours']} ("
                     + ("inside now" if f["inside_active_hours"] else "outside now: no new job starts") + ")")
    if f["redis"] is not None:
        r = f["redis"]
        if not r["reachable"]:
            lines.append(f"REDIS DOWN ({r['error']}): inputs are taken and queued here; nothing is dispatched")
        lines.append(f"worker hosts: {len(r['workers'])}" + ("" if r["workers"] else " (none seen lately)"))
        for w in r["workers"]:
            p = w.get("progress") or {}
            doing = (f"job {w['job']} {p.get('percent', 0):.0f}%" if w.get("job") is not None else "idle")
            lines.append(f"  {w['host']} (pid {w['pid']}, {w['device']}): {doing}, last seen "
                         f"{duration(dt.datetime.now().timestamp() - w['seen'])} ago")
        for host, out in r["out_of_rotation"].items():
            since = dt.datetime.fromtimestamp(out.get("since", 0)).strftime("%Y-%m-%d %H:%M")
            lines.append(f"  OUT OF ROTATION: {host} since {since}, after {out.get('failures')} "
                         f"failures in a row (the last: {out.get('last')}); restart `nstd worker` there once mended")
    for job in f["running"]:
        p = job["progress"] or {}
        host = f" on {(job['progress'] or {}).get('host')}" if (job["progress"] or {}).get("host") else ""
        lines.append(f"running: job {job['job_id']} {job['input']} -> {job['style']}{_variant(job)} "
                     f"(attempt {job['attempts']}){host}" + (f" {progress_words(p)}" if p else " starting"))
    if f["queue"]:
        lines.append("next:")
        lines += [f"  job {j['job_id']} {j['input']} -> {j['style']}{_variant(j)}"
                  + (f" (priority {j['priority']})" if j["priority"] else "") for j in f["queue"]]
    if f["failures"]:
        lines.append("recent failures:")
        lines += [f"  job {x['job_id']} {x['input']} -> {x['style']}: {x['error']}" if "job_id" in x
                  else f"  input {x['input']}: {x['error']}" for x in f["failures"]]
    return "\n".join(lines)


def report_json(config: Config) -> str:
    return json.dumps(facts(config), indent=1)
