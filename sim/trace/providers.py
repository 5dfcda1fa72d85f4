"""DTrace providers over a recorded run: which probes exist, which a description names, and when they fire.

A probe firing is derived from the run's events, never from live simulator objects: ProbeWalk is fed them one at
a time, as a live run makes them (so a program sees every event of a run of any length) or from a stored log:

- syscall:freebsd:NAME:entry/return fire where syscallenter() calls systrace_probe_func (the run is recorded
  with each enabled probe's sy_entry / sy_return set, KernelConfig.dtrace_syscall_entry / _return, so each
  firing costs its probe effect in simulated time). In a run recorded without that hook they fire at the
  dispatch ("syscall" event) and at the result ("sysret" event) instead. entry: arg0.. = the call's arguments;
  return: arg0 = arg1 = the return value, or -1 with errno set, as FreeBSD's systrace passes them.
- fbt:kernel:FUNC:entry/return fire on the frame enter/exit events of every @kfunc kernel function
  (return: arg1 = the return value). Assembly entry points (Xfast_syscall, doreti, ...) have no fbt probes, as
  on FreeBSD, and appear in stack() as bare addresses, as in the lecture's output. The run is recorded with the
  enabled ones armed (KernelConfig.dtrace_fbt_entry/return): each firing's #BP trap and dtrace_probe cost time
  inside the frame, after the entry event and before the exit event (sim/kern/dtrace_probe.py).
- profile:::profile-N and tick-N fire on simulated time, every 1e9/N ns (or N ns/us/ms/s/...), with stack() =
  the kernel frames open at that instant, leaf first; arg0 = kernel PC (0 in user mode), arg1 = user PC. The
  run is recorded with a cyclic per enabled probe (KernelConfig.dtrace_profile_ns) whose every firing costs a
  timer interrupt and dtrace_probe; it fires at the same period boundaries as these samples, so they agree in
  number.
- dtrace:::BEGIN before the first event, dtrace:::END after the last (or after exit()).
- vminfo:kernel:vm_fault:* from "fault" events (zfod, cow_fault, maj_fault, prot_fault, as_fault, kernel_asflt).
- sched, proc and io (sched:::on-cpu, proc:::create, io:::start, ...) from the scheduler's, processes', signals' and
  the disk's events and a few kernel frames: sim/trace/sdt_providers.py.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

from sim.core.log import Event
from sim.core.walker import ThreadTable, Walker, thread_change
from sim.kern.ksyms import kernel_symbol
from sim.trace.sdt_providers import SDT_PROVIDERS, SdtFirings
from sim.vm.vm_meter import vminfo_probes

MODULE_KERNEL = "kernel"
MODULE_SYSCALL = "freebsd"
SYSTRACE = "systrace_probe_func"
STACK_FRAMES = 20  # dtrace's default stackframes option
NEVER = float("inf")  # when no profile probe is enabled, no sample is ever due
RARE_KINDS = frozenset(("syscall", "sysret", "proc", "start", "trap", "fault"))
SDT_KINDS = frozenset(("signal", "mem"))  # also rare, and read only when an SDT provider is enabled
PROFILE_MIN_PERIOD_NS = 200_000  # illumos/FreeBSD profile_interval_min: nothing faster than 5000 Hz

# The profile provider's ready-made probes (dtrace -l -P profile lists them before any is asked for).
DEFAULT_PROFILE_PROBES = ("profile-97", "profile-199", "profile-499", "profile-997", "profile-1999",
                          "profile-4001", "profile-4999", "tick-1", "tick-10", "tick-100", "tick-500",
                          "tick-1000", "tick-5000")  # fmt: skip

# FreeBSD kernel functions on the lecture's trap and VM paths (shared/reference/freebsd-kernel-paths.md, 2-4 and
# 7). A real kernel has an fbt probe for each whether or not this workload reaches it, so a description naming
# one matches even while the simulator does not model the function (it then never fires).
FREEBSD_KERNEL_FUNCTIONS = ("trap", "trap_pfault", "trap_fatal", "vm_fault_trap", "vm_fault", "vm_map_lookup",
                            "vm_map_lookup_done", "vm_page_alloc", "vm_pager_get_pages", "pmap_enter",
                            "pmap_zero_page", "pmap_copy_page", "pagezero", "PHYS_TO_VM_PAGE", "copyin",
                            "copyout", "fueword", "uiomove", "zero_read", "null_write")  # fmt: skip

# The proc probes, in the order their IDs were given before sched, io and proc:::signal-discard came (after the
# profile provider's, so that no earlier probe's ID changed)
PROC_PROBES = ("create", "exec", "exec-success", "exec-failure", "exit", "signal-send")
# vminfo provider: Solaris's, which FreeBSD does not have (its dtrace matches no vminfo probes); kept for teaching
# and labelled so on the trace page, beside FreeBSD's route (fbt::vm_fault, sysctl vm.stats.vm.v_zfod).
# What each kind of fault fires is vminfo_probes(kind, kernel_mode).
VMINFO_PROBES = ("as_fault", "zfod", "cow_fault", "maj_fault", "prot_fault", "kernel_asflt")


@dataclass(frozen=True)
class Probe:
    id: int
    provider: str
    module: str
    function: str
    name: str
    period_ns: int = 0  # profile and tick probes only

    @property
    def description(self) -> str:
        return f"{self.provider}:{self.module}:{self.function}:{self.name}"


# --- the catalogue ------------------------------------------------------------------------------------------


@cache
def modelled_kernel_functions() -> frozenset[str]:
    """Every @kfunc in the kernel and VM packages: the names fbt offers probes for."""
    return frozenset(kernel_function_objects())


@cache
def kernel_function_objects() -> dict[str, Callable]:
    """Every @kfunc in the kernel and VM packages, by name (fbt's args[] are typed by their parameters)."""
    import sim.kern
    import sim.vm
    from sim.core.kfunc import is_kfunc

    functions: dict[str, Callable] = {}
    for package in (sim.kern, sim.vm):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            try:
                module = importlib.import_module(info.name)
            except Exception:  # noqa: BLE001 - a module another change left broken has no probes to offer
                continue
            for value in _functions_of(module):
                if is_kfunc(value):
                    functions.setdefault(value.__name__, value)
    return functions


@cache
def symbolized_functions() -> frozenset[str]:
    """Functions dtrace can name in a stack (C functions with a symbol size); the rest print as addresses."""
    return modelled_kernel_functions() | frozenset(FREEBSD_KERNEL_FUNCTIONS)


def _functions_of(module) -> Iterable[object]:
    for value in vars(module).values():
        if isinstance(value, type) and value.__module__ == module.__name__:
            yield from vars(value).values()
        else:
            yield value


@cache
def _static_probes() -> tuple[Probe, ...]:
    from sim.kern.sysent import SYSCALLS

    probes = [
        Probe(1, "dtrace", "", "", "BEGIN"),
        Probe(2, "dtrace", "", "", "END"),
        Probe(3, "dtrace", "", "", "ERROR"),
    ]

    def add(provider: str, module: str, function: str, name: str, period_ns: int = 0) -> None:
        probes.append(Probe(len(probes) + 1, provider, module, function, name, period_ns))

    # DTrace's own code (the systrace hook) is not instrumented: fbt skips the dtrace modules' functions.
    functions = (modelled_kernel_functions() | set(FREEBSD_KERNEL_FUNCTIONS)) - {SYSTRACE}
    for function in sorted(functions, key=lambda f: (kernel_symbol(f), f)):  # symbol-table order, as fbt does
        add("fbt", MODULE_KERNEL, function, "entry")
        add("fbt", MODULE_KERNEL, function, "return")
    for code in sorted(SYSCALLS):
        add("syscall", MODULE_SYSCALL, SYSCALLS[code].name, "entry")
        add("syscall", MODULE_SYSCALL, SYSCALLS[code].name, "return")
    for name in PROC_PROBES:
        add("proc", MODULE_KERNEL, "", name)
    for name in VMINFO_PROBES:
        add("vminfo", MODULE_KERNEL, "vm_fault", name)
    for name in DEFAULT_PROFILE_PROBES:
        add("profile", "", "", name, profile_period(name))
    for provider, names in SDT_PROVIDERS.items():
        for name in names:
            if provider != "proc" or name not in PROC_PROBES:
                add(provider, MODULE_KERNEL, "", name)
    return tuple(probes)


_PROFILE_NAME = re.compile(r"^(profile|tick)-([0-9]{1,18})(nsec|ns|usec|us|msec|ms|sec|s|min|m|hour|h|day|d|hz)?$")
_UNIT_NS = {"ns": 1, "nsec": 1, "us": 1_000, "usec": 1_000, "ms": 1_000_000, "msec": 1_000_000,
            "s": 1_000_000_000, "sec": 1_000_000_000, "m": 60_000_000_000, "min": 60_000_000_000,
            "h": 3_600_000_000_000, "hour": 3_600_000_000_000, "d": 86_400_000_000_000,
            "day": 86_400_000_000_000}  # fmt: skip


def profile_period(name: str) -> int:
    """The period in ns of a profile-N or tick-N probe name, or 0 if the name is not one (or is too fast)."""
    match = _PROFILE_NAME.match(name)
    if not match:
        return 0
    value, unit = int(match.group(2)), match.group(3) or "hz"
    if value == 0:
        return 0
    period = 1_000_000_000 // value if unit == "hz" else value * _UNIT_NS[unit]
    return period if period >= PROFILE_MIN_PERIOD_NS else 0


class ProbeCatalog:
    """The probes a D program may name. profile-N/tick-N probes are created when first described, as the
    profile provider creates them on demand."""

    def __init__(self) -> None:
        self.probes: list[Probe] = list(_static_probes())

    def match(self, description: str) -> list[Probe]:
        fields = split_description(description)
        patterns = [_glob(field) for field in fields]
        found = [
            p for p in self.probes if all(pat is None or pat(v) for pat, v in zip(patterns, _fields(p), strict=True))
        ]
        provider, module, function, name = fields
        if not found and provider in ("", "profile") and module == "" and function == "" and profile_period(name):
            probe = Probe(len(self.probes) + 1, "profile", "", "", name, profile_period(name))
            self.probes.append(probe)
            found = [probe]
        return found


def split_description(description: str) -> tuple[str, str, str, str]:
    """provider:module:function:name; omitted fields are read from the right ("foo:bar" = function foo, name bar)."""
    parts = description.split(":")
    if len(parts) > 4:
        raise ValueError(f"invalid probe description: {description}: too many ':' separated fields")
    return tuple([""] * (4 - len(parts)) + parts)  # type: ignore[return-value]


def _fields(probe: Probe) -> tuple[str, str, str, str]:
    return probe.provider, probe.module, probe.function, probe.name


@lru_cache(maxsize=1024)  # bounded: every program may bring patterns of its own
def _glob(pattern: str) -> Callable[[str], bool] | None:
    """A matcher for one field: '*', '?', '[...]' ('!' negates) and '\\' escapes; an empty field matches all."""
    if pattern == "" or pattern == "*":
        return None
    if not any(c in pattern for c in "*?[\\"):
        return pattern.__eq__
    regex, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            regex.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            regex.append(".*")
        elif c == "?":
            regex.append(".")
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                regex.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                negate = body.startswith("!")
                body = body[1:] if negate else body
                regex.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            regex.append(re.escape(c))
        i += 1
    return re.compile("".join(regex) + r"\Z").match  # type: ignore[return-value]


# --- stacks -------------------------------------------------------------------------------------------------

_STACK_PCS: dict[str, int] = {}  # frame text -> PC, for sorting stack keys as dtrace compares them


class StackValue(tuple):
    """What stack() gives: frame texts leaf first (``kernel`func+0xoff``), hashable as an aggregation key."""

    __slots__ = ()

    def pcs(self) -> list[int]:
        return [_STACK_PCS[frame] for frame in self]


def _offset(key: str, span: int = 0x7F0) -> int:
    return 0x10 + zlib.crc32(key.encode()) % span


@cache
def _frame_text(function: str, offset: int, modelled: bool) -> str:
    base = kernel_symbol(function)
    pc = base + offset
    if modelled:
        text = f"{MODULE_KERNEL}`{function}+0x{offset:x}" if offset else f"{MODULE_KERNEL}`{function}"
    else:
        # An assembly entry point has no symbol size, so dtrace can only name the module (lecture slide 20).
        text = f"{MODULE_KERNEL}`0x{pc:x}"
    _STACK_PCS[text] = pc
    return text


def callsite_offset(caller: str, callee: str) -> int:
    """Where `caller` resumes after calling `callee`: the return address dtrace sees in the caller's frame."""
    return _offset(f"{caller}>{callee}")


def position_offset(function: str, event: Event | None) -> int:
    """The PC inside the leaf function, derived from the last step it took (deterministic, step by step)."""
    if event is None:
        return 1
    kind, name = event.kind, event.name
    if kind == "enter" and name == function:
        return 1  # just past the prologue's push %rbp
    if kind == "exit":
        return callsite_offset(function, name)
    return _offset(f"{function}@{kind}:{name}")


def build_stack(frames: list[str], leaf_pc: int, depth: int = STACK_FRAMES) -> StackValue:
    """frames outermost first; leaf_pc is the offset in the innermost one. Returns dtrace's leaf-first stack."""
    modelled = symbolized_functions()
    texts = []
    callee = None
    for function in reversed(frames):
        offset = leaf_pc if callee is None else callsite_offset(function, callee)
        texts.append(_frame_text(function, offset, function in modelled))
        callee = function
        if len(texts) == depth:
            break
    return StackValue(texts)


# --- firings ------------------------------------------------------------------------------------------------


class Firing:
    """One probe firing as a clause sees it. The walker reuses one object; arguments are computed on demand."""

    __slots__ = ("probe", "t", "tid", "pid", "execname", "errno", "index", "args", "argsource", "stack", "vtime")

    def __init__(self) -> None:
        self.probe: Probe | None = None
        self.t = 0
        self.tid = 0
        self.pid = 0
        self.execname = ""
        self.errno = 0
        self.index = -1
        self.args: tuple | None = None
        self.argsource: Callable[[], tuple] | None = None
        self.stack: Callable[[int], StackValue] = _no_stack
        self.vtime: Callable[[], int] = _zero

    def arg(self, n: int) -> int:
        args = self.args
        if args is None:
            args = self.args = self.argsource() if self.argsource else ()
        return args[n] if n < len(args) else 0


def _no_stack(depth: int) -> StackValue:
    return StackValue(())


def _zero() -> int:
    return 0


@dataclass
class Enabling:
    """The probes a program enabled, indexed the way the walk looks them up."""

    begin: Probe | None = None
    end: Probe | None = None
    fbt_entry: dict[str, Probe] | None = None
    fbt_return: dict[str, Probe] | None = None
    syscall_entry: dict[str, Probe] | None = None
    syscall_return: dict[str, Probe] | None = None
    proc: dict[str, Probe] | None = None
    sched: dict[str, Probe] | None = None
    io: dict[str, Probe] | None = None
    vminfo: dict[str, Probe] | None = None
    profile: list[Probe] | None = None

    @classmethod
    def of(cls, probes: Iterable[Probe]) -> Enabling:
        e = cls(
            fbt_entry={},
            fbt_return={},
            syscall_entry={},
            syscall_return={},
            proc={},
            vminfo={},
            profile=[],
            sched={},
            io={},
        )
        for p in probes:
            if p.provider == "dtrace":
                if p.name == "BEGIN":
                    e.begin = p
                elif p.name == "END":
                    e.end = p
            elif p.provider == "fbt":
                (e.fbt_entry if p.name == "entry" else e.fbt_return)[p.function] = p
            elif p.provider == "syscall":
                (e.syscall_entry if p.name == "entry" else e.syscall_return)[p.function] = p
            elif p.provider in SDT_PROVIDERS:
                getattr(e, p.provider)[p.name] = p
            elif p.provider == "vminfo":
                e.vminfo[p.name] = p
            elif p.provider == "profile" and p not in e.profile:
                e.profile.append(p)
        return e

    @property
    def syscall(self) -> bool:
        return bool(self.syscall_entry or self.syscall_return)


class Stopped(Exception):
    """The program called exit(): no probe fires after the current firing."""


_NOT_AHEAD = object()  # _apply's `ahead` when no look-ahead was needed
HOLD_WINDOW = 64  # the most events a firing waits for (systrace's entry waits 2, its return about 5)
CROSSING_WINDOW = 7  # a ring change's entry point is the frame entered within this many steps


class ProbeWalk:
    """Fires the enabled probes as the run's events are fed to it, one at a time (a live run's stream, or a stored
    run's log): the walker (sim/core/walker.py) gives each step's thread, process, stack and system call.

    `fire` may raise Stopped (the program called exit()): no probe fires after that, and `finish` returns that
    moment's firing. It looks back at nothing stored and ahead only within a small window: a firing that needs a
    later event (systrace's entry needs the call's arguments, dispatched two steps later; its return the result,
    set a few steps later; a profile sample on a ring change the entry point entered next) holds the events that
    follow it until that event comes (HOLD_WINDOW at most), then goes on in order. `fbt_firing` is (when in a firing
    dtrace_probe reads the clock, what the whole firing costs) for a run recorded with its fbt probes armed
    (sim/kern/dtrace_probe.py), or (0, 0).
    """

    def __init__(
        self,
        threads: ThreadTable,
        enabling: Enabling,
        fire: Callable[[Firing], None],
        systrace_frames: bool,
        fbt_firing: tuple[int, int] = (0, 0),
        begin: Callable[[Event], bool] | None = None,
    ) -> None:
        self.walker = Walker(threads)
        self.e = enabling
        self.fire = fire
        self.systrace_frames = systrace_frames
        self.systrace = systrace_frames and enabling.syscall  # enabled syscall probes fire at systrace's frames
        self.fbt_entry, self.fbt_return = enabling.fbt_entry or None, enabling.fbt_return or None
        self.f = Firing()
        self.f.stack = self._stack
        self.f.vtime = self._vtime
        self.errnos: dict[int, int] = {}
        self.oncpu: dict[int, int] = {}  # tid -> on-CPU ns before it last went on the CPU
        self.oncpu_since = 0
        self.dtrace_ns: dict[int, int] = {}  # tid -> ns spent in DTrace's own probe handling
        self.fbt_clock, self.fbt_cost = fbt_firing  # an armed fbt firing: its clock read, its cost (0: not armed)
        self.systrace_since = 0
        self.count = 0  # events applied
        self.last: Event | None = None  # the event applied last (a sample sees the step before the running one)
        self.last_exit: tuple[int, str] = (-CROSSING_WINDOW - 1, "")  # (event number, function) of the last exit
        self.callee: str | None = None  # the function whose entry/return is firing: the stack starts at its caller
        self.crossing: tuple[str, int] | None = None  # (entry point, offset) while a sample lands on a ring change
        self.sample_at = {p: p.period_ns for p in sorted(enabling.profile, key=lambda p: p.period_ns)}
        self.next_sample = min(self.sample_at.values(), default=NEVER)
        self.held: list[Event] | None = None  # events waiting for a look-ahead: the first one needs it
        self.awaited: tuple[str, int, bool] = ("", 0, False)  # (kind, window, stops at a thread switch)
        self.begin = begin  # fires BEGIN with the first event; True if the program called exit() there
        self.stopped = False  # the program called exit(): nothing fires any more
        self.closed = True  # feed must take its slow path (_opens): before the first event, while held, stopped
        sdt = {"sched": enabling.sched, "proc": enabling.proc, "io": enabling.io}
        self.sdt = SdtFirings(self, sdt) if any(sdt.values()) else None
        self.sdt_enter = self.sdt.on_enter or None if self.sdt is not None else None  # enter events that fire SDT
        self.rare_kinds = RARE_KINDS | SDT_KINDS if self.sdt is not None else RARE_KINDS

    # One call per event, the hot path: frame events (about half of them) are handled here; the rare kinds go to
    # _other(); the rest (user steps, instructions, hooks) cost the walker's step and a comparison or two.
    def feed(self, event: Event, ahead: object = _NOT_AHEAD) -> None:
        """Apply one event (`ahead`: the event it waited for, when it was held for a look-ahead)."""
        if self.closed and not self._opens(event):
            return
        t, kind, name = event.t_ns, event.kind, event.name
        try:
            w = self.walker
            if t >= self.next_sample:
                if ahead is _NOT_AHEAD and not w.stack and _enters_kernel(event):
                    self._hold(event, "enter", CROSSING_WINDOW, False)  # a sample lands on it: where does it enter?
                    return
                self.next_sample = self._samples(t, event, ahead)
            if kind == "enter" and name == SYSTRACE and self.systrace and ahead is _NOT_AHEAD:
                self._hold(event, "syscall" if w.syscall is None else "sysret", HOLD_WINDOW, True)
                return
            self.last = event
            self.count += 1
            if kind == "enter":
                if name == SYSTRACE:
                    self.systrace_since = t
                    if self.systrace:
                        self._systrace(t, ahead)  # type: ignore[arg-type]
                if self.fbt_entry is not None:
                    probe = self.fbt_entry.get(name)
                    if probe is not None:
                        self._fbt(probe, t, name, _ENTRY, event.data)
                if self.sdt_enter is not None and name in self.sdt_enter:
                    self.sdt_enter[name](t, event)
                w.step(event)
            elif kind == "exit":
                w.step(event)
                self.last_exit = (self.count, name)
                if name == SYSTRACE:
                    tid = w.tid
                    self.dtrace_ns[tid] = self.dtrace_ns.get(tid, 0) + t - self.systrace_since
                if self.fbt_return is not None:
                    probe = self.fbt_return.get(name)
                    if probe is not None:
                        self._fbt(probe, t, name, event.data)
            elif kind in self.rare_kinds:
                self._other(event, t, kind, name)
            elif event.deltas:  # the walker reads no other kind's name or data: only its deltas (ring, %rip)
                w.step(event)
        except Stopped:
            self.stopped = self.closed = True

    def _opens(self, event: Event) -> bool:
        """feed's slow path, while it is closed: is `event` applied now? The first event fires BEGIN first; an event
        that comes while others wait for a look-ahead joins them; after exit() nothing is."""
        if self.stopped:
            return False
        held = self.held
        if held is not None:
            held.append(event)
            kind, window, stops = self.awaited
            switched = stops and event.kind == "proc" and thread_change(event.deltas)
            if event.kind == kind or len(held) > window or switched:
                self._release()
            return False
        if self.begin is not None:
            begin, self.begin = self.begin, None
            self.stopped = begin(event)
        self.closed = self.stopped
        return not self.stopped

    def finish(self, end_ns: int) -> Firing:
        """The run has ended at end_ns: release what waits for a look-ahead, fire the samples due. Returns the
        firing state at the end (for END)."""
        if self.held is not None and not self.stopped:
            self._release()
        if not self.stopped and self.sample_at and self.next_sample <= end_ns:
            try:
                self._samples(end_ns, None)
            except Stopped:
                self.stopped = self.closed = True
        return self.f

    def _hold(self, event: Event, kind: str, window: int, stops: bool) -> None:
        self.held = [event]
        self.awaited = (kind, window, stops)
        self.closed = True

    def _release(self) -> None:
        """Apply the held events: the first with the awaited event (None if it did not come in time)."""
        held, self.held = self.held, None
        assert held is not None
        self.closed = False
        kind, window, stops = self.awaited
        ahead = None
        for event in held[1 : window + 1]:
            if event.kind == kind:
                ahead = event
                break
            if stops and event.kind == "proc" and thread_change(event.deltas):
                break
        self.feed(held[0], ahead)
        for event in held[1:]:
            self.feed(event)

    def _other(self, event: Event, t: int, kind: str, name: str) -> None:
        """Events that are not frames: dispatch, results, processes and threads, traps and faults."""
        e, w = self.e, self.walker
        if kind == "proc" or kind == "start":
            change = thread_change(event.deltas)
            if change is not None:
                self._on_cpu(w.tid, t)
        syscall = w.syscall  # the call a "sysret" event ends
        sdt = self.sdt
        if sdt is not None:
            sdt.before(t, event)
        w.step(event)
        if sdt is not None:
            sdt.after(t, event)
            if kind == "sysret" and syscall is not None and syscall.name == "execve" and event.data.error > 0:
                sdt.execve_failed(t, event.data.error)  # (EJUSTRETURN, negative, is its success)
        if kind == "syscall":
            if e.syscall and not self.systrace_frames:
                probe = e.syscall_entry.get(name)
                if probe is not None:
                    args = event.data.values
                    self.fire(self._prepare(probe, t, lambda: args))
        elif kind == "sysret":
            if e.syscall and not self.systrace_frames and syscall is not None:
                self._syscall_return(t, event, syscall.name)
        elif kind == "fault" and e.vminfo:
            self._fault(t, event)

    # -- thread bookkeeping --

    def _on_cpu(self, old: int, t: int) -> None:
        """Another thread takes the CPU at t: bill the time since the last switch to the thread leaving."""
        if old:
            self.oncpu[old] = self.oncpu.get(old, 0) + t - self.oncpu_since
        self.oncpu_since = t

    def _vtime(self) -> int:
        tid = self.walker.tid
        return self.oncpu.get(tid, 0) + self.f.t - self.oncpu_since - self.dtrace_ns.get(tid, 0)

    def _stack(self, depth: int) -> StackValue:
        frames = self.walker.stack
        if not frames:
            if self.crossing is not None:
                return build_stack([self.crossing[0]], self.crossing[1], depth)
            return StackValue(())
        if self.callee is not None:
            leaf = callsite_offset(frames[-1], self.callee)
        else:
            leaf = position_offset(frames[-1], self.last)
        return build_stack(frames, leaf, depth)

    def _prepare(self, probe: Probe, t: int, argsource, errno: int | None = None) -> Firing:
        f = self.f
        w = self.walker
        tid = w.tid
        f.probe, f.t, f.tid, f.pid, f.execname, f.index = probe, t, tid, w.pid, w.comm, self.count - 1
        f.errno = self.errnos.get(tid, 0) if errno is None else errno
        f.args, f.argsource = None, argsource
        return f

    # -- providers --

    def _fbt(self, probe: Probe, t: int, function: str, returned: object, entered: object = None) -> None:
        """fbt entry (returned is _ENTRY: no arguments recorded) or return (arg1 = the value the function returned).

        In a run recorded with the probe armed, the kernel charged each firing's cost inside the frame: just after
        the entry event, just before the exit event (sim/kern/dtrace_probe.py). dtrace_probe reads the clock partway
        through a firing (after the #BP is delivered), so timestamp is taken there, and the firing's cost is
        DTrace's time, not the thread's (vtimestamp). An interval from entry to return then holds one firing's cost:
        the end of the entry firing and the start of the return's.
        """
        clock, cost = self.fbt_clock, self.fbt_cost
        tid = self.walker.tid
        if cost:
            t = t + clock if returned is _ENTRY else t - cost + clock
            self.dtrace_ns[tid] = self.dtrace_ns.get(tid, 0) + clock
        self.callee = function
        try:
            arguments = _entry_args(function, entered) if returned is _ENTRY else lambda: (0, _int(returned))
            self.fire(self._prepare(probe, t, arguments))
        finally:
            self.callee = None
            if cost:
                self.dtrace_ns[tid] = self.dtrace_ns.get(tid, 0) + cost - clock

    def _systrace(self, t: int, ahead: Event | None) -> None:
        """systrace_probe_func is entered twice per call: before the handler (entry: `ahead` is the call's dispatch)
        and after it (return: `ahead` is its result)."""
        syscall = self.walker.syscall
        if syscall is None:
            if ahead is None:
                return
            probe = self.e.syscall_entry.get(ahead.name)
            if probe is not None:
                args = ahead.data.values
                self.callee = SYSTRACE
                try:
                    self.fire(self._prepare(probe, t, lambda: args))
                finally:
                    self.callee = None
            return
        self._syscall_return(t, ahead, syscall.name)

    def _syscall_return(self, t: int, sysret: Event | None, name: str) -> None:
        tid = self.walker.tid
        value, error = _sysret_values(sysret)
        self.errnos[tid] = error
        probe = self.e.syscall_return.get(name)
        if probe is not None:
            if self.systrace_frames:
                self.callee = SYSTRACE
            try:
                self.fire(self._prepare(probe, t, lambda: (value, value), error))
            finally:
                self.callee = None

    def _fault(self, t: int, event: Event) -> None:
        vminfo = self.e.vminfo
        trap = self.walker.trap
        for name in vminfo_probes(event.name, trap is not None and not trap.user):
            probe = vminfo.get(name)
            if probe is not None:
                self.fire(self._prepare(probe, t, lambda: (1,)))

    def _samples(self, t: int, running: Event | None, ahead: object = None) -> int:
        """Fire every profile/tick probe due by time t, in time order; return when the next one is due.

        A sample due at t, when event `running` completes, sees the state before that event: its step was running.
        """
        sample_at = self.sample_at
        in_kernel_frames = bool(self.walker.stack)
        while True:
            probe, when = min(sample_at.items(), key=lambda item: (item[1], item[0].id))
            if when > t:
                return when
            sample_at[probe] = when + probe.period_ns
            self.crossing = None if in_kernel_frames or running is None else self._ring_crossing(running, ahead)
            in_kernel = in_kernel_frames or self.crossing is not None
            try:
                self.fire(self._prepare(probe, when, self._sample_args(in_kernel)))
            finally:
                self.crossing = None

    def _ring_crossing(self, running: Event, ahead: object) -> tuple[str, int] | None:
        """The kernel entry point a step that changes privilege level runs in (SYSCALL, SYSRETQ, a trap's entry).

        The machine bills such a step to the kernel (as time(1) does), so a sample landing in it is a kernel
        sample, at the assembly entry point the next frame enters (`ahead`), or at the end of the one just left.
        """
        for delta in running.deltas:
            if delta[0] == "reg" and delta[1] == "cpl":
                if delta[3] == 0:
                    if isinstance(ahead, Event):
                        return ahead.name, 0
                else:
                    number, function = self.last_exit
                    if number >= self.count + 1 - CROSSING_WINDOW:
                        return function, position_offset(function, running)
        return None

    def _sample_args(self, in_kernel: bool) -> Callable[[], tuple]:
        """profile's arg0 = the kernel PC (0 in user mode), arg1 = the user PC (0 in kernel mode)."""
        if in_kernel:
            pc = self._kernel_pc()
            return lambda: (pc, 0)
        pc = self.walker.rip  # the last %rip written: the user PC
        return lambda: (0, pc)

    def _kernel_pc(self) -> int:
        stack = self._stack(1)
        return stack.pcs()[0] if stack else 0


def _enters_kernel(event: Event) -> bool:
    return any(delta[0] == "reg" and delta[1] == "cpl" and delta[3] == 0 for delta in event.deltas)


class EntryArgs(tuple):
    """fbt entry arguments as D's arg0..arg9 read them (an object's address); `facts` are the recorded arguments
    (sim/kern/dtrace_args.py), which D's typed args[] read."""

    facts: tuple = ()


def _entry_args(function: str, entered: object) -> Callable[[], tuple]:
    if entered is None:
        return lambda: _unrecorded(function)
    values = entered.values  # type: ignore[attr-defined]

    def arguments() -> tuple:
        args = EntryArgs(v if v.__class__ is int else getattr(v, "address", 0) for v in values)
        args.facts = values
        return args

    return arguments


def _unrecorded(function: str) -> tuple:
    raise ValueError(f"the arguments of {function}() were not recorded in this run")


_ENTRY = object()  # _fbt's `returned` for an entry probe


def _int(value: object) -> int:
    """fbt return's arg1: the function's result when it is an int, else 0 (a bool, None, several results or a
    kernel object: the exit event's facts of them, sim/core/kfunc.py's result_facts)."""
    return value if value.__class__ is int else 0


def _sysret_values(sysret: Event | None) -> tuple[int, int]:
    """(arg0, errno) of syscall:::return from the "sysret" event: the value, or -1 and the error number (td_errno
    holds ERESTART and EJUSTRETURN, the kernel-internal codes, as they are)."""
    if sysret is None:
        return 0, 0
    result = sysret.data
    return (-1, result.error) if result.error else (result.retval, 0)
