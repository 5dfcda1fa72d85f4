"""A scenario's stops on the stepping page: where the run's stops are, which one this step is, and the two
controls that go to the previous and the next (PageUp / PageDown, which a presentation clicker sends, or , and .).

The stops of a scenario are selectors (sim/scenarios/stops.py); `run_stops` resolves them once per run and keeps
them with it. A stop's URL names both the stop and its step (`?stop=eintr-return&step=803`), and turns on the
view that carries its point if the page does not show it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.errors import BadParameter
from app.params import StepperQuery, with_view
from app.runs import CachedRun, RunCache
from sim.scenarios.registry import Scenario, lookup
from sim.scenarios.stops import StopAt, resolve_stops


async def run_stops(runs: RunCache, cached: CachedRun, scenario: Scenario) -> tuple[StopAt, ...]:
    """The scenario's stops in this run (found in the recording's own turn, see `StopsOf`, or else built in the
    recording pool the first time: a long run is a long scan)."""
    if not scenario.stops:
        return ()
    return await runs.derive(cached, _stops_name(scenario.slug), StopsOf(scenario.slug))


def _stops_name(slug: str) -> str:
    return f"stops:{slug}"  # the stops' name among a cached run's derived views


@dataclass(frozen=True)
class StopsOf:
    """Finds a scenario's stops in a run. A class, not a closure, so that the recording process can be given it
    (by pickling) with the rest of what a new run's turn derives (app/stepper.py prepare_stepper)."""

    slug: str

    def __call__(self, cached: CachedRun) -> tuple[StopAt, ...]:
        return resolve_stops(lookup(self.slug).stops, cached.run.events)

    def derive(self, cached: CachedRun) -> None:
        if lookup(self.slug).stops:
            cached.derived(_stops_name(self.slug), self)


def find_stop(stops: tuple[StopAt, ...], asked: str) -> StopAt:
    """The stop `?stop=` names: by name, or by number (1-based); a 400 listing the stops if there is none."""
    for stop in stops:
        if asked in (stop.name, str(stop.number)):
            return stop
    names = ", ".join(f"{stop.number} {stop.name}" for stop in stops) or "none in this run"
    raise BadParameter("stop", f"query parameter 'stop' names no stop of this run: {asked!r} (stops: {names})", names)


def with_stop(query: StepperQuery, stops: tuple[StopAt, ...]) -> StepperQuery:
    """`query` at the step its `?stop=` names (when it names no step or time). The URL keeps naming the stop, by
    its name, only while it shows the stop's own step; a step reached otherwise names none. At its step the stop's
    view is shown unless the URL chose the views, so a typed or reloaded `?stop=` shows what a stop link does."""
    if not query.stop:
        return query
    asked = find_stop(stops, query.stop)
    if query.step is None and query.at_ns is None:
        query = replace(query, step=asked.step)
    if asked.step != (query.step or 0):
        return replace(query, stop="")
    views = query.views if query.views_given else with_view(query.views, asked.view)
    return replace(query, stop=asked.name, stop_view=asked.view, views=views)


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
    return query.url(stop.step, stop=stop.name, stop_view=stop.view, views=views)


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
