"""The stepping page's D console: a D program traced over the page's own run, answered as a fragment.

    GET /scenarios/dd-system-time/console?bs=4m&script=...&quiet=1      (an htmx request from the console)

The console sits below the stepper (partials/console.html). Its Trace button sends the editor's program and -q with
the page's run parameters, read from the page's URL as it is sent (static/console.js), so the program traces the
run the stepper shows. The answer replaces only the console's results (partials/console_results.html); the step
stays, and the page's URL gains the program (script=, quiet=), kept as the reader steps on, so a link or a reload
opens the page with the program in the editor and traces it again (console_program). Tracing itself is the trace
page's (app/routes_trace.py): its query checks, its run and result caches, its view of the results and its error
panel.

A program that does not compile, a script that is too long or a tampered parameter answers 4xx with the error
panel (partials/trace_error.html) retargeted into place, its line and column marked; the last results stay shown.
A plain GET (no htmx: a browser without JavaScript) is sent on to the trace page with the same program.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import QueryParams

from app import params as stepper_params
from app.errors import BadParameter
from app.routes_trace import (
    MAX_SCRIPT_BYTES,
    SCRIPT_NAME,
    TraceQuery,
    TraceResults,
    error_context,
    get_trace_results,
    parse_query,
    results_view,
    trace,
    wants_fragment,
)
from app.runs import RunCache, get_run_cache
from app.templating import get_templates
from app.trace_examples import examples_for, program_of
from sim.kern.kernel import KernelConfig
from sim.run import RunError
from sim.scenarios.registry import UnknownScenario, lookup
from sim.trace.d_parser import DtraceError
from sim.user.shell import CommandLineError

router = APIRouter(include_in_schema=False)

Runs = Annotated[RunCache, Depends(get_run_cache)]
Results = Annotated[TraceResults, Depends(get_trace_results)]
Templates = Annotated[Jinja2Templates, Depends(get_templates)]

CONSOLE_PARAMETERS = ("script", "quiet")  # the console's own; every other parameter is the stepping page's
DISPLAY_PARAMETERS = ("step", "at", "views", "mode", "embed", "bp", "add_bp")  # how the stepper looks: no run input
ConsoleError = BadParameter | DtraceError | CommandLineError | RunError | UnknownScenario


def console_query(slug: str, params: QueryParams) -> tuple[stepper_params.StepperQuery, TraceQuery]:
    """The stepping page's run (checked as the page checks it) and the D program to trace over it."""
    page_items = [(k, v) for k, v in params.multi_items() if k not in CONSOLE_PARAMETERS + DISPLAY_PARAMETERS]
    multi = Counter(name for name, _ in page_items)
    page = stepper_params.parse_query(f"/scenarios/{slug}", lookup(slug), dict(page_items), multi)
    spec = page.spec
    console_items = [(k, v) for k, v in params.multi_items() if k in CONSOLE_PARAMETERS]
    query = parse_query(QueryParams([("command", spec.command), ("profile", spec.profile), *console_items]))
    if query.script is None:
        raise BadParameter("script", "the editor is empty: write a D program, or pick an example script")
    return page, replace(query, config=page.config)


def console_program(params: QueryParams) -> tuple[str | None, bool]:
    """The program a stepping page's URL gives its console (script=, quiet=: the console puts them there once it has
    traced), checked as the console checks them (a script over the limit is a 4xx naming it). The page opens with
    it in the editor and traces it again (static/console.js)."""
    query = parse_query(QueryParams([(k, v) for k, v in params.multi_items() if k in CONSOLE_PARAMETERS]))
    return query.script, query.quiet


def with_console_program(url: str, params: QueryParams) -> str:
    """A stepping page's `url` with the console's parameters `params` holds (a redirect keeps the program)."""
    pairs = [(k, v) for k, v in params.multi_items() if k in CONSOLE_PARAMETERS]
    return f"{url}{'&' if '?' in url else '?'}{urlencode(pairs)}" if pairs else url


def untraced_switches(page: stepper_params.StepperQuery) -> list[str]:
    """The page's kernel switches that the trace page will not have: its URL carries none, so its runs use the
    default kernel configuration (the console itself traces with the page's)."""
    default = KernelConfig()
    return [
        f"{label} {'on' if getattr(page.config, field) else 'off'}"
        for field, label in stepper_params.SWITCHES.values()
        if getattr(page.config, field) != getattr(default, field)
    ]


def dtrace_command_line(query: TraceQuery) -> str:
    """How the console's run would be typed at a shell (dtrace's own options, then the traced command)."""
    return f"dtrace{' -q' if query.quiet else ''} -s {SCRIPT_NAME} -c '{query.command}'"


@router.get("/scenarios/{slug}/console", response_class=HTMLResponse)
async def console(request: Request, slug: str, runs: Runs, results: Results, templates: Templates) -> Response:
    if not wants_fragment(request):
        _, query = console_query(slug, request.query_params)  # a bad parameter gets the app's error page
        return RedirectResponse(query.url(), status_code=303)
    try:
        page, query = console_query(slug, request.query_params)
        traced = await trace(query, runs, results)
    except (BadParameter, DtraceError, CommandLineError, RunError, UnknownScenario) as error:
        return _error_response(request, templates, error)
    context = {
        "q": query,
        "results": results_view(query, traced),
        "run_id": page.spec.run_id,
        "command_line": dtrace_command_line(query),
        "untraced_switches": untraced_switches(page),
        "trace_page_url": query.url(),
    }
    response = templates.TemplateResponse(request, "partials/console_results.html", context)
    response.headers["Vary"] = "HX-Request"
    return response


def _error_response(request: Request, templates: Jinja2Templates, error: ConsoleError) -> Response:
    """A 4xx: the console's error panel, put in place of the old one; the results already shown stay."""
    status = 404 if isinstance(error, UnknownScenario) else 422 if isinstance(error, BadParameter) else 400
    if isinstance(error, UnknownScenario):
        error = BadParameter("scenario", str(error))
    context = {"error": error_context(error)}
    response = templates.TemplateResponse(request, "partials/trace_error.html", context, status)
    response.headers.update({"HX-Retarget": "#trace-error", "HX-Reswap": "outerHTML", "Vary": "HX-Request"})
    return response


def install_console(templates: Jinja2Templates) -> None:
    """What a stepping page's console needs beyond the page's own context: the example scripts (the lecture's
    three first) and the script size limit. Registered once, when the app is made."""
    templates.env.globals["d_console"] = {
        "examples_for": lambda command: examples_for(program_of(command)),
        "max_script_bytes": MAX_SCRIPT_BYTES,
    }
