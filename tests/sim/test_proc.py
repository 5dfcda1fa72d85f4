"""Processes: fork() returns twice, _exit() never returns, wait4() collects the status, execve() replaces the
image; threads; the scheduler switches address spaces; and a run is deterministic."""

from __future__ import annotations

import pytest

from sim.kern import errno as E
from sim.kern.kernel import Kernel
from sim.kern.ksyms import libc_symbol
from sim.replay import Replay
from sim.run import RunError, RunSpec, record
from sim.user import umem
from sim.user.libc import Libc
from tests.sim.procutil import buffer, cstring, events_named, run_program

seen: list[str] = []


def returns_to_user(run, tid: int) -> list[int]:
    """The steps at which thread `tid` arrives in user mode (sysretq or iretq)."""
    replay = Replay(run)
    return [i for i, e in enumerate(run.events) if e.name in ("sysretq", "iretq") and replay.state_at(i).tid == tid]


def test_fork_returns_twice_the_childs_pid_in_the_parent_and_0_in_the_child():
    run = record(RunSpec("fork 42"))  # the lecture's fork program (sim/user/lecture_programs.py)
    replay = Replay(run)
    parent_tid = Kernel.FIRST_TID
    child_tid = next(t for t, (pid, _) in run.threads.items() if pid == Kernel.FIRST_PID + 1)
    fork_stub_return = libc_symbol("fork") + 10  # the instruction after the stub's syscall
    parent = [i for i in returns_to_user(run, parent_tid) if replay.state_at(i).registers["rip"] == fork_stub_return]
    child = [i for i in returns_to_user(run, child_tid) if replay.state_at(i).registers["rip"] == fork_stub_return]
    assert len(parent) == 1 and len(child) == 1  # the same instruction, reached once in each process
    assert replay.state_at(parent[0]).registers["rax"] == Kernel.FIRST_PID + 1
    assert replay.state_at(child[0]).registers["rax"] == 0
    assert run.events[parent[0]].name == "sysretq"  # the parent returns from its system call ...
    assert run.events[child[0]].name == "iretq"  # ... the child through fork_trampoline and doreti
    child_path = [e.name for e in run.events[: child[0]] if e.kind == "enter"][-6:]
    assert child_path[:3] == ["fork_trampoline", "fork_exit", "fork_return"]
    assert "userret" in child_path


def test_wait4_collects_the_childs_exit_status():
    run = record(RunSpec("fork 42"))
    assert run.exit_status == 42
    reap = events_named(run, "proc", "reap")[0]
    assert run.events[reap].data.status == 0x2A00  # W_EXITCODE(42, 0)


def test_exit_never_returns():
    run = record(RunSpec("exit 7"))  # prints a line after _exit(), which must never appear
    assert run.exit_status == 7 and run.output == "calling _exit(7)\n"
    exit_call = [i for i, e in enumerate(run.events) if e.kind == "syscall" and e.name == "exit"][0]
    assert not [e for e in run.events[exit_call:] if e.kind in ("sysret",) or e.name in ("sysretq", "iretq")]


def test_a_context_switch_to_another_process_reloads_cr3():
    run = record(RunSpec("fork 42"))
    replay = Replay(run)
    switch = events_named(run, "proc", "cpu_switch")[0]
    load = max(i for i in range(switch) if "%cr3" in run.events[i].name)
    assert switch - load < 5  # part of the same context switch
    assert replay.state_at(load).registers["cr3"] != replay.state_at(load - 1).registers["cr3"]
    assert "cr3" in replay.state_at(load).changed_registers


def test_a_run_is_deterministic():
    first, second = record(RunSpec("fork 42")), record(RunSpec("fork 42"))
    assert first.run_id == second.run_id
    assert first.events == second.events


def execs(libc: Libc, argv, env) -> int:
    def child() -> int:
        path = cstring(libc, "/bin/getpid")
        argv_block = buffer(libc)
        umem.store(argv_block, path.to_bytes(8, "little") + bytes(8))
        libc.syscall("execve", path, argv_block, 0)
        return 99  # only if execve failed

    pid = libc.fork(child)
    return libc.waitpid(pid)[1] >> 8


def test_execve_runs_the_new_program_in_the_same_process():
    run = run_program(execs)
    assert run.exit_status == 0  # getpid's own exit status, not the 99 of a failed execve
    exec_event = events_named(run, "proc", "exec")[0]
    assert run.events[exec_event].data.path == "/bin/getpid"
    assert next(e for e in run.events[exec_event:] if e.kind == "sysret").name == "EJUSTRETURN"
    assert any(e.kind == "syscall" and e.name == "getpid" for e in run.events[exec_event:])


def vforks(libc: Libc, argv, env) -> int:
    seen.clear()

    def child() -> int:
        seen.append("child")
        return 3

    libc.vfork(child)
    seen.append("parent")  # the parent resumes only after the child has exited
    return 0


def test_vfork_suspends_the_parent_until_the_child_exits():
    run = run_program(vforks)
    assert seen == ["child", "parent"]
    assert events_named(run, "enter", "fork_rfppwait")


def test_pthread_create_runs_a_second_thread_in_the_same_process_and_join_waits_for_it():
    run = record(RunSpec("thread"))  # the lecture's thread program: each thread prints getpid()
    assert run.exit_status == 0
    lines = run.output.splitlines()
    assert lines[2].startswith(f"thread: getpid() = {Kernel.FIRST_PID},")  # same pid
    assert lines[-1] == "main: pthread_join() returned 0"  # after the thread's line: joined
    pids = [pid for pid, comm in run.threads.values() if comm == "thread"]
    assert len(pids) == 2 and len(set(pids)) == 1
    assert events_named(run, "enter", "sys_thr_new") and events_named(run, "enter", "sys_thr_exit")


def waits_forever(libc: Libc, argv, env) -> int:
    rfd, wfd = libc.pipe()
    libc.syscall("read", rfd, buffer(libc), 10)  # the write end is open and nobody writes
    return 0


def test_a_run_where_every_thread_sleeps_forever_is_a_clear_error():
    with pytest.raises(RunError, match="piperd"):
        run_program(waits_forever)


def no_children(libc: Libc, argv, env) -> int:
    return libc.errno if libc.waitpid(-1)[0] == -1 else 0


def test_wait4_without_children_is_echild():
    assert run_program(no_children).exit_status == E.ECHILD


def ping_pong(libc: Libc, argv, env) -> int:
    rfd, wfd = libc.pipe()
    buf = buffer(libc)

    def child() -> int:
        for _ in range(3):
            libc.syscall("write", wfd, buf, 1)
        return 0

    libc.fork(child)
    for _ in range(3):
        libc.syscall("read", rfd, buf, 1)
    libc.waitpid(-1)
    return 0


def test_a_woken_reader_preempts_the_writer_at_its_next_return_to_user_mode():
    run = run_program(ping_pong)
    assert run.exit_status == 0
    asts = events_named(run, "hook", "ast")
    preemptions = [i for i in asts if "mi_switch" in [e.name for e in run.events[i : i + 4] if e.kind == "enter"]]
    assert preemptions  # ast() found TDF_NEEDRESCHED, set when the write woke the sleeping reader
    wakeup = max(i for i in events_named(run, "proc", "wakeup") if i < preemptions[0])
    reader = run.events[wakeup].data.tid
    assert run.threads[reader][0] == run.events[0].data.pid  # the parent, asleep in read(2), is runnable again
    switch = next(e for e in run.events[preemptions[0] :] if e.kind == "proc" and e.name == "cpu_switch")
    assert switch.data.new_tid == reader  # and mi_switch hands it the CPU


def test_a_run_with_processes_files_and_a_syncer_is_identical_across_interpreters():
    """Nothing may depend on object addresses or string hashing: another interpreter records the same log."""
    import os
    import subprocess
    import sys

    script = (
        "import hashlib; from sim.run import RunSpec, record; "
        "r = record(RunSpec('ipc-static -B -i pipe -t 262144 2proc')); "
        "s = record(RunSpec('dd if=/dev/zero of=/tmp/f bs=64k count=2')); "
        "print(hashlib.sha256(repr((r.events, s.events)).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script], env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True,
            text=True, check=True,
        ).stdout
        for seed in ("1", "2")
    }  # fmt: skip
    assert len(digests) == 1
