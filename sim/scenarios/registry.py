"""Lecture scenarios: a command line, the machine it runs on, and the point of the lecture it demonstrates.

A scenario is only inputs plus words: what it shows is whatever the recorded run does, so a scenario's claim is
checked by a test that reads the run's log, never by numbers written here.

A scenario's command may name knobs in braces (`bs={bs} count={count}`): `defaults` gives each knob's value, and
a caller (the web app's parameters form) may pass others to `spec()`; `malloc_conf` is the environment variable
MALLOC_CONF put before the command, as a shell would. `stops` are the steps worth pausing on, found in the run's
log by selectors (sim/scenarios/stops.py, whose docstring gives the data shape the web app reads).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from sim.kern.errno import EFAULT, EINTR
from sim.kern.kernel import KernelConfig
from sim.machine.physmem import PAGE_SIZE
from sim.machine.profiles import DEFAULT_PROFILE
from sim.run import RunSpec
from sim.scenarios.stops import (
    Stop,
    cerror,
    fault,
    first,
    junk_fill,
    page_fault_trap,
    run_end,
    syscall,
    sysret_error,
)

# Knobs a scenario's command may use: what each one means, for forms and error messages.
KNOBS = MappingProxyType(
    {
        "bs": "dd's block size: bytes, or a number with k, m or g (dd's own syntax)",
        "count": "how many blocks dd copies, or how many times getpid() is called",
        "malloc_conf": "MALLOC_CONF for jemalloc: junk:true fills each allocation from user mode, junk:false does not",
        "command": "a whole command line, as a shell reads it: NAME=value ... program operand ...",
    }
)


@dataclass(frozen=True)
class Scenario:
    slug: str  # the scenario's name in URLs: /scenarios/<slug>
    title: str
    summary: str  # what a student will watch happen, in a sentence or two
    command: str  # the command line run on the simulated machine, with {knob} placeholders
    lecture_point: str  # the claim of the lecture this scenario demonstrates
    profile: str = DEFAULT_PROFILE
    config: KernelConfig = field(default_factory=KernelConfig)
    defaults: Mapping[str, str] = field(default_factory=dict)  # knob -> its value when the caller gives none
    question: str = ""  # the question the scenario puts to the student, if any
    views: tuple[str, ...] = ()  # the views that tell this scenario's story best (projector mode's default)
    slide: str = ""  # the lecture slide it belongs to: the landing page groups scenarios by slide
    stops: tuple[Stop, ...] = ()  # the steps worth pausing on, in the story's order (sim/scenarios/stops.py)

    @property
    def knobs(self) -> tuple[str, ...]:
        """The knobs this scenario's command takes, in the order a form shows them."""
        return tuple(knob for knob in KNOBS if knob in self.defaults)

    def command_line(self, knobs: Mapping[str, str] | None = None) -> str:
        values = {**self.defaults, **(knobs or {})}
        unknown = set(values) - set(self.defaults)
        if unknown:
            raise ValueError(f"scenario {self.slug!r} has no knob {', '.join(sorted(unknown))}")
        command = self.command.format(**values)
        malloc_conf = values.get("malloc_conf", "")
        return f"MALLOC_CONF={malloc_conf} {command}" if malloc_conf else command

    def spec(
        self, knobs: Mapping[str, str] | None = None, profile: str | None = None, config: KernelConfig | None = None
    ) -> RunSpec:
        return RunSpec(command=self.command_line(knobs), profile=profile or self.profile, config=config or self.config)

    def with_config(self, **changes: object) -> KernelConfig:
        return replace(self.config, **changes)


class UnknownScenario(LookupError):
    """No scenario has this slug; the message lists the ones that exist."""

    def __init__(self, slug: str) -> None:
        super().__init__(f"no scenario named {slug!r} (scenarios: {', '.join(SCENARIOS)})")
        self.slug = slug


SCENARIOS: dict[str, Scenario] = {}

DD_READ = syscall("read", after=first("user", "main"))  # dd's own read of its input, not rtld's of a library


def register(scenario: Scenario) -> Scenario:
    if scenario.slug in SCENARIOS:
        raise ValueError(f"scenario {scenario.slug!r} is registered twice")
    SCENARIOS[scenario.slug] = scenario
    return scenario


def lookup(slug: str) -> Scenario:
    try:
        return SCENARIOS[slug]
    except KeyError:
        raise UnknownScenario(slug) from None


register(
    Scenario(
        slug="getpid",
        title="getpid(): a system call as a trap",
        summary=(
            "A program calls getpid() through libc's stub. The syscall instruction switches the CPU from ring 3 "
            "to ring 0; the kernel saves the user's registers in a trapframe, runs syscallenter, sys_getpid and "
            "syscallret, and sysretq returns to ring 3 with the pid in %rax and the carry flag clear."
        ),
        command="getpid",
        lecture_point=(
            "A system call is a trap: a controlled transfer into the kernel at an address the kernel chose, "
            "with the user's state saved in a trapframe and restored on return."
        ),
        question="Which of syscallenter's hooks ran, and what did the skipped ones cost?",
        views=("narrative", "timeline", "cpu", "source"),
        slide="System calls",
        stops=(
            Stop("syscall-insn", first("insn", "syscall"), "cpu", "libc's stub executes syscall: ring 3 -> ring 0"),
            Stop("trapframe", first("insn", "build trapframe"), "cpu", "The user's registers are saved in a trapframe"),
            Stop("hooks", first("skip", "ktrsyscall"), "source", "syscallenter's hooks: each one a flag test, skipped"),
            Stop("sys-getpid", syscall("getpid"), "source", "Dispatched through sysent: sys_getpid runs"),
            Stop("sysretq", first("insn", "sysretq"), "cpu", "sysretq: back to ring 3, the pid in %rax, carry clear"),
        ),
    )
)

# The lecture's own system-call examples (sim/user/lecture_programs.py, lecture_files.py), slide by slide.

register(
    Scenario(
        slug="eintr",
        title="EINTR: a signal interrupts a blocking read()",
        summary=(
            "The parent sleeps in read() on an empty pipe; its child sends it SIGUSR1. The kernel aborts the "
            "sleep, delivers the signal through the trampoline in the shared page, and, as the handler was "
            "installed without SA_RESTART, read() returns -1 with the carry flag set: cerror stores errno 4."
        ),
        command="eintr",
        lecture_point=(
            'System calls have quirks normal functions lack: per-thread errno, and EINTR, "work got '
            'interrupted, try again".'
        ),
        question="The child also wrote two bytes into the pipe. Why did the parent's read() not get them?",
        views=("narrative", "timeline", "cpu", "source"),
        slide="System calls",
        stops=(
            Stop("read-sleeps", first("proc", "sleep"), "timeline", "read() sleeps on the empty pipe"),
            Stop("kill", syscall("kill"), "narrative", "The child sends SIGUSR1 to its parent"),
            Stop("sleep-aborted", sysret_error(EINTR), "cpu", "The sleep is aborted: read() fails with EINTR"),
            Stop("handler", first("signal", "sendsig"), "narrative", "The handler's frame is pushed on the user stack"),
            Stop("eintr-return", cerror(EINTR), "cpu", "cerror stores errno 4 (EINTR): read() returned -1"),
        ),
    )
)

register(
    Scenario(
        slug="eintr-restart",
        title="SA_RESTART: the interrupted read() runs again",
        summary=(
            "The same program with the handler installed with SA_RESTART (eintr -r). After the handler, the "
            "kernel answers ERESTART: it backs the saved %rip up over the 2-byte syscall instruction, so the "
            "read() is issued again and returns the child's two bytes."
        ),
        command="eintr -r",
        lecture_point=(
            "With SA_RESTART the kernel restarts the interrupted call itself: the program never sees EINTR, "
            "and the log shows the same syscall instruction executed twice."
        ),
        question="Which register did the kernel change so that the call ran again, and by how much?",
        views=("narrative", "timeline", "cpu", "source"),
        slide="System calls",
        stops=(
            Stop("read-sleeps", first("proc", "sleep"), "timeline", "read() sleeps on the empty pipe"),
            Stop("erestart", first("sysret", "ERESTART"), "cpu", "ERESTART: %rip is backed up over the syscall"),
            Stop("read-again", syscall("read", nth=2), "cpu", "After the handler the same read() runs again"),
            Stop(
                "read-returns",
                first("sysret", "success", after=syscall("read", nth=2)),
                "cpu",
                "read() returns the child's 2 bytes",
            ),
        ),
    )
)

register(
    Scenario(
        slug="fork-returns-twice",
        title="fork() returns ... twice",
        summary=(
            "One process calls fork(); two come back from the same instruction of libc's stub. The parent returns "
            "through sysretq with the child's pid in %rax; the child, a new process with a copy of the parent's "
            "address space, leaves the kernel through fork_trampoline, fork_return and iretq with 0 in %rax."
        ),
        command="fork",
        lecture_point="Some system calls manipulate control flow or the process life cycle: fork() returns twice.",
        question="Find the two returns to user mode at the same %rip. What differs between them besides %rax?",
        views=("narrative", "timeline", "cpu", "vm"),
        slide="System-call synchrony",
        stops=(
            Stop("fork", syscall("fork"), "source", "fork(): one process enters the kernel"),
            Stop("child-made", first("proc", "fork"), "vm", "The child exists, with a copy of the address space"),
            Stop(
                "parent-returns",
                first("insn", "sysretq", after=syscall("fork")),
                "cpu",
                "The parent returns: the child's pid in %rax",
            ),
            Stop(
                "child-returns", first("proc", "fork_exit"), "cpu", "The child returns through fork_return: 0 in %rax"
            ),
        ),
    )
)

register(
    Scenario(
        slug="exit-never-returns",
        title="_exit() never returns",
        summary=(
            "The program prints a line, calls _exit(3), and has another printf after it. exit1() frees the "
            "address space and thread_exit() hands the CPU to another thread (cpu_throw): there is no sysretq, "
            "and the second line never appears."
        ),
        command="exit",
        lecture_point="Some system calls manipulate control flow or the process life cycle: _exit() never returns.",
        question="Which kernel steps follow the exit system call, and where does the CPU go instead of returning?",
        views=("narrative", "timeline", "cpu", "source"),
        slide="System-call synchrony",
        stops=(
            Stop("exit", syscall("exit"), "source", "_exit(3): into the kernel, never to return"),
            Stop(
                "address-space-freed", first("mem", "vm_map_entry_delete"), "source", "exit1() frees the address space"
            ),
            Stop(
                "cpu-throw",
                first("proc", "cpu_throw"),
                "timeline",
                "cpu_throw: the CPU goes to another thread, no sysretq",
            ),
        ),
    )
)

register(
    Scenario(
        slug="pthread-create",
        title="pthread_create() creates a thread",
        summary=(
            "libthr maps a stack and calls thr_new(2): the kernel makes a second thread in the same process, "
            "which starts in thread_start. Both threads print the same pid and different thread ids; "
            "pthread_join() sleeps in _umtx_op until thr_exit wakes it."
        ),
        command="thread",
        lecture_point="Some system calls manipulate control flow or the thread life cycle: pthread_create().",
        question="The two threads share a pid. Do they share an address space (compare %cr3)?",
        views=("narrative", "timeline", "cpu", "source"),
        slide="System-call synchrony",
        stops=(
            Stop("thr-new", syscall("thr_new"), "source", "pthread_create() calls thr_new(2)"),
            Stop("thread-made", first("proc", "thr_new"), "cpu", "A second thread in the same process"),
            Stop("thread-runs", first("proc", "fork_exit"), "cpu", "The new thread starts: same %cr3, its own stack"),
            Stop(
                "join-wakes",
                first("proc", "wakeup", after=syscall("thr_exit")),
                "timeline",
                "thr_exit wakes pthread_join",
            ),
        ),
    )
)

register(
    Scenario(
        slug="setcontext",
        title="setcontext() rewrites the thread's registers",
        summary=(
            "getcontext() copies the thread's saved registers out to a ucontext; the program rewrites its %rip "
            "and %rsp, and setcontext() loads them into the trapframe and answers EJUSTRETURN, so the thread "
            "leaves the kernel through iretq into a function no one called, on a new stack."
        ),
        command="setcontext",
        lecture_point="Some system calls manipulate control flow: setcontext() rewrites thread register state.",
        question="Why does setcontext() return through iretq rather than sysretq?",
        views=("narrative", "timeline", "cpu", "source"),
        slide="System-call synchrony",
        stops=(
            Stop("getcontext", syscall("getcontext"), "source", "getcontext() copies the registers out"),
            Stop("setcontext", syscall("setcontext"), "source", "setcontext() loads the rewritten registers"),
            Stop("ejustreturn", first("sysret", "EJUSTRETURN"), "cpu", "EJUSTRETURN: the trapframe is left as set"),
            Stop(
                "iretq",
                first("insn", "iretq", after=first("sysret", "EJUSTRETURN")),
                "cpu",
                "iretq into a function nobody called",
            ),
        ),
    )
)

register(
    Scenario(
        slug="write-file",
        title="write(): done, but not on the disk yet",
        summary=(
            "write() copies the data into the buffer cache (a delayed write, bdwrite) and returns; the program "
            "overwrites its buffer at once and the file still holds what was written. The disk gets the data "
            "only about 30 seconds later, when the syncer kernel process writes the dirty buffer out."
        ),
        command="write-file",
        lecture_point=(
            "Synchronous calls can do asynchronous work: write() writes to the disk eventually, and copy "
            "semantics let the caller reuse its buffer immediately."
        ),
        question="How long after write() returned did the disk write complete, and which thread started it?",
        views=("narrative", "timeline", "source"),
        slide="System-call asynchrony",
        stops=(
            Stop("write", syscall("write"), "source", "write() copies the data into the buffer cache"),
            Stop("bdwrite", first("mem", "bdwrite"), "narrative", "bdwrite: a delayed write, and write() returns"),
            Stop(
                "syncer", first("proc", "sync_vnode"), "timeline", "About 30 s later the syncer writes the buffer out"
            ),
            Stop("on-disk", first("mem", "bufdone"), "timeline", "bufdone: only now is the data on the disk"),
        ),
    )
)

register(
    Scenario(
        slug="aio-write",
        title="aio_write(): the caller must wait",
        summary=(
            "aio_write() only queues a job and returns 0; an AIO daemon (a kernel process) borrows the program's "
            "address space and does the write. Until the disk has it, aio_error() answers EINPROGRESS (36); "
            "aio_return() then collects the byte count, and only then may the buffer be reused."
        ),
        command="aio-write",
        lecture_point=(
            "Some system calls have asynchronous semantics: aio_write() requests a write, aio_error() and "
            "aio_return() collect the result later, and the caller must wait to reuse its buffer (shared "
            "semantics)."
        ),
        question="Which thread copies the program's buffer into the kernel, and in whose address space?",
        views=("narrative", "timeline", "cpu", "source"),
        slide="System-call asynchrony",
        stops=(
            Stop("aio-write", syscall("aio_write"), "source", "aio_write() only queues a job"),
            Stop("queued", first("proc", "aio_queue"), "narrative", "The job is queued; the call returns 0"),
            Stop("in-progress", syscall("aio_error"), "cpu", "aio_error(): EINPROGRESS, the buffer is still in use"),
            Stop("complete", first("proc", "aio_complete"), "timeline", "The AIO daemon completes the write"),
            Stop("aio-return", syscall("aio_return"), "cpu", "aio_return() collects the count: now reuse the buffer"),
        ),
    )
)

register(
    Scenario(
        slug="clock-gettime-vdso",
        title="clock_gettime() without a system call",
        summary=(
            "libc's clock_gettime() finds the kernel's timekeeping page (the vdso's timehands, mapped into "
            "every process) and computes the time in user mode from the TSC (lfence; rdtsc). The first call's "
            "first read of that shared page takes a page fault (demand paging, not a system call); the second "
            "call never leaves ring 3. This runs on the modern profile, whose timecounter is the TSC: on the "
            "lecture's machine (an HPET timecounter, which the vdso cannot read) the same call is a system call, "
            "as slide 16 shows."
        ),
        command="clock-gettime",
        profile="modern",
        lecture_point=(
            "System calls need not trap: the vdso gives libc a dynamic implementation that reads kernel-"
            "maintained data directly."
        ),
        question="The first call traps once and the second not at all. What did the first call's trap do?",
        views=("narrative", "timeline", "cpu"),
        slide="System-call invocation",
        stops=(
            Stop(
                "vdso", first("user", "__vdso_clock_gettime"), "cpu", "libc calls the vdso's clock_gettime: no syscall"
            ),
            Stop("first-touch", page_fault_trap(user=True), "cpu", "Its first read of the shared page traps"),
            Stop("soft-fault", fault("soft"), "vm", "A soft fault maps the resident timekeeping page"),
            Stop(
                "second-call",
                first("user", "__vdso_clock_gettime", nth=2),
                "timeline",
                "The second call never leaves ring 3",
            ),
        ),
    )
)

register(
    Scenario(
        slug="read-kernel-pointer",
        title="A kernel pointer passed to read() gets EFAULT",
        summary=(
            "read() from /dev/zero into a user buffer succeeds. The same call with a kernel address (KERNBASE) "
            "as the buffer fails: copyout() checks the range against VM_MAXUSER_ADDRESS before it touches "
            "anything, the call returns with the carry flag set, and cerror stores errno 14 (EFAULT)."
        ),
        command="read-kernel-pointer",
        lecture_point=(
            "The user-kernel interface is a key TCB surface: system-call arguments are processed with the "
            "rights of user code, so read() may not store through a kernel pointer."
        ),
        question="Did the kernel fault on the kernel address, or refuse it before touching it?",
        views=("narrative", "timeline", "cpu", "source"),
        slide="Security and reliability",
        stops=(
            Stop("good-read", syscall("read"), "source", "read() into a user buffer: copyout succeeds"),
            Stop("kernel-pointer", syscall("read", nth=2), "cpu", "read() with a kernel address as its buffer"),
            Stop("refused", first("hook", "copyout_fault"), "source", "copyout refuses the range before touching it"),
            Stop("efault", cerror(EFAULT), "cpu", "cerror stores errno 14 (EFAULT)"),
        ),
    )
)

register(
    Scenario(
        slug="dd-system-time",
        title="dd: where does system time go?",
        summary=(
            "time dd if=/dev/zero of=/dev/null bs=10m count=1 reports about 0.4 s of system time, yet DTrace "
            "finds only milliseconds inside system calls. Step to the page faults: dd's 20 MiB buffer is touched page "
            "by page, each first touch traps, and vm_fault zeroes a fresh page (pmap_zero_page -> pagezero)."
        ),
        command="dd if=/dev/zero of=/dev/null bs={bs} count={count}",
        defaults={"bs": "10m", "count": "1", "malloc_conf": ""},
        lecture_point=(
            "The process model's isolation costs real time: the kernel zero-fills every page on demand, so a new "
            "buffer costs a trap and a page zeroing per 4 KiB, and that, not the system calls, is the system time."
        ),
        question=(
            "In the lecture, time(1) said 0.396 s of system time and DTrace found about 3 ms in system calls. "
            "Here too the system calls are milliseconds: where is the rest?"
        ),
        views=("narrative", "timeline", "walk", "vm", "latency"),
        slide="System calls in practice: dd",
        stops=(
            Stop(
                "first-fault",
                page_fault_trap(user=True, before=junk_fill(PAGE_SIZE)),
                "walk",
                "jemalloc's junk fill touches a page of the buffer: a trap",
            ),
            Stop(
                "zero-fill",
                fault("zero_fill", after=page_fault_trap(user=True, before=junk_fill(PAGE_SIZE))),
                "vm",
                "vm_fault zero-fills a fresh page and maps it",
            ),
            Stop("read", DD_READ, "source", "read() from /dev/zero: the system call itself is quick"),
            Stop("end", run_end(), "latency", "Where did system time go? Faults, not system calls"),
        ),
    )
)

register(
    Scenario(
        slug="dd-junk-false",
        title="dd with MALLOC_CONF=junk:false",
        summary=(
            "The same dd, but jemalloc no longer junk-fills the buffer from user mode. dd's buffer holds an input "
            "and an output block (in.dbsz + out.dbsz - 1 bytes, 20 MiB), and read() copies out into only the "
            "first 10 MiB: those pages are first touched by the kernel itself, in copyout, so their demand-zero "
            "faults move into kernel mode, inside the system call, through the same vm_fault path. The other half "
            "is never touched, so it is never faulted in nor zeroed."
        ),
        command="dd if=/dev/zero of=/dev/null bs={bs} count={count}",
        defaults={"bs": "10m", "count": "1", "malloc_conf": "junk:false"},
        lecture_point=(
            "The kernel demand-fills pages with zeroes only to copyout() zeroes into them from /dev/zero: who "
            "touches a page first decides where its zeroing is billed, and a page nobody touches is never zeroed "
            "at all (junk filling touched all 20 MiB; read() touches the 10 MiB it fills)."
        ),
        question=(
            "With junk filling off, do the faults go away, only move, or also shrink? Count the zero-fill faults "
            "in the VM view and compare the latency view with the junk-filled run."
        ),
        views=("narrative", "timeline", "source", "latency"),
        slide="Traps in practice: dd (3)",
        stops=(
            Stop("read", DD_READ, "source", "read() copies out zeroes into the untouched buffer"),
            Stop("kernel-fault", page_fault_trap(user=False), "walk", "copyout touches a new page: a kernel-mode trap"),
            Stop(
                "zero-fill",
                fault("zero_fill", after=page_fault_trap(user=False)),
                "vm",
                "The same vm_fault zero-fills it",
            ),
            Stop("end", run_end(), "latency", "The faults moved into read(): compare the latency"),
        ),
    )
)

register(
    Scenario(
        slug="command",
        title="Any command line",
        summary=(
            "Step through any command line the simulated system can run (getpid, dd, ipc-benchmark, ...), with "
            "environment assignments as a shell reads them, e.g. MALLOC_CONF=junk:false dd bs=1m count=2."
        ),
        command="{command}",
        defaults={"command": "dd if=/dev/zero of=/dev/null bs=1m count=1"},
        lecture_point=(
            "Every view is a function of one recorded run: change the command or the kernel's switches and "
            "compare what the log says."
        ),
    )
)

# Scenarios kept in modules of their own register themselves when imported, so every user of SCENARIOS sees them.
from sim.scenarios import kernel_bugs, lecture_slides  # noqa: E402, F401  isort: skip
