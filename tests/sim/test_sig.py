"""Signals: a blocking read interrupted by a caught signal fails with EINTR, or, when the handler was installed
with SA_RESTART, runs again (ERESTART backs %rip up over the 2-byte syscall instruction); delivery goes through
the trampoline in the shared page and sigreturn's EJUSTRETURN; default actions kill."""

from __future__ import annotations

from sim.kern import errno as E
from sim.kern.kern_sig import SA_RESTART, SIGKILL, SIGTERM, SIGUSR1
from sim.kern.ksyms import libc_symbol
from sim.replay import Replay
from sim.user import umem
from sim.user.libc import Libc
from sim.user.uexec import SIGCODE
from tests.sim.procutil import buffer, events_named, run_program, syscall_events

handled: list[int] = []


def on_usr1(libc: Libc, sig: int) -> None:
    handled.append(sig)
    libc.getpid()  # a handler may make system calls of its own


def interrupted_read(flags: int):
    def main(libc: Libc, argv, env) -> int:
        handled.clear()
        libc.sigaction(SIGUSR1, on_usr1, flags)
        rfd, wfd = libc.pipe()
        buf = buffer(libc)
        parent = libc.getpid()

        def child() -> int:
            libc.kill(parent, SIGUSR1)  # the parent is asleep in read(): this interrupts it
            umem.store(buf, b"hi")
            libc.syscall("write", wfd, buf, 2)  # data for a restarted read
            return 0

        libc.fork(child)
        n = libc.syscall("read", rfd, buf, 100)
        result = libc.errno if n == -1 else 100 + n
        libc.waitpid(-1)
        return result if handled == [SIGUSR1] else 1

    main.__name__ = f"interrupted_read_{flags}"
    return main


def test_a_blocking_pipe_read_interrupted_by_a_caught_signal_fails_with_eintr():
    run = run_program(interrupted_read(0))
    assert run.exit_status == E.EINTR
    assert len(syscall_events(run, "read")) == 1  # not run again
    abort = events_named(run, "enter", "sleepq_abort")[0]
    sleep = max(i for i in events_named(run, "proc", "sleep") if i < abort)
    assert "piperd" in run.events[sleep].detail


def test_with_sa_restart_the_read_runs_again_after_the_handler():
    run = run_program(interrupted_read(SA_RESTART))
    assert run.exit_status == 100 + 2  # the restarted read got the child's two bytes
    reads = syscall_events(run, "read")
    assert len(reads) == 2
    restart = next(i for i, e in enumerate(run.events) if e.kind == "sysret" and e.name == "ERESTART")
    (old, new) = next((d[2], d[3]) for d in run.events[restart].deltas if d[:2] == ("tf", "tf_rip"))
    assert old - new == 2  # tf_rip -= tf_err: back over the syscall instruction
    assert new == libc_symbol("read") + 8  # ... onto the stub's syscall
    assert reads[0] < restart < reads[1]


def test_delivery_runs_the_handler_through_the_trampoline_and_sigreturn_returns_ejustreturn():
    run = run_program(interrupted_read(0))
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


def resumed_here(libc: Libc) -> None:
    handled.append(-1)
    libc._exit(9)


def sets_context(libc: Libc, argv, env) -> int:
    from sim.kern.machdep import UC_MCONTEXT
    from sim.user.uexec import text_address

    handled.clear()
    uc = buffer(libc)
    if libc.syscall("getcontext", uc) != 0:
        return 1
    stack = buffer(libc, 16384)
    umem.store(uc + UC_MCONTEXT + 160, text_address(resumed_here).to_bytes(8, "little"))  # mc_rip
    umem.store(uc + UC_MCONTEXT + 184, (stack + 16384 - 8).to_bytes(8, "little"))  # mc_rsp
    libc.syscall("setcontext", uc)
    handled.append(-2)  # never: setcontext does not return
    return 2


def test_setcontext_rewrites_the_registers_and_returns_ejustreturn():
    run = run_program(sets_context)
    assert run.exit_status == 9 and handled == [-1]
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
    assert "posted to pid" in posted.detail  # by trapsignal, on the page fault's way back to user mode
