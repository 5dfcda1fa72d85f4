"""The source view: the innermost kernel function's pseudo-source with the current line marked, the hooks of this
invocation that ran or were skipped, and the kernel stack (app/kernel_source.py holds the source as data)."""

from __future__ import annotations

from dataclasses import dataclass

from app.kernel_source import LIBC_STUB, Source, line_for, sources
from app.navigate import LogIndex
from sim.core.log import Event
from sim.narrative import detail as event_detail

RECENT_EVENTS = 10  # for a function without pseudo-source: its latest steps, as a stand-in
MAX_SCAN = 20_000  # steps looked back at for them


@dataclass(frozen=True)
class ShownLine:
    number: int  # 1-based, as an editor shows it
    text: str
    current: bool
    status: str  # "", "ran", "skipped", "called", "returned", "entered"
    note: str  # e.g. the skipped hook's flag test


@dataclass(frozen=True)
class StackFrame:
    function: str
    enter_step: int | None  # where this frame was entered (a link target)
    has_source: bool


@dataclass(frozen=True)
class SourceView:
    function: str  # "" in user mode with no stub line to show
    file: str
    lines: tuple[ShownLine, ...]
    stack: tuple[StackFrame, ...]  # innermost first
    in_user_mode: bool
    fallback: tuple[str, ...]  # for a function without pseudo-source: what it did so far, in words


def _frame_enters(index: LogIndex, step: int, depth: int) -> list[int | None]:
    """The enter step of each open frame, outermost first."""
    enters: list[int | None] = []
    probe = step
    for level in range(depth, 0, -1):
        start = _enter_of_level(index, probe, level)
        enters.append(start)
        if start is None:
            break
        probe = start - 1 if start else 0
    enters.reverse()
    return enters


def _enter_of_level(index: LogIndex, step: int, level: int) -> int | None:
    if step < 0 or index.frames[step] < level:
        return None
    before = max((index.frames.rfind(bytes([d]), 0, step + 1) for d in range(level)), default=-1)
    return before + 1


def source_view(index: LogIndex, events: list[Event], step: int, stack: tuple[str, ...], narrate) -> SourceView:
    """`stack` is the replayed kernel stack, outermost first."""
    event = events[step]
    depth = index.frames[step]
    enters = _frame_enters(index, step, min(depth, len(stack)))
    enters = [None] * (len(stack) - len(enters)) + enters
    known = sources()
    frames = tuple(
        StackFrame(function, enters[i], function in known) for i, function in reversed(list(enumerate(stack)))
    )
    if not stack:
        line = line_for(LIBC_STUB, event.kind, event.name)
        if line is None:
            return SourceView("", "", (), frames, True, ())
        return SourceView(LIBC_STUB.function, LIBC_STUB.file, _shown(LIBC_STUB, line, "", {}), frames, True, ())
    function = stack[-1]
    start = enters[-1] if enters else None
    source = known.get(function)
    if source is None:
        return SourceView(function, "", (), frames, False, _recent(index, events, step, start, depth, narrate))
    if event.kind == "enter" and event.name == function:
        current, status = 0, "entered"
    elif event.kind == "exit":
        current, status = line_for(source, "enter", event.name), "returned"
    else:
        current, status = line_for(source, event.kind, event.name), _status_of(event.kind)
    marks = _marks(index, events, source, start, step, depth)
    return SourceView(function, source.file, _shown(source, current, status, marks), frames, False, ())


def _status_of(kind: str) -> str:
    return {"skip": "skipped", "hook": "ran"}.get(kind, "")


def _shown(source: Source, current: int | None, status: str, marks: dict[int, tuple[str, str]]) -> tuple:
    return tuple(
        ShownLine(
            number=i + 1,
            text=line.text,
            current=i == current,
            status=status if i == current and status else marks.get(i, ("", ""))[0],
            note=marks.get(i, ("", ""))[1],
        )
        for i, line in enumerate(source.lines)
    )


def _marks(
    index: LogIndex, events: list[Event], source: Source, start: int | None, step: int, depth: int
) -> dict[int, tuple[str, str]]:
    """Line -> (status, note) for what this invocation (steps start..step) did: hooks run or skipped, calls made."""
    if start is None:
        return {}
    marks: dict[int, tuple[str, str]] = {}
    for number, line in enumerate(source.lines):
        for key in line.keys:
            kind_key, _, name = key.partition(":")
            if "*" in name:
                continue
            name = name.replace("_", " ") if kind_key == "hook" and name not in ("ast",) else name
            candidates = (
                [("skip", name), ("hook", name), ("skip", name.replace(" ", "_")), ("hook", name.replace(" ", "_"))]
                if kind_key == "hook"
                else [("enter", name)]
                if kind_key == "call"
                else []
            )
            for kind, event_name in candidates:
                positions = index.positions(kind, event_name)
                first = LogIndex.next_after(positions, start - 1)
                want_depth = depth + 1 if kind == "enter" else depth
                while first is not None and first <= step and index.frames[first] != want_depth:
                    first = LogIndex.next_after(positions, first)
                if first is not None and first <= step:
                    status = {"skip": "skipped", "hook": "ran", "enter": "called"}[kind]
                    if kind == "enter" and any(k.startswith("hook:") for k in line.keys):
                        status = "ran"  # a hook whose flag was set: its function was called
                    marks.setdefault(number, (status, event_detail(events[first]) if kind == "skip" else ""))
    return marks


def _recent(index: LogIndex, events: list[Event], step: int, start: int | None, depth: int, narrate) -> tuple:
    """The latest steps of this invocation at its own depth: what a function without pseudo-source has done."""
    if start is None:
        return ()
    found = []
    for at in range(step, max(start, step - MAX_SCAN) - 1, -1):
        if index.frames[at] == depth:
            found.append(f"step {at}: {narrate(events[at])}")
            if len(found) == RECENT_EVENTS:
                break
    return tuple(reversed(found))
