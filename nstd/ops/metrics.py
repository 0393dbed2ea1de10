"""Prometheus metrics of the daemon, served at `metrics.listen` by prometheus-client's own thread.

Counters and histograms are fed by the parts as things happen; the gauges (jobs by state, inputs
by outcome, queue depth, pause, worker up) are refreshed from the state file by the daemon's loop
at most once a second, so a scrape never touches SQLite from another thread. Never imports torch.
"""

from __future__ import annotations

from typing import Optional

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, float("inf"))
ITERATION_BUCKETS = (0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, float("inf"))
REFRESH_SECONDS = 1.0


class Metrics:
    def __init__(self):
        r = self.registry = CollectorRegistry()
        self.jobs = Gauge("nstd_jobs", "Jobs by state", ["state"], registry=r)
        self.inputs = Gauge("nstd_inputs", "Inputs by outcome (pending, archived, failed, refused, ...)",
                            ["outcome"], registry=r)
        self.queue_depth = Gauge("nstd_queue_depth", "Jobs waiting to run", registry=r)
        self.paused = Gauge("nstd_paused", "1 while no new job may start (nstd pause, active hours)", registry=r)
        self.machine_fault = Gauge("nstd_machine_fault", "1 while dispatch is paused because different photos "
                                   "failed the same way (the machine, not the photos)", registry=r)
        self.folder_unwritable = Gauge("nstd_folder_unwritable", "1 while nstd cannot write into this folder "
                                       "(full, read-only, not its own): the work that needs it waits",
                                       ["folder"], registry=r)
        self.worker_up = Gauge("nstd_worker_up", "1 while the worker is alive and answering", registry=r)
        self.last_success = Gauge("nstd_last_success_timestamp_seconds", "When the last job finished well",
                                  registry=r)
        self.job_seconds = Histogram("nstd_job_duration_seconds", "Painting time of finished jobs",
                                     ["rule", "device"], buckets=DURATION_BUCKETS, registry=r)
        self.iteration_seconds = Histogram("nstd_seconds_per_iteration", "Mean time per optimiser iteration",
                                           ["rule", "device"], buckets=ITERATION_BUCKETS, registry=r)
        self.finished = Counter("nstd_jobs_finished", "Jobs that ended", ["rule", "outcome"], registry=r)
        self.worker_restarts = Counter("nstd_worker_restarts", "Worker processes started after a death",
                                       registry=r)
        self._not_taken_reasons: set[str] = set()
        self.not_taken = Gauge("nstd_inbox_not_taken", "Files left in the inbox that nstd does not take, by "
                               "reason (not named as a photo, no rule matches it, a temporary name, ...)",
                               ["reason"], registry=r)
        self.rescans = Counter("nstd_watcher_rescans", "Full scans of the inbox", ["why"], registry=r)
        self.overflows = Counter("nstd_watcher_overflows", "Kernel file-event queue overflows", registry=r)
        self.host_failures = Counter("nstd_worker_host_failures", "Failures a worker host reported that were "
                                     "its own (not the photo's, not the time limit's)", ["host"], registry=r)
        self.hosts_out_of_rotation = Gauge("nstd_worker_hosts_out_of_rotation", "Worker hosts the daemon took "
                                           "out of rotation after repeated failures of their own", registry=r)
        self.refreshed = float("-inf")
        self.server = None
        self.seen_states: set[str] = set()
        self.seen_outcomes: set[str] = set()

    def serve(self, listen: Optional[str]) -> None:
        if listen and self.server is None:
            host, _, port = listen.rpartition(":")
            self.server, _thread = start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1",
                                                     registry=self.registry)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    # -- events ---------------------------------------------------------------------------
    def job_done(self, rule: str, outputs: dict) -> None:
        device = str(outputs.get("device", "unknown"))
        if outputs.get("seconds") is not None:
            self.job_seconds.labels(rule, device).observe(outputs["seconds"])
        if outputs.get("seconds_per_iteration") is not None:
            self.iteration_seconds.labels(rule, device).observe(outputs["seconds_per_iteration"])
        self.finished.labels(rule, "delivered" if "twin" in outputs else "painted").inc()

    def not_taken_now(self, counts: dict[str, int]) -> None:
        """The inbox's files not taken, by reason; a reason no file has any more reads 0."""
        for reason in set(self._not_taken_reasons) | set(counts):
            self.not_taken.labels(reason).set(counts.get(reason, 0))
        self._not_taken_reasons = set(counts) | set(self._not_taken_reasons)

    def job_withdrawn(self, rule: str) -> None:
        self.finished.labels(rule, "withdrawn").inc()

    def job_failed(self, rule: str, final: bool) -> None:
        self.finished.labels(rule, "failed" if final else "retried").inc()

    def refresh(self, now: float, counts: dict, input_counts: dict, paused: bool, worker_up: bool) -> None:
        # Every label ever shown is set, to 0 when its count fell to nothing (a label left out would
        # keep its last value, and a dashboard would show pending inputs that are long archived).
        self.seen_states |= set(counts)
        self.seen_outcomes |= set(input_counts)
        for state in self.seen_states:
            self.jobs.labels(state).set(counts.get(state, 0))
        for outcome in self.seen_outcomes:
            self.inputs.labels(outcome).set(input_counts.get(outcome, 0))
        self.queue_depth.set(counts.get("queued", 0))
        self.paused.set(int(paused))
        self.worker_up.set(int(worker_up))
        self.refreshed = now
