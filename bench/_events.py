"""Server-sent event streams for load benchmarks, read by an asyncio Protocol.

A broadcast reaches 300 streams at once. Read through asyncio streams (a StreamReader, a coroutine per chunk), the
client took ~0.2 ms per event to get to it, so the last of 300 followers' events was stamped ~60 ms after the first:
the client's own delay, counted as the server's. Here the event loop hands each socket's bytes to `data_received`,
which stamps the time before anything else and splits the chunked body into events in the same call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bench._http import MAX_HEAD, HttpError, Response, parse_head

OnEvent = Callable[[float, bytes], None]  # (perf_counter when its last byte was read, the raw event)


def event_end(buffer: bytearray, start: int) -> tuple[int, int] | None:
    """Where the first event in `buffer` ends, and where the next begins: a blank line, CRLF or LF line ends (what
    servers send; a bare CR is not looked for). bytes.find, not a regex: a follower's events are tens of KB."""
    ends = [(at, at + len(blank)) for blank in (b"\r\n\r\n", b"\n\n") if (at := buffer.find(blank, start)) >= 0]
    return min(ends) if ends else None


class EventStream(asyncio.Protocol):
    """One GET of an event stream: `head` resolves to the response (no body), `finished` to None when the server
    ends the stream, or to what broke it. Comments (the server's pings) are events too: `on_event` tells them apart."""

    def __init__(self, request: bytes, on_event: OnEvent) -> None:
        loop = asyncio.get_running_loop()
        self.request, self.on_event = request, on_event
        self.head: asyncio.Future[Response] = loop.create_future()
        self.finished: asyncio.Future[str | None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.unread = bytearray()  # bytes received and not yet parsed
        self.chunk_left = -1  # bytes of the current chunk still to come; -1: a chunk-size line is next
        self.text = bytearray()  # the stream's text not yet split into events
        self.scanned = 0  # `text[:scanned]` holds no event's end: a big event is searched once

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        received = time.perf_counter()
        self.unread += data
        try:
            if not self.head.done() and not self._read_head():
                return
            self._read_chunks(received)
        except (HttpError, ValueError) as error:
            self._end(f"{type(error).__name__}: {error}")

    def _read_head(self) -> bool:
        end = self.unread.find(b"\r\n\r\n")
        if end < 0:
            if len(self.unread) > MAX_HEAD:
                raise HttpError("the response's head is too long")
            return False
        status, headers, cookies = parse_head(bytes(self.unread[:end]))
        del self.unread[: end + 4]
        self.head.set_result(Response(status, headers, b"", cookies))
        if status != 200:
            self._end(None)
            return False
        if "chunked" not in headers.get("transfer-encoding", "") or "content-encoding" in headers:
            raise HttpError("an event stream must be chunked and not compressed")
        return True

    def _read_chunks(self, received: float) -> None:
        while self.unread:
            if self.chunk_left < 0:
                line_end = self.unread.find(b"\r\n")
                if line_end < 0:
                    return
                size = int(self.unread[:line_end].split(b";", 1)[0], 16)
                del self.unread[: line_end + 2]
                if size == 0:
                    self._end(None)
                    return
                self.chunk_left = size + 2  # the chunk and its CRLF
            take = min(self.chunk_left, len(self.unread))
            self.text += self.unread[: min(take, max(0, self.chunk_left - 2))]  # the chunk's data, not its CRLF
            del self.unread[:take]
            self.chunk_left -= take
            if self.chunk_left == 0:
                self.chunk_left = -1
        self._split_events(received)

    def _split_events(self, received: float) -> None:
        while (found := event_end(self.text, max(0, self.scanned - 3))) is not None:
            end, after = found
            event = bytes(self.text[:end])
            del self.text[:after]
            self.scanned = 0
            self.on_event(received, event)
        self.scanned = len(self.text)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(HttpError(f"the connection closed before the response: {exc}"))
        self._end(f"the connection was lost: {exc}" if exc else "the server closed the connection")

    def _end(self, why: str | None) -> None:
        if not self.finished.done():
            self.finished.set_result(why)
        self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


async def open_stream(host: str, port: int, target: str, headers: dict[str, str], on_event: OnEvent) -> EventStream:
    """GET `target` as an event stream; returns once the response's head is in (`stream.head`)."""
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    loop = asyncio.get_running_loop()
    try:
        _, stream = await loop.create_connection(lambda: EventStream(request, on_event), host, port)
    except OSError as error:
        raise HttpError(f"cannot connect: {error}") from None
    try:
        await stream.head
    except BaseException:
        stream.close()
        raise
    return stream
