"""DTrace providers over a recorded run: which probes exist, which a description names, and when they fire.

A probe firing is derived from the run's event log, never from live simulator objects:

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
- proc:kernel::create/exit (FreeBSD's names; create is fork) from "proc" events, and vminfo:kernel:vm_fault:*
  from "fault" events (zfod, cow_fault, maj_fault, prot_fault, as_fault, kernel_asflt).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache

from sim.core.log import Event
from sim.kern.dtrace_probe import PROC_PROBE_OF_EVENT
from sim.kern.errno import EJUSTRETURN, ERESTART
from sim.kern.ksyms import kernel_symbol
from sim.vm.vm_meter import vminfo_probes

MODULE_KERNEL = "kernel"
MODULE_SYSCALL = "freebsd"
SYSTRACE = "systrace_probe_func"
STACK_FRAMES = 20  # dtrace's default stackframes option
NEVER = float("inf")  # when no profile probe is enabled, no sample is ever due
RARE_KINDS = frozenset(("syscall", "sysret", "proc", "start", "trap", "fault"))
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

# proc provider: FreeBSD's SDT probe name for each "proc" event the kernel model records (the kernel side charges
# the same firings: sim/kern/dtrace_probe.py).
PROC_EVENTS = PROC_PROBE_OF_EVENT
PROC_PROBES = ("create", "exec", "exec-success", "exec-failure", "exit", "signal-send")
# vminfo provider (Solaris names): what each kind of fault fires is vminfo_probes(kind, kernel_mode).
VMINFO_PROBES = ("as_fault", "zfod", "cow_fault", "maj_fault", "prot_fault", "kernel_asflt")

CLD_EXITED, CLD_KILLED = 1, 2  # sys/wait.h: proc:::exit's arg0


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
    import sim.kern
    import sim.vm
    from sim.core.kfunc import is_kfunc

    names: set[str] = set()
    for package in (sim.kern, sim.vm):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            try:
                module = importlib.import_module(info.name)
            except Exception:  # noqa: BLE001 - a module another change left broken has no probes to offer
                continue
            for value in _functions_of(module):
                if is_kfunc(value):
                    names.add(value.__name__)
    return frozenset(names)


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
    return tuple(probes)


_PROFILE_NAME = re.compile(r"^(profile|tick)-(\d+)(nsec|ns|usec|us|msec|ms|sec|s|min|m|hour|h|day|d|hz)?$")
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

    def by_id(self, probe_id: int) -> Probe | None:
        return self.probes[probe_id - 1] if 0 < probe_id <= len(self.probes) else None


def split_description(description: str) -> tuple[str, str, str, str]:
    """provider:module:function:name; omitted fields are read from the right ("foo:bar" = function foo, name bar)."""
    parts = description.split(":")
    if len(parts) > 4:
        raise ValueError(f"invalid probe description: {description}: too many ':' separated fields")
    return tuple([""] * (4 - len(parts)) + parts)  # type: ignore[return-value]


def _fields(probe: Probe) -> tuple[str, str, str, str]:
    return probe.provider, probe.module, probe.function, probe.name


@cache
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
    kind, name = event[1], event[2]
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
    vminfo: dict[str, Probe] | None = None
    profile: list[Probe] | None = None

    @classmethod
    def of(cls, probes: Iterable[Probe]) -> Enabling:
        e = cls(fbt_entry={}, fbt_return={}, syscall_entry={}, syscall_return={}, proc={}, vminfo={}, profile=[])
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
            elif p.provider == "proc":
                e.proc[p.name] = p
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


def walk(
    events: list[Event],
    threads: dict[int, tuple[int, str]],
    enabling: Enabling,
    fire: Callable[[Firing], None],
    systrace_frames: bool,
    end_ns: int,
    fbt_firing: tuple[int, int] = (0, 0),
) -> Firing:
    """Fire the enabled probes in the order the run's events imply. Returns the firing state at the end (for END).

    `fire` may raise Stopped to end the walk early (exit()); the returned firing then holds that moment.
    `fbt_firing` is (when in a firing dtrace_probe reads the clock, what the whole firing costs) for a run recorded
    with its fbt probes armed (sim/kern/dtrace_probe.py), or (0, 0).
    """
    w = _Walk(events, threads, enabling, fire, systrace_frames, fbt_firing)
    try:
        w.run(end_ns)
    except Stopped:
        pass
    return w.f


class _Walk:
    def __init__(self, events, threads, enabling: Enabling, fire, systrace_frames: bool, fbt_firing=(0, 0)) -> None:
        self.events = events
        self.threads = threads
        self.e = enabling
        self.fire = fire
        self.systrace_frames = systrace_frames
        self.f = Firing()
        self.f.stack = self._stack
        self.f.vtime = self._vtime
        self.tid = 0
        self.pid, self.comm = 0, ""  # the process of the thread on the CPU, and its name (execname)
        self.comms: dict[int, str] = {}  # pid -> p_comm as it is at this point of the run (exec changes it)
        self.kernel_mode_trap = False  # the last trap was taken in kernel mode (vminfo:::kernel_asflt)
        self.stacks: dict[int, list[str]] = {}
        self.frames: list[str] = []
        self.pending: dict[int, tuple[str, int]] = {}  # tid -> (syscall name, index of its "syscall" event)
        self.errnos: dict[int, int] = {}
        self.oncpu: dict[int, int] = {}  # tid -> on-CPU ns before it last went on the CPU
        self.oncpu_since = 0
        self.dtrace_ns: dict[int, int] = {}  # tid -> ns spent in DTrace's own probe handling
        self.fbt_clock, self.fbt_cost = fbt_firing  # an armed fbt firing: its clock read, its cost (0: not armed)
        self.systrace_since = 0
        self.last = -1  # index of the last event applied
        self.callee: str | None = None  # the function whose entry/return is firing: the stack starts at its caller
        self.crossing: tuple[str, int] | None = None  # (entry point, offset) while a sample lands on a ring change

    # The hot loop: one pass over the events. Frame events (about half of them) are handled inline; the rare
    # kinds go to _other(); the rest (user steps, instructions, hooks) cost a comparison or two.
    def run(self, end_ns: int) -> None:
        e = self.e
        fbt_entry, fbt_return = e.fbt_entry or None, e.fbt_return or None
        systrace = self.systrace_frames and e.syscall
        samples = sorted(((p.period_ns, p) for p in e.profile), key=lambda x: x[0])
        next_sample = min((period for period, _ in samples), default=NEVER)
        sample_at = {p: p.period_ns for _, p in samples}
        frames = self.frames
        other = self._other
        for i, (t, kind, name, detail, deltas, _depth) in enumerate(self.events):
            if t >= next_sample:
                self.last = i - 1
                next_sample = self._samples(t, sample_at, i)
            if kind == "enter":
                if name == SYSTRACE:
                    self.systrace_since = t
                    if systrace:
                        self._systrace(i, t)
                if fbt_entry is not None:
                    probe = fbt_entry.get(name)
                    if probe is not None:
                        self._fbt(probe, i, t, name, _ENTRY)
                frames.append(name)
            elif kind == "exit":
                if frames and frames[-1] == name:
                    frames.pop()
                elif name in frames:
                    del frames[len(frames) - 1 - frames[::-1].index(name) :]
                if name == SYSTRACE:
                    tid = self.tid
                    self.dtrace_ns[tid] = self.dtrace_ns.get(tid, 0) + t - self.systrace_since
                if fbt_return is not None:
                    probe = fbt_return.get(name)
                    if probe is not None:
                        self._fbt(probe, i, t, name, detail)
            elif kind in RARE_KINDS:
                other(i, t, kind, name, detail, deltas)
                frames = self.frames
        self.last = len(self.events) - 1
        if samples and next_sample <= end_ns:
            self._samples(end_ns, sample_at, None)

    def _other(self, i: int, t: int, kind: str, name: str, detail: str, deltas: tuple) -> None:
        """Events that are not frames: dispatch, results, processes and threads, traps and faults."""
        e = self.e
        if kind == "syscall":
            self.pending[self.tid] = (name, i)
            if e.syscall and not self.systrace_frames:
                probe = e.syscall_entry.get(name)
                if probe is not None:
                    self._syscall_entry(probe, i, t)
        elif kind == "sysret":
            if e.syscall and not self.systrace_frames:
                self._syscall_return(i, t, self.events[i])
            else:
                self.pending.pop(self.tid, None)
        elif kind == "proc" or kind == "start":
            event = self.events[i]
            if kind == "start" or name in ("fork", "exec"):
                self._name_process(event)
            for delta in deltas:
                if delta[0] == "thread":
                    self._switch(delta[2], t)
            if kind == "proc" and e.proc:
                self._proc(i, t, event)
        elif kind == "trap":
            self.kernel_mode_trap = "kernel mode" in (detail or "")
        elif kind == "fault" and e.vminfo:
            self._fault(i, t, self.events[i])

    # -- thread bookkeeping --

    def _switch(self, tid: int, t: int) -> None:
        old = self.tid
        if old:
            self.oncpu[old] = self.oncpu.get(old, 0) + t - self.oncpu_since
        self.oncpu_since = t
        self.tid = tid
        self.pid, self.comm = self.threads.get(tid, (0, ""))
        self.comm = self.comms.get(self.pid, self.comm)
        self.frames = self.stacks.setdefault(tid, [])

    def _name_process(self, event: Event) -> None:
        """Keep p_comm as it was at each point: the first process is named by its command, a forked child
        takes its parent's name, and exec gives the new program's (MAXCOMLEN characters of its file name)."""
        kind, detail = event[1], event[3] or ""
        for delta in event[4]:
            if delta[0] == "comm":  # ("comm", pid, old, new), should the kernel record the change itself
                self.comms[delta[1]] = delta[3]
        if kind == "start":
            started = re.match(r"pid (\d+)", detail)
            if started:
                self.comms[int(started.group(1))] = event[2]
        elif event[2] == "fork":
            forked = re.match(r"pid (\d+) creates pid (\d+)", detail)
            if forked:
                parent, child = int(forked.group(1)), int(forked.group(2))
                self.comms[child] = self.comms.get(parent, self.threads_comm(parent))
        else:
            execed = re.match(r"pid (\d+) now runs (\S+)", detail)
            if execed:
                self.comms[int(execed.group(1))] = execed.group(2).rsplit("/", 1)[-1][:19]
        self.comm = self.comms.get(self.pid, self.comm)

    def threads_comm(self, pid: int) -> str:
        return next((comm for p, comm in self.threads.values() if p == pid), "")

    def _vtime(self) -> int:
        tid = self.tid
        return self.oncpu.get(tid, 0) + self.f.t - self.oncpu_since - self.dtrace_ns.get(tid, 0)

    def _stack(self, depth: int) -> StackValue:
        frames = self.frames
        if not frames:
            if self.crossing is not None:
                return build_stack([self.crossing[0]], self.crossing[1], depth)
            return StackValue(())
        if self.callee is not None:
            leaf = callsite_offset(frames[-1], self.callee)
        else:
            last = self.events[self.last] if self.last >= 0 else None
            leaf = position_offset(frames[-1], last)
        return build_stack(frames, leaf, depth)

    def _prepare(self, probe: Probe, i: int, t: int, argsource, errno: int | None = None) -> Firing:
        f = self.f
        tid = self.tid
        self.last = i
        f.probe, f.t, f.tid, f.pid, f.execname, f.index = probe, t, tid, self.pid, self.comm, i
        f.errno = self.errnos.get(tid, 0) if errno is None else errno
        f.args, f.argsource = None, argsource
        return f

    # -- providers --

    def _fbt(self, probe: Probe, i: int, t: int, function: str, returned: object) -> None:
        """fbt entry (returned is _ENTRY: no arguments recorded) or return (arg1 = the value the function returned).

        In a run recorded with the probe armed, the kernel charged each firing's cost inside the frame: just after
        the entry event, just before the exit event (sim/kern/dtrace_probe.py). dtrace_probe reads the clock partway
        through a firing (after the #BP is delivered), so timestamp is taken there, and the firing's cost is
        DTrace's time, not the thread's (vtimestamp). An interval from entry to return then holds one firing's cost:
        the end of the entry firing and the start of the return's.
        """
        clock, cost = self.fbt_clock, self.fbt_cost
        if cost:
            t = t + clock if returned is _ENTRY else t - cost + clock
            self.dtrace_ns[self.tid] = self.dtrace_ns.get(self.tid, 0) + clock
        self.callee = function
        try:
            self.fire(self._prepare(probe, i, t, _no_args if returned is _ENTRY else lambda: (0, _int(returned))))
        finally:
            self.callee = None
            if cost:
                self.dtrace_ns[self.tid] = self.dtrace_ns.get(self.tid, 0) + cost - clock

    def _systrace(self, i: int, t: int) -> None:
        """systrace_probe_func is entered twice per call: before the handler (entry) and after it (return)."""
        tid = self.tid
        pending = self.pending.get(tid)
        if pending is None:
            j = self._next_event(i, "syscall")
            if j is None:
                return
            probe = self.e.syscall_entry.get(self.events[j][2])
            if probe is not None:
                self.callee = SYSTRACE
                try:
                    self.fire(self._prepare(probe, i, t, lambda: _syscall_args(self.events[j][3])))
                finally:
                    self.callee = None
            return
        del self.pending[tid]
        j = self._next_event(i, "sysret")
        self._syscall_return(i, t, self.events[j] if j is not None else None, pending[0])

    def _syscall_entry(self, probe: Probe, i: int, t: int) -> None:
        detail = self.events[i][3]
        self.fire(self._prepare(probe, i, t, lambda: _syscall_args(detail)))

    def _syscall_return(self, i: int, t: int, sysret: Event | None, name: str | None = None) -> None:
        tid = self.tid
        if name is None:
            pending = self.pending.pop(tid, None)
            if pending is None:
                return
            name = pending[0]
        value, error = _sysret_values(sysret)
        self.errnos[tid] = error
        probe = self.e.syscall_return.get(name)
        if probe is not None:
            if self.systrace_frames:
                self.callee = SYSTRACE
            try:
                self.fire(self._prepare(probe, i, t, lambda: (value, value), error))
            finally:
                self.callee = None

    def _proc(self, i: int, t: int, event: Event) -> None:
        name = PROC_EVENTS.get(event[2])
        probe = self.e.proc.get(name) if name else None
        if probe is None:
            return
        detail = event[3] or ""
        if name == "create":
            child = re.search(r"creates pid (\d+)", detail)
            args = (int(child.group(1)),) if child else ()
        elif name == "exit":
            args = (CLD_KILLED if "signal" in detail else CLD_EXITED,)
        else:
            args = ()
        self.fire(self._prepare(probe, i, t, lambda: args))

    def _fault(self, i: int, t: int, event: Event) -> None:
        vminfo = self.e.vminfo
        for name in vminfo_probes(event[2], self.kernel_mode_trap):
            probe = vminfo.get(name)
            if probe is not None:
                self.fire(self._prepare(probe, i, t, lambda: (1,)))

    def _samples(self, t: int, sample_at: dict[Probe, int], running: int | None) -> int:
        """Fire every profile/tick probe due by time t, in time order; return when the next one is due.

        A sample due at t, when event `running` completes, sees the state before that event: its step was running.
        """
        while True:
            probe, when = min(sample_at.items(), key=lambda item: (item[1], item[0].id))
            if when > t:
                return when
            sample_at[probe] = when + probe.period_ns
            index = self.last
            self.crossing = None if self.frames or running is None else self._ring_crossing(running)
            in_kernel = bool(self.frames) or self.crossing is not None
            try:
                self.fire(self._prepare(probe, index, when, self._sample_args(in_kernel, index)))
            finally:
                self.crossing = None

    def _ring_crossing(self, running: int) -> tuple[str, int] | None:
        """The kernel entry point a step that changes privilege level runs in (SYSCALL, SYSRETQ, a trap's entry).

        The machine bills such a step to the kernel (as time(1) does), so a sample landing in it is a kernel
        sample, at the assembly entry point the next frame enters, or at the end of the one just left.
        """
        events = self.events
        for delta in events[running][4]:
            if delta[0] == "reg" and delta[1] == "cpl":
                if delta[3] == 0:
                    for j in range(running + 1, min(running + 8, len(events))):
                        if events[j][1] == "enter":
                            return events[j][2], 0
                else:
                    for j in range(running - 1, max(running - 8, -1), -1):
                        if events[j][1] == "exit":
                            return events[j][2], position_offset(events[j][2], events[running])
        return None

    def _sample_args(self, in_kernel: bool, index: int) -> Callable[[], tuple]:
        """profile's arg0 = the kernel PC (0 in user mode), arg1 = the user PC (0 in kernel mode)."""
        if in_kernel:
            pc = self._kernel_pc()
            return lambda: (pc, 0)
        return lambda: (0, self._user_pc(index))

    def _kernel_pc(self) -> int:
        stack = self._stack(1)
        return stack.pcs()[0] if stack else 0

    def _user_pc(self, index: int) -> int:
        for j in range(index, -1, -1):
            for delta in reversed(self.events[j][4]):
                if delta[0] == "reg" and delta[1] == "rip":
                    return delta[3]
        return 0

    def _next_event(self, i: int, kind: str) -> int | None:
        """The index of the next event of `kind` on this thread (a few steps ahead on the syscall path)."""
        events = self.events
        for j in range(i + 1, len(events)):
            k = events[j][1]
            if k == kind:
                return j
            if k == "proc" and any(d[0] == "thread" for d in events[j][4]):
                return None
        return None


def _no_args() -> tuple:
    return ()


_ENTRY = object()  # _fbt's `returned` for an entry probe


def _int(value: object) -> int:
    """fbt return's arg1: the function's result when it is an integer, else 0."""
    if isinstance(value, int):
        return value
    try:
        return int(value) if isinstance(value, str) else 0
    except ValueError:
        return 0


_ARG = re.compile(r"(?:^|, )\w+=(-?0x[0-9a-fA-F]+|-?\d+)")


def _syscall_args(detail: str) -> tuple[int, ...]:
    """The arguments in a "syscall" event's detail ("fd=0x3, buf=0x..., nbyte=0xa00000")."""
    return tuple(int(value, 0) for value in _ARG.findall(detail or ""))


_RETVAL = re.compile(r"tf_rax = (-?\d+)")
PSEUDO_ERRORS = {"ERESTART": ERESTART, "EJUSTRETURN": EJUSTRETURN}
_ERRNO = re.compile(r"tf_rax = errno (\d+)")


def _sysret_values(sysret: Event | None) -> tuple[int, int]:
    """(arg0, errno) of syscall:::return from the "sysret" event: the value, or -1 and the error number."""
    if sysret is None:
        return 0, 0
    detail = sysret[3] or ""
    failed = _ERRNO.search(detail)
    if failed:
        return -1, int(failed.group(1))
    if sysret[2] in PSEUDO_ERRORS:
        return -1, PSEUDO_ERRORS[sysret[2]]  # td_errno holds the kernel-internal code
    value = _RETVAL.search(detail)
    return (int(value.group(1)) if value else 0), 0
