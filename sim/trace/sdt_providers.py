"""The SDT providers L41 uses besides syscall, fbt and profile: sched, proc and io, fired from the run's typed events.

ProbeWalk (providers.py) hands this module the events it needs, in the walker's context (the thread on the CPU, its
kernel frames), and each probe fires where FreeBSD 11's SDT_PROBE sits, with its arguments typed as the probe's
SDT_PROBE_DEFINE declares them (args[0] of sched:::off-cpu is a `struct thread *`):

- sched (sys/kern/sched_ule.c, subr_sleepqueue.c): off-cpu in the thread leaving the CPU, its args the thread
  taking it (cpu_switch); on-cpu in the thread that then runs; remain-cpu when sched_switch keeps the running
  thread; sleep as sleepq_switch calls mi_switch; wakeup in the waker, its args the sleeper (sleepq_resume_thread);
  enqueue as sched_add puts a thread on the run queue (a woken thread, a new process's or thread's first, the
  running thread that yields), dequeue as the scheduler takes the next one off it. The idle thread is never on a
  run queue (ULE runs it when the queue is empty), so it is never enqueued or dequeued.
- proc (kern_fork.c, kern_exec.c, kern_exit.c, kern_sig.c): create (args: the child's struct proc, the parent's,
  fork's flags, read from do_fork's arguments, which an enabled create probe records), exec and exec-success
  (args[0]: the path), exec-failure (the errno of a failed execve), exit (CLD_EXITED or CLD_KILLED),
  signal-send and signal-discard (the target thread and process, the signal). FreeBSD has no signal-deliver
  (Solaris's); a delivered signal is seen at fbt::postsig:entry.
- io (sys/kern/subr_devstat.c): start as a buffer's transfer is queued on the disk (g_io_request), done as the
  disk's completion interrupt runs bufdone; args[0] is the struct bio, args[1] the disk's struct devstat. The
  simulated disk serves its requests in order, so each done is the oldest request outstanding.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from sim.core.events import (
    ContextSwitch,
    DiskRequest,
    EntryArguments,
    Exec,
    Fork,
    KernelObject,
    ProcessExit,
    ProcessStart,
    SignalDiscarded,
    SignalPosted,
    ThrNew,
    Wakeup,
)
from sim.core.log import Event
from sim.core.walker import MAXCOMLEN
from sim.kern.dtrace_args import OBJECT_BASE, OBJECT_STRIDE, PROC_BASE, THREAD_BASE

SCHED_PROBES = ("on-cpu", "off-cpu", "remain-cpu", "sleep", "wakeup", "enqueue", "dequeue")
PROC_PROBES = ("create", "exec", "exec-success", "exec-failure", "exit", "signal-send", "signal-discard")
IO_PROBES = ("start", "done")
SDT_PROVIDERS = {"sched": SCHED_PROBES, "proc": PROC_PROBES, "io": IO_PROBES}

# Each probe's argument types, as its SDT_PROBE_DEFINE declares them (args[] in D)
THREAD_AND_PROC = ("struct thread *", "struct proc *")
SIGNATURES: dict[tuple[str, str], tuple[str, ...]] = {
    ("sched", "off-cpu"): THREAD_AND_PROC,
    ("sched", "wakeup"): THREAD_AND_PROC,
    ("sched", "enqueue"): (*THREAD_AND_PROC, "void *", "int"),
    ("sched", "dequeue"): (*THREAD_AND_PROC, "void *"),
    ("proc", "create"): ("struct proc *", "struct proc *", "int"),
    ("proc", "exec"): ("char *",),
    ("proc", "exec-success"): ("char *",),
    ("proc", "exec-failure"): ("int",),
    ("proc", "exit"): ("int",),
    ("proc", "signal-send"): (*THREAD_AND_PROC, "int"),
    ("proc", "signal-discard"): (*THREAD_AND_PROC, "int"),
    ("io", "start"): ("struct bio *", "struct devstat *"),
    ("io", "done"): ("struct bio *", "struct devstat *"),
}

CLD_EXITED, CLD_KILLED = 1, 2  # sys/wait.h: proc:::exit's arg0
IDLE_PROCESS = (11, "idle")  # sim/kern/sched.py's idle thread: FreeBSD's pid 11
DISK = KernelObject("struct devstat", OBJECT_BASE - OBJECT_STRIDE, (("device_name", "ada"), ("unit_number", 0)))


def proc_object(pid: int, comm: str) -> KernelObject:
    """A process as D reads it at a firing: its struct proc at the address curthread->td_proc gives it."""
    return KernelObject("struct proc", PROC_BASE + pid * OBJECT_STRIDE * 4,
                        (("p_pid", pid), ("p_comm", comm.encode()[:MAXCOMLEN])))  # fmt: skip


def thread_object(tid: int, pid: int, comm: str) -> KernelObject:
    """A thread as D reads it: the same struct thread as curthread for that thread."""
    return KernelObject("struct thread", THREAD_BASE + tid * OBJECT_STRIDE * 4,
                        (("td_proc", proc_object(pid, comm)), ("td_tid", tid),
                         ("td_name", comm.encode()[:MAXCOMLEN])))  # fmt: skip


def sdt_arguments(enabling) -> set[str]:
    """Kernel functions whose fbt entry arguments an enabled SDT probe reads (do_fork's flags for proc:::create)."""
    return {"do_fork"} if "create" in (enabling.proc or {}) else set()


class SdtArgs(tuple):
    """An SDT firing's arg0.. (an object's address); `facts` are what its typed args[] read."""

    facts: tuple = ()


def _arguments(*facts) -> Callable[[], tuple]:
    def arguments() -> tuple:
        args = SdtArgs(v.address if isinstance(v, KernelObject) else 0 if isinstance(v, str) else v for v in facts)
        args.facts = facts
        return args

    return arguments


class SdtFirings:
    """The sched, proc and io probes a program enabled, fired by ProbeWalk at the events that imply them."""

    def __init__(self, walk, probes: dict[str, dict]) -> None:
        self.walk = walk
        self.sched, self.proc, self.io = probes.get("sched", {}), probes.get("proc", {}), probes.get("io", {})
        self.fork_arguments: tuple | None = None  # do_fork's, recorded for proc:::create
        self.disk: deque[KernelObject] = deque()  # io requests queued and not yet done
        self.bios = 0
        # kernel functions whose entry fires a probe: what ProbeWalk.feed calls at their enter event
        self.on_enter: dict[str, Callable[[int, Event], None]] = {}
        if self.sched.keys() & {"sleep", "enqueue"}:
            self.on_enter["mi_switch"] = self._mi_switch
            self.on_enter["sched_switch"] = self._sched_switch
        if "create" in self.proc:
            self.on_enter["do_fork"] = self._do_fork
        if self.io:
            self.on_enter["bufdone"] = self._bufdone

    # -- what the walk calls --

    def before(self, t: int, event: Event) -> None:
        """An event about to be applied (the walker still in the context it leaves)."""
        data, sched = event.data, self.sched
        if type(data) is Exec:
            self._fire("proc", "exec", t, data.path)  # in do_execve, before the process is the new program
        elif type(data) is ContextSwitch and sched:
            if not self._idle(data.new_tid):
                self._thread_probe("dequeue", t, data.new_tid)
            if event.name == "cpu_switch":
                self._thread_probe("off-cpu", t, data.new_tid)

    def after(self, t: int, event: Event) -> None:
        """An event just applied (a context switch: the walker is in the thread that now runs)."""
        data, kind = event.data, event.kind
        kind_of = type(data)
        if kind_of is ContextSwitch:
            self._fire("sched", "on-cpu", t)
        elif kind == "proc" and event.name == "sched_switch":
            self._thread_probe("dequeue", t, self.walk.walker.tid)
            self._fire("sched", "remain-cpu", t)
        elif kind_of is Wakeup:
            self._thread_probe("wakeup", t, data.tid)
            self._thread_probe("enqueue", t, data.tid)
        elif kind_of is Fork:
            self._create(t, data)
            self._thread_probe("enqueue", t, data.tid)
        elif kind_of is ThrNew:
            self._thread_probe("enqueue", t, data.tid)
        elif kind_of is Exec:
            self._fire("proc", "exec-success", t, data.path)
        elif kind_of is ProcessStart:
            # the shell's execve of the run's own program succeeded as the run began (dtrace -c starts it so)
            self._fire("proc", "exec-success", t, f"/bin/{event.name}")  # programs live in /bin (imgact_elf)
        elif kind_of is ProcessExit:
            self._fire("proc", "exit", t, CLD_KILLED if data.signal else CLD_EXITED)
        elif kind_of is SignalPosted or kind_of is SignalDiscarded:
            self._signal(t, data)
        elif kind_of is DiskRequest and self.io:
            self._io_start(t, data)

    def execve_failed(self, t: int, error: int) -> None:
        self._fire("proc", "exec-failure", t, error)

    # -- the probes --

    def _fire(self, provider: str, name: str, t: int, *facts) -> None:
        probe = getattr(self, provider).get(name)
        if probe is not None:
            walk = self.walk
            walk.fire(walk._prepare(probe, t, _arguments(*facts)))

    def _thread_probe(self, name: str, t: int, tid: int, *more) -> None:
        if name in self.sched:
            pid, comm = self._process_of(tid)
            thread = thread_object(tid, pid, comm)
            extra = (0, 0) if name == "enqueue" else (0,) if name == "dequeue" else ()
            self._fire("sched", name, t, thread, thread.fields[0][1], *extra, *more)

    def _mi_switch(self, t: int, event: Event) -> None:
        stack = self.walk.walker.stack
        if stack and stack[-1] == "sleepq_switch":
            self._fire("sched", "sleep", t)

    def _sched_switch(self, t: int, event: Event) -> None:
        """sched_switch puts a thread that is still running back on the run queue (a yield, a preemption); one
        going to sleep (mi_switch called from sleepq_switch) is not runnable."""
        walker = self.walk.walker
        stack = walker.stack
        if len(stack) >= 2 and stack[-2] == "sleepq_switch" or self._idle(walker.tid):
            return
        self._thread_probe("enqueue", t, walker.tid)

    def _do_fork(self, t: int, event: Event) -> None:
        data = event.data
        self.fork_arguments = data.values if type(data) is EntryArguments else None

    def _create(self, t: int, fork: Fork) -> None:
        if "create" not in self.proc:
            return
        flags = 0
        if self.fork_arguments is not None and isinstance(self.fork_arguments[-1], int):
            flags = self.fork_arguments[-1]  # do_fork(td, p2, td2, vm2, flags)
        child_comm = self.walk.walker.comms.get(fork.child, "")
        parent_comm = self.walk.walker.comms.get(fork.parent, "")
        self._fire("proc", "create", t, proc_object(fork.child, child_comm), proc_object(fork.parent, parent_comm),
                   flags)  # fmt: skip

    def _signal(self, t: int, data) -> None:
        tid = data.tid if type(data) is SignalPosted else self._thread_of(data.pid)
        pid, comm = self._process_of(tid) if tid else (data.pid, "")
        thread = thread_object(tid, pid, comm)
        self._fire("proc", "signal-send", t, thread, thread.fields[0][1], data.sig)
        if type(data) is SignalDiscarded:
            self._fire("proc", "signal-discard", t, thread, thread.fields[0][1], data.sig)

    def _io_start(self, t: int, request: DiskRequest) -> None:
        self.bios += 1
        bio = KernelObject("struct bio", OBJECT_BASE - OBJECT_STRIDE * (1 + self.bios), (("bio_cmd", request.cmd),))
        self.disk.append(bio)
        self._fire("io", "start", t, bio, DISK)

    def _bufdone(self, t: int, event: Event) -> None:
        if self.disk:
            self._fire("io", "done", t, self.disk.popleft(), DISK)

    # -- whose is it --

    def _process_of(self, tid: int) -> tuple[int, str]:
        walker = self.walk.walker
        pid, _ = walker.threads.get(tid, (0, ""))
        return pid, walker.comm_of(tid)

    def _thread_of(self, pid: int) -> int:
        walker = self.walk.walker
        return next((tid for tid in walker.seen_threads() if walker.threads.get(tid, (0, ""))[0] == pid), 0)

    def _idle(self, tid: int) -> bool:
        return self.walk.walker.threads.get(tid, (0, "")) == IDLE_PROCESS
