"""The lecture, slide by slide: what each slide of "The Process Model (2)" (shared/lecture/) claims, and the
scenarios that show it. A slide that only states a fact says so in a sentence (`fact`) rather than inventing a
run; a slide may have both (the invocation slide's vdso is a scenario, Xen's hypercall page a fact).

A scenario belongs to the slide its `slide` field names (a slide's title or one of its `aliases`); the outline
page and `trapscope scenarios` list them in the slides' order. A scenario whose slide is not in this list is
still listed, after the slides, so a new one is never lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.scenarios.registry import SCENARIOS, Scenario


@dataclass(frozen=True)
class Slide:
    number: int  # its page in the lecture's PDF
    title: str
    claim: str  # what the slide says, in our words
    fact: str = ""  # a slide (or part of one) that only states a fact: why it has no scenario
    aliases: tuple[str, ...] = ()  # other names scenarios give the slide

    def names(self) -> tuple[str, ...]:
        return (self.title, *self.aliases)


SLIDES = (
    Slide(1, "The Process Model (2)", "The title.", fact="The title slide: L41, lecture 4, 15 November 2017."),
    Slide(
        2,
        "Reminder: last time",
        "Isolation comes from virtual addressing and rings; traps are the controlled way into the kernel.",
        fact="A recap of lecture 3: its mechanisms (rings, traps, page tables, fork and exec) are the scenarios "
        "of the slides below.",
    ),
    Slide(
        3,
        "This time: the process model (2)",
        "The plan: traps and system calls, then virtual memory's support for the process model.",
        fact="The lecture's agenda: no mechanism of its own.",
    ),
    Slide(
        4,
        "System calls",
        "A system call is a trap with function-call semantics, in five steps (trap, copy the arguments in, do "
        "the work, copy the results out, return); errno and EINTR are its quirks.",
    ),
    Slide(
        5,
        "System-call synchrony",
        "Most calls return when their work is done (getpid, read); some change control flow or the life cycle: "
        "_exit never returns, fork returns twice, pthread_create makes a thread, setcontext rewrites registers.",
    ),
    Slide(
        6,
        "System-call asynchrony",
        "A synchronous call may leave work for later (write reaches the disk eventually; mmap loads on demand); "
        "aio_write is asynchronous, and its buffer must not be reused before aio_return.",
    ),
    Slide(
        7,
        "System-call invocation",
        "libc's stubs trap with the syscall instruction, or a dynamic implementation (the vdso) avoids the trap; "
        "a machine-dependent trap vector leads to the machine-independent syscall code, its prologue, the "
        "service, and its epilogue.",
        fact="Xen's hypercall page (a page of call stubs the hypervisor fills in) is a fact of the slide: "
        "trapscope models no hypervisor.",
    ),
    Slide(
        8,
        "System-call table: syscalls.master",
        "syscalls.master is the source of the system-call table (sysent) and of libc's stubs: stub generation, "
        "as for RPC.",
    ),
    Slide(
        9,
        "Security and reliability (1)",
        "The system-call interface is the TCB's surface: isolation, access control on every operation, and "
        "accountability (auditing).",
    ),
    Slide(
        10,
        "Security and reliability (2)",
        "Every thread carries an unforgeable credential, checked by system calls and cached for asynchronous "
        "work; the kernel survives a misbehaving process.",
    ),
    Slide(
        11,
        "Security and reliability (3)",
        "Confidentiality costs: memory is zeroed before another process may see it; arguments are data, never "
        "code, and user pointers need care.",
    ),
    Slide(
        12,
        "Security and reliability (4)",
        "A kernel pointer passed to a system call is refused by copyin/copyout; a kernel that dereferences a user "
        "pointer by mistake is stopped by SMAP and SMEP; a kernel NULL dereference is fatal.",
        aliases=("Security and reliability",),
    ),
    Slide(
        13,
        "System-call entry: syscallenter",
        "Around the service, syscallenter runs a dozen hooks (credential update, argument fetch, ktrace, ptrace, "
        "capability mode, DTrace, audit): why so many?",
        aliases=("System calls in practice: syscallenter",),
    ),
    Slide(
        14,
        "getauid: return process audit ID",
        "sys_getauid: jailed -> ENOSYS, without the privilege -> EPERM, else copyout of the audit ID.",
    ),
    Slide(
        15,
        "System-call return: syscallret",
        "syscallret and userret run many checks that almost never fire; the trick is making that nothing fast.",
    ),
    Slide(
        16,
        "System calls in practice: dd (1)",
        "time(1) says dd spent 0.396 s in the kernel; a D script sums the time dd spends in each system call.",
        aliases=("System calls in practice: dd",),
    ),
    Slide(
        17,
        "System calls in practice: dd (2)",
        "The script finds only ~3.2 ms in system calls: where are the other 390 ms?",
        fact="The output of slide 16's D script: run that script in the D console of dd's scenario (it is one of "
        "the console's examples) and compare its total with the run's system time.",
    ),
    Slide(
        18,
        "Traps in practice: dd (1)",
        "A D script counts the traps taken outside system calls and the time spent in them.",
    ),
    Slide(
        19,
        "Traps in practice: dd (2)",
        "Thousands of traps, and they hold the missing system time.",
        fact="The output of slide 18's D script, as the D console prints it for dd's scenario.",
    ),
    Slide(
        20,
        "Traps in practice: dd (3)",
        "Profiling kernel stacks finds pagezero: demand-zero faults on dd's buffer; ironically the kernel "
        "zero-fills pages only to copyout() zeroes into them from /dev/zero.",
    ),
    Slide(
        21,
        "So: back to Virtual Memory (VM)",
        "The VM system works hard to avoid the cost of isolation (shared memory, copy-on-write, background page "
        "zeroing, superpages) and manages memory as a cache of storage (demand paging, the page daemon).",
    ),
    Slide(
        22,
        "Mach VM in other operating systems",
        "FreeBSD uses Mach VM to implement fork and execve, mmap, VM-optimised IPC (pipes), the merged VM-buffer "
        "cache, and its VM worker threads (page daemon, syncer, page zeroing).",
        fact="Mac OS X exposes Mach's VM and IPC interfaces to user programs, FreeBSD only inside the kernel: a "
        "fact about two systems, not a mechanism to run. Device drivers' own mappings (GPU memory) are named, "
        "not modelled. The merged VM-buffer cache is a scenario here: a file's buffers are made of its vm_object's "
        "pages, so read(), write() and a mapping share them. The VM worker threads are in the scenarios of slides "
        "6 and 21: the syncer (write-file), the page daemon, page zeroing.",
    ),
    Slide(
        23,
        "For next time: Lab 2, DTrace and IPC",
        "The lab measures IPC performance (pipes and sockets, buffer sizes, threads or processes) with DTrace.",
        fact="The reading (Ellard and Seltzer 2003) is a paper, not a run.",
    ),
)


@dataclass(frozen=True)
class OutlineEntry:
    slide: Slide | None  # None: scenarios whose slide the outline does not list
    scenarios: tuple[Scenario, ...]


def outline() -> tuple[OutlineEntry, ...]:
    """The slides in order, each with its scenarios in the registry's order, then any scenario left over."""
    placed: set[str] = set()
    entries = []
    for slide in SLIDES:
        mine = tuple(s for s in SCENARIOS.values() if s.slide in slide.names())
        placed.update(s.slug for s in mine)
        entries.append(OutlineEntry(slide, mine))
    rest = tuple(s for s in SCENARIOS.values() if s.slug not in placed)
    if rest:
        entries.append(OutlineEntry(None, rest))
    return tuple(entries)


def slide_of(scenario: Scenario) -> Slide | None:
    return next((slide for slide in SLIDES if scenario.slide in slide.names()), None)
