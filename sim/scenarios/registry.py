"""Lecture scenarios: a command line, the machine it runs on, and the point of the lecture it demonstrates.

A scenario is only inputs plus words: what it shows is whatever the recorded run does, so a scenario's claim is
checked by a test that reads the run's log, never by numbers written here.

A scenario's command may name knobs in braces (`bs={bs} count={count}`): `defaults` gives each knob's value, and
a caller (the web app's parameters form) may pass others to `spec()`; `malloc_conf` is the environment variable
MALLOC_CONF put before the command, as a shell would.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from sim.kern.kernel import KernelConfig
from sim.machine.profiles import DEFAULT_PROFILE
from sim.run import RunSpec

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
    )
)

register(
    Scenario(
        slug="clock-gettime-vdso",
        title="clock_gettime() without a system call",
        summary=(
            "libc's clock_gettime() finds the kernel's timekeeping page (the vdso's timehands, mapped into "
            "every process) and computes the time in user mode from rdtscp. The first call's first read of that "
            "shared page takes a page fault (demand paging, not a system call); the second call never leaves "
            "ring 3."
        ),
        command="clock-gettime",
        lecture_point=(
            "System calls need not trap: the vdso gives libc a dynamic implementation that reads kernel-"
            "maintained data directly."
        ),
        question="The first call traps once and the second not at all. What did the first call's trap do?",
        views=("narrative", "timeline", "cpu"),
        slide="System-call invocation",
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
    )
)

register(
    Scenario(
        slug="dd-junk-false",
        title="dd with MALLOC_CONF=junk:false",
        summary=(
            "The same dd, but jemalloc no longer junk-fills the buffer from user mode. The pages are first touched "
            "by the kernel itself, in read()'s copyout from /dev/zero: the demand-zero faults move from user mode "
            "into kernel mode, inside the system call, recovered through the same vm_fault path."
        ),
        command="dd if=/dev/zero of=/dev/null bs={bs} count={count}",
        defaults={"bs": "10m", "count": "1", "malloc_conf": "junk:false"},
        lecture_point=(
            "The kernel demand-fills pages with zeroes only to copyout() zeroes into them from /dev/zero: who "
            "touches a page first decides where its zeroing is billed, but not whether it happens."
        ),
        question="With junk filling off, do the faults go away, or only move? Compare the latency view.",
        views=("narrative", "timeline", "source", "latency"),
        slide="System calls in practice: dd",
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

# Scenarios kept in modules of their own register themselves when imported.
from sim.scenarios import kernel_bugs  # noqa: E402, F401  isort: skip
