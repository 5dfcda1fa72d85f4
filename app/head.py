"""HEAD wherever GET: uptime monitors and link checkers ask HEAD, and FastAPI's routes answer only what they name.

A HEAD request is served as the GET it stands for, with the same status and headers (Content-Length included) and
no body. A streamed answer (a room's events) is ended after its headers, so nothing runs on for nobody.
"""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGetMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        scope["method"] = "GET"  # in place: the middlewares around this one read the route the router sets here

        with anyio.CancelScope() as body_sent:

            async def send_head(message: Message) -> None:
                if message["type"] != "http.response.body":
                    await send(message)
                elif not body_sent.cancel_called:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    if message.get("more_body", False):
                        body_sent.cancel()  # a stream: the headers are all HEAD asked for

            await self.app(scope, receive, send_head)
