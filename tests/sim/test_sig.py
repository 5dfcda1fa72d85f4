"""Signals: a blocking read interrupted by a caught signal fails with EINTR, or, when the handler was installed
with SA_RESTART, runs again (ERESTART backs %rip up over the 2-byte syscall instruction); delivery goes through
the trampoline in the shared page and sigreturn's EJUSTRETURN; default actions kill."""

from __future__ import annotations

from sim.kern import errno as E
from sim.kern.kern_sig import SA_RESTART, SIGKILL, SIGTERM, SIGUSR1
from sim.kern.ksyms import libc_symbol
from sim.replay import Replay
from sim.run import Run, RunSpec, record
from sim.user import umem
from sim.user.libc import Libc
from sim.user.uexec import SIGCODE
from tests.sim.procutil import events_named, run_program, syscall_events


def on_usr1(libc: Libc, sig: int) -> None:
    libc.getpid()  # a handler may make system calls of its own


def interrupted_read(flags: int) -> Run:
    """The lecture's eintr program (sim/user/lecture_programs.py): its child sends SIGUSR1 to the parent asleep in
    read() on an empty pipe, then writes two bytes for a restarted read."""
    run = record(RunSpec("eintr -r" if flags & SA_RESTART else "eintr"))
    assert run.output.count("handler: caught signal") == 1
    return run


def test_a_blocking_pipe_read_interrupted_by_a_caught_signal_fails_with_eintr():
    run = interrupted_read(0)
    assert "read() returned -1, errno 4 (EINTR" in run.output
    assert len(syscall_events(run, "read")) == 1  # not run again
    abort = events_named(run, "enter", "sleepq_abort")[0]
    sleep = max(i for i in events_named(run, "proc", "sleep") if i < abort)
    assert run.events[sleep].data.wmesg == "piperd"


def test_with_sa_restart_the_read_runs_again_after_the_handler():
    run = interrupted_read(SA_RESTART)
    assert "read() returned 2: 'hi'" in run.output  # the restarted read got the child's two bytes
    reads = syscall_events(run, "read")
    assert len(reads) == 2
    restart = next(i for i, e in enumerate(run.events) if e.kind == "sysret" and e.name == "ERESTART")
    (old, new) = next((d[2], d[3]) for d in run.events[restart].deltas if d[:2] == ("tf", "tf_rip"))
    assert old - new == 2  # tf_rip -= tf_err: back over the syscall instruction
    assert new == libc_symbol("read") + 8  # ... onto the stub's syscall
    assert reads[0] < restart < reads[1]


def test_delivery_runs_the_handler_through_the_trampoline_and_sigreturn_returns_ejustreturn():
    run = interrupted_read(0)
    send = events_named(run, "signal", "sendsig")[0]
    replay = Replay(run)
    iretq = next(i for i in range(send, len(run.events)) if run.events[i].name == "iretq")
    assert replay.state_at(iretq).registers["rip"] == SIGCODE  # user mode resumes in the trampoline
    assert replay.state_at(iretq).registers["rdi"] == SIGUSR1  # the handler's first argument
    sigreturn = syscall_events(run, "sigreturn")[0]
    assert next(e for e in run.events[sigreturn:] if e.kind == "sysret").name == "EJUSTRETURN"


def killed_child(sig: int):
    def main(libc: Libc, argv, env) -> int:
        def child() -> int:
            while True:
                libc.syscall("sched_yield")

        pid = libc.fork(child)
        libc.syscall("sched_yield")  # let the child run
        libc.kill(pid, sig)
        got, status = libc.waitpid(pid)
        return status & 0x7F  # WTERMSIG

    main.__name__ = f"killed_child_{sig}"
    return main


def test_default_action_of_sigterm_and_sigkill_is_to_terminate():
    assert run_program(killed_child(SIGTERM)).exit_status == SIGTERM
    assert run_program(killed_child(SIGKILL)).exit_status == SIGKILL


def catch_kill(libc: Libc, argv, env) -> int:
    return libc.errno if libc.sigaction(SIGKILL, on_usr1) == -1 else 0


def test_sigkill_cannot_be_caught():
    assert run_program(catch_kill).exit_status == E.EINVAL


def test_setcontext_rewrites_the_registers_and_returns_ejustreturn():
    run = record(RunSpec("setcontext"))  # rewrites mc_rip and mc_rsp to a function that prints and exits
    assert run.exit_status == 0 and run.output.splitlines()[-1].startswith("on_new_stack: running at %rip")
    setcontext = syscall_events(run, "setcontext")[0]
    assert next(e for e in run.events[setcontext:] if e.kind == "sysret").name == "EJUSTRETURN"
    assert next(e for e in run.events[setcontext:] if e.name in ("sysretq", "iretq")).name == "iretq"


def touches_page_zero(libc: Libc, argv, env) -> int:
    umem.load(0x10, 8)  # a NULL pointer dereference in user mode
    return 0


def test_a_user_fault_the_vm_cannot_resolve_is_sigsegv_which_kills():
    from sim.kern.kern_sig import SIGSEGV

    run = run_program(touches_page_zero)
    assert run.exit_status == 128 + SIGSEGV
    posted = next(e for e in run.events if e.kind == "signal" and e.name == "SIGSEGV")
    assert posted.data.sig == SIGSEGV and not posted.data.blocked  # by trapsignal, on the page fault's way back
    assert run.threads[posted.data.tid][0] == posted.data.pid == run.events[0].data.pid  # to the faulting thread
