"""The lecture's system-call examples as programs: what each prints, its exit status, and the mechanism in the log
a student would check (two returns from fork, the carry flag and errno of EFAULT and EINTR, the restart, the
delayed disk write, EINPROGRESS, no trap in clock_gettime)."""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest

from sim.core.events import MapKey
from sim.kern import errno as E
from sim.kern.kernel import Kernel
from sim.kern.ksyms import KERNBASE, libc_symbol
from sim.machine.cpu import PSL_C
from sim.replay import Replay
from sim.run import Run, RunSpec, record
from sim.user.lecture_programs import on_new_stack
from sim.user.programs import validate
from sim.user.shell import CommandLineError
from sim.user.uexec import text_address
from sim.vm.vm_param import MAP_ENTRY_NEEDS_COPY
from tests.sim.procutil import events_named, syscall_events

CHILD = Kernel.FIRST_PID + 1


@functools.cache
def run(command: str, profile: str = "lecture") -> Run:
    return record(RunSpec(command, profile=profile))


def returned(r: Run, start: int) -> int:
    """The step at which the system call entered at or after `start` is back in user mode."""
    return next(i for i in range(start, len(r.events)) if r.events[i].name in ("sysretq", "iretq"))


def test_fork_prints_both_returns_and_the_wait4_status():
    r = run("fork 42")
    assert r.output.splitlines() == [
        f"parent: fork() returned {CHILD}",
        "child: fork() returned 0",
        "child: _exit(42)",
        f"parent: wait4({CHILD}) returned {CHILD}, status 0x2a00: WEXITSTATUS 42",
    ]
    assert r.exit_status == 42
    assert run("fork").exit_status == 0


def test_the_childs_address_space_is_named_for_the_child_from_the_start():
    r = run("fork")
    maps = {delta[1].vmspace for event in r.events for delta in event.deltas if delta[0] == "map"}
    assert maps == {f"pid {CHILD - 1}", f"pid {CHILD}"}  # the parent's map, then the copy vmspace_fork made


def test_exit_prints_one_line_and_never_returns():
    r = run("exit")
    assert r.output == "calling _exit(3)\n"  # not the printf after _exit()
    assert r.exit_status == 3  # test_proc.py checks that no return to user mode follows (with `exit 7`)


def test_thread_runs_a_second_thread_in_the_same_process():
    r = run("thread")
    lines = r.output.splitlines()
    main_pid, main_tid = lines[0].removeprefix("main: getpid() = ").split(", thread id ")
    new_pid, new_tid = lines[2].removeprefix("thread: getpid() = ").split(", thread id ")
    assert main_pid == new_pid == str(Kernel.FIRST_PID) and main_tid != new_tid
    assert lines[1] == "main: pthread_create() returned 0" and lines[3] == "main: pthread_join() returned 0"
    assert r.threads[int(new_tid)] == (Kernel.FIRST_PID, "thread")
    assert events_named(r, "enter", "sys_thr_new") and events_named(r, "enter", "sys_thr_exit")


def test_setcontext_resumes_in_another_function_on_another_stack():
    r = run("setcontext")
    lines = r.output.splitlines()
    assert lines[0].startswith("getcontext() returned 0: saved %rip ")
    new_rip = text_address(on_new_stack)
    assert f"%rip := {new_rip:#x} (on_new_stack)" in lines[1]
    new_rsp = lines[1].rsplit("%rsp := ", 1)[1]
    assert lines[2] == f"on_new_stack: running at %rip {new_rip:#x} with %rsp {new_rsp}"
    assert r.exit_status == 0
    back = returned(r, syscall_events(r, "setcontext")[0])  # test_sig.py checks EJUSTRETURN and iretq
    assert Replay(r).state_at(back).registers["rip"] == new_rip


def test_eintr_without_sa_restart_read_fails_with_errno_4():
    r = run("eintr")
    assert "handler: caught signal 30 (SIGUSR1)" in r.output
    assert "parent: read() returned -1, errno 4 (EINTR: Interrupted system call)" in r.output
    assert r.exit_status == 0
    reads = syscall_events(r, "read")
    assert len(reads) == 1  # not run again
    replay = Replay(r)
    failed = next(i for i in range(returned(r, reads[0]), len(r.events)) if r.events[i].name == "cerror")
    assert replay.state_at(failed).errno == E.EINTR


def test_eintr_with_sa_restart_the_same_syscall_instruction_runs_again_and_gets_the_data():
    r = run("eintr -r")  # test_sig.py checks ERESTART's tf_rip -= 2
    assert "sigaction(SIGUSR1, handler, SA_RESTART) returned 0" in r.output
    assert "parent: read() returned 2: 'hi'" in r.output
    replay = Replay(r)
    reads = [i for i, e in enumerate(r.events) if e.name == "syscall" and replay.state_at(i).tid == Kernel.FIRST_TID]
    read_syscall = libc_symbol("read") + 8
    assert len([i for i in reads if replay.state_at(i - 1).registers["rip"] == read_syscall]) == 2


def test_write_file_returns_before_the_disk_write_which_the_syncer_does_later():
    r = run("write-file")
    assert r.output.splitlines() == [
        "write(3, buf, 10) returned 10",
        "buf reused at once: now b'XXXXXXXXXX'",  # copy semantics: the kernel has its own copy
        "close(3) returned 0",
        "/tmp/lecture4 holds b'lecture 4\\n'",
    ]
    back = returned(r, syscall_events(r, "write")[0])  # test_files.py checks bdwrite and the 30 s delay
    started = events_named(r, "mem", "g_io_request")[0]  # the disk write, started by the syncer kernel process
    assert back < started and r.threads[Replay(r).state_at(started).tid][1] == "syncer"
    assert "fsync(3) returned 0" in run("write-file -s").output


def test_aio_write_returns_at_once_and_aio_error_says_einprogress_until_the_job_is_done():
    r = run("aio-write")
    lines = r.output.splitlines()
    assert lines[:2] == ["aio_write(&cb) returned 0", "aio_error(&cb) returned 36 (EINPROGRESS)"]
    assert lines[3] == "aio_return(&cb) returned 10: buf may be reused now"
    replay = Replay(r)
    done = events_named(r, "proc", "aio_complete")[0]
    first = syscall_events(r, "aio_error")[0]
    assert returned(r, first) < done
    assert replay.state_at(returned(r, first)).registers["rax"] == E.EINPROGRESS
    last = syscall_events(r, "aio_error")[-1]
    assert last > done and replay.state_at(returned(r, last)).registers["rax"] == 0


def test_read_into_a_kernel_pointer_is_efault_with_the_carry_set_and_nothing_written():
    r = run("read-kernel-pointer")
    assert r.output.splitlines() == [
        next(line for line in r.output.splitlines() if line.startswith("read(3, 0x7")),
        f"read(3, {KERNBASE:#x}, 16) returned -1",
        "read-kernel-pointer: read: Bad address",
    ]
    assert r.exit_status == 1
    bad = syscall_events(r, "read")[1]
    back = returned(r, bad)
    replay = Replay(r)
    state = replay.state_at(back)
    assert state.registers["rflags"] & PSL_C and state.registers["rax"] == E.EFAULT
    inside = r.events[bad:back]
    assert any(e.kind == "hook" and e.name == "copyout_fault" and not e.data.in_range for e in inside)
    assert not any(e.kind == "trap" or any(d[0] == "frame" for d in e.deltas) for e in inside)  # nothing stored
    cerror = next(i for i in range(back, len(r.events)) if r.events[i].name == "cerror")
    assert replay.state_at(cerror).errno == E.EFAULT


def test_clock_gettime_makes_no_system_call_between_its_two_readings_where_the_vdso_reads_the_tsc():
    r = run("clock-gettime", "modern")
    lines = r.output.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["clock_gettime(CLOCK_MONOTONIC) returned 0"] * 2
    assert int(lines[2].split()[-2]) > 0
    vdso = events_named(r, "user", "__vdso_clock_gettime")
    assert len(vdso) == 2
    assert not [e for e in r.events[vdso[0] : vdso[1]] if e.kind == "syscall" or e.name == "syscall"]
    second_call = r.events[vdso[1] : next(i for i in range(vdso[1], len(r.events)) if r.events[i].name == "ret")]
    user_steps = ["__vdso_clock_gettime", "load", "lfence; rdtsc", "load", "store"]  # the load after: th_gen again
    assert [(e.kind, e.name) for e in second_call] == [("user", name) for name in user_steps]  # all in ring 3
    # the first call's first read of the shared page is a page fault (a trap, not a system call)
    assert [e.name for e in r.events[vdso[0] : vdso[1]] if e.kind == "trap"] == ["#PF"]


def test_clock_gettime_is_a_system_call_on_the_lectures_hpet_machine():
    """Slide 16 lists clock_gettime among dd's system calls: the lecture's timecounter had no vdso reader, so the
    kernel published tk_enabled = 0 and libc's __vdso_clock_gettime said ENOSYS: the system call it is."""
    r = run("clock-gettime")
    returned = [line.split(":")[0] for line in r.output.splitlines()[:2]]
    assert returned == ["clock_gettime(CLOCK_MONOTONIC) returned 0"] * 2
    vdso, calls = events_named(r, "user", "__vdso_clock_gettime"), syscall_events(r, "clock_gettime")
    assert len(vdso) == len(calls) == 2
    assert vdso[0] < calls[0] < vdso[1] < calls[1]  # each call tries the vdso first


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("fork -x", "fork: illegal option -- x\nusage: fork [status]"),
        ("fork 256", "fork: status must be a whole number from 0 to 255, not '256'"),
        ("exit 1 2", "exit: unexpected operand '2'\nusage: exit [status]"),
        ("eintr -q", "eintr: illegal option -- q\nusage: eintr [-r]"),
        ("write-file now", "write-file: unexpected operand 'now'\nusage: write-file [-s]"),
        ("clock-gettime -v", "clock-gettime: illegal option -- v\nusage: clock-gettime"),
    ],
)
def test_bad_operands_are_the_programs_usage_errors(command, message):
    with pytest.raises(CommandLineError) as error:
        validate(tuple(command.split()), {})
    assert str(error.value) == message


def test_trapscope_run_with_a_bad_option_exits_non_zero_with_the_message():
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "run", "-c", "fork -x"], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert "fork: illegal option -- x" in done.stderr and "Traceback" not in done.stderr


def test_after_fork_the_parents_cow_fault_puts_a_shadow_in_front_of_the_object_the_child_still_uses():
    from sim.replay import Replay

    r = run("fork")
    cow = next(i for i, e in enumerate(r.events) if e.kind == "fault" and e.name == "cow")
    objects = Replay(r).table_at("object", cow)
    maps = Replay(r).table_at("map", cow)
    stack = 0x7FFFDFFFF000
    parent, child = maps[MapKey(f"pid {CHILD - 1}", stack)], maps[MapKey(f"pid {CHILD}", stack)]
    front, behind = parent.object, child.object
    assert front != behind and child.eflags & MAP_ENTRY_NEEDS_COPY and not parent.eflags & MAP_ENTRY_NEEDS_COPY
    assert objects[front].backing == behind  # the recorded chain the VM view draws
    assert objects[behind].refs == 2  # the child's entry and the parent's shadow both hold it
