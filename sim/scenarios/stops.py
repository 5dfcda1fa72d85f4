"""Stops: the steps of a scenario worth pausing on, found in its recorded log by what happened, never by number.

A lecturer presses one key to go to the next stop; each stop names the view that carries its point and a caption
of one line. Steps move when the simulator or the cost model changes, so a stop is a *selector* over the log
("the first demand-zero fault", "the syscall event of getpid", "the cerror that stores EINTR"), resolved for each
run.

The data shape, as the web app and the projector layout read it:

    Scenario.stops: tuple[Stop, ...]             declared with the scenario, in the order the story tells them
    Stop(name, find, view, caption)
        name     the stop's name in URLs, a slug: /scenarios/eintr?stop=eintr-return&step=803 (the step is named
                 too, so a link still says exactly which step it shows); `?stop=N` (1-based) works as well
        find     a Find (below): which event of the run the stop is
        view     the view that carries the point: a name of app.params.VIEWS (narrative, timeline, cpu, source,
                 walk, vm, latency); on the page it is the element #narrative, .timeline-box, #registers, #source,
                 #walk, #vm or #latency, and the step panel names it in data-stop-view
        caption  one line, shown with the stop
    Find(kind, name=None, where=None, nth=1, after=None, before=None)
        the nth event (1 = the first; -1 = the last) of `kind` (sim/core/log.py EVENT_KINDS) whose name is `name`
        (any name if None) and whose payload passes `where`, counted only after the step `after` finds; with
        `before`, the nth such event counting back from the step `before` finds ("the trap before the store")
    resolve_stops(stops, events) -> tuple[StopAt, ...]
        StopAt(number, name, view, caption, step): the stops this run reaches, in step order, numbered from 1;
        a stop its run never reaches (a parameter changed the story) is left out, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sim.kern.trap_pfault import T_PAGEFLT
from sim.user.malloc import JUNK_ALLOC

STOP_NAME_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789-"


@dataclass(frozen=True)
class Find:
    """A selector over a run's events: see the module's docstring."""

    kind: str
    name: str | None = None
    where: Callable[[Any], bool] | None = None  # a test of the event's payload (its `data`)
    nth: int = 1
    after: Find | None = None
    before: Find | None = None

    def matches(self, event: Any) -> bool:
        return (
            event.kind == self.kind
            and (self.name is None or event.name == self.name)
            and (self.where is None or self.where(event.data))
        )

    def step_in(self, events: Sequence[Any]) -> int | None:
        """The step this selects in `events`, or None if the run has no such event."""
        start, end = 0, len(events)
        if self.after is not None:
            after = self.after.step_in(events)
            if after is None:
                return None
            start = after + 1
        if self.before is not None:
            before = self.before.step_in(events)
            if before is None:
                return None
            end = before
        if self.nth < 0 or self.before is not None:
            wanted, steps = abs(self.nth), range(end - 1, start - 1, -1)
        else:
            wanted, steps = self.nth, range(start, end)
        for step in steps:
            if self.matches(events[step]):
                wanted -= 1
                if not wanted:
                    return step
        return None


@dataclass(frozen=True)
class Stop:
    name: str
    find: Find
    view: str
    caption: str

    def __post_init__(self) -> None:
        if not self.name or set(self.name) - set(STOP_NAME_CHARACTERS):
            raise ValueError(f"stop name {self.name!r} is not a slug of a-z, 0-9 and -")


@dataclass(frozen=True)
class StopAt:
    """A stop as one run reaches it."""

    number: int  # 1-based, in step order
    name: str
    view: str
    caption: str
    step: int


def resolve_stops(stops: Sequence[Stop], events: Sequence[Any]) -> tuple[StopAt, ...]:
    found = sorted(
        ((step, stop) for stop in stops if (step := stop.find.step_in(events)) is not None), key=lambda f: f[0]
    )
    return tuple(
        StopAt(number, stop.name, stop.view, stop.caption, step) for number, (step, stop) in enumerate(found, 1)
    )


# Selectors the scenarios share, named for what they find.


def first(kind: str, name: str | None = None, where: Callable[[Any], bool] | None = None, **more: Any) -> Find:
    return Find(kind, name, where, **more)


def last(kind: str, name: str | None = None, where: Callable[[Any], bool] | None = None) -> Find:
    return Find(kind, name, where, nth=-1)


def syscall(name: str, nth: int = 1, after: Find | None = None) -> Find:
    """The dispatch of system call `name` through sysent (the "syscall" event, after the hooks of syscallenter)."""
    return Find("syscall", name, nth=nth, after=after)


def entering(function: str, nth: int = 1, after: Find | None = None) -> Find:
    """The entry of kernel function `function`."""
    return Find("enter", function, nth=nth, after=after)


def sysret_error(errno: int) -> Find:
    """The first system call that returns the error `errno` (the carry flag set on the way out)."""
    return Find("sysret", where=lambda result: result.error == errno)


def cerror(errno: int) -> Find:
    """libc's cerror storing `errno` in the thread's errno: the program sees -1."""
    return Find("user", "cerror", where=lambda data: getattr(data, "errno", None) == errno)


def fault(how: str, nth: int = 1, after: Find | None = None) -> Find:
    """The nth page fault vm_fault resolves as `how` (zero_fill, cow, soft, hard)."""
    return Find("fault", how, nth=nth, after=after)


def page_fault_trap(user: bool, nth: int = 1, before: Find | None = None, after: Find | None = None) -> Find:
    """The nth page-fault trap (T_PAGEFLT, 12) taken in user mode (user=True) or in kernel mode (after `after`);
    with `before`, the nth one back from that step."""
    return Find(
        "trap", where=lambda trap: trap.trapno == T_PAGEFLT and trap.user == user, nth=nth, before=before, after=after
    )


def junk_fill(size: int) -> Find:
    """jemalloc's first junk fill (0xa5, from user mode) of `size` bytes: with size=PAGE, a page of dd's buffer."""
    return Find("user", "memset", where=lambda access: access.byte == JUNK_ALLOC and access.n == size)


def run_end() -> Find:
    return Find("end", nth=-1)
