"""A scenario's stops on the stepping page: where the run's stops are, which one this step is, and the two
controls that go to the previous and the next (PageUp / PageDown, which a presentation clicker sends, or , and .).

The stops of a scenario are selectors (sim/scenarios/stops.py); `run_stops` resolves them once per run and keeps
them with it. A stop's URL names both the stop and its step (`?stop=eintr-return&step=803`), and turns on the
view that carries its point if the page does not show it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from starlette.concurrency import run_in_threadpool

from app.errors import BadParameter
from app.params import StepperQuery
from app.runs import CachedRun
from sim.scenarios.registry import Scenario
from sim.scenarios.stops import StopAt, resolve_stops


async def run_stops(cached: CachedRun, scenario: Scenario) -> tuple[StopAt, ...]:
    """The scenario's stops in this run, found once and kept with it. A scan of the log (well under a second for
    the longest), in the threadpool rather than the recording pool: a run admitted once is shown without queueing
    again behind other recordings."""
    if not scenario.stops:
        return ()
    name = f"stops:{scenario.slug}"
    found = cached.built(name)
    if found is not None:
        return found
    return await run_in_threadpool(cached.derived, name, lambda c: resolve_stops(scenario.stops, c.run.events))


def find_stop(stops: tuple[StopAt, ...], asked: str) -> StopAt:
    """The stop `?stop=` names: by name, or by number (1-based); a 400 listing the stops if there is none."""
    for stop in stops:
        if asked in (stop.name, str(stop.number)):
            return stop
    names = ", ".join(f"{stop.number} {stop.name}" for stop in stops) or "none in this run"
    raise BadParameter("stop", f"query parameter 'stop' names no stop of this run: {asked!r} (stops: {names})", names)


def with_stop(query: StepperQuery, stops: tuple[StopAt, ...]) -> StepperQuery:
    """`query` at the step its `?stop=` names (when it names no step or time). The URL keeps naming the stop, by
    its name, only while it shows the stop's own step; a step reached otherwise names none."""
    if not query.stop:
        return query
    asked = find_stop(stops, query.stop)
    if query.step is None and query.at_ns is None:
        query = replace(query, step=asked.step)
    return replace(query, stop=asked.name if asked.step == (query.step or 0) else "")


@dataclass(frozen=True)
class StopLink:
    stop: StopAt
    url: str


@dataclass(frozen=True)
class StopsView:
    # data-key values (static/trapscope.js) and how the help names them
    previous_keys, previous_key_names = "PageUp ,", "PageUp or ,"
    next_keys, next_key_names = "PageDown .", "PageDown or ."

    stops: tuple[StopAt, ...]
    current: StopAt | None  # the stop this step is
    previous: StopLink | None  # the last stop before this step
    next: StopLink | None  # the first stop after it

    @property
    def upcoming(self) -> StopAt | None:
        return self.next.stop if self.next else None


def stop_url(query: StepperQuery, stop: StopAt) -> str:
    views = query.views if stop.view in query.views else query.toggled_view(stop.view)
    return query.url(stop.step, stop=stop.name, views=views)


def stops_view(query: StepperQuery, stops: tuple[StopAt, ...], step: int) -> StopsView | None:
    if not stops:
        return None
    before = [stop for stop in stops if stop.step < step]
    after = [stop for stop in stops if stop.step > step]
    return StopsView(
        stops=stops,
        current=next((stop for stop in stops if stop.step == step), None),
        previous=StopLink(before[-1], stop_url(query, before[-1])) if before else None,
        next=StopLink(after[0], stop_url(query, after[0])) if after else None,
    )
