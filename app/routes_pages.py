"""HTML pages: the landing page and the stepping page of a scenario.

The stepping page's URL is its state (`/scenarios/getpid?step=4`). The same URL answers an htmx request with
only the step panel (partials/step_panel.html), so a Step button is one small GET whose URL is pushed to history,
and history restores, reloads and pasted links all land on the step the URL names.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from app.errors import BadParameter
from app.figures import focus_window, ring_timeline
from app.runs import CachedRun, RunCache, get_run_cache
from app.templating import get_templates
from app.views import step_view
from sim.scenarios.registry import SCENARIOS, lookup

router = APIRouter(include_in_schema=False)

Runs = Annotated[RunCache, Depends(get_run_cache)]
Templates = Annotated[Jinja2Templates, Depends(get_templates)]

_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,18}")


def parse_step(raw: str | None, last_step: int) -> int:
    """The `step` query parameter: absent means the first step; anything but a whole number is an error."""
    if raw is None:
        return 0
    if not _WHOLE_NUMBER.fullmatch(raw.strip()):
        valid = f"a whole number from 0 to {last_step}"
        raise BadParameter("step", f"query parameter 'step' must be {valid}, not {raw!r}", valid)
    return int(raw)


def ring_intervals(cached: CachedRun) -> list[tuple[int, int, int]]:
    return cached.replay.ring_intervals()


def timeline_figure(cached: CachedRun) -> dict:
    return ring_timeline(cached.derived("ring_intervals", ring_intervals), cached.run.events)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


@router.get("/", response_class=HTMLResponse)
async def landing(request: Request, templates: Templates) -> HTMLResponse:
    return templates.TemplateResponse(request, "index.html", {"scenarios": list(SCENARIOS.values())})


@router.get("/scenarios/{slug}", response_class=HTMLResponse)
async def scenario_page(
    request: Request, slug: str, runs: Runs, templates: Templates, step: str | None = None
) -> HTMLResponse:
    scenario = lookup(slug)
    cached = await runs.get(scenario.spec())
    cached, state = await runs.state_at(scenario.spec(), parse_step(step, cached.last_step))

    def url_for_step(n: int) -> str:
        return f"{request.url.path}?{urlencode({**request.query_params, 'step': n})}"

    intervals = await run_in_threadpool(cached.derived, "ring_intervals", ring_intervals)
    window = focus_window(intervals, state.t_ns, state.cpl)
    context = {"view": step_view(scenario, state, cached.last_step, url_for_step, window), "fragment": is_htmx(request)}
    if context["fragment"]:
        response = templates.TemplateResponse(request, "partials/step_panel.html", context)
    else:
        context["timeline"] = await run_in_threadpool(cached.derived, "timeline", timeline_figure)
        response = templates.TemplateResponse(request, "scenario.html", context)
    response.headers["Vary"] = "HX-Request"  # one URL, two representations: the page and its step panel
    return response
