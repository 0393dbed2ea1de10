"""Server-sent events for the live page: progress of running jobs, and "changed" when the page's
facts moved (a job finished, failed, was queued or deleted; a pause; a new priority).

The store is polled once a second per open page, in a thread; a page gets an event only when what
it shows changed. sse-starlette keeps the connection alive with pings and ends it cleanly when the
client leaves or the server stops (a hand-made stream would hold uvicorn's shutdown open).
"""

from __future__ import annotations

import asyncio
import json

from sse_starlette import EventSourceResponse
from starlette.requests import Request

POLL_SECONDS = 1.0


def _facts(app, store) -> tuple[str, list[dict], str]:
    """(what the page's cards depend on, the running jobs' progress, the header line)."""
    from nstd.review.gallery import overview
    counts = store.counts()
    token = json.dumps([counts, store.paused(), [(j.id, j.priority) for j in store.queue(50)],
                        [j["id"] for j in app.progress_now(store)], store.done_ids_in_order()[-1:]])
    return token, app.progress_now(store), overview(store, app.outbox).state_line(stopped=False)


def event_stream(app, request: Request) -> EventSourceResponse:
    async def events():
        last_token, last_progress = None, None
        while not await request.is_disconnected():
            token, progress, state = await app.read(lambda store: _facts(app, store))
            if last_token is not None and token != last_token:
                yield {"event": "changed", "data": json.dumps({"state": state})}
            if progress != last_progress:
                yield {"event": "progress", "data": json.dumps(progress)}
            last_token, last_progress = token, progress
            await asyncio.sleep(POLL_SECONDS)
    return EventSourceResponse(events(), ping=15)
