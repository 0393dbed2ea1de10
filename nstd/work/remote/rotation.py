"""A worker host that keeps failing on its own account is taken out of rotation, not its photos.

A failure a host reports that is neither the photo's (permanent) nor the time limit's counts
against the host; its next success clears the count. At HOST_FAILURES_MAX in a row the daemon
takes the host out of rotation: a Redis hash the host reads before each job and on its heartbeat,
so it hands back what it holds and stops (exit 3: systemd does not restart it). `nstd status`
lists it, nstd_worker_hosts_out_of_rotation counts it, a notification says so; restarting
`nstd worker` there puts it back.
"""

from __future__ import annotations

import time

from nstd.core.humane import first_line
from nstd.ops.metrics import Metrics
from nstd.ops.notify import Notifications

from . import broker as shared

HOST_FAILURES_MAX = 3


class HostRotation:
    def __init__(self, log, metrics: Metrics, notifications: Notifications):
        self.log, self.metrics, self.notifications = log, metrics, notifications
        self.failures: dict[str, int] = {}
        self.out: dict[str, dict] = {}

    def succeeded(self, host: str) -> None:
        self.failures.pop(host, None)

    def failed(self, client, host: str, error: str) -> None:
        if not host or host in self.out:
            return  # an older host's report: nothing to count it against; or a host out already
        self.metrics.host_failures.labels(host=host).inc()
        n = self.failures[host] = self.failures.get(host, 0) + 1
        if n < HOST_FAILURES_MAX:
            self.log.warning("a worker host failed on its own account", host=host, failures_in_a_row=n,
                             error=first_line(error))
            return
        self.failures.pop(host)
        facts = {"since": time.time(), "failures": n, "last": first_line(error)}
        shared.take_out_of_rotation(client, host, facts)
        self.out[host] = facts
        self.log.error("worker host taken out of rotation: restart `nstd worker` there once it is mended",
                       host=host, failures_in_a_row=n, last=facts["last"])
        self.notifications.host_out_of_rotation(host, f"{n} failures in a row on {host}, the last: {facts['last']}. "
                                                "It stops; restart `nstd worker` there once it is mended.")

    def refresh(self, client) -> dict[str, dict]:
        self.out = shared.out_of_rotation(client)
        self.metrics.hosts_out_of_rotation.set(len(self.out))
        return self.out
