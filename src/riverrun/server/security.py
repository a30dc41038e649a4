"""Two ASGI middlewares in front of every route: the auth string and the body limit.

Written as plain ASGI (not Starlette's ``BaseHTTPMiddleware``) so that a refused
request costs no body read and a streamed body is counted as it arrives.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["MAX_BODY_BYTES", "BasicAuthMiddleware", "BodyLimitMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The largest request body the server reads (a batch of 5,000 events fits).
MAX_BODY_BYTES = 16 * 1024 * 1024

# Open without the auth string: a load balancer's health check has none.
_OPEN_PATHS = frozenset({"/api/health"})


async def _refuse(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BasicAuthMiddleware:
    """Require ``user:password`` (HTTP Basic) on every route but ``/api/health``.

    The expected string is compared in constant time and never logged or echoed.
    """

    def __init__(self, app: ASGIApp, auth_string: str) -> None:
        self.app = app
        self._expected = auth_string.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if self._authorised(scope):
            await self.app(scope, receive, send)
            return
        await _refuse(
            send,
            401,
            "This server requires an auth string: set RIVERRUN_API_AUTH_STRING=user:password",
            [(b"www-authenticate", b'Basic realm="riverrun"')],
        )

    def _authorised(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, encoded = value.partition(b" ")
                if scheme.lower() != b"basic":
                    return False
                try:
                    given = base64.b64decode(encoded.strip(), validate=True)
                except (binascii.Error, ValueError):
                    return False
                return hmac.compare_digest(given, self._expected)
        return False


class BodyLimitMiddleware:
    """Refuse (413) a request body over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = f"The request body is larger than the server accepts ({self.limit} bytes)"
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _refuse(send, 400, "Content-Length is not a number", [])
                    return
                if declared > self.limit:
                    await _refuse(send, 413, too_big, [])
                    return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _refuse(send, 413, too_big, [])


class _BodyTooLarge(Exception):
    pass
