"""Credentials: getauid() as audit_syscalls.c has it, and Capsicum's capability mode, which cap_enter() turns on
in a new credential that the thread picks up at its next system call (thread_cow_update: FreeBSD 11's name for
10.x's cred_update_thread, which the lecture's slide shows)."""

from __future__ import annotations

from sim.kern import errno as E
from sim.kern.kernel import KernelConfig
from sim.user.libc import Libc
from tests.sim.procutil import AT_FDCWD, buffer, cstring, events_named, open_path, read_int, run_program


def reads_auid(libc: Libc, argv, env) -> int:
    auid = buffer(libc)
    if libc.syscall("getauid", auid) == -1:
        return libc.errno
    return 0 if read_int(auid) == -1 else 1  # AU_DEFAUDITID: (uid_t)-1, no login has set it


def test_getauid_copies_the_audit_id_out_to_the_caller():
    run = run_program(reads_auid)
    assert run.exit_status == 0
    getauid = next(i for i, e in enumerate(run.events) if e.kind == "enter" and e.name == "sys_getauid")
    path = [e.name for e in run.events[getauid:] if e.kind == "enter"][:3]
    assert path == ["sys_getauid", "priv_check_cred", "copyout"]  # jailed() is a test, then the privilege


def enters_capability_mode(libc: Libc, argv, env) -> int:
    mode = buffer(libc)
    libc.syscall("cap_getmode", mode)
    before = read_int(mode)
    libc.syscall("cap_enter")
    libc.syscall("cap_getmode", mode)
    after = read_int(mode)
    fd = open_path(libc, "/dev/null")
    return 0 if (before, after, fd, libc.errno) == (0, 1, -1, E.ECAPMODE) else 1


def test_cap_enter_takes_effect_at_the_next_call_through_thread_cow_update():
    run = run_program(enters_capability_mode)
    assert run.exit_status == 0
    cap_enter = next(i for i, e in enumerate(run.events) if e.kind == "syscall" and e.name == "cap_enter")
    updates = [i for i in events_named(run, "enter", "thread_cow_update") if i > cap_enter]
    assert updates  # the thread's cached credential was stale after cap_enter
    next_call = next(i for i in range(cap_enter + 1, len(run.events)) if run.events[i].kind == "syscall")
    assert updates[0] < next_call  # ... and is refreshed before that call's own work


def kills_others(libc: Libc, argv, env) -> int:
    def child() -> int:
        return 0

    pid = libc.fork(child)
    mine = libc.kill(libc.getpid(), 0)
    other = libc.kill(pid, 0)
    return 0 if (mine, other, libc.errno) == (0, -1, E.ECAPMODE) else 1


def test_in_capability_mode_a_process_may_signal_only_itself():
    assert run_program(kills_others, KernelConfig(capability_mode=True)).exit_status == 0


def openat_cwd(libc: Libc, argv, env) -> int:
    fd = libc.syscall("openat", AT_FDCWD, cstring(libc, "/dev/null"), 0, 0)
    return libc.errno if fd == -1 else 0


def test_openat_is_capenabled_but_the_global_namespace_is_not():
    run = run_program(openat_cwd, KernelConfig(capability_mode=True))
    assert run.exit_status == E.ECAPMODE
    assert events_named(run, "enter", "sys_openat")  # it got past syscallenter; namei refused AT_FDCWD
    assert run_program(openat_cwd).exit_status == 0
