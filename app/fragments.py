"""Rendered responses kept and sent again: a stepping URL's page or fragment is rendered once, then served from here.

A stepping URL fixes a run's inputs and a step, so what it answers is a pure function of the URL, of the request
headers its Vary names (htmx's, which pick the page, the stepper or the step panel) and of the app's version. The
route says so by answering `Cache-Control: public, ...` (routes_pages.py), which also lets browsers and a proxy in
front (deploy/) keep it. This middleware, in front of the app's routes, keeps such responses in an LRU bounded by
bytes and count, with a strong ETag, and answers a repeat from memory, gzip-compressed once, without routing,
rendering or compressing again: ~0.3 ms where rendering a dd step takes ~8 ms.

A response is kept only if it is a complete 200 to a GET, says `public`, sets no cookie, and varies on no request
header other than those in the key (and Accept-Encoding, which picks the stored encoding).
"""

from __future__ import annotations

import hashlib
import zlib
from collections import OrderedDict
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KEYED_HEADERS = ("hx-request", "hx-target", "hx-history-restore-request")  # what the stepping page reads
CACHED_PREFIXES = ("/scenarios/",)
DEFAULT_MAX_BYTES = 64 << 20  # ~1,500 dd step panels, both encodings
DEFAULT_MAX_ENTRIES = 4096
GZIP_MINIMUM = 512  # as the app's GZipMiddleware: a smaller body is sent as it is
GZIP_LEVEL = 9  # the same bytes GZipMiddleware would send
_DROPPED = {b"content-length", b"content-encoding", b"etag"}
_NOT_MODIFIED_HEADERS = {b"cache-control", b"vary", b"expires", b"content-location"}  # what a 304 repeats
# Browsers and proxies may keep a stepping URL's answer for ten minutes, then revalidate it (a 304 when the ETag
# still matches): short enough that a redeployed fix shows within minutes, long enough for a lecture's stepping.
SHAREABLE = "public, max-age=600"


@dataclass(frozen=True)
class Fragment:
    """One response, as it goes out: headers (without length and encoding), the body and its gzip form."""

    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    gzipped: bytes | None
    etag: bytes  # of the body; the gzip form's is the same with "-gzip" (a strong ETag names exact bytes)
    route: object = None  # the route that made it: a hit names it in the scope, for metrics and the access log

    @property
    def nbytes(self) -> int:
        return len(self.body) + len(self.gzipped or b"") + sum(len(n) + len(v) for n, v in self.headers) + 200

    def encoded(self, gzip: bool) -> tuple[bytes, bytes, bool]:
        """(body, ETag, whether it is gzip) of the encoding a client asked for."""
        if gzip and self.gzipped is not None:
            return self.gzipped, self.etag[:-1] + b'-gzip"', True
        return self.body, self.etag, False


def make_fragment(
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    gzip_encoded: bool,
    route: object = None,
    compressed_whole: bool = False,
) -> Fragment:
    """`compressed_whole`: the gzip body was compressed in one piece, as here (starlette's GZipMiddleware uses the
    same level and header), so it is kept as it came: compressing it again cost as much as rendering a dd step
    panel's views (~2 ms at level 9), for every step an explorer asks for the first time."""
    gzipped = body if gzip_encoded and compressed_whole else None
    body = zlib.decompress(body, 16 + zlib.MAX_WBITS) if gzip_encoded else body
    if gzipped is None and len(body) >= GZIP_MINIMUM:
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        gzipped = compressor.compress(body) + compressor.flush()
    etag = b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'
    kept = tuple((name, value) for name, value in headers if name.lower() not in _DROPPED)
    return Fragment(kept, body, gzipped, etag, route)


class FragmentCache:
    """An LRU of rendered responses, bounded by their bytes and their count."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self.bytes_held = 0
        self.hits = self.misses = 0
        self._entries: OrderedDict[tuple, Fragment] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple) -> Fragment | None:
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return found

    def put(self, key: tuple, fragment: Fragment) -> None:
        if fragment.nbytes > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes_held -= old.nbytes
        self._entries[key] = fragment
        self.bytes_held += fragment.nbytes
        while self.bytes_held > self.max_bytes or len(self._entries) > self.max_entries:
            _, evicted = self._entries.popitem(last=False)
            self.bytes_held -= evicted.nbytes

    def clear(self) -> None:
        self._entries.clear()
        self.bytes_held = 0


def _request_key(scope: Scope) -> tuple | None:
    """The cache key of a GET under CACHED_PREFIXES: path, query and the keyed headers; None for anything else."""
    if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith(CACHED_PREFIXES):
        return None
    keyed = {name: b"" for name in KEYED_HEADERS}
    for name, value in scope["headers"]:
        text = name.decode("latin-1").lower()
        if text in keyed:
            keyed[text] = value
    return (scope["path"], scope["query_string"], *keyed.values())


def _accepts_gzip(scope: Scope) -> bool:
    return "gzip" in Headers(scope=scope).get("accept-encoding", "")


def _none_match(scope: Scope, etag: bytes) -> bool:
    """Whether the request's If-None-Match names `etag` (or `*`): the client has these exact bytes already."""
    for name, value in scope["headers"]:
        if name.lower() == b"if-none-match":
            tags = [tag.strip() for tag in value.split(b",")]
            return b"*" in tags or etag in tags or b"W/" + etag in tags
    return False


def _storable(start: Message) -> bool:
    if start["status"] != 200:
        return False
    headers = Headers(raw=start["headers"])
    if "public" not in headers.get("cache-control", "") or "set-cookie" in headers:
        return False
    varies = {name.strip().lower() for name in ",".join(headers.getlist("vary")).split(",") if name.strip()}
    return varies <= {*KEYED_HEADERS, "accept-encoding"}


class FragmentCacheMiddleware:
    """Answers a GET from the fragment cache, or lets the app answer it and keeps the answer if it may."""

    def __init__(self, app: ASGIApp, cache: FragmentCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _request_key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        found = self.cache.get(key)
        if found is not None:
            scope["route"] = found.route  # as routing would have set it (app/observe.py labels requests by it)
            await _send(scope, send, found)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if _storable(message):
                    start = message  # held back until the whole body is here
                else:
                    await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                gzip = Headers(raw=start["headers"]).get("content-encoding", "") == "gzip"
                body, whole = b"".join(chunks), len(chunks) == 1  # a body in pieces was flushed between them
                fragment = make_fragment(start["headers"], body, gzip, scope.get("route"), compressed_whole=whole)
                self.cache.put(key, fragment)
                await _send(scope, send, fragment)

        await self.app(scope, receive, keep)


async def _send(scope: Scope, send: Send, fragment: Fragment) -> None:
    body, etag, gzipped = fragment.encoded(_accepts_gzip(scope))
    if _none_match(scope, etag):
        headers = [(n, v) for n, v in fragment.headers if n.lower() in _NOT_MODIFIED_HEADERS] + [(b"etag", etag)]
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [*fragment.headers, (b"etag", etag)]
    if gzipped:
        headers.append((b"content-encoding", b"gzip"))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
