"""The stepping page as one view model: every control's destination and every view of one step, from a cached run.

`StepperRun` is what is derived once per run (the log index, the latency prefix sums, the timeline's data);
`stepper_view` assembles a step from it in a few milliseconds: controls are links to steps the index found,
so a press of "Step over" is the same small GET as a press of "Step".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.figures import focus_window, ring_intervals, timeline_data
from app.navigate import LogIndex, Target
from app.params import SWITCHES, VIEWS, Breakpoint, StepperQuery
from app.runs import CachedRun, RunCache
from app.view_latency import LatencyIndex, LatencyView, latency_view
from app.view_source import SourceView, source_view
from app.view_stops import StopsOf, StopsView, stops_view
from app.view_vm import VmView, fault_modes, vm_view
from app.view_walk import WalkView, walk_view
from app.views import StepView, narrate, step_view
from sim.kern.kernel import Kernel
from sim.replay import StepState
from sim.scenarios.stops import StopAt


class StepperRun:
    """What the stepping page derives from a run once: built on the first request for the run, then cached."""

    def __init__(self, cached: CachedRun) -> None:
        run = cached.run
        self.index = LogIndex(run.events)
        self.latency = LatencyIndex(self.index, run.events, run.initial_registers["cpl"], run.threads)
        self.fault_modes = fault_modes(self.index, run.events)
        self.intervals = ring_intervals(self.index, run.initial_registers["cpl"])
        self.timeline = timeline_data(self.index, run.events, run.initial_registers["cpl"], run.threads)
        kernel_functions = {name for kind, name in self.index.by_name if kind == "enter"}
        self.functions = tuple(sorted(kernel_functions))
        cached.replay.table_at("page", 0)  # index the VM tables now, with the rest, not on the first step
        # Every checkpoint now too (a dd run: ~0.2 s), in the recording process when there is one: built on the
        # first request for a far step, the fold held the serving process's GIL (and its event loop) meanwhile.
        cached.replay.build_checkpoints()


STEPPER_RUN = "stepper"  # its name among a cached run's derived views


def stepper_run(cached: CachedRun) -> StepperRun:
    return cached.derived(STEPPER_RUN, StepperRun)


@dataclass(frozen=True)
class PrepareStepper:
    """What a new run's recording turn derives for the stepping page of `scenario` (its slug): the stepper's index
    and the scenario's stops, so that a run admitted once is shown without a second turn in the recording pool.
    A class, not a closure: the recording process is given it by pickling."""

    scenario: str

    def __call__(self, cached: CachedRun) -> None:
        stepper_run(cached)
        StopsOf(self.scenario).derive(cached)


async def derived_stepper_run(runs: RunCache, cached: CachedRun) -> StepperRun:
    """`stepper_run`, built in the recording pool the first time (app/runs.py RunCache.derive)."""
    return await runs.derive(cached, STEPPER_RUN, StepperRun)


@dataclass(frozen=True)
class Control:
    id: str
    label: str
    keys: str  # what data-key holds: the keys static/trapscope.js maps to this control
    key_names: str  # the keys as the help overlay and the title show them
    title: str
    url: str | None  # None: the control leads nowhere from this step (shown disabled)
    reason: str = ""  # why it stops there (a breakpoint), shown after the jump
    primary: bool = False


@dataclass(frozen=True)
class ViewToggle:
    name: str
    label: str
    key: str
    shown: bool
    url: str


@dataclass(frozen=True)
class StepperView:
    query: StepperQuery
    run_id: str
    step: StepView
    controls: tuple[Control, ...]
    run_controls: tuple[Control, ...]
    toggles: tuple[ViewToggle, ...]
    source: SourceView | None
    walk: WalkView | None
    vm: VmView | None
    latency: LatencyView | None
    breakpoints: tuple[tuple[Breakpoint, str, int], ...]  # (breakpoint, URL without it, hits in the run)
    functions: tuple[str, ...]  # kernel functions this run enters: the breakpoint form's suggestions
    stopped_by: str  # why this step was reached, when a breakpoint stopped a run-to
    stops: StopsView | None  # the scenario's stops: which one this step is, the previous and the next
    on_cpu: str  # the thread on the CPU at this step: "pid 1001 fork, tid 100002", or a kernel thread's name
    summary: dict[str, Any]
    projector_url: str
    embed_url: str
    normal_url: str
    scrubber_url: str

    def shows(self, view: str) -> bool:
        return view in self.query.views

    @property
    def switches(self) -> list[tuple[str, str, bool]]:
        return [(name, label, self.query.switch(name)) for name, (_, label) in SWITCHES.items()]


def _control(
    query: StepperQuery, id: str, label: str, keys: str, key_names: str, title: str, target: Target | int | None
) -> Control:
    if isinstance(target, int):
        target = Target(target)
    return Control(
        id=id,
        label=label,
        keys=keys,
        key_names=key_names,
        title=f"{title} ({key_names})",
        url=query.url(target.step) if target is not None else None,
        reason=target.reason if target is not None else "",
        primary=id == "step-forward",
    )


def stepper_view(
    query: StepperQuery, cached: CachedRun, derived: StepperRun, state: StepState, stops: tuple[StopAt, ...] = ()
) -> StepperView:
    run, index = cached.run, derived.index
    step, last = state.step, index.last_step
    bps = query.breakpoints

    def run_to(goal: int | None) -> Target | None:
        return index.run_to(step, goal, bps)

    window = focus_window(derived.intervals, state.t_ns, state.cpl)
    view = step_view(query.scenario, state, last, query.url, window)
    controls = (
        _control(query, "step-back", "◀ Back", "ArrowLeft h", "← or h", "Back one step", step - 1 if step else None),
        _control(
            query,
            "step-forward",
            "Step ▶",
            "ArrowRight l",
            "→ or l",
            "Forward one step",
            step + 1 if step < last else None,
        ),
        _control(
            query,
            "step-over",
            "Step over ↷",
            "n",
            "n",
            "Next step in this function: calls made are skipped whole",
            index.step_over(step),
        ),  # fmt: skip
        _control(
            query,
            "step-out",
            "Step out ↰",
            "u",
            "u",
            "Run until the current kernel function returns",
            index.step_out(step),
        ),  # fmt: skip
        _control(query, "step-reset", "⟲ Reset", "Home 0", "Home or 0", "Back to the first step", 0 if step else None),
    )
    syscall_goal = LogIndex.next_after(index.syscall_insns, step)
    run_controls = (
        _control(query, "run-syscall", "syscall", "s", "s", "Run to the next system call", run_to(syscall_goal)),
        _control(
            query,
            "run-trap",
            "trap",
            "t",
            "t",
            "Run to the next trap (an exception: a page fault, ...)",
            run_to(LogIndex.next_after(index.positions("trap"), step)),
        ),  # fmt: skip
        _control(
            query,
            "run-fault",
            "fault",
            "f",
            "f",
            "Run to the next page fault the VM system resolves",
            run_to(LogIndex.next_after(index.positions("fault"), step)),
        ),  # fmt: skip
        _control(
            query,
            "run-ring",
            "ring change",
            "r",
            "r",
            "Run to the next change of ring (CPL)",
            run_to(index.next_ring_change(step)),
        ),  # fmt: skip
        _control(
            query,
            "run-end",
            "end" if not bps else "breakpoint / end",
            "End e",
            "End or e",
            "Run to the end of the run (stopping at a breakpoint, if one is set)",
            run_to(last if step < last else None),
        ),  # fmt: skip
    )
    toggles = tuple(
        ViewToggle(name, label, str(i + 1), name in query.views, query.url(step, views=query.toggled_view(name)))
        for i, (name, label) in enumerate(VIEWS.items())
    )
    pid, comm = run.threads.get(state.tid, (0, ""))
    on_cpu = f"pid {pid} {comm}, tid {state.tid}" if pid >= Kernel.FIRST_PID else f"kernel thread {comm or state.tid}"
    events = run.events
    breakpoints = tuple(
        (
            bp,
            query.url(step, breakpoints=query.with_breakpoint(bp, False)),
            len(index.positions("enter", bp.name) if bp.kind == "function" else index.positions(bp.name)),
        )
        for bp in bps
    )
    stopped_by = ""
    if bps and step:
        hit = index.next_breakpoint(step - 1, bps)
        if hit is not None and hit.step == step:
            stopped_by = hit.reason
    return StepperView(
        query=query,
        run_id=run.run_id,
        step=view,
        controls=controls,
        run_controls=run_controls,
        toggles=toggles,
        source=source_view(index, events, step, state.stack, narrate) if "source" in query.views else None,
        walk=walk_view(index, events, step) if "walk" in query.views else None,
        vm=vm_view(cached.replay, index, derived.fault_modes, events, step, pid) if "vm" in query.views else None,
        latency=latency_view(derived.latency, step, state.t_ns) if "latency" in query.views else None,
        breakpoints=breakpoints,
        functions=derived.functions,
        stopped_by=stopped_by,
        stops=stops_view(query, stops, step),
        on_cpu=on_cpu,
        summary=run.summary(),
        projector_url=query.url(step, projector=True, views=_views_for(query, True)),
        embed_url=query.url(step, embed=True),
        normal_url=query.url(step, projector=False, embed=False, views=_views_for(query, False)),
        scrubber_url=query.url(None),
    )


def _views_for(query: StepperQuery, projector: bool) -> tuple[str, ...]:
    from app.params import default_views

    if query.views == default_views(query.scenario, query.projector):
        return default_views(query.scenario, projector)
    return query.views
