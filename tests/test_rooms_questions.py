"""Predict, then reveal: each question's truth is read from the recorded run, never typed in (app/questions.py)."""

from __future__ import annotations

import pytest

from app.navigate import LogIndex
from app.questions import KINDS, settle_errno, settle_fault, settle_ring, settle_walk
from sim.run import Run, record
from sim.scenarios.registry import lookup


@pytest.fixture(scope="module")
def kernel_pointer_run() -> Run:
    return record(lookup("read-kernel-pointer").spec())


@pytest.fixture(scope="module")
def fork_run() -> Run:
    return record(lookup("fork-returns-twice").spec())


def _first(run: Run, kind: str, name: str | None = None) -> int:
    return next(i for i, e in enumerate(run.events) if e.kind == kind and (name is None or e.name == name))


def test_the_errno_of_reading_into_a_kernel_pointer_is_efault(kernel_pointer_run):
    run = kernel_pointer_run
    index = LogIndex(run.events)
    failed = next(i for i, e in enumerate(run.events) if e.kind == "sysret" and e.name == "error")
    call = LogIndex.previous_before(index.positions("syscall"), failed)
    truth = settle_errno(index, run, call)
    assert truth.choice == "EFAULT"
    assert truth.step == failed
    assert "EFAULT" in truth.detail and run.events[call].name in truth.detail


def test_a_successful_call_is_success_and_the_end_of_the_run_has_no_call(getpid_run):
    index = LogIndex(getpid_run.events)
    assert settle_errno(index, getpid_run, 0).choice == "success"
    assert settle_errno(index, getpid_run, index.last_step).choice == "no system call follows"


def test_a_write_to_a_copy_on_write_stack_page_faults_in_ring_3_with_every_entry_present(fork_run):
    """After fork, the parent's first store to its stack walks present entries that forbid writing: #PF in user mode."""
    run = fork_run
    index = LogIndex(run.events)
    trap = _first(run, "trap", "#PF")
    miss = LogIndex.previous_before(index.positions("tlb", "miss"), trap)
    before = miss - 1  # the user instruction whose access walks
    fault = settle_fault(index, run, before)
    assert (fault.choice, fault.step) == ("yes", trap)
    assert settle_ring(index, run, before).choice == "ring 3 (user mode)"
    walk = settle_walk(index, run, before)
    assert walk.choice == "all present, but the access is not allowed"
    assert walk.step == miss


def test_no_fault_before_the_next_instruction_when_none_is_taken_and_syscall_is_the_programs_instruction(getpid_run):
    index = LogIndex(getpid_run.events)
    truth = settle_fault(index, getpid_run, 0)
    assert (truth.choice, truth.step) == ("no", 1)
    syscall = _first(getpid_run, "insn", "syscall")
    truth = settle_fault(index, getpid_run, syscall - 1)
    assert (truth.choice, truth.step) == ("no", syscall)
    assert "syscall" in truth.detail


def test_every_kind_settles_on_one_of_its_own_choices_at_every_step(getpid_run):
    index = LogIndex(getpid_run.events)
    for kind in KINDS.values():
        for step in range(0, index.last_step + 1, 7):
            assert kind.settle(index, getpid_run, step).choice in kind.choices, (kind.slug, step)
