"""Server-sent events for the live page: progress of running jobs, and "changed" when the page's
facts moved (a job finished, failed, was queued or deleted; a pause; a new priority).

One poller reads the store once a second while any page listens, and every open page is told
from that one reading, so the store is read once a second however many pages are open (when
each stream polled on its own, a few hundred took `GET /` from 0.1 s to 15 s; the cost of many
streams under this design has not been measured). The header line is computed only when the facts changed. Streams
are bounded per client address and in total; one more is answered 429 with the reason.
sse-starlette keeps each connection alive with pings and ends it cleanly when the client leaves
or the server stops (a hand-made stream would hold uvicorn's shutdown open).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Optional

from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

POLL_SECONDS = 1.0
STREAMS_PER_CLIENT = 8
STREAMS_IN_ALL = 200


def _token(app, store) -> tuple[str, list[dict]]:
    """(what the page's cards depend on, the running jobs' progress)."""
    progress = app.progress_now(store)
    counts = store.counts()
    token = json.dumps([counts, store.paused(), [(j.id, j.priority) for j in store.queue(50)],
                        [j["id"] for j in progress], store.done_ids_in_order()[-1:]])
    return token, progress


def _state_line(app, store) -> str:
    from nstd.review.gallery import overview
    return overview(store, app.outbox).state_line(stopped=False)


class EventHub:
    """The one reading of the store that every open live page is told from."""

    def __init__(self, app, per_client: int = STREAMS_PER_CLIENT, in_all: int = STREAMS_IN_ALL):
        self.app, self.per_client, self.in_all = app, per_client, in_all
        self.clients: Counter[str] = Counter()
        self.version = 0
        self.token: Optional[str] = None
        self.progress: Optional[list[dict]] = None
        self.state = ""
        self.changed: Optional[asyncio.Condition] = None
        self.poller: Optional[asyncio.Task] = None

    def stream(self, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        if self.clients[client] >= self.per_client or sum(self.clients.values()) >= self.in_all:
            limit = (f"{self.per_client} live pages per address" if self.clients[client] >= self.per_client
                     else f"{self.in_all} live pages in all")
            return PlainTextResponse(f"too many live pages open ({limit}); the page still works, "
                                     "reload it by hand", status_code=429, headers={"Retry-After": "30"})
        self.clients[client] += 1
        if self.changed is None:
            self.changed = asyncio.Condition()
        if self.poller is None or self.poller.done():
            self.poller = asyncio.create_task(self._poll())
        return EventSourceResponse(self._events(request, client), ping=15)

    async def _events(self, request: Request, client: str):
        try:
            seen_version, seen_token, seen_progress = -1, None, None
            while not await request.is_disconnected():
                async with self.changed:
                    try:
                        await asyncio.wait_for(self.changed.wait_for(
                            lambda seen=seen_version: self.version != seen and self.token is not None),
                                               timeout=5 * POLL_SECONDS)
                    except asyncio.TimeoutError:
                        continue  # look whether the client is still there
                seen_version = self.version
                if seen_token is not None and self.token != seen_token:
                    yield {"event": "changed", "data": json.dumps({"state": self.state})}
                if self.progress != seen_progress:
                    yield {"event": "progress", "data": json.dumps(self.progress)}
                seen_token, seen_progress = self.token, self.progress
        finally:
            self.clients[client] -= 1
            if self.clients[client] <= 0:
                del self.clients[client]

    async def _poll(self) -> None:
        while self.clients:
            token, progress = await self.app.read(lambda store: _token(self.app, store))
            if token != self.token or progress != self.progress:
                if token != self.token:
                    self.state = await self.app.read(lambda store: _state_line(self.app, store))
                self.token, self.progress = token, progress
                async with self.changed:
                    self.version += 1
                    self.changed.notify_all()
            await asyncio.sleep(POLL_SECONDS)
        self.token = self.progress = None  # the next page to open waits for a fresh reading
