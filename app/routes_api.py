"""The JSON API: scenarios, a run's summary, and the machine's state at any step of a scenario's run.

Values are plain integers (registers, times in ns); the words a student reads come from app/views.py, the same
as the pages', so the page and the API never disagree about a step.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict

from app.errors import BadParameter
from app.runs import RunCache, get_run_cache
from app.views import Ring, narrate
from sim.core.log import EVENT_KINDS
from sim.machine.profiles import DEFAULT_PROFILE, PROFILES
from sim.narrative import detail as event_detail
from sim.run import RunSpec
from sim.scenarios.registry import SCENARIOS, Scenario, lookup


class ProblemOut(BaseModel):
    """Every error's body (app/errors.py): what was wrong, which parameter, and what would have been right."""

    detail: str
    parameter: str | None
    valid: str | None


def _problems(*statuses: int) -> dict[int | str, dict[str, object]]:
    meanings = {
        400: "The run cannot be made: the command line is wrong, or the run is larger than the web allows",
        404: "No such scenario, or no such step in its run",
        422: "A parameter is malformed or out of range",
        429: "This client started too many new runs lately (the rate limit); Retry-After says when to try again",
        503: "The server is recording as many new runs as it takes at once; Retry-After says when to try again",
        500: "trapscope failed; the error is logged",
    }
    return {status: {"model": ProblemOut, "description": meanings[status]} for status in (*statuses, 500)}


router = APIRouter(prefix="/api", tags=["api"])

Runs = Annotated[RunCache, Depends(get_run_cache)]
# The schema lists the values that exist, so clients (and schemathesis) know them; the routes still check them,
# answering a wrong one with the ProblemOut that names the valid ones.
ScenarioSlug = Annotated[str, Path(description="a scenario's slug", json_schema_extra={"enum": list(SCENARIOS)})]
ProfileName = Annotated[str, Query(description="machine profile", json_schema_extra={"enum": list(PROFILES)})]


class ScenarioOut(BaseModel):
    slug: str
    title: str
    summary: str
    command: str
    profile: str
    lecture_point: str
    url: str  # the scenario's stepping page

    @classmethod
    def of(cls, scenario: Scenario) -> ScenarioOut:
        return cls(
            slug=scenario.slug,
            title=scenario.title,
            summary=scenario.summary,
            command=scenario.command_line(),
            profile=scenario.profile,
            lecture_point=scenario.lecture_point,
            url=f"/scenarios/{scenario.slug}",
        )


class RunSummaryOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # counters the simulator adds later (faults, ...) pass through

    run_id: str
    command: str
    profile: str
    last_step: int  # steps are numbered 0 .. last_step
    user_ns: int
    sys_ns: int
    wall_ns: int
    exit_status: int | None
    syscalls: int
    syscalls_by_name: dict[str, int]
    events: int
    events_recorded: int
    panic: str | None


class EventOut(BaseModel):
    kind: str
    kind_meaning: str
    name: str
    detail: str
    depth: int
    narrative: str


class StepOut(BaseModel):
    scenario: str
    run_id: str
    step: int
    last_step: int
    t_ns: int
    cpl: int
    mode: str  # "user" or "kernel"
    event: EventOut
    registers: dict[str, int]
    changed_registers: list[str]
    trapframe: dict[str, int]
    changed_trapframe: list[str]
    stack: list[str]  # kernel frames, outermost first
    errno: int
    tid: int


@router.get("/scenarios", responses=_problems())
async def list_scenarios() -> list[ScenarioOut]:
    return [ScenarioOut.of(scenario) for scenario in SCENARIOS.values()]


COMMAND_EXAMPLES = sorted({scenario.command_line() for scenario in SCENARIOS.values()})


@router.get("/runs", responses=_problems(400, 422, 429, 503))
async def run_summary(
    runs: Runs,
    command: Annotated[
        str, Query(min_length=1, max_length=4096, description="the command line to run", examples=COMMAND_EXAMPLES)
    ],
    profile: ProfileName = DEFAULT_PROFILE,
) -> RunSummaryOut:
    if profile not in PROFILES:
        valid = ", ".join(PROFILES)
        raise BadParameter("profile", f"query parameter 'profile' must be one of {valid}, not {profile!r}", valid)
    cached = await runs.get(RunSpec(command=command, profile=profile))
    return RunSummaryOut(last_step=cached.last_step, **cached.run.summary())


@router.get("/runs/{scenario}/steps/{n}", responses=_problems(404, 422, 429, 503))
async def step_state(runs: Runs, scenario: ScenarioSlug, n: Annotated[int, Path(description="the step")]) -> StepOut:
    """The machine's state after step `n` of the scenario's run (step 0 is the run's start)."""
    chosen = lookup(scenario)
    cached, state = await runs.state_at(chosen.spec(), n)
    event = state.event
    return StepOut(
        scenario=chosen.slug,
        run_id=cached.run.run_id,
        step=state.step,
        last_step=cached.last_step,
        t_ns=state.t_ns,
        cpl=state.cpl,
        mode=Ring(state.cpl).mode,
        event=EventOut(
            kind=event.kind,
            kind_meaning=EVENT_KINDS.get(event.kind, event.kind),
            name=event.name,
            detail=event_detail(event),
            depth=event.depth,
            narrative=narrate(event),
        ),
        registers=state.registers,
        changed_registers=sorted(state.changed_registers),
        trapframe=state.trapframe,
        changed_trapframe=sorted(state.changed_trapframe),
        stack=list(state.stack),
        errno=state.errno,
        tid=state.tid,
    )
