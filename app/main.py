"""The trapscope web app: `create_app()` builds it (uvicorn app.main:create_app --factory).

Everything the browser needs is served from here (no CDN), compressed, behind a strict Content-Security-Policy.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

from app import (
    metrics,
    routes_api,
    routes_console,
    routes_embed,
    routes_exercises,
    routes_flame,
    routes_lab,
    routes_ops,
    routes_outline,
    routes_pages,
    routes_rooms,
    routes_trace,
    speedscope,
    vendor,
)
from app.admission import RecordingPool
from app.broker import make_broker
from app.collector import settle_for_serving
from app.errors import CatchAllMiddleware, install_error_handlers
from app.fragments import FragmentCache, FragmentCacheMiddleware
from app.head import HeadAsGetMiddleware
from app.observe import RequestObserverMiddleware
from app.params import WEB_EVENT_BUDGET, check_web_command
from app.readiness import recording_queue_has_room
from app.recorder_process import recorder_process_from_env
from app.rooms import RoomLimits, Rooms
from app.routes_profiles import router as profiles_router
from app.runs import DEFAULT_MAX_RUNS, RunCache
from app.security import SecurityHeadersMiddleware
from app.server_limits import install_request_limits
from app.templating import STATIC_DIR, VersionedStaticFiles, make_templates
from sim import VERSION
from sim.run import Run, RunError, RunSpec, RunTooLong, record

# How long a thread may hold the GIL while another waits for it (Python's default: 5 ms). A recording holds it for
# seconds of pure Python; each time the event loop lets go of it (every socket write of a broadcast to 300
# followers) it waited up to the whole interval to get it back. At 0.5 ms, the lecture benchmark (300 followers, 50
# explorers, new dd runs; bench/lecture_load.py, 30 s, quiet machine) went from p99 broadcast delay 4.2 s to 0.62 s
# and p99 explorer step 6.2 s to 2.3 s, new runs taking longer (p50 1.5 s to 2.6 s): the steps people wait on
# come first.
GIL_SWITCH_INTERVAL_S = 0.0005
EXEC_SLACK = 200_000  # exec's own unrecorded steps before the run begins, which the event budget also counts


def web_record(spec: RunSpec) -> Run:
    """A web run records every step it takes, and may take no more: a huge dd is refused with the limit named."""
    check_web_command(spec.command)  # a dd too big for the web is refused before it runs, not after seconds
    try:
        run = record(spec, record_budget=WEB_EVENT_BUDGET, event_budget=WEB_EVENT_BUDGET + EXEC_SLACK)
    except RunTooLong:  # past the event budget too: the same limit, in the same words
        run = None  # raised below, outside this handler: the new error must not hold the old one's frames
    if run is None or run.unrecorded:
        del run  # not kept by the refusal's traceback: its events are ~270 MB
        raise _too_long(spec)
    return run


def _too_long(spec: RunSpec) -> RunError:
    return RunError(
        f"{spec.command}: the run takes more than {WEB_EVENT_BUDGET:,} steps, the web's limit for one run; "
        "ask for less work (a smaller bs or count), or use `trapscope run` at the command line"
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if app.state.runs.records_elsewhere:
        settle_for_serving()  # no recording here: short collections over the cached runs (app/collector.py)
    yield
    await app.state.rooms.broker.close()
    app.state.runs.close()
    metrics.worker_exited()


def create_app(max_runs: int = DEFAULT_MAX_RUNS, rooms: Rooms | None = None) -> FastAPI:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)  # for the process: the event loop gets the GIL back soon
    app = FastAPI(
        lifespan=lifespan,
        title="trapscope",
        version=VERSION,
        summary="Step through FreeBSD/amd64 system calls, traps and virtual memory, recorded by a simulator.",
        openapi_url="/openapi.json",  # where clients look; /api/openapi.json redirects here
        docs_url=None,  # the interactive docs load their scripts from a CDN, which trapscope never does
        redoc_url=None,
    )
    app.state.runs = RunCache(
        max_runs, recorder=web_record, pool=RecordingPool.from_env(), elsewhere=recorder_process_from_env()
    )
    app.state.templates = make_templates()
    # Live rooms: in this process, or in Redis when TRAPSCOPE_REDIS_URL names one (several workers or hosts).
    app.state.rooms = rooms or Rooms(make_broker(os.environ.get("TRAPSCOPE_REDIS_URL")), RoomLimits.from_env())
    app.state.room_stages = OrderedDict()  # (code, version) -> the whole-stepper fragment, for resyncs
    app.state.readiness_checks = routes_ops.default_readiness_checks()  # /readyz: append (ok, reason) functions
    app.state.readiness_checks.append(recording_queue_has_room(app))
    routes_console.install_console(app.state.templates)
    install_request_limits(app)  # body size, rate limits (inside the security headers' middleware)
    app.add_middleware(GZipMiddleware, minimum_size=512)
    app.state.fragments = FragmentCache()
    app.add_middleware(FragmentCacheMiddleware, cache=app.state.fragments)  # a repeat skips routing and gzip
    app.add_middleware(CatchAllMiddleware)  # a 500 that still says what happened, inside the headers
    app.add_middleware(HeadAsGetMiddleware)  # outside the fragment cache, so a HEAD is answered from it too
    app.add_middleware(RequestObserverMiddleware)  # metrics and the access log, of HEAD, cache hits and 500s too
    app.add_middleware(SecurityHeadersMiddleware)  # outermost, so error responses get the headers too
    install_error_handlers(app)
    app.mount("/static", VersionedStaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(vendor.router)
    app.include_router(routes_pages.router)
    app.include_router(profiles_router)
    app.include_router(routes_outline.router)
    app.include_router(routes_embed.router)  # /oembed
    app.include_router(routes_exercises.router)
    app.include_router(routes_api.router)
    app.include_router(routes_trace.router)
    app.include_router(routes_lab.router)
    app.include_router(routes_flame.router)  # the flame graph's time-order frames
    app.include_router(speedscope.router)  # speedscope itself, for "Open in speedscope"
    app.include_router(routes_console.router)
    app.include_router(routes_rooms.router)
    app.include_router(routes_ops.router)
    return app
