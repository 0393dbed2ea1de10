"""Jobs not yet started follow the config in force when they start (after a reload or a restart).

A queued job of a photo in the inbox takes the spec the config now gives its rule and style: the
style's images, the parameters, the output type, the priority, and so a new job key. Jobs the
config does not give that way keep what they were queued with: re-runs and retries (their photo
is in the archive or failed/, their settings chosen by a person), and jobs whose rule or style
the config no longer has for the photo (nothing is dropped by an edit of the rules).
"""

from __future__ import annotations

from nstd.config import Config
from nstd.core.jobs import JobState, job_key
from nstd.store import Store

from .rules import targets


def replan_queued(config: Config, store: Store) -> dict[str, int]:
    """Re-plan every queued job; returns how many were re-planned, kept, and withdrawn (the config
    now asks for a painting the photo has already)."""
    counts = {"replanned": 0, "kept": 0, "withdrawn": 0}
    for job in store.jobs_in(JobState.QUEUED, limit=1_000_000):
        spec = None
        if job.input_path.startswith(str(config.inbox) + "/"):
            spec = next((s for s in targets(config, job.input_relpath)
                         if (s.rule, s.style) == (job.rule, job.style)), None)
        if spec is None:
            counts["kept"] += 1
            continue
        key = job_key(job.input_sha256, spec)
        if key == job.key and spec.priority == job.priority:
            continue
        if store.replan(job.id, key, spec.as_stored(), spec.priority):
            counts["replanned"] += 1
        else:
            store.withdraw(job.id, "the reloaded config asks for a painting this photo has already")
            counts["withdrawn"] += 1
    return counts
