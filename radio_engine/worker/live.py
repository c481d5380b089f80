"""The live listener page: GET /live/<listener_id> (static/live.html), its Server-Sent Events
stream of the queue and its buttons, which send real listen events through Kafka like a player.

The page reads only this worker's own state (no Kafka consumer per browser tab): the SSE handler
polls the listener table every POLL_S and sends the queue whenever the version or the event
count changes. A button POSTs {track_id, event}; the worker checks it against the listen-event
schema, gives it an event_id and sends it to the listens topic keyed by the listener, so it
takes the normal path (partition, pipeline, state, queues topic) before the page shows it.
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
from importlib import resources
from typing import Any, cast

import faust
import orjson
from aiohttp import web as aioweb
from faust.web import Request, Response, View

from radio_engine import schemas
from radio_engine.listeners.state import ListenerState
from radio_engine.listens.build import InvalidEvent, listen_event
from radio_engine.model.inputs import FEEDBACK_TYPES

log = logging.getLogger(__name__)

#: seconds between two looks at the listener's state while a page is open
POLL_S = 0.25
#: seconds without a change after which the stream sends a comment (keeps proxies from closing it)
HEARTBEAT_S = 15.0
#: seconds one stream lasts; the browser's EventSource reconnects by itself
STREAM_MAX_S = 600.0
#: last events after which the listener is still on that track (otherwise the queue's head plays)
STILL_PLAYING = frozenset({"play", "like"})


def live_html() -> str:
    """The page itself: one static file, no build step, nothing loaded from the network."""
    return (resources.files("radio_engine.worker") / "static" / "live.html").read_text("utf-8")


def live_view(listener_id: str, state: ListenerState, engine: Any) -> dict[str, Any]:
    """What the page shows: version, queue with score and why, and the track playing: the last
    event's after a play or like (the listener is on it), else the queue's first (played next)."""
    queue = engine.catalog.describe(state.queue)
    shown = engine.listens.last_queue(listener_id)
    why_known = shown is not None and shown["version"] == state.version
    if why_known:
        queue = shown["tracks"]
    last: dict[str, Any] | None = None
    if state.recent:
        kinds = state.recent_kinds  # aligned to the end of `recent`; missing ones are plays
        kind = FEEDBACK_TYPES[kinds[-1]] if kinds else "play"
        last = {"track_id": state.recent[-1], "event": kind}
    playing: dict[str, Any] | None = None
    if last is not None and last["event"] in STILL_PLAYING:
        [playing] = engine.catalog.describe([last["track_id"]])
        playing["from"] = "last_event"
    elif queue:
        playing = {**queue[0], "from": "queue"}
    return {
        "listener_id": listener_id,
        "version": state.version,
        "events": state.events,
        "last_event": last,
        "playing": playing,
        "queue": queue,
        "why_known": why_known,
        "model_version": engine.model.version,
    }


def register_live_page(app: faust.App, table: Any, engine: Any) -> None:
    """Add /live/<listener_id> and /live/<listener_id>/events to the app's web server."""
    topic = engine.listens.settings.topic_listens

    def load(listener_id: str) -> ListenerState | None:
        raw = table.data.get(listener_id.encode())
        return None if raw is None else ListenerState.from_bytes(raw)

    @app.page("/live/{listener_id}")
    async def live_page(web: View, request: Request, listener_id: str) -> Response:
        """The page, or a 404 page that says the listener is unknown on this worker."""
        if load(listener_id) is None:
            name = html.escape(listener_id)
            return web.html(
                f"<!doctype html><title>unknown listener</title><h1>Unknown listener {name}</h1>"
                f"<p>No event of listener {name} was applied on this worker: send one, or open "
                "the page on the worker that owns the listener's partition.</p>",
                status=404,
            )
        return web.html(live_html())

    @app.page("/live/{listener_id}/events")
    class LiveEvents(View):
        """GET: the listener's queue as Server-Sent Events. POST {track_id, event}: a listen
        event sent through Kafka, as a player would send it."""

        async def get(self, request: Request, listener_id: str) -> Any:
            if load(listener_id) is None:
                return self.json({"error": f"unknown listener {listener_id!r}"}, status=404)
            stream = aioweb.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream",
                    "Cache-Control": "no-cache",
                    "X-Accel-Buffering": "no",
                }
            )
            await stream.prepare(cast(aioweb.Request, request))  # Faust's aiohttp driver
            await stream.write(b"retry: 1000\n\n")
            seen: tuple[int, int] | None = None
            started = last_write = time.monotonic()
            try:
                while time.monotonic() - started < STREAM_MAX_S and not app.should_stop:
                    state = load(listener_id)
                    now = time.monotonic()
                    if state is not None and (state.version, state.events) != seen:
                        seen = (state.version, state.events)
                        body = orjson.dumps(live_view(listener_id, state, engine))
                        await stream.write(b"event: queue\ndata: " + body + b"\n\n")
                        last_write = now
                    elif now - last_write > HEARTBEAT_S:
                        await stream.write(b": alive\n\n")
                        last_write = now
                    await asyncio.sleep(POLL_S)
            except ConnectionResetError:
                pass  # the tab was closed
            return stream

        async def post(self, request: Request, listener_id: str) -> Response:
            try:
                body = orjson.loads(await self.read_request_content(request))
                track_id, kind = str(body["track_id"]), str(body["event"])
                artist = engine.catalog.artist_of(track_id) or None
                event = listen_event(listener_id, track_id, kind, artist_id=artist)
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                return self.json({"error": f"expected JSON {{track_id, event}}: {exc}"}, status=400)
            except InvalidEvent as exc:
                return self.json({"error": str(exc), "field": exc.field}, status=400)
            value = schemas.encode("listen", event, check=False)
            sent = await app.producer.send_and_wait(
                topic, listener_id.encode(), value, None, None, None
            )
            log.info("live page sent %s of %s for %s", kind, track_id, listener_id)
            return self.json(
                {
                    "event_id": event["event_id"],
                    "topic": topic,
                    "partition": sent.partition,
                    "offset": sent.offset,
                },
                status=202,
            )
