"""The worker's HTTP pages on Faust's web server: /metrics, /health, /queues/<listener_id>."""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from radio_engine.listeners.state import ListenerState
from radio_engine.worker import metrics


def register_pages(app: faust.App, table: Any, engine: Any) -> None:
    """Add the operator pages to the app's web server."""

    @app.page("/metrics")
    async def prometheus_metrics(web: View, request: Request) -> Response:
        body = generate_latest(metrics.REGISTRY)
        return web.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/health")
    async def health(web: View, request: Request) -> Response:
        return web.json(
            {
                "status": "ok",
                "model_version": engine.model.version,
                "model_trained": engine.model.manifest.trained,
                "catalog_tracks": len(engine.catalog),
                "listeners_held": len(table.data),
            }
        )

    @app.page("/queues/{listener_id}")
    @app.table_route(table=table, match_info="listener_id")
    async def queue(web: View, request: Request, listener_id: str) -> Response:
        raw = table.data.get(listener_id.encode())
        if raw is None:
            return web.json({"error": f"no listener {listener_id!r} on this worker"}, status=404)
        state = ListenerState.from_bytes(raw)
        return web.json(
            {
                "listener_id": listener_id,
                "version": state.version,
                "queue": engine.catalog.describe(state.queue),
                "recent": list(state.recent)[-10:],
                "events": state.events,
            }
        )
