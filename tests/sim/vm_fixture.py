"""A bare simulated machine for VM tests: the kernel booted, one process with an empty address space, the CPU in
ring 3 on its page tables. Tests drive the VM layer directly (vm_map_*, vmspace_fork) and touch memory as user
code would (sim.user.umem), without a whole run."""

from __future__ import annotations

import dataclasses

from sim.core.pcpu import pcpu
from sim.kern.init_main import proc0_init
from sim.kern.kernel import Kernel, KernelConfig
from sim.kern.proc import Thread, Ucred
from sim.machine.cpu import KERNEL_CPL, USER_CPL
from sim.machine.machine import Machine
from sim.machine.profiles import PROFILES
from sim.run import _boot
from sim.vm.pmap import pmap_activate
from sim.vm.vm_init import vm_boot
from sim.vm.vm_map import Vmspace, vm_map_find, vmspace_alloc, vmspace_fork
from sim.vm.vm_param import VM_PROT_ALL, VM_PROT_RW, VMFS_ANY_SPACE, VMFS_OPTIMAL_SPACE


class VmBench:
    def __init__(self, profile: str = "lecture", smap: bool = True, record: int = 100_000, mem: int = 0) -> None:
        config = KernelConfig(smap=smap)
        chosen = PROFILES[profile]
        if mem:
            chosen = dataclasses.replace(chosen, phys_mem_bytes=mem)  # a smaller machine, to run out of memory
        self.machine = Machine(chosen, record, 10**9)
        self.kernel = Kernel(config)
        pcpu.attach(self.machine, self.kernel)
        _boot(self.machine, config)
        self.vm = vm_boot(self.machine, self.kernel)
        self.td = self.kernel.new_process("bench", Ucred())
        self.config = config
        proc0_init(self.td, config)
        pcpu.curthread = self.td
        self.td.td_proc.p_vmspace = vmspace_alloc(name=f"pid {self.td.td_proc.p_pid}")
        self.switch_to(self.td)

    @property
    def cpu(self):
        return self.machine.cpu

    @property
    def events(self):
        return self.machine.log.events

    def vmspace(self, td: Thread | None = None) -> Vmspace:
        return (td or pcpu.curthread).td_proc.p_vmspace

    def switch_to(self, td: Thread) -> None:
        """Run td: its address space in %cr3, the CPU in ring 3 (what cpu_switch + return to user leave)."""
        pcpu.curthread = td
        self.cpu.regs["cpl"] = KERNEL_CPL
        pmap_activate(td.td_proc.p_vmspace.vm_pmap)
        self.cpu.regs["cpl"] = USER_CPL

    def mmap_anon(self, size: int, prot: int = VM_PROT_RW, addr: int = 0x800000000, optimal: bool = False) -> int:
        find = VMFS_OPTIMAL_SPACE if optimal else VMFS_ANY_SPACE
        rv, start = vm_map_find(self.vmspace().vm_map, None, 0, addr, size, 0, find, prot, VM_PROT_ALL, 0)
        assert rv == 0
        return start

    def fork(self) -> Thread:
        """A child process with a vmspace_fork of the current one (the VM half of fork)."""
        parent = pcpu.curthread
        child = self.kernel.new_process("child", parent.td_proc.p_ucred)
        proc0_init(child, self.config)
        self.cpu.regs["cpl"] = KERNEL_CPL
        child.td_proc.p_vmspace = vmspace_fork(parent.td_proc.p_vmspace, name=f"pid {child.td_proc.p_pid}")
        self.cpu.regs["cpl"] = USER_CPL
        return child

    def kinds(self, kind: str) -> list:
        return [e for e in self.events if e.kind == kind]
