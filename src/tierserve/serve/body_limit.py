"""Refuse request bodies over a size limit before they are read whole or parsed.

An ASGI middleware: a ``Content-Length`` over the limit is answered at once; a body without one
(chunked) is counted as it arrives and refused as soon as it passes the limit.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodySizeLimit"]


class BodySizeLimit:
    def __init__(
        self, app: ASGIApp, *, max_bytes: int, message: str, error_body: dict[str, Any]
    ) -> None:
        self._app = app
        self._max_bytes = max_bytes
        self._message = message
        self._error = json.dumps(error_body).encode()

    async def _refuse(self, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": self._error})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
            await self._refuse(send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max_bytes:
                    # Raised inside the app, whose HTTPException handler writes the 413.
                    raise HTTPException(413, self._message)
            return message

        await self._app(scope, counted_receive, send)
