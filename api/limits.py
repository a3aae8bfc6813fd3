"""Request-body cap enforced on the bytes actually received, whatever the headers say.

The `Content-Length` check in the request middleware answers honest clients; a chunked upload has no
length, so this ASGI layer reads it up to the cap first and answers 413 past it (found by
tests/hardening/test_upload_limits.py).
"""

from __future__ import annotations

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
                await _send_413(send, self.max_bytes)
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


async def _send_413(send: Send, max_bytes: int) -> None:
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
