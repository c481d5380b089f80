"""The worker's bearer token: the rule as a plain function, then the aiohttp middleware on a
real (local, broker-free) aiohttp server."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from radio_engine.settings import Settings
from radio_engine.worker.app import broker_credentials, changelog_configs
from radio_engine.worker.http_auth import COOKIE, bearer, cookie_value, decide, token_middleware

TOKEN = "t0ken-abc"


@pytest.mark.parametrize(
    "path, auth, cookie, query, method, action, offered",
    [
        ("/listeners/a", "", None, None, "GET", "refuse", False),
        ("/listeners/a", f"Bearer {TOKEN}", None, None, "GET", "pass", False),
        ("/listeners/a", f"bearer   {TOKEN} ", None, None, "GET", "pass", False),
        ("/listeners/a", "Bearer wrong", None, None, "GET", "refuse", True),
        ("/listeners/a", f"Basic {TOKEN}", None, None, "GET", "refuse", True),
        ("/queues/a", "", cookie_value(TOKEN), None, "GET", "refuse", False),  # live pages only
        ("/queues/a", "", None, TOKEN, "GET", "refuse", True),  # ?token= on live pages only
        ("/table/", "", None, None, "GET", "refuse", False),  # Faust's own pages too
        ("/metrics", "", None, None, "GET", "pass", False),
        ("/health", "", None, None, "GET", "pass", False),
        ("/live/a", "", cookie_value(TOKEN), None, "GET", "pass", False),
        ("/live/a/events", "", cookie_value(TOKEN), None, "POST", "pass", False),
        ("/live/a/events", "", "forged", None, "POST", "refuse", True),
        ("/live/a", "", TOKEN, None, "GET", "refuse", True),  # the cookie is not the token
        ("/live/a", "", None, TOKEN, "GET", "redirect", False),
        ("/live/a/events", "", None, TOKEN, "POST", "refuse", True),
        ("/live/a", "", None, "wrong", "GET", "refuse", True),
    ],
)
def test_decide(
    path: str,
    auth: str,
    cookie: str | None,
    query: str | None,
    method: str,
    action: str,
    offered: bool,
) -> None:
    verdict = decide(TOKEN, path, auth, cookie, query, method)
    assert (verdict.action, verdict.offered) == (action, offered)


def test_without_a_token_everything_is_open() -> None:
    assert decide("", "/listeners/a", "", None, None, "GET").action == "pass"


def test_bearer_reads_only_the_bearer_scheme() -> None:
    assert bearer("Bearer abc") == "abc" and bearer("BEARER abc") == "abc"
    assert bearer("Bearer") is None and bearer("Basic abc") is None and bearer("") is None
    assert TOKEN not in cookie_value(TOKEN) and cookie_value(TOKEN) != cookie_value("other")


async def _exchange(token: str, *requests: tuple[str, str, dict[str, str]]) -> list[Any]:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path})

    app = web.Application(middlewares=[token_middleware(token)])
    app.router.add_route("*", "/{tail:.*}", handler)
    out = []
    async with TestClient(TestServer(app)) as client:
        for method, path, headers in requests:
            response = await client.request(method, path, headers=headers, allow_redirects=False)
            out.append((response.status, response.headers, await response.text()))
    return out


def test_the_middleware_answers_401_with_a_challenge_and_passes_the_token() -> None:
    (none, wrong, good, metrics) = asyncio.run(
        _exchange(
            TOKEN,
            ("GET", "/listeners/a", {}),
            ("GET", "/listeners/a", {"Authorization": "Bearer nope"}),
            ("GET", "/listeners/a", {"Authorization": f"Bearer {TOKEN}"}),
            ("GET", "/metrics", {}),
        )
    )
    assert none[0] == 401 and none[1]["WWW-Authenticate"] == 'Bearer realm="radio-engine"'
    assert wrong[0] == 401
    assert wrong[1]["WWW-Authenticate"] == 'Bearer realm="radio-engine", error="invalid_token"'
    assert TOKEN not in none[2] + wrong[2]
    assert good[0] == 200 and '"/listeners/a"' in good[2]
    assert metrics[0] == 200


def test_the_live_page_redirects_without_the_token_and_sets_the_cookie() -> None:
    [(status, headers, _)] = asyncio.run(
        _exchange(TOKEN, ("GET", f"/live/a%20b?token={TOKEN}&x=1", {}))
    )
    assert status == 303 and headers["Location"] == "/live/a%20b?x=1"
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}={cookie_value(TOKEN)};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/live/" in cookie


def test_the_worker_hands_faust_scram_over_tls_and_the_changelog_its_min_insync() -> None:
    assert broker_credentials(Settings()) is None
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_username="radio",
        kafka_password="pw-42",
    )
    credentials = broker_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-256"
    assert credentials.username == "radio" and credentials.password == "pw-42"
    assert "pw-42" not in repr(credentials)
    configs = changelog_configs(Settings(topic_replication_factor=3))
    assert configs["min.insync.replicas"] == "2" and configs["segment.bytes"]
