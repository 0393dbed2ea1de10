"""An inspected inbox file becomes its input and jobs in the state file."""

from __future__ import annotations

from pathlib import Path

from nstd.config import Config
from nstd.core.jobs import JobState, job_key
from nstd.outbox.files import result_exists
from nstd.store import Store

from .inspector import Inspection
from .rules import targets
from .walker import Entry


def record_input(config: Config, store: Store, log, entry: Entry, result: Inspection) -> None:
    """Queue the jobs the rules ask for an inspected inbox file, once: a stray event on a file
    already queued is nothing, and a photo dropped again gets again only the results since deleted."""
    rel, sha = entry.rel, result.sha256
    specs = targets(config, rel)
    if not specs:
        return
    known = store.known_input(rel, sha)
    if known and (known.state == "pending" or (known.state in ("kept", "stuck") and known.path == str(entry.path))):
        return  # a stray event on a file already queued (or kept) with this very content
    jobs = [(job_key(sha, s), s.rule, s.style, s.as_stored(), s.priority) for s in specs]
    _, new, done_before = store.add_input(rel, str(entry.path), sha, result.size, jobs)
    for job_id in done_before:
        job = store.job(job_id)
        image = Path((job.outputs or {}).get("image", ""))
        if not result_exists(image, job.key, rel):
            store.requeue(job_id)  # its result was deleted: this drop asks for it again
            new.append(job_id)
    for job_id in new:
        job = store.job(job_id)
        log.info("job queued", job_id=job_id, input=rel, style=job.style, rule=job.rule,
                      state=JobState.QUEUED.value)
    if done_before and len(new) < len(jobs):
        log.info("dropped again: its results are in the outbox already", input=rel)
