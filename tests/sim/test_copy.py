"""copyin/copyout and friends: the VM_MAXUSER_ADDRESS check, pcb_onfault recovery to EFAULT, kernel-mode
demand-zero faults inside a copy, SMAP's stac/clac, and what happens when the kernel touches memory without them:
"Fatal trap 12" and a panic."""

from __future__ import annotations

import pytest

from sim.kern.errno import EFAULT, ENAMETOOLONG
from sim.kern.support import (
    copyin,
    copyinstr,
    copyout,
    fubyte,
    fueword,
    kernel_deref,
    suword,
    zero_region,
)
from sim.machine.machine import MachineHalted
from sim.machine.physmem import Fill
from sim.user import umem
from sim.vm.vm_param import KERNBASE, VM_MAXUSER_ADDRESS, VM_PROT_READ
from tests.sim.vm_fixture import VmBench


@pytest.fixture
def bench():
    b = VmBench()
    b.cpu.regs["cpl"] = 0  # the copy routines run in the kernel, inside a system call
    return b


def test_copyout_into_an_untouched_page_takes_a_kernel_mode_zero_fill_fault_and_succeeds(bench):
    va = bench.mmap_anon(4096)
    assert copyout(b"hello", va, 5) == 0
    cnt = bench.vm.cnt
    assert cnt.faults_kernel["zero_fill"] == 1 and cnt.faults_user["zero_fill"] == 0
    assert [e.name for e in bench.kinds("trap")] == ["#PF"]
    bench.cpu.regs["cpl"] = 3
    assert umem.load(va, 5) == b"hello"


def test_a_kernel_pointer_passed_as_a_user_buffer_gets_efault_without_any_fault(bench):
    assert copyout(b"root", KERNBASE + 0x1000, 4) == EFAULT
    assert copyin(KERNBASE, bytearray(8), 8) == EFAULT
    assert copyout(b"x", VM_MAXUSER_ADDRESS - 1, 2) == EFAULT  # ends just past the user half
    assert not bench.kinds("trap")
    assert bench.td.td_pcb.pcb_onfault == 0


def test_an_unmapped_user_address_faults_and_pcb_onfault_turns_it_into_efault(bench):
    assert copyout(b"data", 0x10000, 4) == EFAULT
    assert [e.name for e in bench.kinds("trap")] == ["#PF"]
    hooks = [e.name for e in bench.kinds("hook")]
    assert "pcb_onfault" in hooks and "copyout_fault" in hooks
    assert bench.vm.cnt.faults_kernel["unmapped"] == 1
    assert bench.td.td_pcb.pcb_onfault == 0


def test_copyout_to_a_read_only_page_is_efault(bench):
    va = bench.mmap_anon(4096, prot=VM_PROT_READ)
    assert copyout(b"x", va, 1) == EFAULT
    assert bench.vm.cnt.faults_kernel["protection"] == 1


def test_a_copy_that_crosses_into_an_unmapped_page_fails_after_copying_the_first_part(bench):
    va = bench.mmap_anon(4096)
    assert copyout(b"A" * 5000, va, 5000) == EFAULT
    bench.cpu.regs["cpl"] = 3
    assert umem.load(va, 4) == b"AAAA"


def test_stac_and_clac_bracket_the_user_access_when_smap_is_on():
    bench = VmBench(smap=True)
    bench.cpu.regs["cpl"] = 0
    va = bench.mmap_anon(4096)
    copyout(b"x", va, 1)
    insns = [e.name for e in bench.kinds("insn")]
    assert insns.index("stac") < insns.index("clac")
    off = VmBench(smap=False)
    off.cpu.regs["cpl"] = 0
    copyout(b"x", off.mmap_anon(4096), 1)
    assert "stac" not in [e.name for e in off.kinds("insn")]


def test_copying_megabytes_of_zero_region_stores_no_host_bytes(bench):
    size = 10 << 20
    va = bench.mmap_anon(size)
    for offset in range(0, size, zero_region.length):
        assert copyout(zero_region, va + offset, zero_region.length) == 0
    assert bench.machine.physmem.host_bytes() < 1 << 20  # only page tables
    assert bench.vm.cnt.faults_kernel["zero_fill"] == size // 4096


def test_copyout_of_a_fill_writes_that_byte(bench):
    va = bench.mmap_anon(8192)
    assert copyout(Fill(0xA5, 6000), va + 100, 6000) == 0
    bench.cpu.regs["cpl"] = 3
    assert umem.load(va + 98, 4) == b"\0\0\xa5\xa5"
    assert umem.load(va + 6098, 4) == b"\xa5\xa5\0\0"


def test_copyin_reads_what_user_code_stored(bench):
    va = bench.mmap_anon(4096)
    bench.cpu.regs["cpl"] = 3
    umem.store(va, b"user bytes")
    bench.cpu.regs["cpl"] = 0
    buf = bytearray(10)
    assert copyin(va, buf, 10) == 0 and bytes(buf) == b"user bytes"


def test_copyinstr_stops_at_the_nul_or_says_the_name_is_too_long(bench):
    va = bench.mmap_anon(4096)
    bench.cpu.regs["cpl"] = 3
    umem.store(va, b"/dev/zero\0")
    bench.cpu.regs["cpl"] = 0
    buf = bytearray(64)
    assert copyinstr(va, buf, 64) == (0, 10)
    assert bytes(buf[:10]) == b"/dev/zero\0"
    assert copyinstr(va, bytearray(4), 4) == (ENAMETOOLONG, 4)


def test_fueword_suword_and_fubyte_return_minus_one_on_a_bad_address(bench):
    va = bench.mmap_anon(4096)
    assert suword(va, 0x1122334455667788) == 0
    assert fueword(va) == (0, 0x1122334455667788)
    assert fubyte(va) == 0x88
    assert fueword(0x10000) == (-1, 0)
    assert suword(VM_MAXUSER_ADDRESS - 4, 1) == -1
    assert fubyte(KERNBASE) == -1


def test_a_kernel_null_dereference_is_fatal_trap_12_and_a_panic(bench):
    with pytest.raises(MachineHalted) as halted:
        kernel_deref(0)
    assert str(halted.value) == "page fault"
    console = "".join(bench.kernel.console)
    assert "Fatal trap 12: page fault while in kernel mode" in console
    assert "fault virtual address\t= 0x0" in console
    assert "supervisor read data, page not present" in console
    assert "panic: page fault" in console
    assert bench.events[-1].kind == "panic"


def test_with_smap_a_kernel_read_of_a_user_page_is_fatal_and_without_it_succeeds():
    on = VmBench(smap=True)
    va = on.mmap_anon(4096)
    umem.store(va, b"secret!!")
    on.cpu.regs["cpl"] = 0
    with pytest.raises(MachineHalted):
        kernel_deref(va)
    assert "supervisor read data, protection violation" in "".join(on.kernel.console)
    off = VmBench(smap=False)
    va = off.mmap_anon(4096)
    umem.store(va, b"secret!!")
    off.cpu.regs["cpl"] = 0
    assert kernel_deref(va) == int.from_bytes(b"secret!!", "little")
