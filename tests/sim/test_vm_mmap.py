"""mmap/munmap/mprotect/minherit as system calls: placement, MAP_FIXED, errors, file and /dev/zero mappings,
and the process image exec builds."""

from __future__ import annotations

import pytest

from sim.kern.errno import EACCES, EBADF, EINVAL
from sim.kern.kern_descrip import DTYPE_VNODE, FREAD, File
from sim.kern.vfs_subr import VREG, new_vnode, vfs
from sim.kern.vfs_vnops import vnops
from sim.kern.vm_mmap import (
    MAP_ANON,
    MAP_EXCL,
    MAP_FIXED,
    MAP_PREFAULT_READ,
    MAP_PRIVATE,
    MAP_SHARED,
    PROT_READ,
    PROT_WRITE,
    sys_minherit,
    sys_mmap,
    sys_mprotect,
    sys_munmap,
)
from sim.machine.mmu import PG_RW
from sim.user import umem
from sim.vm.pmap import pmap_mapping
from sim.vm.vm_map import vm_map_lookup_entry
from sim.vm.vm_object import OBJT_VNODE
from sim.vm.vm_param import MAP_ENTRY_COW, MAXDSIZ, VM_INHERIT_SHARE, VM_PROT_EXECUTE, VM_PROT_READ
from tests.sim.vm_fixture import VmBench

ANON = MAP_ANON | MAP_PRIVATE


@pytest.fixture
def bench():
    b = VmBench()
    b.cpu.regs["cpl"] = 0
    return b


def mmap(bench, addr, length, prot, flags, fd=-1, pos=0):
    td = bench.td
    error = sys_mmap(td, addr, length, prot, flags, fd & 0xFFFFFFFF, pos)
    return error, td.td_retval[0]


def test_anonymous_mmap_is_placed_above_the_largest_heap_and_maps_nothing_yet(bench):
    error, addr = mmap(bench, 0, 3 * 4096, PROT_READ | PROT_WRITE, ANON)
    assert error == 0
    assert addr >= bench.vmspace().vm_daddr + MAXDSIZ and addr % 4096 == 0
    assert bench.vmspace().vm_pmap.pm_resident == 0
    error, second = mmap(bench, 0, 4096, PROT_READ, ANON)
    assert second >= addr + 3 * 4096  # first fit after the first mapping


def test_mmap_checks_its_arguments_as_freebsd_does(bench):
    assert mmap(bench, 0, 0, PROT_READ, ANON)[0] == EINVAL  # length 0
    assert mmap(bench, 0, 4096, PROT_READ, ANON, fd=3)[0] == EINVAL  # MAP_ANON with a descriptor
    assert mmap(bench, 0, 4096, PROT_READ, MAP_ANON | MAP_SHARED | MAP_PRIVATE)[0] == EINVAL
    assert mmap(bench, 0x1001, 4096, PROT_READ, ANON | MAP_FIXED)[0] == EINVAL  # unaligned fixed address
    assert mmap(bench, 0, 4096, PROT_READ, ANON | MAP_EXCL)[0] == EINVAL  # MAP_EXCL without MAP_FIXED
    assert mmap(bench, 0, 4096, 0x8, ANON)[0] == EINVAL  # an unknown protection bit
    assert mmap(bench, 0, 4096, PROT_READ, MAP_PRIVATE, fd=40)[0] == EBADF


def test_map_fixed_replaces_what_was_there_and_map_excl_refuses(bench):
    error, addr = mmap(bench, 0, 2 * 4096, PROT_READ | PROT_WRITE, ANON)
    bench.cpu.regs["cpl"] = 3
    umem.store(addr, b"old")
    bench.cpu.regs["cpl"] = 0
    assert mmap(bench, addr, 4096, PROT_READ | PROT_WRITE, ANON | MAP_FIXED) == (0, addr)
    bench.cpu.regs["cpl"] = 3
    assert umem.load(addr, 3) == bytes(3)  # a fresh zero page
    bench.cpu.regs["cpl"] = 0
    assert mmap(bench, addr, 4096, PROT_READ, ANON | MAP_FIXED | MAP_EXCL)[0] != 0


def test_munmap_and_mprotect_and_minherit(bench):
    error, addr = mmap(bench, 0, 4 * 4096, PROT_READ | PROT_WRITE, ANON)
    bench.cpu.regs["cpl"] = 3
    umem.memset(addr, 1, 4 * 4096)
    bench.cpu.regs["cpl"] = 0
    assert sys_mprotect(bench.td, addr, 4096, PROT_READ) == 0
    assert not pmap_mapping(bench.vmspace().vm_pmap, addr) & PG_RW
    assert sys_munmap(bench.td, addr + 4096, 4096) == 0
    assert vm_map_lookup_entry(bench.vmspace().vm_map, addr + 4096) is None
    assert sys_munmap(bench.td, addr, 0) == EINVAL
    assert sys_minherit(bench.td, addr + 2 * 4096, 4096, VM_INHERIT_SHARE) == 0
    assert vm_map_lookup_entry(bench.vmspace().vm_map, addr + 2 * 4096).inheritance == VM_INHERIT_SHARE


def _open(bench, vp, fd=5, flag=FREAD):
    bench.td.td_proc.p_fd.fd_ofiles[fd] = File(DTYPE_VNODE, flag, vnops, vp, f_vnode=vp)
    return fd


def test_a_private_file_mapping_reads_the_file_and_copies_on_write(bench):
    data = bytes(range(256)) * 32  # two pages
    vp = new_vnode(VREG, "/tmp/data", 0o644, i_size=len(data), v_disk={0: data})
    vfs().names["/tmp/data"] = vp
    fd = _open(bench, vp)
    error, addr = mmap(bench, 0, len(data), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd)
    assert error == 0
    entry = vm_map_lookup_entry(bench.vmspace().vm_map, addr)
    assert entry.object.type == OBJT_VNODE and entry.eflags & MAP_ENTRY_COW
    bench.cpu.regs["cpl"] = 3
    assert umem.load(addr + 4096 + 3, 2) == bytes([3, 4])
    assert bench.vm.cnt.faults_user["hard"] == 1  # not in the page cache: read from the disk
    umem.store(addr, b"!")
    assert bench.vm.cnt.faults_user["cow"] == 1
    assert vp.v_object.memq[0] is not None and umem.load(addr, 2) == b"!\x01"


def test_a_shared_writable_mapping_of_a_read_only_descriptor_is_refused(bench):
    vp = new_vnode(VREG, "/tmp/ro", 0o444, i_size=4096, v_disk={0: bytes(4096)})
    fd = _open(bench, vp)
    assert mmap(bench, 0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd)[0] == EACCES
    assert mmap(bench, 0, 4096, PROT_READ, MAP_SHARED, fd)[0] == 0


def test_mapping_a_cached_file_with_prefault_read_maps_its_pages_at_once(bench):
    vp = new_vnode(VREG, "/lib/libtest.so", 0o444, i_size=8 * 4096, v_image=object())  # in the page cache
    fd = _open(bench, vp)
    error, addr = mmap(bench, 0, 8 * 4096, PROT_READ, MAP_PRIVATE | MAP_PREFAULT_READ, fd)
    assert error == 0 and bench.vmspace().vm_pmap.pm_resident == 8
    bench.cpu.regs["cpl"] = 3
    umem.load(addr + 5 * 4096, 1)
    assert bench.vm.cnt.v_vm_faults == 0


def test_mapping_dev_zero_gives_anonymous_memory(bench):
    vp = vfs().names["/dev/zero"]
    fd = _open(bench, vp)
    error, addr = mmap(bench, 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd)
    assert error == 0
    assert vm_map_lookup_entry(bench.vmspace().vm_map, addr).object is None  # made by the first fault


def test_the_first_processs_image_is_mapped_as_exec_maps_an_elf_file():
    from sim.kern.imgact_elf import default_image, exec_first_image

    bench = VmBench()
    td = bench.td
    exec_first_image(td, ("prog", "-x"), {"HOME": "/root"}, default_image("prog"))
    map = td.td_proc.p_vmspace.vm_map
    text = vm_map_lookup_entry(map, 0x401000)
    assert text.protection == VM_PROT_READ | VM_PROT_EXECUTE and text.object.type == OBJT_VNODE
    assert text.eflags & MAP_ENTRY_COW
    bss = vm_map_lookup_entry(map, 0x602000)
    assert bss.object is not None  # the data page's file bytes were copied out to it at exec
    stack = vm_map_lookup_entry(map, bench.cpu["rsp"])
    assert stack is not None and stack.end == 0x00007FFFFFFFF000
    shared = vm_map_lookup_entry(map, 0x00007FFFFFFFF000)
    assert shared is not None and shared.protection == VM_PROT_READ | VM_PROT_EXECUTE
    bench.cpu.regs["cpl"] = 3
    argc = umem.load_word(bench.cpu["rdi"])
    argv0 = umem.load_word(bench.cpu["rdi"] + 8)
    assert argc == 2 and umem.load(argv0, 5) == b"prog\0"
