"""The worker's HTTP bearer token (RADIO_HTTP_TOKEN / RADIO_HTTP_TOKEN_FILE).

With a token set, every page of the worker except /metrics and /health needs it:
`Authorization: Bearer <token>` (compared in constant time), else 401 with a WWW-Authenticate
header. /metrics and /health stay open: Prometheus and the Kubernetes probes call them without
credentials, and they carry no listener data (no metric has a listener label).

A browser cannot add a header to the live page's requests, so the live pages also take
`?token=<token>` once: the worker answers with a redirect to the same page without it and sets
an HttpOnly, SameSite=Strict cookie holding an HMAC of the token (not the token), which the
page's stream and its event posts then carry. The cookie is only accepted under /live/.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

#: paths anyone may call: Prometheus scrapes and the orchestrator's probes
OPEN_PATHS = frozenset({"/metrics", "/health"})
#: the pages a browser opens: they accept the cookie (and ?token= once)
LIVE_PREFIX = "/live/"
COOKIE = "radio_live"
REALM = 'Bearer realm="radio-engine"'

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def cookie_value(token: str) -> str:
    """What the live-page cookie holds: an HMAC of the token, so the browser keeps no token."""
    return hmac.new(token.encode(), b"radio-engine live page", hashlib.sha256).hexdigest()


def same(given: str, expected: str) -> bool:
    """Constant-time comparison (the time taken does not tell how much of a guess matched)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def bearer(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, None for any other header."""
    scheme, _, value = authorization.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@dataclass(frozen=True)
class Verdict:
    """What to do with one request: let it through, redirect it (setting the cookie), or
    refuse it (401; `offered` says whether a wrong credential came with it)."""

    action: str  # "pass", "redirect" or "refuse"
    offered: bool = False


def decide(
    token: str,
    path: str,
    authorization: str,
    cookie: str | None,
    query_token: str | None,
    method: str,
) -> Verdict:
    """The rule of the module docstring as a plain function of the request's parts."""
    if not token or path in OPEN_PATHS:
        return Verdict("pass")
    given = bearer(authorization)
    if given is not None and same(given, token):
        return Verdict("pass")
    live = path.startswith(LIVE_PREFIX)
    if live and cookie is not None and same(cookie, cookie_value(token)):
        return Verdict("pass")
    if live and method == "GET" and query_token is not None and same(query_token, token):
        return Verdict("redirect")
    offered = bool(authorization) or query_token is not None or (live and cookie is not None)
    return Verdict("refuse", offered)


def token_middleware(token: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """An aiohttp middleware that applies `decide` to every request (no-op without a token)."""

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        verdict = decide(
            token,
            request.path,
            request.headers.get("Authorization", ""),
            request.cookies.get(COOKIE),
            request.query.get("token"),
            request.method,
        )
        if verdict.action == "pass":
            return await handler(request)
        if verdict.action == "redirect":
            query = {k: v for k, v in request.query.items() if k != "token"}
            location = str(request.rel_url.with_query(query))
            response = web.Response(status=303, headers={"Location": location})
            response.set_cookie(
                COOKIE, cookie_value(token), path=LIVE_PREFIX, httponly=True, samesite="Strict"
            )
            return response
        challenge = REALM + (', error="invalid_token"' if verdict.offered else "")
        return web.json_response(
            {"error": "this page needs the worker's token: Authorization: Bearer <token>"},
            status=401,
            headers={"WWW-Authenticate": challenge},
        )

    return require_token
