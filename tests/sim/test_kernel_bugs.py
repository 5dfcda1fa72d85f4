"""SMAP and SMEP as switches of the machine (FreeBSD 11: SMEP on, SMAP off; a modern kernel: both on), and the
lecture-demo module's mistakes (sim/kern/kld_bugs.py): a user pointer dereferenced by the kernel, and a kernel
NULL-pointer dereference ending in trap_fatal's "Fatal trap 12"."""

from __future__ import annotations

import pytest

from sim.core.pcpu import pcpu
from sim.kern.kernel import KernelConfig
from sim.machine.cpu import CR4_SMAP, CR4_SMEP, PSL_AC
from sim.replay import Replay
from sim.run import RunSpec, record
from sim.user.kernel_bugs import SECRET
from tests.sim.procutil import run_program
from tests.steps import scenario_run

DD = "dd if=/dev/zero of=/dev/null bs=64k count=1"


def smap_instructions(run) -> list[str]:
    return [e.name for e in run.events if e.kind == "insn" and e.name in ("stac", "clac")]


def test_the_lecture_profile_is_freebsd_11_copyout_has_no_stac_or_clac():
    run = record(RunSpec(DD))
    assert run.initial_registers["cr4"] & CR4_SMEP and not run.initial_registers["cr4"] & CR4_SMAP
    assert any(e.kind == "enter" and e.name == "copyout" for e in run.events)
    assert smap_instructions(run) == []


def test_a_modern_kernel_brackets_each_user_access_with_stac_and_clac():
    run = record(RunSpec(DD, profile="modern"))
    assert run.initial_registers["cr4"] & CR4_SMAP
    names = smap_instructions(run)
    assert names and names[::2] == ["stac"] * (len(names) // 2) and names[1::2] == ["clac"] * (len(names) // 2)


@pytest.mark.parametrize(("profile", "smap", "smep"), [("lecture", True, False), ("modern", False, False)])
def test_either_switch_overrides_the_profiles_machine(profile, smap, smep):
    run = record(RunSpec(DD, profile=profile, config=KernelConfig(smap=smap, smep=smep)))
    cr4 = run.initial_registers["cr4"]
    assert bool(cr4 & CR4_SMAP) == smap and bool(cr4 & CR4_SMEP) == smep
    assert bool(smap_instructions(run)) == smap


def sets_alignment_check(libc, argv, env) -> int:
    """A program may turn on alignment checking itself (pushf; orl $PSL_AC,(%rsp); popf), then make a call."""
    cpu = pcpu.machine.cpu
    cpu.set("rflags", cpu["rflags"] | PSL_AC)
    libc.getpid()
    return 0


@pytest.mark.parametrize("smap", [False, True])
def test_msr_sf_mask_clears_ac_only_in_a_kernel_with_smap_support(smap):
    """FreeBSD 11's MSR_SF_MASK has no PSL_AC (AC stays as the user left it, and SMAP is off so it means only
    alignment checking); FreeBSD 12 added PSL_AC with SMAP, so SYSCALL enters with user access closed."""
    run = run_program(sets_alignment_check, KernelConfig(smap=smap))
    entry = next(i for i, e in enumerate(run.events) if e.kind == "insn" and e.name == "syscall")
    rflags = Replay(run).state_at(entry).registers["rflags"]
    assert bool(rflags & PSL_AC) == (not smap)


def test_without_smap_the_kernel_reads_the_users_memory_and_nobody_notices():
    run = scenario_run("kernel-user-deref")
    assert run.panic is None and run.exit_status == 0
    assert f"l41_bug returned {SECRET:#x}" in run.output
    assert not [e for e in run.events if e.kind == "trap" and e.name == "#PF" and not e.data.user]


def test_with_smap_the_same_read_is_a_fatal_protection_fault():
    run = scenario_run("kernel-user-deref-smap")
    assert run.panic == "page fault"
    assert "Fatal trap 12: page fault while in kernel mode" in run.output
    assert "fault code\t\t= supervisor read data, protection violation" in run.output
    assert "l41_bug returned" not in run.output


def test_a_kernel_null_dereference_is_fatal_trap_12_as_trap_fatal_prints_it():
    run = scenario_run("kernel-null-deref")
    assert run.panic == "page fault"
    report = run.output[run.output.index("Fatal trap") :].splitlines()
    assert report[:4] == [
        "Fatal trap 12: page fault while in kernel mode",
        "cpuid = 0; apic id = 00",
        "fault virtual address\t= 0x10",
        "fault code\t\t= supervisor read data, page not present",
    ]
    assert "code segment\t\t= base 0x0, limit 0xfffff, type 0x1b" in report
    assert "trap number\t\t= 12" in report and "panic: page fault" in report
