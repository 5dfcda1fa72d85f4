"""The foundation slice: getpid() through libc's stub, FreeBSD's syscall path, and back."""

from __future__ import annotations

import pytest

import sim.replay as replay_module
from sim.kern.kernel import Kernel
from sim.machine.cpu import KERNEL_CPL, PSL_C, USER_CPL
from sim.replay import Replay, StepOutOfRange
from sim.run import RunSpec, record
from tests.steps import step_of


@pytest.fixture(scope="module")
def run():
    return record(RunSpec("getpid"))


def test_getpid_returns_the_pid_in_rax_with_carry_clear(run):
    state = Replay(run).state_at(step_of(run, "insn", "sysretq"))
    assert state.registers["rax"] == Kernel.FIRST_PID
    assert not state.registers["rflags"] & PSL_C
    assert state.cpl == USER_CPL


def test_the_ring_goes_3_to_0_to_3_around_the_syscall_instruction(run):
    cpls = []
    for event in run.events[: step_of(run, "insn", "sysretq") + 1]:
        for delta in event.deltas:
            if delta[:2] == ("reg", "cpl"):
                cpls.append((event.name, delta[2], delta[3]))
    assert cpls == [("syscall", USER_CPL, KERNEL_CPL), ("sysretq", KERNEL_CPL, USER_CPL)]


def test_the_kernel_path_is_freebsds_in_order(run):
    frames = [e.name for e in run.events if e.kind == "enter"]
    getpid_path = frames[: frames.index("sys_getpid") + 1]
    assert getpid_path == ["Xfast_syscall", "amd64_syscall", "syscallenter", "cpu_fetch_syscall_args", "sys_getpid"]
    after = frames[len(getpid_path) :]
    assert after[:3] == ["cpu_set_syscall_retval", "syscallret", "userret"]


def test_the_trapframe_holds_the_user_return_address_and_tf_err_is_2(run):
    state = Replay(run).state_at(step_of(run, "insn", "build trapframe"))
    syscall_step = Replay(run).state_at(step_of(run, "insn", "syscall"))
    assert state.trapframe["tf_err"] == 2
    assert state.trapframe["tf_rip"] == syscall_step.registers["rcx"]
    assert state.trapframe["tf_rax"] == 20  # SYS_getpid


def test_the_syscall_instruction_changes_exactly_what_the_manual_says(run):
    state = Replay(run).state_at(step_of(run, "insn", "syscall"))
    assert state.changed_registers == {"rcx", "r11", "rflags", "cpl", "rip"}
    assert state.registers["cpl"] == KERNEL_CPL


def test_every_disabled_hook_is_recorded_as_skipped(run):
    enter_path = run.events[step_of(run, "enter", "syscallenter") : step_of(run, "exit", "syscallenter")]
    skipped = [e.name for e in enter_path if e.kind == "skip"]
    assert skipped == [
        "thread_cow_update",
        "ktrsyscall",
        "ptracestop",
        "IN_CAPABILITY_MODE",
        "syscall_thread_enter",
        "systrace_probe_func",
        "AUDIT_SYSCALL_ENTER",
        "AUDIT_SYSCALL_EXIT",
        "systrace_probe_func",
        "syscall_thread_exit",
    ]


def test_step_n_rebuilt_from_a_checkpoint_equals_step_n_reached_by_stepping(run, monkeypatch):
    stepped = Replay(run)
    monkeypatch.setattr(replay_module, "CHECKPOINT_EVERY", 5)
    checkpointed = Replay(run)
    walked = [stepped.state_at(step) for step in range(stepped.last_step + 1)]
    for step in reversed(range(stepped.last_step + 1)):  # jump backwards: every answer from a checkpoint
        jumped = checkpointed.state_at(step)
        assert (jumped.registers, jumped.stack, jumped.trapframe) == (
            walked[step].registers,
            walked[step].stack,
            walked[step].trapframe,
        )


def test_a_step_outside_the_run_is_refused_with_the_valid_range(run):
    replay = Replay(run)
    with pytest.raises(StepOutOfRange, match=f"steps 0 to {replay.last_step}"):
        replay.state_at(replay.last_step + 1)
    with pytest.raises(StepOutOfRange):
        replay.state_at(-1)


def test_runs_are_deterministic():
    first, second = record(RunSpec("getpid")), record(RunSpec("getpid"))
    assert first.run_id == second.run_id
    assert first.events == second.events


def test_the_run_id_changes_with_any_input():
    ids = {RunSpec("getpid").run_id, RunSpec("getpid", profile="modern").run_id, RunSpec("getpid x").run_id}
    assert len(ids) == 3


def test_time_is_split_between_user_and_system_by_ring(run):
    assert run.user_ns > 0 and run.sys_ns > run.user_ns
    assert run.user_ns + run.sys_ns == run.wall_ns
