"""Every request, observed once: counted and timed for /metrics (app/metrics.py) and written to the access log.

The access log (logger "trapscope.access") is one JSON object a line: method, route template, path, status,
duration and bytes sent. The path is cut to MAX_LOGGED_PATH characters and the query string is never written, so
a hostile multi-kilobyte URL costs the log a line of ordinary length (and leaks no lecturer's key).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics

MAX_LOGGED_PATH = 200

access_log = logging.getLogger("trapscope.access")


def route_template(scope: Scope, path: str) -> str:
    """The template of the route that took the request (/rooms/{code}/events). FastAPI's routes leave themselves
    in the scope; the others (a mount, the schema's route) are found again by matching the request's path."""
    route = scope.get("route")
    if route is None:
        probe = {"type": "http", "path": path, "root_path": "", "method": "GET"}
        route = next((r for r in scope["app"].router.routes if r.matches(probe)[0] == Match.FULL), None)
    return getattr(route, "path_format", None) or getattr(route, "path", None) or metrics.UNMATCHED


def _shortened(path: str) -> str:
    return path if len(path) <= MAX_LOGGED_PATH else path[: MAX_LOGGED_PATH - 1] + "…"


class RequestObserverMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]  # before HEAD becomes GET inside, before a mount cuts it
        started = time.perf_counter()
        status, sent, stream = 500, 0, False

        async def observed_send(message: Message) -> None:
            nonlocal status, sent, stream
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = dict(message.get("headers", ()))
                stream = headers.get(b"content-type", b"").startswith(b"text/event-stream")
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope, path)
            metrics.observe_request(method, route, status, None if stream else seconds)
            if access_log.isEnabledFor(logging.INFO):
                entry = {
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "method": method if method in metrics.METHODS else "other",
                    "route": route,
                    "path": _shortened(path),
                    "status": status,
                    "ms": round(seconds * 1000, 1),
                    "bytes": sent,
                }
                access_log.info(json.dumps(entry, ensure_ascii=False))
