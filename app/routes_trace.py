"""The trace page: a D console over a run, its aggregations drawn, flame graphs, and exports.

    /trace?command=dd+if=/dev/zero+of=/dev/null+bs=10m+count=1&script=...&flame=@traces&baseline=...

The URL is the state: the command line, the machine profile, the D script, which flame graph is shown (`flame`:
`run`, the run's exact frame times, or `@name`, an aggregation keyed by stack(); without it, the first
aggregation keyed by stack() the script fills, else the run's times), where it is zoomed (`focus`), what its
search box holds (`search`), the run to compare against (`baseline`), and projector mode (`mode=projector`).
The flame graph's view, orientation and palette are the browser's (static/flame.js keeps them in the URL too).
The same URL answers an htmx request (the form's Trace button) with only the results
(partials/trace_results.html); the flame graph and the differential flame graph load into it as separate
fragments, so the D output shows as soon as it is ready.

A D program that does not compile answers 400 with dtrace's message, the line and the column: an htmx request
gets the error panel (partials/trace_error.html) retargeted into place by HX-Retarget, and the URL is not pushed,
so the editor keeps what the student typed and the last good results stay on screen.

Runs come from the app's run cache: the run the D program traces is recorded with the probes it enables armed
(syscall probes switch systrace_probe_func on, fbt probes put int3 at their functions' entries and returns, profile
probes start a timer cyclic; each firing costs simulated time, sim/kern/dtrace_probe.py), and the same command
recorded without them is the run the flame graph, the stepper and the probe-effect comparison use.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams

from app import flame_view, freebsd_route, speedscope, trace_figures
from app.d_programs import WEB_OPS_BUDGET, CompiledPrograms
from app.errors import BadParameter
from app.quoting import shown
from app.rate_limit import charge
from app.runs import CachedRun, RunCache, get_run_cache
from app.templating import get_templates
from app.trace_examples import examples_for, program_of
from sim.kern.dtrace_probe import firing_ns
from sim.kern.kernel import KernelConfig
from sim.machine.profiles import DEFAULT_PROFILE, PROFILES
from sim.run import Run, RunError, RunSpec
from sim.scenarios.registry import SCENARIOS
from sim.trace import export as exports
from sim.trace import flame
from sim.trace.d_parser import DtraceError
from sim.trace.dtrace import CompiledScript, DtraceResult, required_config, trace_run
from sim.trace.flame import FlameError, FlameGraph, Stack
from sim.user.shell import MAX_COMMAND_LENGTH, CommandLineError

router = APIRouter(include_in_schema=False)

Runs = Annotated[RunCache, Depends(get_run_cache)]
Templates = Annotated[Jinja2Templates, Depends(get_templates)]

DEFAULT_COMMAND = "dd if=/dev/zero of=/dev/null bs=10m count=1"
JUNK_TRUE, JUNK_FALSE = f"MALLOC_CONF=junk:true {DEFAULT_COMMAND}", f"MALLOC_CONF=junk:false {DEFAULT_COMMAND}"
SCRIPT_NAME = "script.d"  # what dtrace's messages call the console's program
MAX_SCRIPT_BYTES = 8 * 1024  # the script travels in the URL, which servers and proxies cap at a few KB more
MAX_SHOWN_OUTPUT = 256 * 1024  # characters of output the page shows; the rest is counted, not sent
MAX_STACK_PARAMETER = 4096
MAX_SEARCH = 200
MAX_TRACE_RESULTS = 16  # D programs' results kept, most recently used first
RUN_FLAME = "run"
AUTO_FLAME = ""  # no `flame` parameter: the script's stack aggregation if it fills one, else the run's times
_AGGREGATION = re.compile(r"@[A-Za-z_][A-Za-z0-9_]{0,63}")


# --- the query string ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceQuery:
    command: str
    profile: str
    script: str | None  # None: nothing to trace yet (the editor shows the first example)
    quiet: bool
    flame: str  # "run", "@aggregation", or AUTO_FLAME
    baseline: str | None  # the command line the differential flame graph compares against
    focus: str | None  # the flame graph's zoomed frame (its stack as text)
    search: str | None
    # The kernel's switches. The trace page's URL does not carry them (its runs use the defaults); the stepping
    # page's D console passes its own, so that it traces the run the stepper shows.
    config: KernelConfig = KernelConfig()
    projector: bool = False

    @property
    def spec(self) -> RunSpec:
        """The run without DTrace: what the flame graph, the stepper and the probe-effect baseline show."""
        return RunSpec(command=self.command, profile=self.profile, config=self.config)

    def params(self, **changes: str | None) -> list[tuple[str, str]]:
        values = {
            "command": self.command,
            "profile": self.profile,
            "script": self.script,
            "quiet": "1" if self.quiet else None,
            "flame": self.flame or None,
            "baseline": self.baseline,
            "focus": self.focus,
            "search": self.search,
            "mode": "projector" if self.projector else None,
            **changes,
        }
        if values["profile"] == DEFAULT_PROFILE:
            values["profile"] = None
        return [(name, value) for name, value in values.items() if value]

    def url(self, path: str = "/trace", **changes: str | None) -> str:
        return f"{path}?{urlencode(self.params(**changes))}"


def trace_url(command: str, profile: str = DEFAULT_PROFILE) -> str:
    """The trace page for a command line (what a stepping page links to, with its run's command)."""
    params = [("command", command)] + ([("profile", profile)] if profile != DEFAULT_PROFILE else [])
    return f"/trace?{urlencode(params)}"


def _text(params: QueryParams, name: str, limit: int) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise BadParameter(name, f"query parameter {name!r} is given {len(values)} times; give it once")
    if not values:
        return None
    value = values[0]
    if len(value.encode()) > limit:
        raise BadParameter(
            name, f"query parameter {name!r} is {len(value.encode()):,} bytes long; the limit is {limit:,}"
        )
    return value


def parse_query(params: QueryParams) -> TraceQuery:
    """Every parameter checked once: a wrong one is a 4xx naming it and what it accepts."""
    command = (_text(params, "command", MAX_COMMAND_LENGTH) or "").strip() or DEFAULT_COMMAND
    profile = _text(params, "profile", 64) or DEFAULT_PROFILE
    if profile not in PROFILES:
        valid = ", ".join(PROFILES)
        raise BadParameter("profile", f"query parameter 'profile' must be one of {valid}, not {profile!r}", valid)
    script = _text(params, "script", MAX_SCRIPT_BYTES)
    if script is not None:
        script = script.replace("\r\n", "\n")
        if not script.strip():
            script = None
    flame_source = _text(params, "flame", 80) or AUTO_FLAME
    if flame_source not in (RUN_FLAME, AUTO_FLAME) and not _AGGREGATION.fullmatch(flame_source):
        valid = "'run' (exact frame times) or @name (an aggregation keyed by stack())"
        raise BadParameter("flame", f"query parameter 'flame' must be {valid}, not {flame_source!r}", valid)
    baseline = (_text(params, "baseline", MAX_COMMAND_LENGTH) or "").strip() or None
    mode = _text(params, "mode", 16) or "normal"
    if mode not in ("normal", "projector"):
        raise BadParameter(
            "mode", f"query parameter 'mode' must be projector or normal, not {mode!r}", "projector, normal"
        )
    return TraceQuery(
        command=command,
        profile=profile,
        script=script,
        quiet=(_text(params, "quiet", 8) or "") in ("1", "on", "true"),
        flame=flame_source,
        baseline=baseline,
        focus=_text(params, "focus", MAX_STACK_PARAMETER) or None,
        search=_text(params, "search", MAX_SEARCH) or None,
        projector=mode == "projector",
    )


def wants_fragment(request: Request) -> bool:
    """An htmx request for part of the page (not a history restore, which wants the whole page)."""
    headers = request.headers
    return (
        headers.get("hx-request") == "true"
        and headers.get("hx-history-restore-request") != "true"
        and headers.get("hx-request-type") != "full"
    )


# --- D programs' results, cached ----------------------------------------------------------------------------


class TraceResults:
    """A small LRU of D programs' results, by run and program text (a program is deterministic over a run)."""

    def __init__(self, max_entries: int = MAX_TRACE_RESULTS) -> None:
        self.max_entries = max_entries
        self._results: OrderedDict[tuple[str, str, bool], DtraceResult] = OrderedDict()
        self._lock = threading.Lock()
        self.programs = CompiledPrograms()

    def compiled(self, script: str) -> CompiledScript:
        """The console's program, compiled once (DtraceError if it does not compile). CPU work: a worker's."""
        return self.programs.get(script, SCRIPT_NAME)

    @staticmethod
    def _key(run: Run, script: str, quiet: bool) -> tuple[str, str, bool]:
        return run.run_id, hashlib.sha256(script.encode()).hexdigest(), quiet

    def __contains__(self, item: tuple[Run, str, bool]) -> bool:
        return self._key(*item) in self._results

    def get(self, run: Run, script: str, quiet: bool) -> DtraceResult:
        key = self._key(run, script, quiet)
        with self._lock:
            found = self._results.get(key)
            if found is not None:
                self._results.move_to_end(key)
                return found
        result = trace_run(self.compiled(script), run, quiet, ops_budget=WEB_OPS_BUDGET)
        with self._lock:
            self._results[key] = result
            while len(self._results) > self.max_entries:
                self._results.popitem(last=False)
        return result


def get_trace_results(request: Request) -> TraceResults:
    """The app's cache of D results (made on first use, kept on app.state beside the run cache)."""
    state = request.app.state
    results = getattr(state, "trace_results", None)
    if results is None:
        results = state.trace_results = TraceResults()
    return results


Results = Annotated[TraceResults, Depends(get_trace_results)]


@dataclass
class Traced:
    """A D program's results over a command, with the run it traced and the same command run without DTrace."""

    result: DtraceResult
    traced: Run
    plain: Run


async def trace(query: TraceQuery, runs: RunCache, results: TraceResults) -> Traced:
    """Compile (DtraceError if it does not), record or fetch both runs, evaluate the program (cached)."""
    assert query.script is not None
    if not results.programs.has(query.script, SCRIPT_NAME):
        charge()  # a program to compile: the client's rate limit pays for it (once a request), or refuses
    compiled = await run_in_threadpool(results.compiled, query.script)
    config = required_config(compiled, query.spec.config)
    plain = await runs.get(query.spec)
    traced = plain if config == query.spec.config else await runs.get(replace(query.spec, config=config))
    if (traced.run, query.script, query.quiet) not in results:
        charge()
    result = await run_in_threadpool(results.get, traced.run, query.script, query.quiet)
    return Traced(result, traced.run, plain.run)


def run_flame(cached: CachedRun) -> FlameGraph:
    return cached.derived("flame", lambda c: flame.flame_from_run(c.run))


# --- views --------------------------------------------------------------------------------------------------


# What fires each kind of probe, for the page (the costs are sim/kern/dtrace_probe.py's, from the machine profile).
PROBE_KINDS = {
    "syscall": ("syscall", "`syscallenter()` calls `systrace_probe_func` before and after the call's handler"),
    "fbt": ("fbt", "`int3` at the function's first instruction or its `ret`: a #BP trap, `dtrace_invop`, "
            "`fbt_invop`, `dtrace_probe`, the displaced instruction emulated, `iretq`"),
    "profile": ("profile / tick", "the cyclic's timer interrupt, every period, whatever the CPU is running: "
                "`profile_fire`, `dtrace_probe` (paid here at the next kernel function boundary)"),
    "sdt": ("sched / proc / io / vminfo (Solaris's)", "an SDT probe site in the kernel (`sched_switch`, "
            "`sleepq_switch`, `do_fork`, `exit1`, `do_execve`, `tdsendsignal`, the disk's start and completion, "
            "the fault path) calls `dtrace_probe` through `sdt_probe_func`"),
}  # fmt: skip


@dataclass
class ProbeCost:
    """One kind of probe that fired in the traced run: how often, and what each firing cost."""

    kind: str
    label: str
    how: str
    firings: int
    per_firing_ns: int

    @property
    def total_ns(self) -> int:
        return self.firings * self.per_firing_ns


@dataclass
class ProbeEffect:
    traced_sys_ns: int
    plain_sys_ns: int
    traced_user_ns: int
    plain_user_ns: int
    traced_wall_ns: int
    plain_wall_ns: int
    costs: list[ProbeCost]  # the kinds that fired, with their firings counted by the kernel (Run.probe_firings)

    @property
    def sys_delta_ns(self) -> int:
        return self.traced_sys_ns - self.plain_sys_ns

    @property
    def sys_delta_percent(self) -> float:
        return 100.0 * self.sys_delta_ns / self.plain_sys_ns if self.plain_sys_ns else 0.0

    @property
    def user_delta_ns(self) -> int:
        return self.traced_user_ns - self.plain_user_ns

    @property
    def wall_delta_ns(self) -> int:
        return self.traced_wall_ns - self.plain_wall_ns

    @property
    def wall_delta_percent(self) -> float:
        return 100.0 * self.wall_delta_ns / self.plain_wall_ns if self.plain_wall_ns else 0.0

    @property
    def charged_ns(self) -> int:
        """Every firing's cost: the machine's time the probes took, in this process or not (ticks in idle)."""
        return sum(cost.total_ns for cost in self.costs)


def probe_effect(traced: Traced, profile: str) -> ProbeEffect:
    per_firing = firing_ns(PROFILES[profile])
    firings = traced.traced.probe_firings
    costs = [
        ProbeCost(kind, *PROBE_KINDS[kind], firings[kind], per_firing[kind])
        for kind in PROBE_KINDS
        if firings.get(kind)
    ]
    return ProbeEffect(
        traced_sys_ns=traced.traced.sys_ns,
        plain_sys_ns=traced.plain.sys_ns,
        traced_user_ns=traced.traced.user_ns,
        plain_user_ns=traced.plain.user_ns,
        traced_wall_ns=traced.traced.wall_ns,
        plain_wall_ns=traced.plain.wall_ns,
        costs=costs,
    )


def _shown(text: str) -> tuple[str, int]:
    """What the page shows of an output, and how many characters it leaves out."""
    if len(text) <= MAX_SHOWN_OUTPUT:
        return text, 0
    return text[:MAX_SHOWN_OUTPUT], len(text) - MAX_SHOWN_OUTPUT


def results_view(query: TraceQuery, traced: Traced) -> dict:
    result = traced.result
    figures = []
    for name, aggregation in result.aggregations.items():
        figure = trace_figures.aggregation_figure(aggregation)
        if figure is not None:
            figures.append({"id": f"aggregation-{name or '_'}", "name": f"@{name}", "figure": figure})
    stdout, stdout_cut = _shown(result.output)
    program_output, program_cut = _shown(result.program_output)
    return {
        "stdout": stdout,
        "stdout_cut": stdout_cut,
        "stderr": result.stderr,
        "program_output": program_output,
        "program_cut": program_cut,
        "exit_status": result.exit_status,
        "probes_matched": result.probes_matched,
        "firings": result.firings,
        "trace_ms": result.trace_seconds * 1000,
        "figures": figures,
        "stack_aggregations": flame.stack_aggregations(result.aggregations),
        "probe_effect": probe_effect(traced, query.profile),
        "uses_vminfo": freebsd_route.uses_vminfo(query.script or ""),
        "vm_stats": freebsd_route.vm_stats(traced.traced),
    }


def _example_links(query: TraceQuery) -> list[dict]:
    return [
        {
            "slug": e.slug,
            "title": e.title,
            "look_for": e.look_for,
            "url": query.url(script=e.script, flame=None, focus=None, search=None),
            "current": e.script == query.script,
        }
        for e in examples_for(program_of(query.command))
    ]


def page_context(query: TraceQuery, request: Request) -> dict:
    first_example = examples_for(program_of(query.command))[0]
    return {
        "q": query,
        "profiles": list(PROFILES),
        "editor_script": query.script if query.script is not None else first_example.script,
        "examples": _example_links(query),
        "max_script_bytes": MAX_SCRIPT_BYTES,
        "flame_url": query.url("/trace/flame"),
        "diff_url": query.url("/trace/diff") if query.baseline else None,
        "diff_example_url": query.url(command=JUNK_TRUE, baseline=JUNK_FALSE, flame=None, focus=None),
        "mode_url": query.url(mode=None if query.projector else "projector"),
        "fragment": wants_fragment(request),
    }


def error_context(error: DtraceError | CommandLineError | RunError | BadParameter) -> dict:
    if isinstance(error, DtraceError):
        return {
            "message": shown(str(error)),
            "context": error.context,
            "line": error.line,
            "column": error.column,
            "parameter": "script",
        }
    parameter = getattr(error, "parameter", None) or ("command" if isinstance(error, CommandLineError) else None)
    return {"message": shown(str(error)), "context": "", "line": None, "column": None, "parameter": parameter}


def _status(error: Exception) -> int:
    return 422 if isinstance(error, BadParameter) else 400


# --- the page -----------------------------------------------------------------------------------------------


@router.get("/trace", response_class=HTMLResponse)
async def trace_page(request: Request, runs: Runs, results: Results, templates: Templates) -> Response:
    try:
        query = parse_query(request.query_params)
    except BadParameter as error:
        return _error_response(request, templates, error, None)
    context = page_context(query, request)
    context["results"] = None
    context["error"] = None
    if query.script is not None:
        try:
            context["results"] = results_view(query, await trace(query, runs, results))
        except (DtraceError, CommandLineError, RunError, BadParameter) as error:  # the script stays in the editor
            return _error_response(request, templates, error, query)
    template = "partials/trace_results.html" if context["fragment"] else "trace.html"
    response = templates.TemplateResponse(request, template, context)
    response.headers["Vary"] = "HX-Request"
    return response


def _error_response(
    request: Request,
    templates: Jinja2Templates,
    error: DtraceError | CommandLineError | RunError | BadParameter,
    query: TraceQuery | None,
) -> Response:
    """A 4xx: the error panel alone for htmx (retargeted into its place, URL not pushed), else the whole page."""
    status = _status(error)
    if query is None:
        query = TraceQuery(DEFAULT_COMMAND, DEFAULT_PROFILE, None, False, AUTO_FLAME, None, None, None)
        if request.query_params.get("command") and getattr(error, "parameter", None) != "command":
            query = replace(query, command=request.query_params["command"][:MAX_COMMAND_LENGTH])
    context = {**page_context(query, request), "error": error_context(error), "results": None}
    if context["fragment"]:
        response = templates.TemplateResponse(request, "partials/trace_error.html", context, status)
        response.headers.update({"HX-Retarget": "#trace-error", "HX-Reswap": "outerHTML", "HX-Push-Url": "false"})
    else:
        context["editor_script"] = request.query_params.get("script", context["editor_script"])[:MAX_SCRIPT_BYTES]
        response = templates.TemplateResponse(request, "trace.html", context, status)
    response.headers["Vary"] = "HX-Request"
    return response


# --- fragments: the flame graph, the differential flame graph, one frame ------------------------------------


async def _flame_graph(
    query: TraceQuery, runs: RunCache, results: TraceResults
) -> tuple[FlameGraph, CachedRun, TraceQuery]:
    """The flame graph the query asks for, the untraced run (for steps and the exact-times source), and the query
    with its flame source decided (without one: the script's first aggregation keyed by stack(), else the run)."""
    cached = await runs.get(query.spec)
    if query.flame == AUTO_FLAME:
        traced = await trace(query, runs, results) if query.script else None
        names = flame.stack_aggregations(traced.result.aggregations) if traced else []
        query = replace(query, flame=f"@{names[0]}" if names else RUN_FLAME)
    if query.flame == RUN_FLAME:
        return await run_in_threadpool(run_flame, cached), cached, query
    if query.script is None:
        raise BadParameter("flame", f"flame={query.flame} names an aggregation, but there is no D script to fill it")
    traced = await trace(query, runs, results)
    _, graph = exports.aggregation_graph(traced.result.aggregations, query.flame)
    return graph, cached, query


def _problem(request: Request, templates: Jinja2Templates, element_id: str, error: Exception) -> Response:
    context = {"element_id": element_id, "message": shown(str(error)), "context": getattr(error, "context", "")}
    return templates.TemplateResponse(request, "partials/trace_problem.html", context, _status(error))


@router.get("/trace/flame", response_class=HTMLResponse)
async def flame_fragment(request: Request, runs: Runs, results: Results, templates: Templates) -> Response:
    try:
        query = parse_query(request.query_params)
        graph, cached, query = await _flame_graph(query, runs, results)
    except (BadParameter, DtraceError, CommandLineError, RunError, FlameError, exports.ExportError) as error:
        return _problem(request, templates, "trace-flame", error)
    sources = [{"flame": RUN_FLAME, "label": "exact frame times of the run", "url": query.url(flame=RUN_FLAME)}]
    if query.script is not None:
        try:
            traced = await trace(query, runs, results)
            names = flame.stack_aggregations(traced.result.aggregations)
        except (DtraceError, RunError):
            names = []
        sources += [
            {"flame": f"@{n}", "label": f"@{n} by stack (D aggregation)", "url": query.url(flame=f"@{n}")}
            for n in names
        ]
    for source in sources:
        source["fragment_url"] = source["url"].replace("/trace?", "/trace/flame?", 1)
        source["current"] = source["flame"] == query.flame
    aggregation = None if query.flame == RUN_FLAME else query.flame
    downloads = {f: query.url("/trace/export", format=f, focus=None, search=None, mode=None) for f in exports.FORMATS}
    context = {
        "q": query,
        "graph": graph,
        "data": flame_view.flame_data(graph),
        "chart_url": None if aggregation else query.url("/trace/flame/chart", focus=None, search=None, mode=None),
        "speedscope_url": speedscope.page_url(downloads["speedscope"], graph.title),
        "sources": sources,
        "frame_url": query.url("/trace/frame", focus=None, search=None, mode=None),
        "downloads": [{"format": exports.FORMATS[f], "url": url} for f, url in downloads.items()],
        "aggregation": aggregation,
        "run": cached.run,
        "unit": trace_figures.UNITS.get(graph.unit, graph.unit),
    }
    return templates.TemplateResponse(request, "partials/trace_flame.html", context)


@router.get("/trace/diff", response_class=HTMLResponse)
async def diff_fragment(request: Request, runs: Runs, templates: Templates) -> Response:
    try:
        query = parse_query(request.query_params)
        if query.baseline is None:
            raise BadParameter("baseline", "query parameter 'baseline' names the command line to compare against")
        after = await runs.get(query.spec)
        before = await runs.get(RunSpec(command=query.baseline, profile=query.profile))
    except (BadParameter, CommandLineError, RunError) as error:
        return _problem(request, templates, "trace-diff", error)
    after_graph = await run_in_threadpool(run_flame, after)
    before_graph = await run_in_threadpool(run_flame, before)
    diff = flame.differential(before_graph, after_graph)
    changes = sorted(flame.self_changes(diff), key=lambda n: -abs(n.delta))
    context = {
        "q": query,
        "diff": diff,
        "data": flame_view.diff_data(diff),
        "unit": trace_figures.UNITS.get(after_graph.unit, after_graph.unit),
        "changes": changes[:12],
        "before": before.run,
        "after": after.run,
        "swap_url": query.url(command=query.baseline, baseline=query.command, focus=None),
    }
    return templates.TemplateResponse(request, "partials/trace_diff.html", context)


@router.get("/trace/frame", response_class=HTMLResponse)
async def frame_fragment(request: Request, runs: Runs, results: Results, templates: Templates) -> Response:
    try:
        query = parse_query(request.query_params)
        text = _text(request.query_params, "stack", MAX_STACK_PARAMETER)
        if not text:
            raise BadParameter("stack", "query parameter 'stack' names a frame by its stack, e.g. dd;-;Xpage;trap")
        stack = flame.parse_stack(text)
        graph, cached, query = await _flame_graph(query, runs, results)
    except (BadParameter, DtraceError, CommandLineError, RunError, FlameError, exports.ExportError) as error:
        return _problem(request, templates, "frame-info", error)
    value = graph.value_of(stack) if stack else graph.total
    if stack and value == 0:
        return _problem(request, templates, "frame-info", BadParameter("stack", f"no frame {text!r} in this graph"))
    plain = await run_in_threadpool(run_flame, cached) if query.flame != RUN_FLAME else graph
    step = first_step(plain, stack, samples=query.flame != RUN_FLAME)
    context = {
        "q": query,
        "stack": stack,
        "name": stack[-1] if stack else flame.ROOT,
        "value": value,
        "self_value": graph.stacks.get(stack, 0),
        "total": graph.total,
        "unit": trace_figures.UNITS.get(graph.unit, graph.unit),
        "step": step,
        "stepper": stepper_url(query.spec, step) if step is not None else None,
        "scenarios": list(SCENARIOS.values()),
    }
    return templates.TemplateResponse(request, "partials/trace_frame.html", context)


def first_step(plain: FlameGraph, stack: Stack, samples: bool) -> int | None:
    """The first step of the untraced run at which `stack` (of an exact-times graph) or the call path a
    sampled stack names (``kernel`trap;kernel`trap_pfault``, entry points as bare addresses) was on the CPU."""
    if not stack:
        return 0
    if not samples:
        n = len(stack)
        return min((step for s, step in plain.first_steps.items() if s[:n] == stack), default=None)
    named = [frame.split("`", 1)[-1] for frame in stack if not frame.split("`", 1)[-1].startswith("0x")]
    if named and named[-1] == flame.USER_FRAME and len(named) == 1:
        return min((step for s, step in plain.first_steps.items() if s[1:] == (flame.USER_FRAME,)), default=None)
    if not named:
        return min((step for s, step in plain.first_steps.items() if s[1:2] == (flame.KERNEL_SEPARATOR,)), default=None)
    best = None
    for s, step in plain.first_steps.items():
        frames = s[2:] if s[1:2] == (flame.KERNEL_SEPARATOR,) else ()
        if frames and frames[-1] == named[-1] and _subsequence(named, frames) and (best is None or step < best):
            best = step
    return best


def _subsequence(needle: list[str], haystack: tuple[str, ...]) -> bool:
    it = iter(haystack)
    return all(frame in it for frame in needle)


def stepper_url(spec: RunSpec, step: int) -> str | None:
    """The stepping page of a scenario whose command line (with some values of its knobs) is this run's."""
    for scenario in SCENARIOS.values():
        knobs = _scenario_knobs(scenario, spec.command)
        if knobs is None or spec.config != scenario.config:
            continue
        params = [(k, v) for k, v in knobs.items() if v != scenario.defaults.get(k)]
        if spec.profile != scenario.profile:
            params.append(("profile", spec.profile))
        params.append(("step", str(step)))
        return f"/scenarios/{scenario.slug}?{urlencode(params)}"
    anything = SCENARIOS.get("command")  # the stepping page for any command line
    if anything is not None and spec.config == anything.config:
        params = [("command", spec.command)] + ([("profile", spec.profile)] if spec.profile != anything.profile else [])
        return f"/scenarios/command?{urlencode([*params, ('step', str(step))])}"
    return None


def _scenario_knobs(scenario, command: str) -> dict[str, str] | None:
    """The knob values that make the scenario's command line this one (`{}` for a scenario without knobs)."""
    defaults = dict(getattr(scenario, "defaults", None) or {})
    if not defaults:
        return {} if command.split() == scenario.command.split() else None
    words = command.split()
    knobs = {}
    if words and words[0].startswith("MALLOC_CONF=") and "malloc_conf" in defaults:
        knobs["malloc_conf"] = words.pop(0).partition("=")[2]
    pattern = re.escape(scenario.command)
    for knob in defaults:
        pattern = pattern.replace(re.escape("{" + knob + "}"), f"(?P<{knob}>\\S+)")
    match = re.fullmatch(pattern, " ".join(words))
    if match is None:
        return None
    knobs.update({k: v for k, v in match.groupdict().items() if v is not None})
    try:
        rebuilt = scenario.command_line(knobs)
    except (ValueError, KeyError):
        return None
    return knobs if rebuilt.split() == command.split() else None


# --- exports ------------------------------------------------------------------------------------------------


@router.get("/trace/export")
async def export_file(request: Request, runs: Runs, results: Results) -> Response:
    """A download: the run's exact frame times, or (with script and flame=@name) a D aggregation's stacks."""
    query = parse_query(request.query_params)
    format_name = _text(request.query_params, "format", 32) or ""
    if format_name not in exports.FORMATS:
        valid = ", ".join(exports.FORMATS)
        raise BadParameter("format", f"query parameter 'format' must be one of {valid}, not {format_name!r}", valid)
    try:
        graph, cached, query = await _flame_graph(query, runs, results)
    except DtraceError as error:
        raise BadParameter("script", str(error)) from None
    except (FlameError, exports.ExportError) as error:
        raise BadParameter("flame", str(error)) from None
    if query.flame == RUN_FLAME:
        made = await run_in_threadpool(exports.export_run, cached.run, format_name, graph)
    else:
        stem = f"{exports.run_stem(cached.run)}-{query.flame.lstrip('@')}"
        made = exports.export_graph(graph, format_name, stem)
    return Response(
        made.body,
        media_type=made.format.media_type,
        headers={"Content-Disposition": f'attachment; filename="{made.filename}"'},
    )
