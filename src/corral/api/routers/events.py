"""``GET /api/v1/events``: Corral's events as Server-Sent Events (the UI's live updates)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from corral.api.deps import Svc, Viewer
from corral.api.openapi import problem_responses
from corral.model.auth import Role
from corral.services.events import Event
from corral.services.rights_watch import until_rights_end
from corral.services.runtime import Services
from corral.services.stream_caps import Holder

router = APIRouter(tags=["events"])

#: Topics a client may see; others (e.g. ``session``) are internal.
PUBLIC_TOPICS = frozenset({"vm", "host", "task", "power"})
#: A comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_S = 15.0

EVENT_STREAM = "text/event-stream"
#: One event of the stream (OpenAPI before 3.2: ``schema`` describes each event).
EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "description": "vm, host, task, power, reload, or end"},
        "data": {"type": "string", "description": "JSON: a kind and the object's fields"},
        "id": {"type": "string"},
    },
}


def format_event(event: Event) -> bytes:
    data = json.dumps({"kind": event.kind, **event.data}, separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.topic}\ndata: {data}\n\n".encode()


#: Sent instead of the events a reconnecting client missed when they are no longer kept.
RELOAD = b'event: reload\ndata: {"reason":"events missed while away are no longer kept"}\n\n'


def _last_event_id(request: Request) -> int | None:
    value = request.headers.get("last-event-id", "").strip()
    return int(value) if value.isdecimal() and len(value) < 20 else None


async def _missed(svc: Services, after: int | None) -> tuple[list[bytes], int]:
    """What a reconnecting client missed (or a reload), and the last id it has then."""
    if after is None:
        return [], 0
    missed = await svc.bus.replay(after)
    if missed is None:
        return [RELOAD], 0
    sent = [format_event(e) for e in missed if e.topic in PUBLIC_TOPICS]
    return sent, max((e.id or 0 for e in missed), default=after)


@router.get(
    "/events",
    name="event.stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {EVENT_STREAM: {"schema": EVENT_SCHEMA}},
            "description": "a stream of `event: vm|host|task|power` messages whose `data` is JSON "
            "with a `kind` (e.g. `started`, `updated`) and the object's fields, each with an "
            "`id`; a client reconnecting with `Last-Event-ID` (browsers do) gets what it "
            "missed first, or `event: reload` when those events are no longer kept; it ends "
            "when the caller's session or token does",
        },
        429: problem_responses((429, "the caller has too many event streams open"))[429],
    },
)
async def event_stream(request: Request, svc: Svc, who: Viewer) -> StreamingResponse:
    """Live events of every host (and every instance): VM lifecycle, host connection, task
    progress. A user may hold ``event_streams_max_per_user`` streams at a time (about one per
    open page)."""
    release = svc.event_streams.claim(Holder(who.user))
    after = _last_event_id(request)

    async def stream() -> AsyncIterator[bytes]:
        ended = asyncio.create_task(until_rights_end(svc.auth, svc.bus, who, Role.VIEWER))
        getter: asyncio.Future[Event] | None = None
        try:
            async with svc.bus.subscribe(logged=True) as events:
                # Subscribed first: a client that has this line misses nothing from now on.
                yield b": corral events\n\n"
                missed, seen = await _missed(svc, after)
                for chunk in missed:
                    yield chunk
                while not ended.done():
                    getter = asyncio.ensure_future(events.get())
                    done, _ = await asyncio.wait(
                        {getter, ended}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getter not in done:
                        getter.cancel()
                        if not ended.done():
                            yield b": keep-alive\n\n"
                        continue
                    event = getter.result()
                    if event.topic in PUBLIC_TOPICS and (event.id or 0) > seen:
                        yield format_event(event)
            yield f"event: end\ndata: {json.dumps({'reason': ended.result()})}\n\n".encode()
        finally:
            release()
            # The client went away mid-wait: nothing may be left pending.
            for task in (ended, getter):
                if task is not None:
                    task.cancel()
            await asyncio.gather(ended, *(t for t in (getter,) if t), return_exceptions=True)

    return StreamingResponse(
        stream(),
        media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        # Should the stream never start (the client left at once), the count drops all the same.
        background=BackgroundTask(release),
    )
