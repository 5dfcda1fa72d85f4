"""The event log's schema: the typed payload (Event.data) of each kind of event that carries facts.

A payload holds facts only (numbers, names, flags): views, DTrace providers and exporters read its fields, and
sim/narrative makes the words people read from it. Payloads are NamedTuples: immutable, cheap to make on the
recorder's hot paths, and never a reference to a live simulator object.
"""

from __future__ import annotations

from typing import NamedTuple

# --- processes and system calls (emitted by sim/kern and sim/run) -----------------------------------------------


class ProcessStart(NamedTuple):
    """kind "start": the run's first process begins."""

    pid: int
    command: str  # the command line, as given


class Fork(NamedTuple):
    """kind "proc", name "fork": fork1() made a process."""

    parent: int  # pid
    child: int  # pid
    tid: int  # the child's first thread


class Exec(NamedTuple):
    """kind "proc", name "exec": a process now runs another program."""

    pid: int
    path: str
    argv: tuple[str, ...]


class ProcessExit(NamedTuple):
    """kind "proc", name "exit": exit1()."""

    pid: int
    comm: str
    status: int  # the exit status (meaningful when signal is 0)
    signal: int  # the signal that ended the process, or 0


class SyscallArgs(NamedTuple):
    """kind "syscall", name = the call: syscallenter dispatches it through sysent."""

    names: tuple[str, ...]  # the parameters' names (syscalls.master)
    values: tuple[int, ...]  # the arguments, as fetched


class SyscallResult(NamedTuple):
    """kind "sysret" (name success, error, ERESTART or EJUSTRETURN): cpu_set_syscall_retval."""

    error: int  # 0, an errno value, or ERESTART / EJUSTRETURN (kernel-internal codes)
    retval: int  # td_retval[0] as set in tf_rax on success; 0 otherwise


class Trap(NamedTuple):
    """kind "trap": the CPU takes an exception (a page fault, a general protection fault)."""

    trapno: int
    err: int  # the error code the CPU pushed
    addr: int  # %cr2 for a page fault
    user: bool  # taken in user mode (False: in kernel mode)


# --- more payloads of the kernel and userland (sim/kern, sim/user) ----------------------------------------------


class RunEnd(NamedTuple):
    """kind "end" (name = the program): the run is complete. No facts: the name varies, so the words cannot be
    keyed by (kind, name) in CONSTANT_WORDS."""


# The system-call path (sim/kern/exception.py, trap.py, subr_syscall.py, subr_trap.py, kern_priv.py).


class FetchedSyscall(NamedTuple):
    """kind "hook", name "sv_fetch_syscall_args": the number and arguments are read from the trapframe."""

    code: int  # the system-call number (from %rax, or %rdi for syscall(2))
    name: str  # its sysent entry's name; "nosys" for a number with no entry
    narg: int  # how many arguments were fetched from registers


class CapabilityMode(NamedTuple):
    """kind "skip", name "IN_CAPABILITY_MODE": the call may go on."""

    in_capability_mode: bool  # True: the process is in capability mode, and the call is CAPENABLED


class CapabilityRefused(NamedTuple):
    """kind "hook", name "IN_CAPABILITY_MODE": a call that is not CAPENABLED, in capability mode: ECAPMODE."""

    syscall: str  # the name the call is dispatched by (the "syscall" event's name)


class SystraceSkipped(NamedTuple):
    """kind "skip", name "systrace_probe_func": no enabled syscall provider probe for this call."""

    probe: str  # "entry" or "return"


class Ast(NamedTuple):
    """kind "hook", name "ast": the AST bits of td_flags are cleared, and what they flagged is handled."""

    td_flags: int  # td_flags as ast() found them


class Sti(NamedTuple):
    """kind "insn", name "sti": interrupts are enabled again."""

    ast_pending: bool  # on the way out, to handle an AST (False: the syscall entry, after saving the trapframe)


class Swapgs(NamedTuple):
    """kind "insn", name "swapgs": %gs's base is exchanged with MSR_KERNELGSBASE."""

    to_kernel: bool  # %gs now points at this CPU's pcpu (False: the user's %gs is back)


class PrivCheck(NamedTuple):
    """kind "hook", name "priv_check": priv_check_cred() decides a privilege."""

    priv: int  # PRIV_* (sim/kern/kern_priv.py)
    uid: int  # the credential's effective uid
    error: int  # 0 (granted) or EPERM


# Processes, threads and the scheduler (kern_fork, kern_exit, kern_thr, kern_synch, sched, sys_capability).


class ForkExit(NamedTuple):
    """kind "proc", name "fork_exit": a new thread runs for the first time."""

    tid: int
    comm: str


class ThreadEnded(NamedTuple):
    """kind "proc", name "thread_exit": another thread of an exiting process is ended (thread_single)."""

    tid: int


class Reap(NamedTuple):
    """kind "proc", name "reap": a parent collects a zombie child (proc_reap)."""

    parent: int  # pid
    child: int  # pid
    status: int  # the wait status, as W_EXITCODE made it


class Sleep(NamedTuple):
    """kind "proc", name "sleep": a thread goes on a sleep queue (sleepq_add)."""

    tid: int
    wmesg: str


class Wakeup(NamedTuple):
    """kind "proc", name "wakeup": a sleeping thread is made runnable."""

    tid: int
    comm: str


class StillRunning(NamedTuple):
    """kind "proc", name "sched_switch": the running thread is still the best one to run; no switch."""

    tid: int


class ContextSwitch(NamedTuple):
    """kind "proc", name "cpu_switch" or "cpu_throw": another thread goes on the CPU."""

    old_tid: int
    old_comm: str
    new_tid: int
    new_comm: str


class CpuIdle(NamedTuple):
    """kind "proc", name "cpu_idle": nothing is runnable; the CPU halts until the next callout."""

    until_ns: int


class ThrNew(NamedTuple):
    """kind "proc", name "thr_new": a process gets another thread."""

    pid: int
    tid: int
    entry: int  # the start routine's address


class ThrExit(NamedTuple):
    """kind "proc", name "thr_exit": a thread of a process that goes on exits."""

    pid: int
    tid: int


class CapEnter(NamedTuple):
    """kind "proc", name "cap_enter": a process enters capability mode."""

    pid: int


class AioQueued(NamedTuple):
    """kind "proc", name "aio_queue": an asynchronous write is queued for the AIO daemons."""

    fd: int
    nbytes: int
    offset: int


class AioDone(NamedTuple):
    """kind "proc", name "aio_complete": an AIO daemon finished a process's job."""

    pid: int  # the process that queued the job
    count: int  # bytes transferred
    error: int


# Signals (kern_sig.py, machdep.py's sendsig): kind "signal", name = the signal's name, or "sendsig".


class SignalDiscarded(NamedTuple):
    """The process ignores the signal: it is discarded when sent."""

    pid: int
    sig: int


class SignalPosted(NamedTuple):
    """The signal is made pending for a thread."""

    pid: int
    tid: int
    sig: int
    blocked: bool  # the thread blocks it: it stays pending


class SignalDelivered(NamedTuple):
    """postsig: the thread takes the signal, to run its handler."""

    tid: int
    sig: int
    handler: int  # the handler's address


class SignalExit(NamedTuple):
    """sigexit: the signal's default action ends the process."""

    pid: int
    comm: str
    uid: int
    sig: int
    coredump: bool  # the default action dumps core (none is written: RLIMIT_CORE is 0)


class SignalFrame(NamedTuple):
    """name "sendsig": the signal frame is on the user stack; the thread goes to the trampoline."""

    sig: int
    frame: int  # the frame's user address
    handler: int


class SignalStackTrashed(NamedTuple):
    """name "sendsig": the frame could not be written to the user stack: the process gets SIGILL."""

    pid: int


# Descriptors, pipes, sockets and files (sys_pipe, uipc_syscalls, vfs_syscalls, vfs_bio, vfs_subr).


class PipeCreated(NamedTuple):
    """kind "proc", name "pipe": kern_pipe made a pipe."""

    rfd: int
    wfd: int
    size: int  # the read side's buffer, bytes


class SocketpairCreated(NamedTuple):
    """kind "proc", name "socketpair": a connected PF_LOCAL stream pair."""

    fd0: int
    fd1: int


class PipeSpace(NamedTuple):
    """kind "mem", name "pipespace": a pipe's buffer is resized."""

    old_size: int
    new_size: int


class SockbufReserve(NamedTuple):
    """kind "mem", name "sbreserve": setsockopt sets a socket buffer's size."""

    optname: int  # SO_SNDBUF or SO_RCVBUF
    size: int


class UfsCreate(NamedTuple):
    """kind "mem", name "ufs_create": open(O_CREAT) makes a new, empty file."""

    path: str


class DelayedWrite(NamedTuple):
    """kind "mem", name "bdwrite": a buffer is dirty in the cache, to be written later by the syncer."""

    path: str
    block: int  # b_lblkno


class DiskRequest(NamedTuple):
    """kind "mem", name "g_io_request": a buffer's transfer is queued on the disk."""

    cmd: int  # BIO_READ or BIO_WRITE
    path: str
    block: int
    done_ns: int  # when the disk completes it


class BufDone(NamedTuple):
    """kind "mem", name "bufdone": a buffer's write is on the disk."""

    path: str
    block: int


class SyncVnode(NamedTuple):
    """kind "proc", name "sync_vnode": the syncer pushes a vnode's dirty buffers."""

    path: str
    dirty: int  # bo_dirty: how many buffers


# Userland (sim/user): kind "user", name = the instruction or the library step.


class CallArguments(NamedTuple):
    """name "call <function>": the C arguments, in %rdi, %rsi, %rdx, %rcx, %r8, %r9 order."""

    values: tuple[int, ...]  # as the C code passed them (a negative int stays negative)


class SyscallNumber(NamedTuple):
    """name "mov $SYS_<call>,%eax" (a libc stub) or "movq $SYS_sigreturn,%rax" (the signal trampoline)."""

    code: int


class CerrorBranch(NamedTuple):
    """name "jb cerror": the stub tests the carry flag the kernel set."""

    taken: bool  # carry set: the call failed


class Cerror(NamedTuple):
    """name "cerror": errno is set from %rax; the call returns -1."""

    errno: int


class UserReturn(NamedTuple):
    """name "ret" (a libc stub): back in the program with the call's result."""

    value: int


class StackLocals(NamedTuple):
    """name "sub $N,%rsp": a libc wrapper makes room for its locals on the stack."""

    size: int  # bytes asked for (the stack pointer moves by this, rounded to 16)
    base: int  # their address


class ThreadStart(NamedTuple):
    """name "thread_start": libthr's new thread calls its start routine."""

    pthread: int  # the struct pthread's address


class VdsoClockGettime(NamedTuple):
    """name "__vdso_clock_gettime": the time is read from the shared page, with no trap."""

    timekeep: int  # the timekeeping page's user address


class Rdtscp(NamedTuple):
    """name "rdtscp": the time-stamp counter is read."""

    tsc: int


class SignalHandlerCall(NamedTuple):
    """name "call *SIGF_HANDLER(%rsp)": the signal trampoline calls the handler."""

    handler: int
    sig: int


class RtldStart(NamedTuple):
    """name "_rtld": the run-time linker starts, for the program at `path`."""

    path: str


class RtldEnvironment(NamedTuple):
    """name "getenv": the run-time linker reads its LD_* variables."""

    trusted: bool  # not set-id (issetugid() == 0): the variables are honoured


class Relocations(NamedTuple):
    """name "reloc_non_plt": an object's relocations are processed."""

    path: str
    count: int


class JumpSlots(NamedTuple):
    """name "reloc_plt": an object's PLT jump slots, bound lazily."""

    path: str
    count: int


class ObjectInit(NamedTuple):
    """name "init": an object's init functions run."""

    path: str


class ObjectFini(NamedTuple):
    """name "fini": an object's fini functions run."""

    path: str


class StaticStart(NamedTuple):
    """name "_init_tls": a statically linked program starts without the run-time linker."""

    image: str


class MainCall(NamedTuple):
    """name "main": crt1 calls the program's main()."""

    image: str
    argc: int


class ExitCall(NamedTuple):
    """name "exit": exit(3) runs the atexit handlers, then _exit(2)."""

    status: int
    handlers: int  # atexit handlers registered


# --- payloads of the machine and the VM system (sim/machine, sim/vm) ---------------------------------------------
