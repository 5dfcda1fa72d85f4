"""Processes, threads, credentials and the trapframe (sys/sys/proc.h, sys/sys/ucred.h, machine/frame.h).

Only the fields the modelled paths read or write are here, under FreeBSD's names. Fields that views show are
written through `set`, which records a delta in the event log.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sim.core.pcpu import pcpu

# td_flags (sys/sys/proc.h, FreeBSD 11): the sleep-queue bits, and the bits ast() clears and acts on
TDF_SINTR = 0x00000008  # sleep is interruptible (PCATCH)
TDF_TIMEOUT = 0x00000010  # timing out during sleep
TDF_IDLETD = 0x00000020  # this is a per-CPU idle thread
TDF_SLEEPABORT = 0x00000080  # sleepq_abort was called: a signal ended the sleep
TDF_ASTPENDING = 0x00000800  # thread has some asynchronous events
TDF_NEEDSUSPCHK = 0x00008000  # thread may need to suspend
TDF_NEEDRESCHED = 0x00010000  # thread needs to yield
TDF_NEEDSIGCHK = 0x00020000  # thread may need signal delivery
TDF_ALRMPEND = 0x10000000  # pending SIGVTALRM needs to be posted
TDF_PROFPEND = 0x20000000  # pending SIGPROF needs to be posted
TDF_MACPEND = 0x40000000  # AST-based MAC event pending
AST_FLAGS = (
    TDF_ASTPENDING | TDF_NEEDSIGCHK | TDF_NEEDSUSPCHK | TDF_NEEDRESCHED | TDF_ALRMPEND | TDF_PROFPEND | TDF_MACPEND
)

# td_pflags (private to the thread)
TDP_OLDMASK = 0x00000001  # restore td_oldsigmask after the signal handler (sigsuspend)
TDP_GEOM = 0x00010000  # thread tickled GEOM: wait for it to settle on return
TDP_KTHREAD = 0x00200000  # an official kernel thread
TDP_NERRNO = 0x08000000  # the syscall already set td_errno itself
TDP_AUDITREC = 0x01000000  # audit record pending on thread
TDP_RFPPWAIT = 0x02000000  # handle RFPPWAIT (vfork) on syscall exit

# p_flag
P_KPROC = 0x00004  # kernel process (the syncer, the AIO daemons)
P_PPWAIT = 0x00010  # parent is waiting for the vfork'ed child to exec or exit
P_PROFIL = 0x00020  # has started profiling
P_HADTHREADS = 0x00080  # has had threads (no cleanup shortcuts)
P_SYSTEM = 0x00200  # system process: no signals, statistics or swapping
P_TRACED = 0x00800  # debugged process being traced
P_WEXIT = 0x02000  # working on exiting
P_EXEC = 0x04000  # process called exec

# td_state: where a thread is in its life (enum td_states)
TDS_INACTIVE, TDS_INHIBITED, TDS_CAN_RUN, TDS_RUNQ, TDS_RUNNING = range(5)

# p_state (enum p_states)
PRS_NEW, PRS_NORMAL, PRS_ZOMBIE = range(3)

# p_stops: where a tracing debugger asked to stop (sys/sys/proc.h S_PT_*)
S_PT_SCE = 0x000010000  # stop on system-call entry
S_PT_SCX = 0x000020000  # stop on system-call exit

# td_dbgflags
TDB_SCE = 0x00000008  # thread performs syscall enter
TDB_SCX = 0x00000010  # thread performs syscall exit
TDB_USERWR = 0x00000004  # the debugger modified registers or memory


@dataclass
class AuditInfo:
    ai_auid: int = -1 & 0xFFFFFFFF  # AU_DEFAUDITID: not yet set by login


@dataclass(frozen=True, eq=False)
class Prison:
    pr_id: int
    pr_name: str


PRISON0 = Prison(0, "0")  # the host: a credential in prison0 is not jailed


@dataclass
class Ucred:
    """An unforgeable credential: shared, copy-on-write, by processes and their threads."""

    cr_uid: int = 0
    cr_ruid: int = 0
    cr_gid: int = 0
    cr_prison: Prison = PRISON0
    cr_audit: AuditInfo = field(default_factory=AuditInfo)
    cr_flags: int = 0  # CRED_FLAG_CAPMODE once cap_enter() has been called


CRED_FLAG_CAPMODE = 0x00000001  # sys/ucred.h: in capability mode


def jailed(cred: Ucred) -> bool:
    """kern_jail.c: a credential is jailed if its prison is not prison0."""
    return cred.cr_prison is not PRISON0


# amd64's struct trapframe in declaration order (sys/x86/include/frame.h): the views and mcontext_t follow it.
TRAPFRAME_LAYOUT = (
    "tf_rdi", "tf_rsi", "tf_rdx", "tf_rcx", "tf_r8", "tf_r9", "tf_rax", "tf_rbx", "tf_rbp", "tf_r10", "tf_r11",
    "tf_r12", "tf_r13", "tf_r14", "tf_r15", "tf_trapno", "tf_fs", "tf_gs", "tf_addr", "tf_flags", "tf_es", "tf_ds",
    "tf_err", "tf_rip", "tf_cs", "tf_rflags", "tf_rsp", "tf_ss",
)  # fmt: skip
# The fields the simulated kernel saves and restores: not the callee-saved r12-r15, nor the segment registers.
TRAPFRAME_UNMODELLED = ("tf_r12", "tf_r13", "tf_r14", "tf_r15", "tf_fs", "tf_gs", "tf_es", "tf_ds")
TRAPFRAME_FIELDS = tuple(name for name in TRAPFRAME_LAYOUT if name not in TRAPFRAME_UNMODELLED)


class Trapframe:
    """The user registers saved on the kernel stack at a trap; written back to the CPU on return."""

    __slots__ = ("regs",)
    delta_kind = "tf"  # the first field of this frame's deltas

    def __init__(self) -> None:
        self.regs = dict.fromkeys(TRAPFRAME_FIELDS, 0)

    def __getitem__(self, name: str) -> int:
        return self.regs[name]

    def set(self, name: str, value: int) -> None:
        regs = self.regs
        old = regs[name]
        if old != value:
            regs[name] = value
            log = pcpu.machine.log
            if log.recording:  # EventLog.delta, inlined
                log._pending.append(("tf", name, old, value))

    def set_many(self, names: tuple[str, ...], values) -> None:
        """`set` for each of names with the matching value, in order: the same deltas, in one call."""
        regs = self.regs
        log = pcpu.machine.log
        if log.recording:
            pending, kind = log._pending, self.delta_kind
            for name, value in zip(names, values):  # noqa: B905 - zip(strict=) is slow (see Cpu.set_many)
                old = regs[name]
                if old != value:
                    regs[name] = value
                    pending.append((kind, name, old, value))
        else:
            for name, value in zip(names, values):  # noqa: B905
                regs[name] = value


PCB_FULL_IRET = 0x01  # machine/pcb.h: return to user mode with iretq, restoring every register


@dataclass
class Pcb:
    pcb_onfault: int = 0  # where a faulting copy routine resumes; 0 = a kernel fault here is fatal
    pcb_flags: int = 0
    pcb_fsbase: int = 0  # the user's %fs and %gs bases (TLS), set with sysarch(2)
    pcb_gsbase: int = 0


@dataclass
class SyscallArgs:
    """struct syscall_args: what sv_fetch_syscall_args read out of the trapframe."""

    code: int = 0
    callp: object = None
    args: tuple = ()
    narg: int = 0


@dataclass(eq=False)
class Proc:
    p_pid: int
    p_comm: str
    p_ucred: Ucred
    p_cowgen: int = 0  # bumped when the credential (or the limits) change: PROC_UPDATE_COW
    p_flag: int = 0
    p_stops: int = 0
    p_traceflag: int = 0  # KTRFAC_* bits of what ktrace records
    p_throttled: int = 0  # racct: non-zero while throttled
    p_threads: list[Thread] = field(default_factory=list)
    p_exitstatus: int | None = None
    p_state: int = PRS_NORMAL
    p_pptr: Proc | None = None  # the parent, which wait4()s for this process
    p_children: list[Proc] = field(default_factory=list)
    p_fd: object = None  # struct filedesc: the descriptor table (kern_descrip.py)
    p_sigacts: object = None  # struct sigacts: the signal handlers (kern_sig.py)
    p_siglist: int = 0  # p_sigqueue: process-directed signals not yet taken by a thread (bit sig - 1)
    p_xexit: int = 0  # exit code and terminating signal, for wait4's status
    p_xsig: int = 0
    p_rux: list[int] = field(default_factory=lambda: [0, 0])  # user and system ns this process has run
    p_crux: list[int] = field(default_factory=lambda: [0, 0])  # the same for its reaped children
    # struct rusage's counters its threads keep (td_ru, summed): ru_msgsnd, ru_msgrcv, ru_nvcsw, ru_nivcsw; p_cru
    # is the same for its reaped children (kern_resource.py)
    p_ru: Counter = field(default_factory=Counter)
    p_cru: Counter = field(default_factory=Counter)
    p_exittime: int | None = None  # when exit1 ran: what time(1) measures to
    p_aioinfo: object = None  # struct kaioinfo: this process's AIO jobs (vfs_aio.py)
    p_vmspace: object = None  # struct vmspace: the address space (sim/vm/vm_map.py Vmspace)
    p_pwait: object = field(default_factory=object)  # cv p_pwait: the vfork parent sleeps on it
    p_textvp: object = None  # the vnode of the program it runs (exec)
    p_args: tuple = ()  # struct pargs: the argv and envp it was exec'd with


@dataclass(eq=False)
class Thread:
    td_tid: int
    td_proc: Proc
    td_ucred: Ucred
    td_cowgen: int = 0  # the p_cowgen its cached credential is from: thread_cow_update brings it up to date
    td_flags: int = 0
    td_pflags: int = 0
    td_dbgflags: int = 0
    td_errno: int = 0
    td_retval: list[int] = field(default_factory=lambda: [0, 0])
    td_frame: Trapframe = field(default_factory=Trapframe)
    td_pcb: Pcb = field(default_factory=Pcb)
    td_sa: SyscallArgs = field(default_factory=SyscallArgs)
    td_syscalls: int = 0
    td_errno_user: int = 0  # libc's per-thread errno (a TLS variable in user space)
    td_state: int = TDS_INACTIVE
    td_priority: int = 120  # PUSER (sys/priority.h); a sleep lends a better kernel priority until userret
    td_user_pri: int = 120
    td_wchan: object = None  # what the thread sleeps on (a sleep queue's wait channel)
    td_wmesg: str = ""
    td_intrval: int = 0  # EINTR or ERESTART, set by sleepq_abort when a signal ends the sleep
    td_sigmask: int = 0  # blocked signals (bit sig - 1)
    td_oldsigmask: int = 0
    td_siglist: int = 0  # td_sigqueue: signals sent to this thread
    td_rfppwait_p: Proc | None = None  # the vfork child this thread waits for
    td_sleeptimo: object = None  # the callout that ends a timed sleep
    # The simulator's stand-ins for what a kernel keeps on the thread's stacks and in its pcb:
    td_greenlet: object = None  # the Python execution context that is this thread's stacks
    td_kdepth: int = 0  # the event log's call depth while this thread is off the CPU
    td_md_regs: dict | None = None  # registers cpu_switch saved; restored when the thread runs again
    td_ucontinuation: object = None  # the user code a new thread runs on its first return to user mode
    td_rux_base: tuple[int, int] = (0, 0)  # machine user/sys ns when this thread last went on the CPU

    def set_retval(self, index: int, value: int) -> None:
        retval = self.td_retval
        old = retval[index]
        retval[index] = value
        if old != value:
            log = pcpu.machine.log
            if log.recording:
                log._pending.append(("td", _RETVAL_FIELDS[index], old, value))


_RETVAL_FIELDS = ("td_retval[0]", "td_retval[1]")
