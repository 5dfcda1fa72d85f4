"""The HTTP server's limits, in one place: what `trapscope serve` hands uvicorn, and the request-size middleware.

A public link meets clients that send too much or too slowly. uvicorn (with h11) bounds the request line and
headers, idle keep-alive connections and the connections served at once; it has no limit on how long a request
may take to arrive, so a client that sends its headers a byte at a time (slowloris) would hold a connection for
as long as it likes. `BoundedH11Protocol` gives every request HEADER_READ_TIMEOUT_S to arrive whole, then
answers 408 and closes. `RequestSizeMiddleware` refuses request heads over MAX_REQUEST_HEAD_BYTES (431) and
bodies over MAX_BODY_BYTES (413).

Each value can be set by an environment variable (TRAPSCOPE_...), read when the server starts.
"""

from __future__ import annotations

import asyncio
import functools
import os
from dataclasses import asdict, dataclass
from typing import Any

import h11
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.rate_limit import RateLimit, install_rate_limit

# A request's line and headers: a D script of 8 KB travels in the URL, percent-encoded up to three times over.
MAX_REQUEST_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024  # the longest form the app takes is 8 KB (app/routes_rooms.py)
HEADER_READ_TIMEOUT_S = 5.0  # from the connection (or the previous response) to the whole request
KEEP_ALIVE_TIMEOUT_S = 5  # an idle keep-alive connection is closed after this
MAX_CONNECTIONS = 2000  # per worker: a room's followers (up to 1,000) hold an event stream each; more get a 503


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass(frozen=True)
class ServerLimits:
    max_request_head_bytes: int = MAX_REQUEST_HEAD_BYTES
    max_body_bytes: int = MAX_BODY_BYTES
    header_read_timeout_s: float = HEADER_READ_TIMEOUT_S
    keep_alive_timeout_s: int = KEEP_ALIVE_TIMEOUT_S
    max_connections: int = MAX_CONNECTIONS

    @classmethod
    def from_env(cls) -> ServerLimits:
        """The defaults, each overridden by its TRAPSCOPE_ variable (a positive number) where one is set."""
        values = {
            name: type(default)(_env_number(f"TRAPSCOPE_{name.upper()}", default))
            for name, default in asdict(cls()).items()
        }
        return cls(**values)

    def uvicorn_kwargs(self) -> dict[str, object]:
        """What uvicorn.run() (or uvicorn.Config) takes for these limits (picklable, for worker processes)."""
        return {
            "http": functools.partial(BoundedH11Protocol, header_read_timeout_s=self.header_read_timeout_s),
            "h11_max_incomplete_event_size": self.max_request_head_bytes,
            "timeout_keep_alive": self.keep_alive_timeout_s,
            "limit_concurrency": self.max_connections,
        }


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for each request to arrive: its line, headers and body."""

    def __init__(self, *args: Any, header_read_timeout_s: float = HEADER_READ_TIMEOUT_S, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_read_timeout_s = header_read_timeout_s
        self._read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_read_timeout_s)

    def _reading(self) -> bool:
        """Is a request on its way in (its line, headers or body not all here yet)?"""
        return self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._reading():
            self._disarm()  # the request has arrived whole (or the connection is done)
        elif self._read_deadline is None:
            self._arm(self.header_read_timeout_s)  # the first bytes of a next request on a kept-alive connection

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # until the next request's first bytes, an idle connection is uvicorn's keep-alive timer's

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request h11 cannot parse; a request line and headers over the limit get a 431
        that names it."""
        if len(self.conn.trailing_data[0]) <= self.config.h11_max_incomplete_event_size:
            super().send_400_response(msg)
            return
        limit = self.config.h11_max_incomplete_event_size
        message = f"the request line and headers are over the limit of {limit:,} bytes\n".encode()
        self.transport.write(_plain_response(431, "Request Header Fields Too Large", message))
        self.transport.close()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _too_slow(self) -> None:
        self._read_deadline = None
        if not self._reading():
            return
        # Part of a request and no response to it: say why. A connection that sent nothing is just closed (a
        # browser may open one ahead of need), as is one whose request is being answered.
        if self.conn.trailing_data[0] and (self.cycle is None or self.cycle.response_complete):
            message = (
                f"the request took longer than {self.header_read_timeout_s:g} s to arrive (the server's "
                "request read timeout)\n"
            ).encode()
            self.transport.write(_plain_response(408, "Request Timeout", message))
        self.transport.close()


def _plain_response(status: int, reason: str, body: bytes) -> bytes:
    """A whole HTTP/1.1 response, written straight to the connection (no request was handed to the app)."""
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def install_request_limits(app: FastAPI) -> None:
    """The app's own limits on requests: their size (here) and expensive requests per client (app/rate_limit.py)."""
    limits = ServerLimits.from_env()
    app.add_middleware(
        RequestSizeMiddleware, max_head_bytes=limits.max_request_head_bytes, max_body_bytes=limits.max_body_bytes
    )
    install_rate_limit(app, RateLimit.from_env())


class RequestSizeMiddleware:
    """A 431 for a request line and headers over `max_head_bytes` (h11's own bound holds only while they arrive
    in pieces), a 413 for a body over `max_body_bytes`, by its Content-Length or as it streams in."""

    def __init__(self, app: ASGIApp, max_head_bytes: int, max_body_bytes: int) -> None:
        self.app = app
        self.max_head_bytes = max_head_bytes
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        head = len(scope.get("raw_path") or b"") + len(scope["query_string"]) + sum(len(k) + len(v) for k, v in headers)
        if head > self.max_head_bytes:
            message = f"the request line and headers are over the limit of {self.max_head_bytes:,} bytes"
            await _refuse(send, 431, message)
            return
        length = dict(headers).get(b"content-length")
        if length is not None and (not length.isdigit() or len(length) > 12 or int(length) > self.max_body_bytes):
            await _refuse(send, 413, self._body_message)
            return
        received, started = 0, False

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge()
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, watched_send)
        except BodyTooLarge:
            if not started:
                await _refuse(send, 413, self._body_message)

    @property
    def _body_message(self) -> str:
        return f"the request body is over the limit of {self.max_body_bytes:,} bytes"


async def _refuse(send: Send, status: int, message: str) -> None:
    body = f"{message}\n".encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    """Raised from receive() inside the app when the body streams past the limit."""
