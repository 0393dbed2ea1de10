"""`nstd history`: every job, newest first, filtered and paged; text for people, `--json` for scripts.

`nstd status` says what is going on now; this says what happened: the ids and photo names that
`nstd delete`, `nstd rerun` and `nstd retry` take.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from typing import Optional

from nstd.config import Config
from nstd.core.errors import NstdError
from nstd.core.humane import duration, first_line, iso, plural
from nstd.core.jobs import JobState, variant_words
from nstd.core.names import shown
from nstd.store import Job, Store

_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_PER_PAGE = 1000


def parse_since(text: str, now: Optional[float] = None) -> float:
    """'90m', '3h', '2d', '1w' ago, or a date or date-time ('2026-12-01', '2026-12-01T08:00')."""
    m = _AGO.match(text)
    if m:
        return (now if now is not None else time.time()) - float(m[1]) * _UNIT[m[2]]
    try:
        return dt.datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise NstdError("--since", f"{text!r} is neither a span like 3h, 2d, 1w nor a date like 2026-12-01") from None


def _row(job: Job) -> dict:
    took = job.finished - job.started if job.finished and job.started and job.state is JobState.DONE else None
    outputs = job.outputs or {}
    return {"job_id": job.id, "state": job.state.value, "input": shown(job.input_relpath), "style": job.style,
            "variant": variant_words(job.spec), "rule": job.rule, "priority": job.priority, "attempts": job.attempts,
            "queued": iso(job.created),
            "started": iso(job.started), "finished": iso(job.finished), "updated": iso(job.updated),
            "seconds": round(took, 1) if took is not None else None,
            "result": outputs.get("image") if job.state is JobState.DONE else None,
            "error": shown(first_line(job.error)) if job.error and job.state is JobState.FAILED else None}


def history(config: Config, state: Optional[str] = None, rule: Optional[str] = None, style: Optional[str] = None,
            photo: Optional[str] = None, since: Optional[str] = None, page: int = 1, per_page: int = 20) -> dict:
    if state is not None and state not in {s.value for s in JobState}:
        raise NstdError("--state", f"{state!r} is not a job state ({', '.join(s.value for s in JobState)})")
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise NstdError("--page", f"pages count from 1, with 1 to {MAX_PER_PAGE} jobs each")
    store = Store(config.state, readonly=True)
    try:
        total, jobs = store.history(state, rule, style, photo, parse_since(since) if since else None,
                                    limit=per_page, offset=(page - 1) * per_page)
    finally:
        store.close()
    return {"total": total, "page": page, "per_page": per_page, "pages": max(1, -(-total // per_page)),
            "jobs": [_row(j) for j in jobs]}


def render(h: dict) -> str:
    if not h["total"]:
        return "no jobs match"
    lines = [f"{plural(h['total'], 'job')}, newest first; page {h['page']} of {h['pages']}"
             + (f" (--page {h['page'] + 1} for older ones)" if h["page"] < h["pages"] else "")]
    for j in h["jobs"]:
        when = (j["updated"] or "?").replace("T", " ")[:16]
        took = duration(j["seconds"]) if j["seconds"] is not None else ""
        what = j["result"] or (f"error: {j['error']}" if j["error"] else "")
        variant = f" [{j['variant']}]" if j.get("variant") else ""
        lines.append(f"  {j['job_id']:>5}  {j['state']:<8} {when}  {took:>7}  {j['input']} -> {j['style']}{variant}"
                     f" ({j['rule']})" + (f"  {what}" if what else ""))
    return "\n".join(lines)


def render_json(h: dict) -> str:
    return json.dumps(h, indent=1)
