"""Exports in the formats the usual tools open: folded stacks, speedscope JSON, Chrome trace-event JSON.

- folded (brendangregg/FlameGraph): one line per stack, `root;...;leaf value`, sorted as stackcollapse.pl
  sorts them; flamegraph.pl, speedscope and most profilers read it.
- speedscope (jlfwong/speedscope src/lib/file-format-spec.ts): a run becomes one *evented* profile per thread
  (open/close events on simulated time, in ns); a flame graph made from samples becomes one *sampled* profile
  (stacks of frame indices, root first, with their weights).
- Chrome trace events (chrome://tracing, Perfetto UI): `{"traceEvents": [...], "displayTimeUnit": "ns"}` with
  B/E duration events that nest per thread, `ts` in microseconds (fractions carry the nanoseconds), and
  process_name / thread_name metadata. A sampled flame graph has no times: it becomes a flame chart (X events
  laid end to end as flamegraph.pl lays frames out, one value = 1 us of track).

On a timeline a thread's frames stay open while it is off the CPU (asleep in cpu_switch, say) and close when
it returns from them, as a function-call trace shows wall time; user-mode time is a `user` slice and kernel
frames sit under a `kernel` slice (the folded format's `-` separator, named for the timeline views).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sim import VERSION
from sim.machine.profiles import DEFAULT_PROFILE
from sim.run import Run, RunSpec, record
from sim.trace.flame import (
    KERNEL_SEPARATOR,
    USER_FRAME,
    FlameError,
    FlameGraph,
    Slice,
    flame_from_aggregation,
    flame_from_run,
    stack_aggregations,
    timeline,
)
from sim.user.shell import parse_command_line

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"
SPEEDSCOPE_UNITS = {"nanoseconds": "nanoseconds", "samples": "none", "none": "none"}
KERNEL_SLICE = "kernel"
EXPORTER = f"trapscope {VERSION}"


@dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str
    media_type: str
    summary: str


FORMATS = {
    f.name: f
    for f in (
        ExportFormat("folded", ".folded", "text/plain; charset=utf-8", "folded stacks for flamegraph.pl"),
        ExportFormat("speedscope", ".speedscope.json", "application/json", "speedscope's own JSON format"),
        ExportFormat("chrome", ".trace.json", "application/json", "Chrome trace events, for Perfetto UI"),
    )
}


class ExportError(ValueError):
    """The export cannot be made as asked; the message says why."""


def check_format(name: str) -> ExportFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ExportError(f"unknown export format {name!r} (formats: {', '.join(FORMATS)})") from None


# --- folded stacks ------------------------------------------------------------------------------------------


def folded(graph: FlameGraph) -> str:
    """`root;...;leaf value` per stack, sorted by stack as stackcollapse.pl prints them."""
    lines = sorted((";".join(stack), value) for stack, value in graph.stacks.items() if stack and value > 0)
    return "".join(f"{stack} {value}\n" for stack, value in lines)


# --- speedscope ---------------------------------------------------------------------------------------------


class _Frames:
    """speedscope's shared frame table: each distinct name once, referred to by index."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def __call__(self, name: str) -> int:
        found = self.index.get(name)
        if found is None:
            found = self.index[name] = len(self.index)
        return found

    def table(self) -> list[dict[str, str]]:
        return [{"name": name} for name in self.index]


def speedscope_sampled(graph: FlameGraph, name: str | None = None) -> dict:
    """A flame graph as one sampled profile: each folded stack is a sample weighted by its value."""
    frames = _Frames()
    samples, weights = [], []
    for stack, value in sorted(graph.stacks.items()):
        if value > 0:
            samples.append([frames(frame) for frame in stack])
            weights.append(value)
    profile = {
        "type": "sampled",
        "name": name or graph.title,
        "unit": SPEEDSCOPE_UNITS.get(graph.unit, "none"),
        "startValue": 0,
        "endValue": sum(weights),
        "samples": samples,
        "weights": weights,
    }
    return _speedscope_file(graph.title, [profile], frames)


def speedscope_evented(run: Run) -> dict:
    """A run as one evented profile per thread: frames open and close on simulated time (ns)."""
    frames = _Frames()
    profiles = []
    for tid, pieces in _by_thread(run).items():
        events: list[dict] = []
        for kind, at, frame in _open_close(pieces):
            events.append({"type": kind, "frame": frames(frame), "at": at})
        pid, comm = run.threads.get(tid, (0, "?"))
        profiles.append(
            {
                "type": "evented",
                "name": f"{comm} (pid {pid}, tid {tid})",
                "unit": "nanoseconds",
                "startValue": pieces[0].start_ns,
                "endValue": pieces[-1].end_ns,
                "events": events,
            }
        )
    return _speedscope_file(f"{run.spec.command} ({run.spec.profile})", profiles, frames)


def _speedscope_file(name: str, profiles: list[dict], frames: _Frames) -> dict:
    return {
        "$schema": SPEEDSCOPE_SCHEMA,
        "version": "0.0.1",
        "exporter": EXPORTER,
        "name": name,
        "activeProfileIndex": 0,
        "shared": {"frames": frames.table()},
        "profiles": profiles,
    }


# --- the timeline of a run, per thread ----------------------------------------------------------------------


def _by_thread(run: Run) -> dict[int, list[Slice]]:
    threads: dict[int, list[Slice]] = {}
    for piece in timeline(run):
        threads.setdefault(piece.tid, []).append(piece)
    return threads


def _timeline_frames(stack: tuple[str, ...]) -> tuple[str, ...]:
    """A flame-graph stack as a thread's timeline shows it: no process frame; `-` becomes a `kernel` slice."""
    if len(stack) > 1 and stack[1] == KERNEL_SEPARATOR:
        return (KERNEL_SLICE, *stack[2:])
    return stack[1:] or (USER_FRAME,)


def _open_close(pieces: Iterable[Slice]) -> Iterator[tuple[str, int, str]]:
    """("O" | "C", ns, frame) for one thread: the frames that differ between consecutive slices close
    (innermost first) and open (outermost first); the rest stay open, across any time off the CPU."""
    open_frames: tuple[str, ...] = ()
    end = 0
    for piece in pieces:
        frames = _timeline_frames(piece.stack)
        common = 0
        for a, b in zip(open_frames, frames, strict=False):
            if a != b:
                break
            common += 1
        for frame in reversed(open_frames[common:]):
            yield "C", piece.start_ns, frame
        for frame in frames[common:]:
            yield "O", piece.start_ns, frame
        open_frames, end = frames, piece.end_ns
    for frame in reversed(open_frames):
        yield "C", end, frame


# --- Chrome trace events ------------------------------------------------------------------------------------


def _us(ns: int) -> float | int:
    """Trace-event timestamps are microseconds; a fraction carries the nanoseconds exactly enough."""
    return ns // 1000 if ns % 1000 == 0 else ns / 1000


def chrome_trace(run: Run) -> dict:
    """A run as B/E duration events per thread, with the processes and threads named."""
    events: list[dict] = []
    pids: dict[int, str] = {}
    for tid, pieces in _by_thread(run).items():
        pid, comm = run.threads.get(tid, (0, "?"))
        pids.setdefault(pid, comm)
        events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": f"{comm} {tid}"}})
        for kind, at, frame in _open_close(pieces):
            event = {"name": frame, "ph": "B" if kind == "O" else "E", "ts": _us(at), "pid": pid, "tid": tid}
            if kind == "O":
                event["cat"] = USER_FRAME if frame == USER_FRAME else KERNEL_SLICE
            events.append(event)
    metadata = [
        {"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": f"{comm} (pid {pid})"}}
        for pid, comm in sorted(pids.items())
    ]
    return {
        "traceEvents": metadata + events,
        "displayTimeUnit": "ns",
        "otherData": {"command": run.spec.command, "profile": run.spec.profile, "exporter": EXPORTER},
    }


def chrome_flame_chart(graph: FlameGraph) -> dict:
    """A graph without times (profile samples) as a flame chart: each frame an X event as wide as its value,
    children laid end to end inside their parent, as flamegraph.pl lays them out (1 value = 1 us)."""
    pid, tid = 1, 1
    events: list[dict] = [
        {"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": graph.title}},
        {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": f"flame chart ({graph.unit})"}},
    ]
    starts: dict[tuple[str, ...], int] = {(): 0}  # where the next child of each frame begins
    for node in graph.nodes():
        if not node.stack:
            continue
        parent = node.stack[:-1]
        start = starts[parent]
        starts[parent] = start + node.inclusive
        starts[node.stack] = start
        args = {"value": node.inclusive, "self": node.self_value, "unit": graph.unit}
        events.append(
            {
                "name": node.name,
                "cat": "flame",
                "ph": "X",
                "ts": start,
                "dur": node.inclusive,
                "pid": pid,
                "tid": tid,
                "args": args,
            }
        )
    return {"traceEvents": events, "displayTimeUnit": "ns", "otherData": {"exporter": EXPORTER}}


# --- one entry point for the command line and the web app ---------------------------------------------------


@dataclass(frozen=True)
class Export:
    format: ExportFormat
    body: str
    filename: str


def _dump(document: dict) -> str:
    return json.dumps(document, separators=(",", ":")) + "\n"


def export_run(run: Run, format_name: str, graph: FlameGraph | None = None) -> Export:
    """A run's exact frame times in one of FORMATS (`graph`: its flame_from_run, if already built)."""
    fmt = check_format(format_name)
    stem = run_stem(run)
    if fmt.name == "folded":
        return Export(fmt, folded(graph or flame_from_run(run)), stem + fmt.suffix)
    document = speedscope_evented(run) if fmt.name == "speedscope" else chrome_trace(run)
    return Export(fmt, _dump(document), stem + fmt.suffix)


def export_graph(graph: FlameGraph, format_name: str, stem: str) -> Export:
    """A flame graph from samples (a D aggregation) in one of FORMATS."""
    fmt = check_format(format_name)
    if fmt.name == "folded":
        return Export(fmt, folded(graph), stem + fmt.suffix)
    document = speedscope_sampled(graph) if fmt.name == "speedscope" else chrome_flame_chart(graph)
    return Export(fmt, _dump(document), stem + fmt.suffix)


def run_stem(run: Run) -> str:
    """A file name for a run's export: its program and run id (`dd-1a2b3c4d`)."""
    program = parse_command_line(run.spec.command).program.rsplit("/", 1)[-1]
    return f"{program}-{run.run_id[:8]}"


def aggregation_graph(aggregations: dict, name: str | None) -> tuple[str, FlameGraph]:
    """The flame graph of the aggregation `name` (with or without '@'), or of the only one keyed by stack()."""
    if name is not None:
        key = name.lstrip("@") or "_"
        if key not in aggregations:
            known = ", ".join(f"@{a}" for a in aggregations) or "none"
            raise ExportError(f"the program has no aggregation @{key} (aggregations: {known})")
        return key, flame_from_aggregation(aggregations[key])
    candidates = stack_aggregations(aggregations)
    if not candidates:
        raise ExportError(
            "the program filled no aggregation keyed by stack() with count() or sum(), "
            "e.g. profile-997 { @[stack()] = count(); }"
        )
    if len(candidates) > 1:
        raise ExportError(f"several aggregations hold stacks ({', '.join('@' + c for c in candidates)}): name one")
    return candidates[0], flame_from_aggregation(aggregations[candidates[0]])


# --- `trapscope export` -------------------------------------------------------------------------------------


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """`trapscope export --format folded|speedscope|chrome -o FILE [-n PROGRAM | -s FILE] -c 'COMMAND LINE'`."""
    from sim.machine.profiles import PROFILES

    parser = subparsers.add_parser(
        "export",
        help="export a run's frame times (or a D program's stack aggregation) for flame-graph and trace tools",
        description="Without a D program, export the run's exact frame times; with -n or -s, export the "
        "program's aggregation keyed by stack() (profile samples).",
    )
    parser.add_argument("--format", required=True, choices=sorted(FORMATS), help="what to write")
    parser.add_argument("-o", dest="output", required=True, metavar="FILE", help="where to write it ('-': stdout)")
    parser.add_argument(
        "--profile", choices=sorted(PROFILES), default=DEFAULT_PROFILE, help="machine profile (lecture)"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-n", dest="program", metavar="'PROGRAM'", help="a D program whose stack aggregation to export")
    source.add_argument("-s", dest="script", metavar="FILE", help="a D script file whose stack aggregation to export")
    parser.add_argument("--aggregation", metavar="NAME", help="which aggregation (when the program has several)")
    parser.add_argument("-c", dest="command", required=True, metavar="'COMMAND LINE'", help="what to run")
    parser.set_defaults(handler=main)


EXIT_ERROR = 1


def main(args: argparse.Namespace) -> int:
    from sim.trace.d_parser import DtraceError
    from sim.trace.dtrace import run_dtrace

    try:
        if args.program is None and args.script is None:
            if args.aggregation is not None:
                raise ExportError("--aggregation names an aggregation of a D program: give one with -n or -s")
            run = record(RunSpec(command=args.command, profile=args.profile))
            export = export_run(run, args.format)
        else:
            script, name = (
                (args.program, None) if args.program is not None else (_read_script(args.script), args.script)
            )
            result = run_dtrace(script, args.command, args.profile, quiet=True, script_name=name)
            aggregation, graph = aggregation_graph(result.aggregations, args.aggregation)
            stem = f"{run_stem(result.run)}-{aggregation}" if result.run else aggregation
            export = export_graph(graph, args.format, stem)
    except DtraceError as error:
        print(error, file=sys.stderr)
        if error.context:
            print(error.context, file=sys.stderr)
        return EXIT_ERROR
    except (ExportError, FlameError) as error:
        print(f"trapscope export: {error}", file=sys.stderr)
        return EXIT_ERROR
    if args.output == "-":
        sys.stdout.write(export.body)
        return 0
    try:
        Path(args.output).write_text(export.body)
    except OSError as error:
        print(f"trapscope export: cannot write {args.output}: {error.strerror or error}", file=sys.stderr)
        return EXIT_ERROR
    size = len(export.body.encode())
    print(f"trapscope export: wrote {size:,} bytes of {export.format.summary} to {args.output}", file=sys.stderr)
    return 0


def _read_script(path: str) -> str:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ExportError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
