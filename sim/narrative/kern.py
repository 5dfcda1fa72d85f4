"""Words for the kernel's events (sim/kern, and the run's start and end): the system-call path, processes and
threads, signals, descriptors and files."""

from __future__ import annotations

from sim.core import events as ev
from sim.kern.errno import EJUSTRETURN, ERESTART
from sim.kern.kern_priv import PRIV_NAMES
from sim.kern.uipc_syscalls import SO_SNDBUF
from sim.kern.vfs_bio import BIO_WRITE
from sim.narrative import CONSTANT_WORDS, words

CONSTANT_WORDS.update({
    # The SYSCALL instruction (sim/machine/machine.py) and the entry and exit glue (sim/kern/exception.py).
    ("insn", "syscall"): "ring 3 -> ring 0 at MSR_LSTAR; %rcx = return address, %r11 = rflags",
    ("insn", "movq PCPU(RSP0),%rsp"): "switch from the user stack to this thread's kernel stack",
    ("insn", "build trapframe"): "save the user registers on the kernel stack; tf_err = 2",
    ("insn", "cli"): "interrupts off while deciding how to return",
    ("insn", "restore registers"): "rax, rdx: return values; r11, rcx: rflags and rip for sysretq",
    ("insn", "sysretq"): "back to ring 3 at the instruction after syscall",
    ("insn", "restore all registers"): "doreti_exit: reload the whole trapframe",
    ("insn", "iretq"): "back to ring 3 at tf_rip",
    ("skip", "ast"): "td_flags & (TDF_ASTPENDING|TDF_NEEDRESCHED) == 0",
    # The AIO daemon works under the credential cached with the job (sim/kern/vfs_aio.py aio_process_rw).
    ("hook", "td_ucred = job->cred"): "the AIO daemon takes the credential held when the job was queued: the "
    "write is authorised as the requesting process",
    ("hook", "td_ucred = td_savedcred"): "the AIO daemon puts its own credential back",
    # The flag each gated hook of syscallenter, syscallret, userret and ast tests, as FreeBSD's C tests it.
    ("skip", "thread_cow_update"): "td->td_cowgen == p->p_cowgen: the cached credential is current",
    ("skip", "ktrsyscall"): "KTRPOINT(td, KTR_SYSCALL) is false",
    ("skip", "ktrsysret"): "KTRPOINT(td, KTR_SYSRET) is false",
    ("skip", "ptracestop"): "(p->p_flag & P_TRACED) == 0",
    ("skip", "syscall_thread_enter"): "sy_thrcnt & SY_THR_STATIC",
    ("skip", "syscall_thread_exit"): "sy_thrcnt & SY_THR_STATIC",
    ("skip", "AUDIT_SYSCALL_ENTER"): "audit_syscalls_enabled == 0",
    ("skip", "AUDIT_SYSCALL_EXIT"): "(td->td_pflags & TDP_AUDITREC) == 0",
    ("skip", "vfork wait"): "(td->td_pflags & TDP_RFPPWAIT) == 0",
    ("skip", "KTRUSERRET"): "ktrace request queue empty",
    ("skip", "g_waitidle"): "(td->td_pflags & TDP_GEOM) == 0",
    ("skip", "addupc_task"): "(p->p_flag & P_PROFIL) == 0",
    ("skip", "racct throttle"): "p->p_throttled == 0",
    ("skip", "SIGVTALRM"): "(flags & TDF_ALRMPEND) == 0",
    ("skip", "SIGPROF"): "(flags & TDF_PROFPEND) == 0",
    ("skip", "mi_switch"): "(flags & TDF_NEEDRESCHED) == 0",
    ("skip", "postsig"): "no signal pending",
    ("skip", "thread_suspend_check"): "(flags & TDF_NEEDSUSPCHK) == 0",
    ("skip", "TDP_OLDMASK"): "(td->td_pflags & TDP_OLDMASK) == 0",
    ("proc", "cpu_fork"): "the child's trapframe: the parent's, with tf_rax = 0 and carry clear",
})  # fmt: skip


# -- the run -----------------------------------------------------------------------------------------------------


@words.register
def _(data: ev.ProcessStart) -> str:
    return f"pid {data.pid} starts: {data.command}"


@words.register
def _(data: ev.RunEnd) -> str:
    return "the run is complete"


# -- the system-call path ----------------------------------------------------------------------------------------


@words.register
def _(data: ev.FetchedSyscall) -> str:
    return f"code {data.code} ({data.name}), {data.narg} argument(s) from registers"


@words.register
def _(data: ev.SyscallArgs) -> str:
    return ", ".join([f"{name}={value:#x}" for name, value in zip(data.names, data.values, strict=False)])


@words.register
def _(data: ev.SyscallResult) -> str:
    if data.error == 0:
        return f"tf_rax = {data.retval}, carry clear"
    if data.error == ERESTART:
        return "tf_rip backed up by tf_err: the syscall instruction runs again"
    if data.error == EJUSTRETURN:
        return "the registers were set by the call itself: leave them"
    return f"tf_rax = errno {data.error}, carry set"


@words.register
def _(data: ev.CapabilityMode) -> str:
    return "in capability mode, and this call is CAPENABLED" if data.in_capability_mode else "not in capability mode"


@words.register
def _(data: ev.CapabilityRefused) -> str:
    return f"{data.syscall} is not CAPENABLED: ECAPMODE"


@words.register
def _(data: ev.NameiCapabilityMode) -> str:
    return f"namei({data.path!r}) in capability mode: no global namespace (AT_FDCWD), ECAPMODE"


@words.register
def _(data: ev.SystraceSkipped) -> str:
    field = "sy_entry" if data.probe == "entry" else "sy_return"
    return f"systrace_probe_func == NULL || sa->callp->{field} == 0: no syscall:::{data.probe} probe for this call"


@words.register
def _(data: ev.Ast) -> str:
    return f"td_flags {data.td_flags:#x}: the AST bits are cleared and handled"


@words.register
def _(data: ev.Sti) -> str:
    if data.ast_pending:
        return "an AST is pending: handle it with interrupts on, then test again"
    return "interrupts back on: the kernel may now be preempted"


@words.register
def _(data: ev.Swapgs) -> str:
    return "%gs now points at this CPU's pcpu" if data.to_kernel else "the user's %gs is back"


@words.register
def _(data: ev.PrivCheck) -> str:
    verdict = "granted" if data.error == 0 else "denied: EPERM"
    return f"{PRIV_NAMES.get(data.priv, data.priv)} for uid {data.uid}: {verdict}"


# -- processes, threads and the scheduler ------------------------------------------------------------------------


@words.register
def _(data: ev.Fork) -> str:
    return f"pid {data.parent} creates pid {data.child} (tid {data.tid})"


@words.register
def _(data: ev.Exec) -> str:
    return f"pid {data.pid} now runs {data.path} {' '.join(data.argv[1:])}".rstrip()


@words.register
def _(data: ev.ProcessExit) -> str:
    how = f"on signal {data.signal}" if data.signal else f"with status {data.status}"
    return f"pid {data.pid} ({data.comm}) exits {how}: a zombie until its parent waits"


@words.register
def _(data: ev.ForkExit) -> str:
    return f"tid {data.tid} ({data.comm}) runs for the first time"


@words.register
def _(data: ev.ThreadEnded) -> str:
    return f"tid {data.tid} is ended by the process's exit"


@words.register
def _(data: ev.Reap) -> str:
    return f"pid {data.parent} collects pid {data.child}: status {data.status:#x}"


@words.register
def _(data: ev.Sleep) -> str:
    return f"tid {data.tid} will sleep on '{data.wmesg}'"


@words.register
def _(data: ev.Wakeup) -> str:
    return f"tid {data.tid} ({data.comm}) is runnable again"


@words.register
def _(data: ev.StillRunning) -> str:
    return f"tid {data.tid} is still the best thread to run"


@words.register
def _(data: ev.ContextSwitch) -> str:
    return f"tid {data.old_tid} ({data.old_comm}) -> tid {data.new_tid} ({data.new_comm})"


@words.register
def _(data: ev.CpuIdle) -> str:
    return f"nothing to run: the CPU halts until {data.until_ns:,} ns"


@words.register
def _(data: ev.ThrNew) -> str:
    return f"pid {data.pid} gets tid {data.tid}, starting at {data.entry:#x}"


@words.register
def _(data: ev.ThrExit) -> str:
    return f"tid {data.tid} of pid {data.pid} exits"


@words.register
def _(data: ev.CapEnter) -> str:
    return f"pid {data.pid} enters capability mode (a new credential)"


@words.register
def _(data: ev.AioQueued) -> str:
    return f"job for fd {data.fd}: {data.nbytes} bytes at offset {data.offset}; the call returns now"


@words.register
def _(data: ev.AioDone) -> str:
    return f"pid {data.pid}'s job: {data.count} bytes, error {data.error}"


# -- signals -----------------------------------------------------------------------------------------------------


@words.register
def _(data: ev.SignalDiscarded) -> str:
    return f"pid {data.pid} ignores it: discarded"


@words.register
def _(data: ev.SignalPosted) -> str:
    held = " (blocked: it stays pending)" if data.blocked else ""
    return f"posted to pid {data.pid}, tid {data.tid}{held}"


@words.register
def _(data: ev.SignalDelivered) -> str:
    return f"delivered to tid {data.tid}: run its handler at {data.handler:#x}"


@words.register
def _(data: ev.SignalExit) -> str:
    dumped = " (no core: RLIMIT_CORE is 0)" if data.coredump else ""
    return f"pid {data.pid} ({data.comm}), uid {data.uid}: exited on signal {data.sig}{dumped}"


@words.register
def _(data: ev.SignalFrame) -> str:
    return f"signal {data.sig}: frame at {data.frame:#x}, handler {data.handler:#x}, via the trampoline"


@words.register
def _(data: ev.SignalStackTrashed) -> str:
    return f"pid {data.pid} has trashed its stack: SIGILL"


# -- descriptors, pipes, sockets and files -----------------------------------------------------------------------


@words.register
def _(data: ev.PipeCreated) -> str:
    return f"fds {data.rfd} and {data.wfd}: a {data.size}-byte buffer for reading fd {data.rfd}"


@words.register
def _(data: ev.SocketpairCreated) -> str:
    return f"fds {data.fd0} and {data.fd1}: a connected PF_LOCAL stream pair"


@words.register
def _(data: ev.PipeSpace) -> str:
    return f"pipe buffer {data.old_size} -> {data.new_size} bytes"


@words.register
def _(data: ev.SockbufReserve) -> str:
    return f"{'SO_SNDBUF' if data.optname == SO_SNDBUF else 'SO_RCVBUF'} = {data.size}"


@words.register
def _(data: ev.UfsCreate) -> str:
    return f"{data.path}: a new, empty file"


@words.register
def _(data: ev.DelayedWrite) -> str:
    return f"{data.path} block {data.block}: dirty in the cache, written later"


@words.register
def _(data: ev.DiskRequest) -> str:
    what = "write" if data.cmd == BIO_WRITE else "read"
    return f"disk {what} of {data.path} block {data.block}, done at {data.done_ns:,} ns"


@words.register
def _(data: ev.BufDone) -> str:
    return f"{data.path} block {data.block} is on the disk"


@words.register
def _(data: ev.SyncVnode) -> str:
    return f"the syncer pushes {data.path}'s {data.dirty} dirty buffer(s)"


@words.register
def _(data: ev.EntryArguments) -> str:
    return "called with " + ", ".join(_argument(value) for value in data.values) + " (recorded for DTrace's fbt args[])"


def _argument(value: object) -> str:
    if isinstance(value, ev.KernelObject):
        return f"{value.tag or 'an object'} at {value.address:#x}"
    return repr(value) if isinstance(value, str) else str(value)
