"""Request-body cap enforced on the bytes actually received, whatever the headers say.

The `Content-Length` check in the request middleware answers honest clients; a chunked upload has no
length, so this ASGI layer reads it up to the cap first and answers 413 past it (found by
tests/hardening/test_upload_limits.py).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """Wrap the app so no handler ever reads more than `max_bytes` of body."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if b"content-length" in headers:
            # Honest length: the request middleware already refused it if too large, and the server
            # never delivers more bytes than the header says.
            await self.app(scope, receive, send)
            return
        # No length (chunked): read up to the cap before the app sees anything. Raising from inside
        # the app's receive would not work: Starlette's form and JSON readers turn any error there
        # into a 400 "error parsing the body".
        chunks: list[bytes] = []
        received = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                chunks = []
                more = False
                break
            body = message.get("body", b"")
            received += len(body)
            if received > self.max_bytes:
                await send_payload_too_large(send, self.max_bytes)
                return
            chunks.append(body)
            more = bool(message.get("more_body", False))
        buffered = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": buffered, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def send_payload_too_large(send: Send, max_bytes: int) -> None:
    body: dict[str, Any] = {
        "error_id": "payload_too_large",
        "message": f"body exceeds {max_bytes} bytes",
        "details": None,
    }
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class InFlightLimit:
    """At most `max_in_flight` ordinary requests inside the app; the rest wait in the event loop.

    Sync endpoints and their `yield` session dependency run in the worker-thread pool in separate
    steps, and a request parked between steps keeps its pooled database connection. With more requests
    in flight than connections, every worker thread can end up waiting for a connection held by a
    parked request that needs a thread to finish: a deadlock that ends in QueuePool timeouts (found by
    bench/api_load.py with 200 agents). Keeping in-flight requests below the pool size makes it
    impossible. Event streams are exempt: they hold no request session (agents/live.py polls with
    short sessions of its own).
    """

    def __init__(
        self, app: ASGIApp, *, max_in_flight: int, exempt_suffixes: tuple[str, ...] = ("/events",)
    ) -> None:
        self.app = app
        self.exempt_suffixes = exempt_suffixes
        self._slots = asyncio.Semaphore(max_in_flight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).endswith(self.exempt_suffixes):
            await self.app(scope, receive, send)
            return
        async with self._slots:
            await self.app(scope, receive, send)


def max_in_flight_requests(session_factory: Any) -> int:
    """A few below the connection pool's capacity (a generous fixed cap when the pool has no size)."""
    bind = session_factory.kw.get("bind")
    pool = getattr(bind, "pool", None)
    size = getattr(pool, "size", None)
    overflow = getattr(pool, "_max_overflow", 0)
    if not callable(size):
        return 64
    return max(4, size() + max(0, overflow) - 4)
