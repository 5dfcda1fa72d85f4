"""HTML pages: the landing page and the stepping page of a scenario.

The stepping page's URL is its state (`/scenarios/getpid?step=4&views=cpu,source`). One URL answers three ways:
  - a plain GET: the whole page;
  - an htmx request aimed at the step panel (a step control): only partials/step_panel.html, a few KB;
  - an htmx request aimed at the stepper (a new run from the parameters form, a view or mode toggle, history
    restore): partials/stepper.html, which carries the timeline figure of the (maybe new) run.
`?at=NS` (the timeline's click-to-jump) names a time instead of a step: it is answered with the step running at
that time, and the canonical `?step=N` URL goes to history (HX-Push-Url, or a redirect without htmx).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from app.figures import latency_layout, timeline_layout
from app.fragments import SHAREABLE
from app.params import EVENT_KIND_NAMES, VIEWS, MalformedStep, StepperQuery, parse_query, step_problem
from app.room_views import room_bar
from app.routes_console import console_program, with_console_program
from app.routes_trace import trace_url
from app.runs import RunCache, get_run_cache
from app.security import embed_policy
from app.stepper import PrepareStepper, StepperRun, derived_stepper_run, stepper_view
from app.templating import get_templates
from app.view_stops import run_stops, with_stop
from sim.replay import StepOutOfRange
from sim.scenarios.registry import KNOBS, SCENARIOS, lookup

router = APIRouter(include_in_schema=False)

Runs = Annotated[RunCache, Depends(get_run_cache)]
Templates = Annotated[Jinja2Templates, Depends(get_templates)]


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def wants_panel_only(request: Request) -> bool:
    """A step control's request: htmx, aimed at the step panel, and not a history restore."""
    return (
        is_htmx(request)
        and request.headers.get("hx-target", "").endswith("#step-panel")
        and request.headers.get("hx-history-restore-request") != "true"
    )


async def stepper_context(query: StepperQuery, runs: RunCache, fragment: bool) -> dict[str, Any]:
    """What the stepper's templates need to show `query`'s step (its run recorded, or taken from the cache)."""
    cached = await runs.get(query.spec, prepare=PrepareStepper(query.scenario.slug))
    derived = await derived_stepper_run(runs, cached)
    stops = await run_stops(runs, cached, query.scenario)
    query = with_stop(query, stops)
    step = query.step or 0
    if not 0 <= step <= cached.last_step:
        raise StepOutOfRange(step, cached.last_step)
    state = await run_in_threadpool(cached.state_at, step)
    view = await run_in_threadpool(stepper_view, query, cached, derived, state, stops)
    return {
        "view": view,
        "trace_url": trace_url(query.spec.command, query.profile),
        "fragment": fragment,
        "morphed": False,  # a step's panel alone, which the page morphs in (step_panel.html): set by the route
        "views": VIEWS,
        "knobs": KNOBS,
        "event_kinds": EVENT_KIND_NAMES,
        "derived": derived,
    }


def add_figures(context: dict[str, Any], derived: StepperRun) -> None:
    """The run's figures, for templates that draw the whole stepper (a step panel keeps the timeline it has)."""
    context["timeline"] = {**timeline_layout(), "data": derived.timeline}
    context["latency_figure"] = latency_layout()


@router.get("/", response_class=HTMLResponse)
async def landing(request: Request, templates: Templates) -> HTMLResponse:
    return templates.TemplateResponse(request, "index.html", {"scenarios": list(SCENARIOS.values())})


@router.get("/scenarios/{slug}", response_class=HTMLResponse)
async def scenario_page(request: Request, slug: str, runs: Runs, templates: Templates) -> Response:
    scenario = lookup(slug)
    params = request.query_params
    multi = Counter(name for name, _ in params.multi_items())
    try:
        query = parse_query(request.url.path, scenario, dict(params), multi)
    except MalformedStep as error:
        # say which steps exist: that needs the run, which the rest of the query names
        query = parse_query(request.url.path, scenario, {k: v for k, v in params.items() if k != "step"}, {})
        cached = await runs.get(query.spec)
        raise step_problem(error, cached.last_step) from None
    program = console_program(params)
    cached = await runs.get(query.spec, prepare=PrepareStepper(query.scenario.slug))
    derived = await derived_stepper_run(runs, cached)
    stops = await run_stops(runs, cached, scenario)
    named_no_step = query.stop and query.step is None and query.at_ns is None
    query = with_stop(query, stops)
    if query.at_ns is not None:
        query = with_stop(replace(query, step=derived.index.step_at_time(query.at_ns), at_ns=None, stop=""), stops)
    if query.step is not None and query.step > derived.index.last_step:
        # a step past the end (a link made for a longer run, a typo): the last step, and the URL says so
        query = replace(query, step=derived.index.last_step, stop="")
        if not is_htmx(request):
            return RedirectResponse(with_console_program(query.url(query.step), params), status_code=303)
    if (named_no_step or "at" in params) and not is_htmx(request):
        canonical = with_console_program(query.url(query.step), params)  # the canonical URL names the step
        return RedirectResponse(canonical, status_code=303)
    step = query.step or 0
    headers = {}
    if is_htmx(request) and request.headers.get("hx-history-restore-request") != "true":
        headers["HX-Push-Url"] = query.url(step)  # the canonical URL, whatever the form or link sent
    context = await stepper_context(query, runs, fragment=is_htmx(request))
    context["console_program"] = program
    if query.room and not is_htmx(request):
        context["room_bar"] = await room_bar(request, query)
    if wants_panel_only(request):
        template = "partials/step_panel.html"
        context["morphed"] = True
    else:
        add_figures(context, derived)
        template = "partials/stepper.html" if is_htmx(request) else "scenario.html"
    response = templates.TemplateResponse(request, template, context, headers=headers)
    response.headers["Vary"] = "HX-Request, HX-Target, HX-History-Restore-Request"  # one URL, three representations
    if is_htmx(request) or not query.room:  # a room's page shows the room as it is now, and whose key the cookie holds
        response.headers["Cache-Control"] = SHAREABLE  # the rest is a pure function of the URL (app/fragments.py)
    if query.embed:
        response.headers["Content-Security-Policy"] = embed_policy()
    return response
