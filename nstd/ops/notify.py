"""Notifications through apprise (e-mail, webhooks, ntfy, Gotify, Slack, ... one URL each).

Events: a job failed for good, an input was refused, the queue drained (with the batch's
summary), the worker cannot start, a machine fault (a folder that cannot be written among them).
Messages are queued to one background thread, so a slow or dead endpoint never blocks or crashes
the daemon; a failed send is logged. apprise is imported in that thread, on first use.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from typing import Optional

EVENTS = ("job_failed", "input_refused", "queue_drained", "worker_cannot_start", "machine_fault")
QUEUE_LIMIT = 200
# After one failure or refusal is announced, the next ones within HOLD_SECONDS go out as one message:
# 300 junk files are two messages, not 301.
BATCHED = {"job_failed": "failed jobs", "input_refused": "refused inputs"}
HOLD_SECONDS = 60.0
SHOWN = 10


class Notifications:
    def __init__(self, urls: list[str], events: list[str], log, host: str = ""):
        self.urls, self.events, self.log, self.host = list(urls), set(events), log, host
        self.outbox: "queue.Queue[Optional[tuple[str, str, str, str]]]" = queue.Queue(QUEUE_LIMIT)
        self.batch: Counter = Counter()
        self.thread: Optional[threading.Thread] = None
        if self.urls:
            self.thread = threading.Thread(target=self._send_all, name="nstd-notify", daemon=True)
            self.thread.start()

    @property
    def enabled(self) -> bool:
        return self.thread is not None

    # -- events ---------------------------------------------------------------------------
    def job_failed(self, name: str, style: str, error: str) -> None:
        self.batch["failed"] += 1
        self._post("job_failed", "failure", f"nstd: {name} could not be painted",
                   f"{name} -> {style}: {error}")

    def input_refused(self, name: str, cause: str) -> None:
        self.batch["refused"] += 1
        self._post("input_refused", "warning", f"nstd: {name} refused", f"{name}: {cause}")

    def job_done(self) -> None:
        self.batch["done"] += 1

    def queue_drained(self) -> None:
        """The queue just ran empty: one summary of what the batch came to, then a new batch."""
        if not self.batch:
            return
        b, self.batch = self.batch, Counter()
        summary = f"{b['done']} painted, {b['failed']} failed, {b['refused']} refused"
        self._post("queue_drained", "success" if not (b["failed"] or b["refused"]) else "warning",
                   "nstd: queue empty", f"The batch is through: {summary}.")

    def machine_fault(self, why: str) -> None:
        self._post("machine_fault", "failure", "nstd: painting paused, the machine is at fault", why)

    def host_out_of_rotation(self, host: str, why: str) -> None:
        self._post("host_out_of_rotation", "failure", f"nstd: worker host {host} taken out of rotation", why)

    def worker_cannot_start(self, cause: str) -> None:
        self._post("worker_cannot_start", "failure", "nstd: the worker cannot start", cause)

    def _post(self, event: str, kind: str, title: str, body: str) -> None:
        if not self.enabled or event not in self.events:
            return
        try:
            self.outbox.put_nowait((event, kind, title, body + (f"\n(host {self.host})" if self.host else "")))
        except queue.Full:
            self.log.warning("notification dropped: too many waiting", notify_event=event)

    # -- the sending thread ---------------------------------------------------------------
    def _send_all(self) -> None:
        import apprise

        sender = apprise.Apprise()
        for url in self.urls:
            if not sender.add(url):
                self.log.error("notification URL not understood by apprise; skipped", url=_redact(url))
        def send(item) -> None:
            event, kind, title, body = item
            try:
                ok = sender.notify(title=title, body=body, notify_type=getattr(apprise.NotifyType, kind.upper()))
            except Exception as e:  # a notifier's bug must not end the thread
                ok, why = False, f"{type(e).__name__}: {e}"
            else:
                why = "apprise could not deliver to at least one of notify.urls"
            if ok:
                self.log.info("notification sent", notify_event=event)
            else:
                self.log.error("notification failed", notify_event=event, error=why)

        batcher = Batcher()
        while True:
            due = batcher.next_due()
            try:
                item = self.outbox.get(timeout=None if due is None else max(0.0, due - time.monotonic()))
            except queue.Empty:
                item = False
            now = time.monotonic()
            if item is None:
                for held in batcher.flush_all():
                    send(held)
                return
            for ready in (batcher.offer(item, now) if item else []) + batcher.due(now):
                send(ready)

    def close(self, timeout: float = 10.0) -> None:
        """Send what is waiting (up to `timeout` seconds), then stop the thread."""
        if self.thread is None:
            return
        try:
            self.outbox.put(None, timeout=timeout)
        except queue.Full:
            return
        self.thread.join(timeout)


class Batcher:
    """Which messages go now and which wait to go as one (`BATCHED` kinds within HOLD_SECONDS of the
    last one sent); `now` is given, so the decisions are testable with a stand-in clock."""

    def __init__(self, hold: float = HOLD_SECONDS):
        self.hold = hold
        self.last: dict[str, float] = {}
        self.held: dict[str, list[tuple]] = {}

    def offer(self, item: tuple, now: float) -> list[tuple]:
        event = item[0]
        if event not in BATCHED:
            return [item]
        if now - self.last.get(event, float("-inf")) < self.hold:
            self.held.setdefault(event, []).append(item)
            return []
        self.last[event] = now
        return [item]

    def next_due(self) -> Optional[float]:
        return min((self.last[e] + self.hold for e in self.held), default=None)

    def due(self, now: float) -> list[tuple]:
        ready = [e for e in self.held if now >= self.last[e] + self.hold]
        for event in ready:
            self.last[event] = now
        return [summary(event, self.held.pop(event)) for event in ready]

    def flush_all(self) -> list[tuple]:
        out = [summary(event, items) for event, items in self.held.items()]
        self.held.clear()
        return out


def summary(event: str, items: list[tuple]) -> tuple:
    bodies = [body.split("\n(host ")[0] for _, _, _, body in items]
    more = f"\n... and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    host = items[0][3].partition("\n(host ")[2]
    return (event, items[0][1], f"nstd: {len(items)} more {BATCHED[event]}",
            "\n".join(bodies[:SHOWN]) + more + (f"\n(host {host}" if host else ""))


def _redact(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://..." if rest else url
