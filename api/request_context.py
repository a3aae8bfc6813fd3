"""The outermost layer of every request: request id, early 413 on a declared length, security headers,
access log.

Plain ASGI, not `@app.middleware("http")`: Starlette's BaseHTTPMiddleware runs the rest of the request in
a second task with memory streams between the two, a fixed cost on every request that showed in the
profile of bench/api_load.py.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.limits import send_payload_too_large

log = logging.getLogger("api.access")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContext:
    """Give each request an id (the caller's `X-Request-ID` when well formed), refuse a declared body
    above `max_bytes` before anything reads it, add `headers` to every response that lacks them, report
    the time spent in `Server-Timing` and log method, path, status and time."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, headers: Mapping[str, str]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.headers = [(name.lower().encode(), value.encode()) for name, value in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = dict(scope.get("headers") or [])
        incoming = request_headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = [0]
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = [(n, v) for n, v in message.get("headers", []) if n.lower() != b"x-request-id"]
                present = {name.lower() for name, _ in own}
                spent_ms = (time.perf_counter() - started) * 1000
                message["headers"] = [
                    *own,
                    (b"x-request-id", request_id.encode()),
                    # W3C Server-Timing: time in this process up to the response head, which browser dev
                    # tools show and bench/api_load.py sets against what the client saw.
                    (b"server-timing", f"app;dur={spent_ms:.1f}".encode()),
                    *((name, value) for name, value in self.headers if name not in present),
                ]
                status[0] = message["status"]
            await send(message)

        length = request_headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            # Honest clients are refused here; BodyLimit (api/limits.py) counts the bytes of the rest.
            await send_payload_too_large(send_with_headers, self.max_bytes)
            return
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            log.info(
                "request_id=%s %s %s -> %s %.1fms",
                request_id,
                scope["method"],
                scope["path"],
                status[0] or "-",
                (time.perf_counter() - started) * 1000,
            )
