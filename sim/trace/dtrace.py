"""DTrace over a simulated run: `run_dtrace(script, command, ...)` and the `trapscope dtrace` command.

As `dtrace -s script.d -c 'command'` does on FreeBSD: compile the program (any error stops here, worded as
dtrace words it), enable its probes, run the command (with the hooks those probes need switched on, so their
probe effect is in the simulated times), fire BEGIN, every probe the run's events imply as they happen (live:
the program sees all of a run, however long; the stored record is kept for stepping only), then END, and print
what dtrace prints. A stored run can be traced again too (trace_run): the same firings, from its log. Messages
dtrace writes to stderr (matched probes, the traced process's exit, drops and errors) are kept apart from its
output, as on a terminal.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from sim.core.log import Event
from sim.core.walker import ThreadTable, Walker
from sim.kern.dtrace_probe import fbt_clock_read_ns, firing_ns
from sim.kern.kernel import Kernel, KernelConfig
from sim.machine.profiles import DEFAULT_PROFILE, PROFILES
from sim.run import DEFAULT_RECORD_BUDGET, Run, RunSpec, record
from sim.trace import d_interp
from sim.trace.d_command import command_options, expand_macros, list_probes
from sim.trace.d_copyin import AddressSpaces
from sim.trace.d_grab import Grab, macro_variables
from sim.trace.d_interp import Program, TraceState, compile_program
from sim.trace.d_output import Aggregation
from sim.trace.d_parser import CompileError, DtraceError, EnableError, parse
from sim.trace.providers import Enabling, Firing, ProbeCatalog, ProbeWalk, Stopped
from sim.trace.sdt_providers import sdt_arguments

EXIT_ERROR = 1  # dtrace's E_ERROR: the program did not compile, or could not run


@dataclass
class DtraceResult:
    output: str  # what dtrace prints on stdout
    stderr: str  # dtrace's own messages: matched probes, the command's exit, drops, runtime errors
    exit_status: int  # dtrace's exit status: exit()'s argument, else 0
    program_output: str  # what the traced command itself printed
    run: Run | None  # the traced run (None when a bare event log was traced)
    probes_matched: int
    firings: int
    trace_seconds: float  # host time from BEGIN to END (for a program evaluated live, the run's time included)
    aggregations: dict[str, Aggregation] = field(default_factory=dict)


@dataclass
class CompiledScript:
    """A compiled program, which may be kept and traced again: one tracing session at a time (`session`)."""

    program: Program
    catalog: ProbeCatalog
    name: str  # for messages: the script's file name, or the -n description
    from_file: bool
    session: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    matched_messages: list[str] = field(default_factory=list)  # one a program, when several were compiled together

    def matched_message(self) -> str:
        n = self.program.matched
        kind = "script" if self.from_file else "description"
        return f"dtrace: {kind} '{self.name}' matched {n} probe{'' if n == 1 else 's'}"


def compile_script(
    script: str,
    script_name: str | None = None,
    *,
    options: dict[str, int | str] | None = None,
    macro_args: list[str] | None = None,
    target: int = Kernel.FIRST_PID,
) -> CompiledScript:
    """Compile a D program. `script_name` names a -s script file; without it the text is a -n description.
    `options` are set before the program's own (dtrace -x); `macro_args` are its $1, $2, ... (None: no macro
    expansion, as for a program that is not from dtrace's command line); `target` is $target's pid.

    Raises DtraceError with dtrace's message, e.g. "dtrace: failed to compile script x.d: line 3: ...".
    """
    from_file = script_name is not None
    catalog = ProbeCatalog()
    try:
        if macro_args is not None:
            defaults = "defaultargs" in (options or {})
            script = expand_macros(script, macro_args, script_name or "", defaults, macro_variables(target))
        parsed = parse(script, from_file)
        parsed.options = {**(options or {}), **parsed.options}
        program = compile_program(parsed, catalog)
    except CompileError as error:
        raise _dtrace_error(error, script, script_name) from None
    name = script_name if from_file else _cropped(script)
    return CompiledScript(program, catalog, name, from_file)


def _dtrace_error(error: CompileError, script: str, script_name: str | None) -> DtraceError:
    if isinstance(error, EnableError):
        return DtraceError(f"dtrace: could not enable tracing: {error.message}")
    where = f"line {error.line}: " if error.line else ""
    if script_name is None and "\n" not in script.strip():
        where = ""  # a one-line -n description: dtrace names no line (the column is still in the error)
    if script_name is not None:
        message = f"dtrace: failed to compile script {script_name}: {where}{error.message}"
    else:
        message = f"dtrace: invalid probe specifier {script.strip()}: {where}{error.message}"
    return DtraceError(message, error.line, error.column, script)


def _cropped(description: str) -> str:
    """dtrace names a -n description by its text up to the first '{', '/' or ';' (compile_str)."""
    for i, c in enumerate(description):
        if c in "{/;":
            return description[:i]
    return description


def required_config(compiled: CompiledScript, config: KernelConfig) -> KernelConfig:
    """The kernel configuration a run needs for these probes, so that each firing costs its probe effect
    (sim/kern/dtrace_probe.py): syscall probes set their calls' sy_entry / sy_return, fbt probes put int3 at their
    functions' entries and returns, profile-N/tick-N probes start a cyclic each. A probe is armed when enabled,
    whatever its predicate says: the predicate is evaluated in dtrace_probe, after the firing's cost is paid."""
    enabling = Enabling.of(compiled.program.probes)
    return replace(
        config,
        dtrace_syscall_entry=tuple(sorted({*config.dtrace_syscall_entry, *enabling.syscall_entry})),
        dtrace_syscall_return=tuple(sorted({*config.dtrace_syscall_return, *enabling.syscall_return})),
        dtrace_fbt_entry=tuple(sorted({*config.dtrace_fbt_entry, *enabling.fbt_entry})),
        dtrace_fbt_return=tuple(sorted({*config.dtrace_fbt_return, *enabling.fbt_return})),
        dtrace_profile_ns=tuple(sorted([*config.dtrace_profile_ns, *(p.period_ns for p in enabling.profile)])),
        dtrace_fbt_arguments=tuple(
            sorted({*config.dtrace_fbt_arguments, *compiled.program.fbt_arguments, *sdt_arguments(enabling)})
        ),
        dtrace_sdt=tuple(
            sorted(
                {
                    *config.dtrace_sdt,
                    *(
                        f"{provider}:{name}"
                        for provider in ("proc", "sched", "io", "vminfo")
                        for name in getattr(enabling, provider)
                    ),
                }  # fmt: skip
            )
        ),
    )


def run_dtrace(
    script: str,
    command: str,
    profile: str = DEFAULT_PROFILE,
    quiet: bool = False,
    *,
    script_name: str | None = None,
    config: KernelConfig | None = None,
    record_budget: int = DEFAULT_RECORD_BUDGET,
) -> DtraceResult:
    """Trace `command` with the D program `script` on a fresh simulated machine and return what dtrace prints.

    The program is evaluated live, as the run's events happen, so it sees every one of them however long the
    run; the run keeps `record_budget` events for stepping. Raises DtraceError for a program that does not
    compile, and RunError/CommandLineError for a command line that cannot run.
    """
    compiled = compile_script(script, script_name)
    spec = RunSpec(command=command, profile=profile, config=required_config(compiled, config or KernelConfig()))
    return trace_live(compiled, spec, quiet, record_budget=record_budget)


def trace_live(
    compiled: CompiledScript,
    spec: RunSpec,
    quiet: bool = False,
    *,
    record_budget: int = DEFAULT_RECORD_BUDGET,
    grab: Grab | None = None,
) -> DtraceResult:
    """Record `spec` (made with required_config's configuration) with the program evaluated live over its events;
    with `grab` (dtrace -p), tracing ends when that process exits."""
    with compiled.session:
        tracing = _Tracing(compiled, quiet, systrace_armed(spec.config), _fbt_firing(spec))

        def consumer(threads: ThreadTable) -> Callable[[Event], None]:
            feed = tracing.begin(threads)
            tracing.state.address_spaces = AddressSpaces()  # copyin() reads them live
            if grab is None:
                return feed

            def feed_until_exit(event: Event) -> None:
                feed(event)
                if grab.saw(event):
                    tracing.walk.stopped = tracing.walk.closed = True

            return feed_until_exit

        run = record(spec, record_budget=record_budget, live=consumer)
        if grab is not None:
            grab.check(run.threads)
        end_ns = grab.exit_ns if grab is not None and grab.exited is not None else _end_ns(run)
        return tracing.end(end_ns, run.exit_status, run.output, run, unrecorded=0, recorded=len(run.events), grab=grab)


def systrace_armed(config: KernelConfig) -> bool:
    """Was the run recorded with systrace_probe_func set (so an enabled syscall probe fires at its frames)?"""
    return bool(config.dtrace_syscall or config.dtrace_syscall_entry or config.dtrace_syscall_return)


DTRACE_PID_OFFSET = 1  # dtrace(1) itself started just before the command it runs (-c): the pid before it


def trace_run(
    compiled: CompiledScript, run: Run, quiet: bool = False, *, ops_budget: int | None = None
) -> DtraceResult:
    """Evaluate a compiled program over a recorded run (the run should come from required_config's config);
    `ops_budget` bounds the evaluation (Program.start)."""
    return trace_events(
        compiled,
        run.events,
        run.threads,
        end_ns=_end_ns(run),
        systrace_frames=systrace_armed(run.spec.config),
        fbt_firing=_fbt_firing(run.spec),
        quiet=quiet,
        command_status=run.exit_status,
        unrecorded=run.unrecorded,
        program_output=run.output,
        run=run,
        ops_budget=ops_budget,
    )


def _end_ns(run: Run) -> int:
    """Tracing ends with the run: at its end, or its last recorded step if that is later."""
    return max(run.wall_ns, run.events[-1].t_ns if run.events else 0)


def trace_events(
    compiled: CompiledScript,
    events: list[Event],
    threads: dict[int, tuple[int, str]],
    *,
    end_ns: int,
    systrace_frames: bool,
    fbt_firing: tuple[int, int] = (0, 0),
    quiet: bool = False,
    command_status: int | None = 0,
    unrecorded: int = 0,
    program_output: str = "",
    run: Run | None = None,
    ops_budget: int | None = None,
) -> DtraceResult:
    """Evaluate a compiled program over an event log: BEGIN, the firings the events imply, END."""
    with compiled.session:
        tracing = _Tracing(compiled, quiet, systrace_frames, fbt_firing, ops_budget)
        feed = tracing.begin(threads)
        for event in events:
            feed(event)
        return tracing.end(end_ns, command_status, program_output, run, unrecorded=unrecorded, recorded=len(events))


class _Tracing:
    """One evaluation of a program: BEGIN when the first event comes, every firing the events imply as they are
    fed (a live run's stream or a stored log), END when the run has ended."""

    def __init__(
        self, compiled: CompiledScript, quiet: bool, systrace_frames: bool, fbt_firing: tuple[int, int],
        ops_budget: int | None = None,
    ):  # fmt: skip
        self.compiled = compiled
        self.program = program = compiled.program
        self.state = program.start(quiet, ops_budget)
        self.enabling = Enabling.of(program.probes)
        self.systrace_frames, self.fbt_firing = systrace_frames, fbt_firing
        self.stderr: list[str] = []
        if not self.state.quiet:
            self.stderr.extend(compiled.matched_messages or [compiled.matched_message()])
        self.started = time.perf_counter()  # BEGIN's time: tracing a live run also takes the run's own time
        self.walk: ProbeWalk | None = None
        self.threads: ThreadTable = {}
        self.stopped = False  # exit() in BEGIN: nothing else fires
        self.pid = self.tid = 0

    def begin(self, threads: ThreadTable) -> Callable[[Event], None]:
        """What the run's events are fed to. BEGIN fires with the first, in dtrace's own process (the pid before
        the command's: dtrace -c started it)."""
        self.threads = threads
        self.walk = ProbeWalk(
            threads, self.enabling, self.program.fire, self.systrace_frames, self.fbt_firing, begin=self._begin
        )
        return self.walk.feed

    def _begin(self, first: Event) -> bool:
        """Fire BEGIN; True if the program called exit() there."""
        self.started = time.perf_counter()
        self.pid, self.tid = _traced_process(first, self.threads)
        self.stopped = _fire_dtrace_probe(
            self.program, self.enabling.begin, 0, self.pid - DTRACE_PID_OFFSET, self.tid - DTRACE_PID_OFFSET
        )
        return self.stopped

    def end(
        self, end_ns: int, command_status: int | None, program_output: str, run: Run | None, *, unrecorded: int,
        recorded: int, grab: Grab | None = None,
    ) -> DtraceResult:  # fmt: skip
        program, state, stderr = self.program, self.state, self.stderr
        walk = self.walk
        assert walk is not None
        if walk.begin is not None:  # no event at all: BEGIN still fires
            walk.begin = None
            self._begin(_NO_EVENT)
        stopped = self.stopped
        if not stopped:
            if grab is not None and grab.exited is not None and not state.stopping:
                walk.stopped = False  # the grabbed process's exit stopped the walk: the samples due till then fire
            last = walk.finish(end_ns)
            stderr.extend(state.errors)  # runtime errors print as they happen: before the process's exit is noticed
            if state.stopping:
                end_ns = last.t
            elif grab is not None:
                if not state.quiet:
                    stderr.append(grab.exit_message())
            elif not state.quiet:
                how = f"exited with status {command_status}" if command_status else "has exited"
                stderr.append(f"dtrace: pid {self.pid} {how}")
        reported = len(state.errors) if not stopped else 0
        if not state.output_truncated:
            state.stopping = False
            _fire_dtrace_probe(
                program, self.enabling.end, end_ns, self.pid - DTRACE_PID_OFFSET, self.tid - DTRACE_PID_OFFSET
            )
            program.finish(state)
        stderr.extend(state.errors[reported:])  # END's own
        if state.error_count > len(state.errors):
            stderr.append(f"dtrace: {state.error_count - len(state.errors)} more errors on enabled probes")
        stderr.extend(_drop_messages(state, unrecorded, recorded))
        result = DtraceResult(
            output="".join(state.out),
            stderr="".join(line + "\n" for line in stderr),
            exit_status=state.exit_status,
            program_output=program_output,
            run=run,
            probes_matched=program.matched,
            firings=state.firings,
            trace_seconds=time.perf_counter() - self.started,
            # Copies: the program may be traced again, and its next session starts its aggregations afresh.
            aggregations={name: replace(a, data=dict(a.data)) for name, a in program.aggregations.items()},
        )
        program.release()
        return result


_NO_EVENT = Event(0, "start", "", None, (), 0)


def _fbt_firing(spec: RunSpec) -> tuple[int, int]:
    """(when dtrace_probe reads the clock in an fbt firing, what the firing costs) in this run; (0, 0) if its fbt
    probes were not armed."""
    config = spec.config
    if not (config.dtrace_fbt_entry or config.dtrace_fbt_return) or spec.profile not in PROFILES:
        return 0, 0
    costs = PROFILES[spec.profile]
    return fbt_clock_read_ns(costs), firing_ns(costs)["fbt"]


def _traced_process(first: Event, threads: ThreadTable) -> tuple[int, int]:
    """(pid, tid) of the command's first thread: the one the run's first event puts on the CPU."""
    walker = Walker(threads)
    walker.step(first)
    return walker.pid, walker.tid


def _fire_dtrace_probe(program: Program, probe, t: int, pid: int, tid: int) -> bool:
    """Fire BEGIN or END in dtrace's own process; True if the program called exit()."""
    if probe is None:
        return False
    f = Firing()
    f.probe, f.t, f.pid, f.tid, f.execname = probe, t, pid, tid, "dtrace"
    try:
        program.fire(f)
    except Stopped:
        return True
    return False


def _drop_messages(state: TraceState, unrecorded: int, recorded: int) -> list[str]:
    messages = []
    if state.aggregation_drops:
        n = state.aggregation_drops
        messages.append(f"dtrace: {n} aggregation drop{'' if n == 1 else 's'} on CPU 0 (too many distinct keys)")
    if state.aggregation_memory_drops:
        n, limit = state.aggregation_memory_drops, d_interp.MAX_AGGREGATION_BYTES >> 20
        messages.append(
            f"dtrace: {n} aggregation drop{'' if n == 1 else 's'} on CPU 0 (the aggregations' memory limit of "
            f"{limit} MiB)"
        )
    if state.dynamic_drops:
        n = state.dynamic_drops
        messages.append(f"dtrace: {n} dynamic variable drop{'' if n == 1 else 's'}")
    if state.speculations is not None:
        messages.extend(state.speculations.drop_messages())
    if state.output_truncated:
        limit = d_interp.MAX_OUTPUT_BYTES
        messages.append(f"dtrace: the output reached the limit of {limit:,} bytes: tracing stopped")
    if state.budget_spent:
        messages.append(
            f"dtrace: the program used its evaluation budget of {state.ops_budget:,} operations: tracing stopped "
            "there (its output and aggregations so far are kept)"
        )
    if unrecorded:
        messages.append(
            f"dtrace: the run's last {unrecorded:,} events were past its recording budget of "
            f"{recorded:,}: no probe fired for them"
        )
    return messages


# --- the command line ---------------------------------------------------------------------------------------


class _Program(argparse.Action):
    """-n and -s, kept in the order given: dtrace compiles them in that order into one set of enablings."""

    def __call__(self, parser, namespace, value, option_string=None) -> None:
        namespace.programs = [*(namespace.programs or []), (option_string, value)]


def add_parser(subparsers: argparse._SubParsersAction, scenario_spec: Callable[[str], RunSpec] | None = None) -> None:
    """`trapscope dtrace [-q] [-l] [-x OPT[=VAL]] [--profile P] (-n 'PROGRAM' | -s FILE)... (-c 'COMMAND' |
    --scenario NAME) [-p PID] [ARG...]`; `scenario_spec` gives a scenario's run (sim/cli.py: the scenarios layer)."""
    parser = subparsers.add_parser("dtrace", help="trace a command line with a D program, as dtrace -c does")
    parser.add_argument("-q", dest="quiet", action="store_true", help="quiet: only what the program prints")
    parser.add_argument("-l", dest="list", action="store_true", help="list the probes the -n descriptions match")
    parser.add_argument(
        "-x", dest="options", action="append", default=[], metavar="OPT[=VAL]", help="set an option (-x nspec=2)"
    )
    parser.add_argument(
        "--profile", choices=sorted(PROFILES), default=DEFAULT_PROFILE, help="machine profile (lecture)"
    )
    parser.add_argument("-n", action=_Program, dest="programs", metavar="'PROGRAM'", help="a D program (repeatable)")
    parser.add_argument("-s", action=_Program, dest="programs", metavar="FILE", help="a D script file (repeatable)")
    parser.add_argument("-c", dest="command", metavar="'COMMAND LINE'", help="what to run")
    parser.add_argument("--scenario", metavar="NAME", help="run a lecture scenario's command (instead of -c)")
    parser.add_argument(
        "-p", dest="grab", type=int, metavar="PID", help="grab a process of the run: $target, and tracing ends with it"
    )
    parser.add_argument("macro_args", nargs="*", metavar="ARG", help="the program's $1, $2, ...")
    parser.set_defaults(handler=main, programs=[], scenario_spec=scenario_spec)


def main(args: argparse.Namespace) -> int:
    """Run `trapscope dtrace`; a D error is printed as dtrace prints it and exits 1."""
    try:
        if args.list:
            sys.stdout.write(list_probes([text for option, text in args.programs if option == "-n"]))
            return 0
        if not args.programs:
            raise DtraceError("dtrace: no probes specified: give a program with -n or -s")
        spec = _run_of(args)
        target = args.grab if args.grab is not None else Kernel.FIRST_PID
        compiled = compile_command(args.programs, args.options, args.macro_args, target)
        spec = replace(spec, config=required_config(compiled, spec.config))
        grab = Grab(args.grab) if args.grab is not None else None
        result = trace_live(compiled, spec, args.quiet, grab=grab)
    except DtraceError as error:
        print(error, file=sys.stderr)
        if error.context:
            print(error.context, file=sys.stderr)
        return EXIT_ERROR
    sys.stderr.write(result.stderr)
    sys.stdout.write(result.program_output)
    sys.stdout.write(result.output)
    return result.exit_status & 0xFF


def _run_of(args: argparse.Namespace) -> RunSpec:
    """The run to trace: -c's command line on --profile's machine, or a scenario's command on its own."""
    if args.command is not None and args.scenario is not None:
        raise DtraceError("dtrace: give the run to trace with -c or with --scenario, not both")
    if args.scenario is not None:
        if args.scenario_spec is None:
            raise DtraceError("dtrace: --scenario needs the scenarios, which this command line was made without")
        try:
            return args.scenario_spec(args.scenario)
        except LookupError as error:
            raise DtraceError(f"dtrace: {error}") from None
    if args.command is None:
        if args.grab is not None:
            raise DtraceError(
                f"dtrace: failed to grab pid {args.grab}: trapscope has no process running outside a run; give the "
                "run with -c 'COMMAND' or --scenario NAME, and -p one of its pids (e.g. -c 'ipc-static 2proc' -p 1001)"
            )
        raise DtraceError("dtrace: trapscope traces a command it runs: give it with -c")
    return RunSpec(command=args.command, profile=args.profile, config=KernelConfig())


def compile_command(
    programs: list[tuple[str, str]], settings: list[str], macro_args: list[str], target: int = Kernel.FIRST_PID
) -> CompiledScript:
    """The -n/-s programs of a command line, each compiled on its own (so that errors name it, and so that each
    reports its matched probes), then together: one program, as dtrace enables them all at once."""
    sources: list[tuple[str, str | None]] = []
    for option, value in programs:
        if option == "-n":
            sources.append((value, None))
            continue
        try:
            sources.append((Path(value).read_text(), value))
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise DtraceError(f"dtrace: failed to open {value}: {reason}") from None
    options = _command_options(settings)
    parts = [compile_script(text, name, options=options, macro_args=macro_args, target=target)
             for text, name in sources]  # fmt: skip
    if len(parts) == 1:
        return parts[0]
    together = "\n".join(text for text, _ in sources)
    combined = compile_script(together, sources[0][1] or "", options=options, macro_args=macro_args, target=target)
    combined.matched_messages = [part.matched_message() for part in parts]
    return combined


def _command_options(settings: list[str]) -> dict[str, int | str]:
    try:
        return command_options(settings)
    except CompileError as error:
        raise DtraceError(f"dtrace: {error.message}") from None
