"""The worker's HTTP pages on Faust's web server: /metrics, /health, /queues/<listener_id> and
the read-only state view /listeners/<listener_id>."""

from __future__ import annotations

import dataclasses
from typing import Any

import faust
import numpy as np
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from radio_engine.listeners.state import ListenerState
from radio_engine.worker import metrics
from radio_engine.worker.health import OK, decide, read_state
from radio_engine.worker.live import register_live_page


def state_view(listener_id: str, state: ListenerState, model_version: str) -> dict[str, Any]:
    """Every field of a listener's persisted state as JSON (h as floats, the event-id hashes as
    their count), for operators and for crash checks against an offline replay."""
    view: dict[str, Any] = {"listener_id": listener_id, "model_version": model_version}
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if f.name == "event_ids":
            view["event_ids_kept"] = int(np.asarray(value).size)
        else:
            view[f.name] = _plain(value)
    view["hidden_size"] = len(view["h"])
    return view


def _plain(value: Any) -> Any:
    """A state field as JSON types: arrays and tuples as lists, bytes as a list of ints."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return list(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def register_pages(app: faust.App, table: Any, engine: Any) -> None:
    """Add the operator pages and the live listener page (worker/live.py) to the web server."""
    register_live_page(app, table, engine)

    @app.page("/metrics")
    async def prometheus_metrics(web: View, request: Request) -> Response:
        body = generate_latest(metrics.REGISTRY)
        return web.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/health")
    async def health(web: View, request: Request) -> Response:
        """Liveness (`/health`): 503 without a live broker connection. Readiness
        (`/health?ready=1`): 503 also until assigned and while rebalancing or recovering."""
        ready = request.query.get("ready", "") not in ("", "0", "false")
        state = read_state(app)
        status, reason = decide(state, ready)
        return web.json(
            {
                "status": "ok" if status == OK else "unavailable",
                "reason": reason,
                "check": "ready" if ready else "live",
                **state.as_json(),
                "model_version": engine.model.version,
                "model_trained": engine.model.manifest.trained,
                "catalog_tracks": len(engine.catalog),
                "listeners_held": len(table.data),
            },
            status=status,
        )

    @app.page("/queues/{listener_id}")
    @app.table_route(table=table, match_info="listener_id")
    async def queue(web: View, request: Request, listener_id: str) -> Response:
        raw = table.data.get(listener_id.encode())
        if raw is None:
            return web.json({"error": f"no listener {listener_id!r} on this worker"}, status=404)
        state = ListenerState.from_bytes(raw)
        queue = engine.catalog.describe(state.queue)
        shown = engine.listens.last_queue(listener_id)
        if shown is not None and shown["version"] == state.version:
            queue = shown["tracks"]  # as published: scores and why each track is there
        return web.json(
            {
                "listener_id": listener_id,
                "version": state.version,
                "queue": queue,
                "why_known": shown is not None and shown["version"] == state.version,
                "recent": list(state.recent)[-10:],
                "events": state.events,
            }
        )

    @app.page("/listeners/{listener_id}")
    @app.table_route(table=table, match_info="listener_id")
    async def listener_state(web: View, request: Request, listener_id: str) -> Response:
        """The listener's whole state, read-only; 404 when no event of theirs was applied."""
        raw = table.data.get(listener_id.encode())
        if raw is None:
            return web.json(
                {"error": f"unknown listener {listener_id!r}: no event of theirs was applied"},
                status=404,
            )
        state = ListenerState.from_bytes(raw)
        return web.json(state_view(listener_id, state, engine.model.version))
