"""Rate limits per client on expensive work: a new recording, a D program compiled or run. Cached steps are free.

Each client address has a token bucket: `burst` tokens, refilled at `burst` per `period_s` seconds. A request
that would start expensive work (app/runs.py records a run the cache lacks; the trace page compiles or runs a D
program it has not) takes one token, once however much it starts; without one it is answered 429 with
Retry-After and a message naming the limit. The table of clients is bounded (the least recently seen is
forgotten first).

TRAPSCOPE_RATE_LIMIT sets the limit as "N/S" (N expensive requests per S seconds, N at once), or "off". The
address is the connection's; behind a reverse proxy, run uvicorn with --proxy-headers so it is the client's. A
lecture hall behind one NAT address shares one bucket: raise the limit for a course that explores a lot.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import Problem, _respond

DEFAULT_RATE_LIMIT = "30/60"  # a student exploring starts a new run every few seconds at most
MAX_CLIENTS = 10_000  # addresses remembered
_ROOM_EVENTS = re.compile(r"/rooms/[^/]+/(lead/)?events")


class RateLimited(Exception):
    """A client has used its expensive requests for now; `retry_after_s` says when it has one again."""

    def __init__(self, limit: RateLimit, retry_after_s: int) -> None:
        super().__init__(
            f"too many new runs or D programs from your address: the limit is {limit.burst} per "
            f"{limit.period_s:g} s; try again in {retry_after_s} s (cached steps are not limited)"
        )
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class RateLimit:
    burst: int
    period_s: float

    @classmethod
    def parse(cls, text: str) -> RateLimit | None:
        """'N/S' as a limit; 'off' (or '0') as none. ValueError for anything else."""
        text = text.strip().lower()
        if text in ("off", "0", "none"):
            return None
        burst, _, period = text.partition("/")
        limit = cls(int(burst), float(period or 1))
        if limit.burst < 1 or not limit.period_s > 0:
            raise ValueError(f"TRAPSCOPE_RATE_LIMIT must be N/S with N and S positive, or off: {text[:20]!r}")
        return limit

    @classmethod
    def from_env(cls) -> RateLimit | None:
        return cls.parse(os.environ.get("TRAPSCOPE_RATE_LIMIT", DEFAULT_RATE_LIMIT))


class RateLimiter:
    """Token buckets by client address, at most MAX_CLIENTS of them."""

    def __init__(self, limit: RateLimit, max_clients: int = MAX_CLIENTS, clock=time.monotonic) -> None:
        self.limit = limit
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, client: str) -> None:
        """Take one token from the client's bucket, or raise RateLimited."""
        rate = self.limit.burst / self.limit.period_s
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.pop(client, (float(self.limit.burst), now))
            tokens = min(float(self.limit.burst), tokens + (now - then) * rate)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        if not allowed:
            raise RateLimited(self.limit, max(1, math.ceil((1 - tokens) / rate)))


@dataclass
class _Ticket:
    """One request's standing: its client, and whether it has already paid for expensive work."""

    limiter: RateLimiter
    client: str
    paid: bool = False


_ticket: ContextVar[_Ticket | None] = ContextVar("trapscope_rate_ticket", default=None)


def charge() -> None:
    """Called where a request starts expensive work: takes the request's one token (RateLimited if none)."""
    ticket = _ticket.get()
    if ticket is None or ticket.paid:
        return
    ticket.limiter.take(ticket.client)
    ticket.paid = True


class RateLimitMiddleware:
    """Gives each HTTP request a ticket for its client, which `charge()` spends."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _ROOM_EVENTS.fullmatch(scope["path"]):
            # A room's event stream renders the lecturer's run, not one this client asked for: a resync that
            # records it again must not end a follower's stream (a lecture hall shares one NAT address).
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        token = _ticket.set(_Ticket(self.limiter, client[0] if client else "unknown"))
        try:
            await self.app(scope, receive, send)
        finally:
            _ticket.reset(token)


def install_rate_limit(app: FastAPI, limit: RateLimit | None) -> None:
    """Rate-limit `app`'s expensive requests (none if `limit` is None), with the 429 they are answered."""
    if limit is None:
        return
    app.state.rate_limiter = RateLimiter(limit)
    app.add_middleware(RateLimitMiddleware, limiter=app.state.rate_limiter)

    async def rate_limited(request: Request, error: RateLimited) -> Response:
        response = _respond(request, Problem(429, str(error)))
        response.headers["Retry-After"] = str(error.retry_after_s)
        return response

    app.add_exception_handler(RateLimited, rate_limited)
