"""The ASGI layers every request passes before it reaches a route, outermost first:

1. ``MetricsMiddleware``: counts the request, its status and its latency under the route's path template
   (``/v1/memories/{memory_id}``, never the raw path, so the label set stays bounded);
2. ``TokenMiddleware``: the bearer token, compared in constant time (401 before anything else is read);
3. ``BodyLimitMiddleware``: reads the body up to the limit (413 beyond it) and hands it on.

Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``, which would run routes in another task.
"""

from __future__ import annotations

import hmac
import json
import time

from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from dexter_brain.serve.metrics import ServeMetrics

PUBLIC_PATHS = frozenset({"/health"})


async def send_json(send: Send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(body).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": data})


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: ServeMetrics, routes):
        self.app, self.metrics, self.routes = app, metrics, routes

    def endpoint(self, scope: Scope) -> str:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route.path
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500
        started = time.perf_counter()

        async def send_and_record(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        endpoint = self.endpoint(scope)
        self.metrics.begin()
        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.metrics.end(endpoint, status, time.perf_counter() - started)


class TokenMiddleware:
    """Every path except ``/health`` needs ``Authorization: Bearer <token>`` (when a token is set)."""

    def __init__(self, app: ASGIApp, token: str | None):
        self.app = app
        self.token = token.encode("utf-8") if token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.token is None or scope["path"] in PUBLIC_PATHS:
            return await self.app(scope, receive, send)
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, given = header.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self.token):
            return await send_json(send, 401, {"detail": "missing or wrong bearer token (Authorization: Bearer ...)"},
                                   [(b"www-authenticate", b"Bearer")])
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Bodies over ``max_bytes`` get 413, whether announced by Content-Length or streamed in chunks."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def too_large(self, send: Send) -> None:
        await send_json(send, 413, {"detail": f"request body too large (at most {self.max_bytes} bytes)"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self.too_large(send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before sending its body: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self.too_large(send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: only the disconnect is left to wait for
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
