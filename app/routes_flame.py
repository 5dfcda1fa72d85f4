"""The flame graph's time-order view asks for the frames of the range it shows, as JSON:

    GET /trace/flame/chart?command=...&profile=...&from=NS&to=NS&width=PX

`from` and `to` are on-CPU time (sim/trace/flame_chart.py), `width` the plot's width in pixels: the answer holds
the frames at least half a pixel wide there (app/flame_view.py chart_data). The run's chart is built once and
kept with the run.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from app import flame_view
from app.errors import BadParameter
from app.routes_trace import Runs, _text, parse_query
from app.runs import CachedRun
from sim.trace.flame_chart import FlameChart, flame_chart

router = APIRouter(include_in_schema=False)

MAX_WIDTH_PX = 8000
MAX_NS_DIGITS = 18


def _number(request: Request, name: str, default: int, limit: int) -> int:
    text = _text(request.query_params, name, MAX_NS_DIGITS + 1)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_NS_DIGITS or int(text) > limit:
        raise BadParameter(
            name, f"query parameter {name!r} must be a whole number from 0 to {limit:,}, not {text[:40]!r}"
        )
    return int(text)


def run_chart(cached: CachedRun) -> FlameChart:
    return cached.derived("flame_chart", lambda c: flame_chart(c.run))


@router.get("/trace/flame/chart")
async def chart_frames(request: Request, runs: Runs) -> Response:
    query = parse_query(request.query_params)
    chart = await run_in_threadpool(run_chart, await runs.get(query.spec))
    start = _number(request, "from", 0, chart.end_ns)
    end = _number(request, "to", chart.end_ns, chart.end_ns)
    if end <= start:
        raise BadParameter("to", f"query parameter 'to' ({end:,}) must be after 'from' ({start:,})")
    width = _number(request, "width", 1200, MAX_WIDTH_PX) or 1
    data = await run_in_threadpool(flame_view.chart_data, chart, start, end, width)
    return JSONResponse(data, headers={"Cache-Control": "public, max-age=600"})
