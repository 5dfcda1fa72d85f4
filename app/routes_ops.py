"""What operators and their machines ask: /healthz (alive), /readyz (ready to serve), /metrics (Prometheus), and
the API's schema where it used to be (/api/openapi.json, now /openapi.json, where clients look first).

/healthz says the process answers at all: a load balancer restarts it when it does not. /readyz says whether it
should be sent new work: 503 while it shuts down (and whatever else `app.state.readiness_checks` says, e.g. a full
recording queue), so a proxy sends new users elsewhere while the requests in flight finish.

A readiness check is a function of no arguments returning (ok, reason), or an awaitable of it.
"""

from __future__ import annotations

import inspect
import signal
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sse_starlette.sse import AppStatus

from app import metrics
from sim import VERSION

ReadinessCheck = Callable[[], tuple[bool, str] | Awaitable[tuple[bool, str]]]

router = APIRouter(include_in_schema=False)


def shutting_down() -> bool:
    """Whether the server was told to stop (SIGTERM or SIGINT). uvicorn's signal handler is its Server's method,
    which sets `should_exit`: that is the one place a worker, even one of several, learns it (sse-starlette reads
    it the same way to end event streams)."""
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return bool(getattr(server, "should_exit", False)) or AppStatus.should_exit


def not_shutting_down() -> tuple[bool, str]:
    return (False, "shutting down") if shutting_down() else (True, "not shutting down")


def default_readiness_checks() -> list[ReadinessCheck]:
    return [not_shutting_down]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok", "version": VERSION}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    failing = []
    for check in request.app.state.readiness_checks:
        result = check()
        ok, reason = await result if inspect.isawaitable(result) else result
        if not ok:
            failing.append(reason)
    if failing:
        return JSONResponse(
            {"status": "unavailable", "reasons": failing}, status_code=503, headers={"Retry-After": "5"}
        )
    return JSONResponse({"status": "ready", "version": VERSION})


@router.get("/metrics")
async def prometheus_metrics(request: Request) -> Response:
    body, content_type = metrics.exposition(rooms_open=await request.app.state.rooms.count())
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})


@router.get("/api/openapi.json")
async def former_openapi_url() -> RedirectResponse:
    return RedirectResponse("/openapi.json", status_code=308)
