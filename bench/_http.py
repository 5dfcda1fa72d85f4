"""A minimal HTTP/1.1 client over asyncio streams, for load benchmarks: keep-alive, Content-Length and chunked bodies
(server-sent event streams: bench/_events.py).

httpx spends more CPU per request than the server under test does, so a load generator built on it measures itself.
This client does what a browser's connection does and nothing else: one request at a time per connection, the
connection kept alive between requests and opened again when the server has closed it or it sat idle past the
server's keep-alive timeout (as browsers do). No redirects are followed, nothing is decompressed unless asked.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

IDLE_REOPEN_S = 4.0  # uvicorn closes an idle keep-alive connection after 5 s: a browser's pool would not reuse it
MAX_HEAD = 64 * 1024


class HttpError(Exception):
    """The connection failed or the server broke the protocol (not an HTTP error status: that is a Response)."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined by ", " (set-cookie kept apart)
    body: bytes
    cookies: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        """The body as text, gunzipped if the server compressed it."""
        body = self.body
        if self.headers.get("content-encoding") == "gzip":
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        return body.decode("utf-8", "replace")


def parse_head(head: bytes) -> tuple[int, dict[str, str], dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isascii() or not parts[1].isdecimal():
        raise HttpError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "set-cookie":
            cookie_name, _, rest = value.partition("=")
            cookies[cookie_name.strip()] = rest.split(";", 1)[0]
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return int(parts[1]), headers, cookies


class Connection:
    """One keep-alive HTTP/1.1 connection to host:port, used for one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._idle_since = 0.0
        self.opened = 0  # connections opened, the first included

    async def _ensure_open(self) -> None:
        if self._writer is not None and time.monotonic() - self._idle_since > IDLE_REOPEN_S:
            await self.close()
        if self._writer is None:
            try:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=MAX_HEAD)
            except OSError as error:
                raise HttpError(f"cannot connect: {error}") from None
            self.opened += 1

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    def _head(self, method: str, target: str, headers: dict[str, str] | None, body: bytes) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def _send(self, method: str, target: str, headers: dict[str, str] | None, body: bytes) -> Response:
        await self._ensure_open()
        assert self._reader is not None and self._writer is not None
        try:
            self._writer.write(self._head(method, target, headers, body))
            head = await self._reader.readuntil(b"\r\n\r\n")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
            await self.close()
            raise HttpError(f"{type(error).__name__}: {error}") from None
        status, response_headers, cookies = parse_head(head[:-4])
        return Response(status, response_headers, b"", cookies)

    async def request(
        self, method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Response:
        """Send a request and read the whole response."""
        response = await self._send(method, target, headers, body)
        try:
            response.body = await self._read_body(response, method)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
            await self.close()
            raise HttpError(f"reading the body: {type(error).__name__}: {error}") from None
        if response.headers.get("connection", "").lower() == "close":
            await self.close()
        self._idle_since = time.monotonic()
        return response

    async def _read_body(self, response: Response, method: str) -> bytes:
        assert self._reader is not None
        if method == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200:
            return b""
        if "chunked" in response.headers.get("transfer-encoding", "").lower():
            return b"".join([chunk async for chunk in self._chunks()])
        length = response.headers.get("content-length")
        if length is not None:
            return await self._reader.readexactly(int(length))
        body = await self._reader.read()  # no length: the body ends with the connection
        await self.close()
        return body

    async def _chunks(self) -> AsyncIterator[bytes]:
        assert self._reader is not None
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")  # no trailers are sent by the servers measured here
                return
            chunk = await self._reader.readexactly(size + 2)
            yield chunk[:-2]
