"""The walker: each step's thread, process, program, ring, kernel stack, system call and trap, from the events."""

from __future__ import annotations

from sim.core.events import Exec, Fork, ProcessExit, ProcessStart, SyscallArgs, SyscallResult, Trap
from sim.core.log import Event
from sim.core.walker import Walker
from sim.kern.trap_pfault import T_PAGEFLT
from sim.run import RunSpec, record

SH, CHILD = 100000, 100001


def event(kind: str, name: str, data: object = None, deltas: tuple = ()) -> Event:
    return Event(0, kind, name, data, deltas, 0)


def walked(*events: Event, threads: dict | None = None) -> Walker:
    walker = Walker(threads if threads is not None else {SH: (1000, "sh"), CHILD: (1001, "dd")})
    for e in events:
        walker.step(e)
    return walker


START = event("start", "sh", ProcessStart(1000, "sh -c dd"), (("thread", 0, SH),))
TO_KERNEL = event("insn", "syscall", None, (("reg", "cpl", 3, 0),))
TO_USER = event("insn", "sysretq", None, (("reg", "rip", 0xFFFFFFFF80000000, 0x201002), ("reg", "cpl", 0, 3)))


def test_the_start_event_puts_the_first_thread_on_the_cpu_named_by_its_command():
    walker = walked(START)
    assert (walker.tid, walker.pid, walker.comm, walker.cpl) == (SH, 1000, "sh", 3)


def test_a_forked_child_runs_under_its_parents_name_until_it_execs():
    fork = event("proc", "fork", Fork(1000, 1001, CHILD))
    switch = event("proc", "cpu_switch", None, (("thread", SH, CHILD),))
    walker = walked(START, fork, switch)
    # the run ends with the child named dd (Run.threads), but at this point it is still sh
    assert (walker.tid, walker.pid, walker.comm) == (CHILD, 1001, "sh")
    walker.step(event("proc", "exec", Exec(1001, "/bin/a-program-name-longer-than-maxcomlen", ("x", "-v"))))
    assert walker.comm == "a-program-name-long"  # MAXCOMLEN characters of the file name
    assert walker.comm_of(SH) == "sh"


def test_each_thread_keeps_its_own_kernel_stack_across_switches():
    walker = walked(START, TO_KERNEL, event("enter", "Xfast_syscall"), event("enter", "sys_wait4"))
    walker.step(event("proc", "cpu_switch", None, (("thread", SH, CHILD),)))
    assert walker.stack == []
    walker.step(event("enter", "fork_exit"))
    assert walker.stack == ["fork_exit"] and walker.stack_of(SH) == ["Xfast_syscall", "sys_wait4"]
    walker.step(event("proc", "cpu_switch", None, (("thread", CHILD, SH),)))
    assert (walker.tid, walker.pid, walker.stack) == (SH, 1000, ["Xfast_syscall", "sys_wait4"])


def test_exit_abandons_the_threads_kernel_stack_and_an_unwind_drops_the_frames_it_skips():
    walker = walked(START, event("enter", "trap"), event("enter", "copyout"), event("enter", "pmap_enter"))
    walker.step(event("exit", "copyout"))  # onfault: copyout's caller resumes, pmap_enter never returned
    assert walker.stack == ["trap"]
    walker.step(event("enter", "exit1"))
    walker.step(event("proc", "exit", ProcessExit(1000, "sh", 0, 0)))
    assert walker.stack == []


def test_the_system_call_is_known_from_its_dispatch_to_its_result():
    args = SyscallArgs(("fd", "buf", "nbyte"), (0, 0x1000, 512))
    walker = walked(START, TO_KERNEL, event("syscall", "read", args))
    assert walker.syscall is not None and (walker.syscall.name, walker.syscall.args.values) == (
        "read",
        (0, 0x1000, 512),
    )
    walker.step(event("proc", "cpu_switch", None, (("thread", SH, CHILD),)))
    assert walker.syscall is None  # the other thread is in no system call
    walker.step(event("proc", "cpu_switch", None, (("thread", CHILD, SH),)))
    assert walker.syscall.name == "read"
    walker.step(event("sysret", "success", SyscallResult(0, 512)))
    assert walker.syscall is None


def test_a_trap_is_the_threads_until_it_returns_to_user_mode():
    trap = Trap(T_PAGEFLT, 0x6, 0x800000, True)
    walker = walked(START, event("trap", "#PF", trap, (("reg", "cpl", 3, 0),)), event("enter", "Xpage"))
    assert (walker.trap, walker.cpl) == (trap, 0)
    walker.step(event("exit", "Xpage"))
    walker.step(TO_USER)
    assert (walker.trap, walker.cpl, walker.rip) == (None, 3, 0x201002)


def test_a_copy_walks_on_independently():
    walker = walked(START, TO_KERNEL, event("enter", "Xfast_syscall"))
    copy = walker.copy()
    copy.step(event("enter", "amd64_syscall"))
    copy.step(event("proc", "fork", Fork(1000, 1001, CHILD)))
    assert walker.stack == ["Xfast_syscall"] and 1001 not in walker.comms
    assert copy.stack == ["Xfast_syscall", "amd64_syscall"] and copy.comms[1001] == "sh"


def test_over_a_real_fork_the_child_is_named_and_placed_as_the_run_says():
    run = record(RunSpec("fork"))
    walker = Walker(run.threads, run.initial_registers["cpl"])
    seen: dict[int, tuple[int, str]] = {}
    for e in run.events:
        walker.step(e)
        if e.kind == "syscall":
            assert walker.syscall.name == e.name
            seen[walker.tid] = (walker.pid, walker.comm)
    assert seen == {tid: run.threads[tid] for tid in seen} and len(seen) == 2
