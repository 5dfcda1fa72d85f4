"""The kernel instance of one run: its configuration, process table and system-call handlers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from sim.kern.proc import Proc, Thread, Ucred
from sim.kern.sysent import SYSCALLS, Syscall

HANDLERS: dict[str, Callable[..., int]] = {}


def syscall_handler(fn: Callable[..., int]) -> Callable[..., int]:
    """Register sys_NAME as the sy_call of syscalls.master's NAME (init_sysent.c's table entries)."""
    HANDLERS[fn.__name__.removeprefix("sys_")] = fn
    return fn


@dataclass(frozen=True)
class KernelConfig:
    """Switches a student can flip; each gates a hook on the system-call path, as the kernel's flags do."""

    audit: bool = False  # options AUDIT with auditd running: audit_syscalls_enabled
    dtrace_syscall: bool = False  # every syscall's entry and return probes are enabled (dtrace -n 'syscall:::')
    ktrace: bool = False  # ktrace -t c on the process: KTRPOINT(td, KTR_SYSCALL)
    ptrace: bool = False  # a debugger traces the process and stops it at system-call entry and exit
    capability_mode: bool = False  # the process called cap_enter()
    jailed: bool = False  # the process runs in a jail
    uid: int = 0  # the credential's effective uid (0 = root)
    # CR4.SMAP (a kernel with stac/clac in its copy routines and PSL_AC in MSR_SF_MASK) and CR4.SMEP;
    # None: as the profile's machine has them (Profile.smap, Profile.smep; resolved in sim/run.py's _boot).
    smap: bool | None = None
    smep: bool | None = None
    physmem: int = 0  # hw.physmem, the loader tunable: bytes of memory the machine may use (0: all the profile's)
    idlezero: bool = False  # vm.idlezero_enable: the pagezero process zeroes free pages while the CPU is idle
    # DTrace probes armed by an enabled D program (sim/trace/dtrace.py required_config), each with its probe effect
    # (sim/kern/dtrace_probe.py): functions whose first instruction (fbt entry) or whose `ret`s (fbt return) fbt
    # has overwritten with int3, and the periods in ns of the profile-N/tick-N cyclics. Sorted tuples: hashable.
    dtrace_fbt_entry: tuple[str, ...] = ()
    dtrace_fbt_return: tuple[str, ...] = ()
    dtrace_profile_ns: tuple[int, ...] = ()
    # System calls whose syscall::NAME:entry / :return probe is enabled: systrace sets their sysent entry's
    # sy_entry / sy_return, which syscallenter tests beside systrace_probe_func (sys/kern/subr_syscall.c).
    dtrace_syscall_entry: tuple[str, ...] = ()
    dtrace_syscall_return: tuple[str, ...] = ()
    # Enabled SDT probes, as "provider:name" (proc:create, vminfo:zfod, ...): their sites call dtrace_probe.
    dtrace_sdt: tuple[str, ...] = ()
    # Functions whose entry arguments a D program reads (fbt args[]): each entry records them (dtrace_args.py).
    dtrace_fbt_arguments: tuple[str, ...] = ()


# KernelConfig fields that name a run (RunSpec.canonical) only when set, so that runs without them keep their ids.
DTRACE_PROBE_FIELDS = (
    "dtrace_fbt_entry",
    "dtrace_fbt_return",
    "dtrace_profile_ns",
    "dtrace_syscall_entry",
    "dtrace_syscall_return",
    "dtrace_sdt",
    "dtrace_fbt_arguments",
)


class Kernel:
    FIRST_PID = 1000  # deterministic pid allocation; the lecture's machines were well past boot
    FIRST_TID = 100000  # FreeBSD's thread ids start above PID_MAX

    def __init__(self, config: KernelConfig) -> None:
        self.config = config
        # The system calls whose sysent entry has sy_entry / sy_return set (systrace_enable): looked up per call.
        self.sy_entry = frozenset(config.dtrace_syscall_entry)
        self.sy_return = frozenset(config.dtrace_syscall_return)
        self.sysent: dict[int, Syscall] = dict(SYSCALLS)  # init_sysent.c's table, this kernel's own
        # The ABI's sysentvec (elf64_freebsd_sysvec), through which syscallenter fetches a call's number and
        # arguments: cpu_fetch_syscall_args on amd64. Imported here, not at the top: trap.py imports this module.
        from sim.kern.trap import cpu_fetch_syscall_args

        self.sv_fetch_syscall_args = cpu_fetch_syscall_args
        self.procs: list[Proc] = []
        self._next_pid = self.FIRST_PID
        self._next_tid = self.FIRST_TID
        self.syscall_counts: Counter[str] = Counter()  # what `trapscope run --json` reports, recorded or not
        self.console: list[str] = []  # what the programs wrote to their terminal
        # Subsystem state that FreeBSD keeps in globals, made by each subsystem when first used:
        self.sched = None  # the run queue, callouts and idle thread (sched.py)
        self.sleepq = None  # wait channel -> sleeping threads (kern_synch.py)
        self.vfs = None  # the file namespace, buffer cache and syncer (vfs_*.py)
        self.aio = None  # AIO jobs and daemons (vfs_aio.py)
        self.reaped: list[Proc] = []  # processes whose parent collected them with wait4 (gone from procs)

    def handler(self, entry: Syscall | None) -> Callable[..., int]:
        fn = HANDLERS.get(entry.name) if entry else None
        if fn is None:
            from sim.kern.kern_syscalls import nosys  # imported only when needed: it is rare, and imports are slow

            return nosys
        return fn

    def killproc(self, p: Proc) -> None:
        """Kill a process with SIGKILL (kern_sig.c's killproc), for the VM system's out-of-memory killer, which
        lies below the kernel's signal code and so reaches it through the kernel."""
        from sim.kern.kern_sig import SIGKILL, kern_psignal  # kern_sig imports this module

        kern_psignal(p, SIGKILL)

    @property
    def next_pid(self) -> int:
        """The pid the next new process gets (fork_findpid's answer: pids are handed out in order here)."""
        return self._next_pid

    def new_process(self, comm: str, cred: Ucred) -> Thread:
        proc = Proc(p_pid=self._next_pid, p_comm=comm, p_ucred=cred)
        self._next_pid += 1
        thread = Thread(td_tid=self._next_tid, td_proc=proc, td_ucred=cred)
        self._next_tid += 1
        proc.p_threads.append(thread)
        self.procs.append(proc)
        return thread

    def new_thread(self, proc: Proc) -> Thread:
        """Another thread in `proc` (thread_alloc + thread_link), sharing the process's credential."""
        thread = Thread(td_tid=self._next_tid, td_proc=proc, td_ucred=proc.p_ucred)
        self._next_tid += 1
        proc.p_threads.append(thread)
        return thread
