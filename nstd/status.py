"""`nstd status`: what the queue holds, what runs now, what failed and why."""

from __future__ import annotations

from .config import Config
from .jobs import JobState
from .humane import duration
from .names import shown
from .store import Store


def report(config: Config, failures: int = 10) -> str:
    store = Store(config.state, readonly=True)
    try:
        counts = store.counts()
        inputs = store.input_counts()
        lines = [f"state: {config.state}",
                 "jobs: " + ", ".join(f"{counts[s.value]} {s.value}" for s in JobState),
                 "inputs: " + (", ".join(f"{n} {s}" for s, n in sorted(inputs.items())) or "none")]
        running = store.jobs_in(JobState.RUNNING)
        for job in running:
            p = job.progress or {}
            lines.append(f"running: job {job.id} {job.input_relpath} -> {job.style} (attempt {job.attempts})"
                         + (f" {p.get('percent', 0):.0f}% ({p.get('done')}/{p.get('total')}), "
                            f"{p.get('it_per_s', 0):.2f} it/s, ETA {duration(p.get('eta_s'))}" if p else
                            " starting"))
        failed_jobs = store.jobs_in(JobState.FAILED, failures, newest_first=True)
        failed_inputs = [i for i in store.failed_inputs(failures)
                         if not any(j.input_id == i.id for j in failed_jobs)]
        if failed_jobs or failed_inputs:
            lines.append("recent failures:")
        for job in failed_jobs:
            lines.append(f"  job {job.id} {job.input_relpath} -> {job.style}: "
                         f"{(job.error or '').splitlines()[0] if job.error else '?'}")
        for inp in failed_inputs:
            lines.append(f"  input {inp.relpath}: {inp.error}")
        return shown("\n".join(lines))
    finally:
        store.close()
