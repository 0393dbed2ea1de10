"""Notifications through apprise (e-mail, webhooks, ntfy, Gotify, Slack, ... one URL each).

Events: a job failed for good, an input was refused, the queue drained (with the batch's
summary), the worker cannot start. Messages are queued to one background thread, so a slow or
dead endpoint never blocks or crashes the daemon; a failed send is logged. apprise is imported
in that thread, on first use.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from typing import Optional

EVENTS = ("job_failed", "input_refused", "queue_drained", "worker_cannot_start")
QUEUE_LIMIT = 200


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
        while (item := self.outbox.get()) is not None:
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
            self.outbox.task_done()

    def close(self, timeout: float = 10.0) -> None:
        """Send what is waiting (up to `timeout` seconds), then stop the thread."""
        if self.thread is None:
            return
        try:
            self.outbox.put(None, timeout=timeout)
        except queue.Full:
            return
        self.thread.join(timeout)


def _redact(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://..." if rest else url
