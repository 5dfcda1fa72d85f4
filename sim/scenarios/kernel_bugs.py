"""Scenarios for slide "Security and reliability (4)": the kernel dereferencing a user pointer by mistake, with
and without SMAP, and a kernel NULL-pointer dereference (sim/kern/kld_bugs.py makes the mistakes)."""

from __future__ import annotations

from sim.kern.kernel import KernelConfig
from sim.scenarios.registry import Scenario, register
from sim.scenarios.stops import Stop, first, syscall

SLIDE = "Security and reliability"

register(
    Scenario(
        slug="kernel-user-deref",
        title="The kernel dereferences a user pointer by mistake (no SMAP)",
        summary=(
            "A buggy kernel module reads an int straight through the pointer a program passed it, with no "
            "copyin(). On FreeBSD 11's machine CR4.SMAP is clear, so the load just works: the kernel reads "
            "whatever memory the user chose, and nothing notices."
        ),
        command="kernel-bug user",
        lecture_point=(
            "Kernel bugs can make the kernel touch user memory by mistake, trusting user code or data; without "
            "SMAP the hardware does not stop it."
        ),
        question="Which instruction read the user's memory, and why did the MMU allow it in ring 0?",
        views=("narrative", "cpu", "walk", "source"),
        slide=SLIDE,
        stops=(
            Stop("buggy-call", syscall("l41_bug"), "narrative", "The buggy module's system call is dispatched"),
            Stop("deref", first("insn", "movq (%rax),%rax"), "cpu", "The kernel loads through the user's pointer"),
            Stop(
                "returns",
                first("sysret", "success", after=syscall("l41_bug")),
                "cpu",
                "No fault: the kernel read the user's memory",
            ),
        ),
    )
)

register(
    Scenario(
        slug="kernel-user-deref-smap",
        title="The same mistake with SMAP on: a fatal trap",
        summary=(
            "The same buggy read with CR4.SMAP set (FreeBSD 12 and later on a CPU that has it). rflags.AC is "
            "clear, as no stac opened user access, so the CPU faults the kernel's load of a present user page; "
            'trap_pfault() finds no pcb_onfault and trap_fatal() prints "Fatal trap 12": the kernel panics '
            "rather than read user memory it was not meant to."
        ),
        command="kernel-bug user",
        config=KernelConfig(smap=True),
        lecture_point=(
            "Supervisor Mode Access Prevention turns the kernel's accidental use of a user pointer into a fault: "
            "only copyin()/copyout(), between stac and clac, may touch user pages."
        ),
        question="The page was present and readable. What in the page-fault error code says why it faulted?",
        views=("narrative", "cpu", "walk", "source"),
        slide=SLIDE,
        stops=(
            Stop("deref", first("insn", "movq (%rax),%rax"), "cpu", "The kernel loads through the user's pointer"),
            Stop("smap-fault", first("trap", "#PF"), "cpu", "SMAP: a protection fault on a present user page"),
            Stop("fatal", first("enter", "trap_fatal"), "narrative", "No pcb_onfault: trap_fatal, Fatal trap 12"),
            Stop("panic", first("panic"), "narrative", "panic: page fault"),
        ),
    )
)

register(
    Scenario(
        slug="kernel-null-deref",
        title="A kernel NULL-pointer dereference: Fatal trap 12",
        summary=(
            "The buggy module reads a field through a NULL structure pointer. Page 0 is user space and nothing is "
            "mapped there, the access comes from ring 0 with no pcb_onfault to recover through, and trap_fatal() "
            "prints FreeBSD's report (fault virtual address 0x10, supervisor read data, page not present) and "
            "panics."
        ),
        command="kernel-bug null",
        lecture_point=(
            "Kernel NULL-pointer dereferences are fatal; were a process able to map page 0, they would read (or run) "
            "what it put there, which is why FreeBSD forbids mapping it (security.bsd.map_at_zero=0)."
        ),
        question="Why is a fault at address 0x10 fatal here, when dd's faults on its buffer were not?",
        views=("narrative", "cpu", "walk", "source"),
        slide=SLIDE,
        stops=(
            Stop("null-load", first("insn", "movq (%rax),%rax"), "cpu", "The kernel loads a field at NULL + 0x10"),
            Stop("walk", first("walk", "PDE"), "walk", "The walk finds nothing mapped at page 0"),
            Stop("fault", first("trap", "#PF"), "cpu", "A page fault in kernel mode, %cr2 = 0x10"),
            Stop("panic", first("panic"), "narrative", "trap_fatal prints Fatal trap 12, and the kernel panics"),
        ),
    )
)
