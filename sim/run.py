"""A run: a command line executed to completion on a fresh simulated machine, recorded as one event log.

A run is a pure function of its inputs (command line, profile, kernel configuration, simulator version), so its
identity is a hash of them: any process can recompute a run it has not cached and get the same log.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace

from sim import VERSION
from sim.core.events import MapKey, ProcessStart, RunEnd
from sim.core.log import Event, EventBudgetExceeded
from sim.core.pcpu import pcpu
from sim.core.walker import ThreadTable
from sim.kern.dtrace_probe import arm_probes
from sim.kern.exception import Xfast_syscall
from sim.kern.imgact_elf import exec_first_image
from sim.kern.init_main import exit_status, install_world, proc0_init, process_times
from sim.kern.kernel import DTRACE_PROBE_FIELDS, Kernel, KernelConfig
from sim.kern.ksyms import PCPU_BASE, PROGRAM_TEXT, USRSTACK, kernel_symbol
from sim.kern.proc import PRISON0, Prison, Ucred
from sim.kern.sched import Deadlock, sched_run
from sim.machine.cpu import CR4_PGE, CR4_SMAP, CR4_SMEP, SF_MASK, SF_MASK_11
from sim.machine.machine import Machine, MachineHalted
from sim.machine.profiles import DEFAULT_PROFILE, PROFILES, Profile
from sim.user import programs as _programs  # noqa: F401 - registers the programs
from sim.user.libc import Libc
from sim.user.programs import PROGRAMS, lookup, validate
from sim.user.shell import CommandLineError, parse_command_line
from sim.user.uexec import user_jump
from sim.vm.vm_init import vm_boot
from sim.vm.vm_map import PageTables, vmspace_snapshot
from sim.vm.vm_page import PAGE_FREE

# The handlers register themselves in the sysent table when their modules load, as SYSINITs would.
from sim.kern import kern_exit, kern_prot, vm_mmap  # noqa: F401, E402  isort: skip

# Events kept for stepping (and for flame graphs and exports of exact frame times); past this the run fast-forwards
# unrecorded, with time and counters still kept (a live consumer, such as `trapscope dtrace`, still sees every
# event). 1.5 M is the web stepper's own limit (app/params.py), so a run the stepper can show is recorded whole
# here. It holds the lecture's dd bs=10m (256,364 events) six times over, dd bs=32m (803 k) and the lab's
# ipc-benchmark with 4 KiB buffers (~0.8 M). Each recorded event costs ~225 B and ~1.7 us on a dd-like run
# (bench/README.md), so dd bs=1g, which records to the budget, stays well within its 10 s / 1 GiB targets:
# ~700 MiB peak at 1.5 M events against ~800 MiB at the former 2 M.
DEFAULT_RECORD_BUDGET = 1_500_000
# Steps a run may take in all before it is stopped: past the record budget a step costs ~0.35 us, so a run that
# asks for too much is told so within ~20 s. Twice dd bs=1g count=1 (25.5 M steps) fits.
DEFAULT_EVENT_BUDGET = 60_000_000

# A recorded run makes millions of long-lived, acyclic objects. Its events and their payloads are never tracked by
# the collector (sim/core/log.py), but each step's deltas are new tuples, which it tracks until its first look at
# them, and every collection of the young generation walks those. Nothing big of a finished run is left to the
# collector (see _release): only the kernel's doubly linked structures (a process and its threads, a VM object and
# its pages; 50-1,100 objects, ~0.2 MB a run). So the young generation is collected every YOUNG_COLLECTION_EVERY
# new objects: set once, for the process, at import, never switched off and on around a run (which is not
# thread-safe); those small cycles, and any other code's, wait a little longer for it.
YOUNG_COLLECTION_EVERY = 1_000_000
gc.set_threshold(YOUNG_COLLECTION_EVERY, 2, 10)


class RunError(ValueError):
    """The run cannot be made as asked; the message is for the person who asked."""


class RunTooLong(RunError):
    """The run took more steps than its event budget allows."""


@dataclass(frozen=True)
class RunSpec:
    command: str
    profile: str = DEFAULT_PROFILE
    config: KernelConfig = field(default_factory=KernelConfig)

    def canonical(self) -> str:
        return json.dumps(
            {
                "version": VERSION,
                "command": self.command,
                "profile": self.profile,
                "config": _config_fields(self.config),
            },
            sort_keys=True,
        )

    @property
    def run_id(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()[:16]


def _config_fields(config: KernelConfig) -> dict:
    """The configuration as it names a run: armed DTrace probes only when there are some, so that every run made
    without them keeps the id it had before they could be armed."""
    fields = asdict(config)
    for name in (*DTRACE_PROBE_FIELDS, "physmem", "idlezero"):  # hw.physmem and idle zeroing too, only when set
        if not fields[name]:
            del fields[name]
    return fields


@dataclass
class Run:
    spec: RunSpec
    run_id: str
    # A tuple: the events of a finished run never change, and a tuple of untracked objects (Event is gc=False) is
    # itself untracked at the collector's first look, so full collections never walk a cached run's events again
    # (a list of them was walked in each: ~30 ms a million events).
    events: tuple[Event, ...]
    initial_registers: dict[str, int]
    unrecorded: int
    user_ns: int
    sys_ns: int
    wall_ns: int
    exit_status: int | None
    panic: str | None
    syscalls_by_name: dict[str, int]
    output: str
    threads: dict[int, tuple[int, str]]  # tid -> (pid, command name), for every thread the run had
    vm: dict = field(default_factory=dict)  # the VM counters: faults by kind and mode, vmmeter (VmMeter.summary)
    page_tables: dict[int, PageTables] = field(default_factory=dict)  # pid -> its last page tables (pagewalk)
    probe_firings: dict[str, int] = field(default_factory=dict)  # armed DTrace probes' firings by kind (dtrace_probe)

    @property
    def syscalls(self) -> int:
        return sum(self.syscalls_by_name.values())

    def summary(self) -> dict:
        return {
            "run_id": self.run_id,
            "command": self.spec.command,
            "profile": self.spec.profile,
            "user_ns": self.user_ns,
            "sys_ns": self.sys_ns,
            "wall_ns": self.wall_ns,
            "exit_status": self.exit_status,
            "syscalls": self.syscalls,
            "syscalls_by_name": dict(sorted(self.syscalls_by_name.items())),
            # every entry into the kernel: SYSCALL instructions and exceptions through trap() (no device
            # interrupts are modelled)
            "traps": self.syscalls + self.vm.get("vmmeter", {}).get("v_trap", 0),
            "traps_by_kind": {"syscall": self.syscalls, "exception": self.vm.get("vmmeter", {}).get("v_trap", 0)},
            **self.vm,
            "events": len(self.events) + self.unrecorded,
            "events_recorded": len(self.events),
            "panic": self.panic,
            **({"probe_firings": self.probe_firings} if self.probe_firings else {}),
        }


def record(
    spec: RunSpec,
    record_budget: int = DEFAULT_RECORD_BUDGET,
    event_budget: int = DEFAULT_EVENT_BUDGET,
    live: Callable[[ThreadTable], Callable[[Event], None]] | None = None,
) -> Run:
    """Run `spec` and record it. `live`, if given, makes a live consumer: it is called once with the run's thread
    table (tid -> (pid, command name), as the kernel has it so far) and returns what every event of the run is
    handed to as it happens, past the record budget too; the record keeps the first record_budget events."""
    if spec.profile not in PROFILES:
        raise RunError(f"unknown profile {spec.profile!r} (profiles: {', '.join(PROFILES)})")
    command = parse_command_line(spec.command)
    main = lookup(command.program)
    validate(command.argv, dict(command.env))  # the program's own usage errors, before any run
    machine = Machine(machine_profile(spec), record_budget, event_budget)
    kernel = Kernel(spec.config)
    tee = machine.log.stream_to(live(_LiveThreads(kernel))) if live is not None else None
    pcpu.attach(machine, kernel)  # this OS thread's CPU, until the run is over
    try:
        _boot(machine, spec.config)
        vm_boot(machine, kernel)
        cred = Ucred(cr_uid=spec.config.uid, cr_ruid=spec.config.uid)
        if spec.config.jailed:
            cred.cr_prison = Prison(1, "classroom")
        td = kernel.new_process(command.program, cred)
        proc0_init(td, spec.config)
        install_world((name, fn, _program_image(fn)) for name, fn in PROGRAMS.items())
        pcpu.curthread = td
        exec_first_image(td, command.argv, dict(command.env), _program_image(main))
        initial = dict(machine.cpu.regs)
        _record_initial_vm(machine, kernel)
        machine.log.delta(("thread", 0, td.td_tid))
        machine.emit("start", command.program, ProcessStart(td.td_proc.p_pid, spec.command))
        probes = arm_probes(machine, kernel, spec.config)  # None (no probe hook) unless DTrace armed probes
        libc = Libc()
        panic, refusal = None, None
        try:
            # Each thread runs on its own greenlet; this one drives them until no user thread is left.
            sched_run(td, lambda: libc._exit(main(libc, command.argv, dict(command.env))))
        except EventBudgetExceeded as error:
            refusal = RunTooLong(f"{spec.command}: {error}; ask for less work (a smaller count or size)")
        except Deadlock as error:
            refusal = RunError(f"{spec.command}: {error}")
        except MachineHalted as halt:
            panic = str(halt)  # the kernel panicked: the simulated machine stopped, the run ends here
        except BaseException:
            _release(machine)
            raise
        if refusal is not None:
            # Raised here, outside the handler, so it carries no __context__: the budget error's traceback holds
            # the simulator's frames, and with them the machine and its log.
            _release(machine)
            try:
                raise refusal
            finally:
                del refusal  # this frame, on the refusal's traceback, must not hold the refusal: a cycle
        firings = probes.finish() if probes is not None else {}
        machine.emit("end", command.program, RunEnd())
        proc = td.td_proc
        user_ns, sys_ns = process_times(proc)  # what time(1) reports: the process and its reaped children
        run = Run(
            spec=spec,
            run_id=spec.run_id,
            events=tuple(machine.log.events if tee is None else tee.stored),
            initial_registers=initial,
            unrecorded=machine.log.unrecorded + (tee.passed_on if tee is not None else 0),
            user_ns=user_ns,
            sys_ns=sys_ns,
            wall_ns=machine.now if proc.p_exittime is None else proc.p_exittime,
            exit_status=exit_status(proc),
            panic=panic,
            syscalls_by_name=dict(Counter(kernel.syscall_counts)),
            output="".join(kernel.console),
            threads=_threads(kernel),
            vm=kernel.vm.cnt.summary(),
            page_tables=_final_page_tables(kernel),
            probe_firings=firings,
        )
        _release(machine)
        return run
    finally:
        pcpu.detach()


def machine_profile(spec: RunSpec) -> Profile:
    """The profile's machine, with hw.physmem (if set) capping its memory as the loader tunable does."""
    profile = PROFILES[spec.profile]
    if spec.config.physmem:
        return replace(profile, phys_mem_bytes=min(spec.config.physmem, profile.phys_mem_bytes))
    return profile


def _release(machine: Machine) -> None:
    """Let go of a finished (or abandoned) machine, so that it is freed now, by reference counting.

    The log, the bulk of a run (hundreds of MB for a big dd), belongs to the Run alone: it is freed the moment the
    Run is (evicted from a cache), or now if the run was refused. The machine's own back references are dropped
    (Machine.close); record() detaches the machine from this thread's pcpu.
    """
    log = machine.log
    log.events, log._pending = [], []
    machine.close()


class _LiveThreads:
    """A live run's thread table: Run.threads as it is so far (a thread is looked up once it is on the CPU)."""

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        self._known: dict[int, tuple[int, str]] = {}

    def get(self, tid: int, default: tuple[int, str]) -> tuple[int, str]:
        found = self._known.get(tid)
        if found is None:
            self._known = _threads(self._kernel)
            found = self._known.get(tid, default)
        return found

    def values(self) -> Iterable[tuple[int, str]]:
        return _threads(self._kernel).values()


def _threads(kernel: Kernel) -> dict[int, tuple[int, str]]:
    return {t.td_tid: (p.p_pid, p.p_comm) for p in kernel.procs + kernel.reaped for t in p.p_threads}


def _program_image(main) -> object:
    """The ELF image a program's process is made from (None: a small static one)."""
    from sim.user.rtld import IMAGES

    return IMAGES.get(getattr(main, "image", None) or "")


def _record_initial_vm(machine: Machine, kernel: Kernel) -> None:
    """What exec left in memory before the run began, as deltas of the start event (the VM view folds them from
    step 0): each map entry, the objects behind them with their backing chains, and every page handed out."""
    log, objects = machine.log, {}
    for proc in kernel.procs:
        vm_map = proc.p_vmspace.vm_map
        for entry in vm_map.entries:
            log.delta(("map", MapKey(vm_map.name, entry.start), None, entry.state()))
            obj = entry.object
            while obj is not None and obj.id not in objects:
                objects[obj.id] = obj
                obj = obj.backing_object
    for obj in objects.values():
        log.delta(("object", obj.id, None, obj.state()))
    for pfn, m in sorted(kernel.vm.page_array.items()):
        log.delta(("page", pfn, PAGE_FREE, m.state()))


def _final_page_tables(kernel: Kernel) -> dict[int, PageTables]:
    """Each process's page tables as it left them: at exit, or now for those still running."""
    tables = dict(kernel.vm.final_page_tables)
    for p in kernel.procs:
        if p.p_vmspace is not None:
            tables[p.p_pid] = vmspace_snapshot(p.p_vmspace)
    return tables


def _boot(machine: Machine, config: KernelConfig) -> None:
    """What locore, hammer_time and pmap_bootstrap leave behind that a user process can see."""
    cpu = machine.cpu
    machine.lstar_address = kernel_symbol("Xfast_syscall")
    machine.lstar_handler = Xfast_syscall
    machine.user_jump = user_jump
    machine.kernel_gsbase_msr = PCPU_BASE
    smap = machine.profile.smap if config.smap is None else config.smap
    smep = machine.profile.smep if config.smep is None else config.smep
    cpu.regs["cr4"] = CR4_PGE | (CR4_SMEP if smep else 0) | (CR4_SMAP if smap else 0)
    machine.sf_mask = SF_MASK if smap else SF_MASK_11
    cpu.regs["rip"] = PROGRAM_TEXT
    cpu.regs["rsp"] = USRSTACK - 0x1000 + 0x8C8  # below argv, envp and the auxiliary vector


__all__ = ["CommandLineError", "Run", "RunError", "RunSpec", "record", "PRISON0"]
