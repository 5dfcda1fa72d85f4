"""Copying between the kernel and user memory (sys/amd64/amd64/support.S, FreeBSD 11).

The kernel never dereferences a user pointer directly: a system call's buffer is reached only through these
routines, which
  1. set pcb_onfault to their fault label, so a page fault they cannot survive comes back here, not as a panic;
  2. check that the user range lies below VM_MAXUSER_ADDRESS, so a kernel pointer passed in by a user gets
     EFAULT instead of overwriting the kernel (the lecture's read() into a kernel address);
  3. open user access with stac (SMAP: the CPU otherwise faults a kernel access to a user page) and close it
     with clac;
  4. move the bytes through the MMU in kernel mode: an untouched user page faults here, in kernel mode, and
     vm_fault zero-fills it (the lecture's dd: pages zeroed only to have zeros copied into them).

Python signatures: copyin(udaddr, kaddr, len) fills kaddr (a bytearray or writable memoryview); copyout(kaddr,
udaddr, len) reads kaddr, which may be bytes-like or a Fill (e.g. zero_region), so a 10 MiB copy of zeros moves
no host bytes. Both return 0 or EFAULT. fueword/fuword32/fubyte return -1 (and fueword a (rc, value) pair) on a
fault, suword/suword32/subyte return 0 or -1, as in FreeBSD.
"""

from __future__ import annotations

from collections.abc import Callable

from sim.core.events import CopyFault, KernelDeref, UserCopy, UserFetched
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.errno import EFAULT, ENAMETOOLONG
from sim.kern.ksyms import kernel_symbol
from sim.kern.trap_pfault import OnFault, kernel_fault
from sim.machine.cpu import CR4_SMAP, PSL_AC
from sim.machine.memhier import KERNEL_STACK, ZERO_PAGE
from sim.machine.mmu import PGEX_W, GeneralProtection, PageFault
from sim.machine.physmem import PAGE_MASK, PAGE_SIZE, Fill, frame_contents
from sim.vm.vm_param import VM_MAXUSER_ADDRESS

ZERO_REGION_SIZE = 2 << 20  # machine/vmparam.h (amd64)
zero_region = Fill(0, ZERO_REGION_SIZE, "zero_region")  # one zeroed page mapped 512 times, read-only

_FAULT_LABELS = {}  # routine -> the address of its fault label, what pcb_onfault holds


def _label(routine: str) -> int:
    address = _FAULT_LABELS.get(routine)
    if address is None:
        address = _FAULT_LABELS[routine] = kernel_symbol(routine) + 0x80
    return address


def _set_onfault(td, value: int) -> None:
    pcb = td.td_pcb
    old = pcb.pcb_onfault
    pcb.pcb_onfault = value
    if old != value:
        pcpu.machine.log.delta(("td", "pcb_onfault", old, value))


def _user_access(allow: bool) -> None:
    """stac / clac: with CR4.SMAP, rflags.AC is what lets the kernel touch user pages."""
    machine = pcpu.machine
    cpu = machine.cpu
    if not cpu["cr4"] & CR4_SMAP:
        return
    machine.charge(machine.profile.stac_clac_ns)
    if allow:
        cpu.set("rflags", cpu["rflags"] | PSL_AC)
        machine.emit("insn", "stac")
    else:
        cpu.set("rflags", cpu["rflags"] & ~PSL_AC)
        machine.emit("insn", "clac")


def _bad_range(udaddr: int, length: int) -> bool:
    end = udaddr + length
    return end > VM_MAXUSER_ADDRESS or end >= 1 << 64 or udaddr < 0


def _copy_fault(td, label: str, why: CopyFault) -> int:
    """The copy routine's fault label (copyin_fault, fusufault, ...): clear pcb_onfault, return EFAULT."""
    machine = pcpu.machine
    _set_onfault(td, 0)
    machine.emit("hook", f"{label}_fault", why)
    return EFAULT


def _translate(va: int, access: int, rip: int) -> int:
    """A kernel-mode access to a user address: fault (and retry) until it translates, or OnFault."""
    mmu = pcpu.machine.mmu
    while True:
        try:
            return mmu.translate(va, access)
        except (PageFault, GeneralProtection) as fault:
            kernel_fault(fault, rip)


@kfunc
def copyout(kaddr, udaddr: int, length: int, *, kcache: int | None = None) -> int:
    """Copy `length` bytes from the kernel (bytes-like, or a Fill) to user address udaddr. kcache: where kaddr
    sits for the cache model (sim/machine/memhier.py), when it is a buffer the model names."""
    rip = kernel_symbol("copyout") + 0x40
    return _guarded_copy(
        "copyout",
        udaddr,
        length,
        lambda: _copy_to_user(kaddr, udaddr, length, rip, "copyout", kcache),
    )


def _guarded_copy(routine: str, udaddr: int, length: int, move: Callable[[], None]) -> int:
    """What support.S's copyin and copyout share around the move itself: pcb_onfault pointing at the routine's
    fault label, the VM_MAXUSER_ADDRESS check, stac before and clac after. Returns 0 or EFAULT."""
    td = pcpu.curthread
    _set_onfault(td, _label(f"{routine}_fault"))
    if length == 0:
        _set_onfault(td, 0)
        return 0
    if _bad_range(udaddr, length):
        return _copy_fault(td, routine, CopyFault(routine, udaddr, length, routine == "copyout", False))
    _user_access(True)
    try:
        move()
    except OnFault:
        _user_access(False)
        return _copy_fault(td, routine, CopyFault(routine, pcpu.machine.cpu["cr2"], 0, routine == "copyout", True))
    _user_access(False)
    _set_onfault(td, 0)
    return 0


def _copy_to_user(kaddr, udaddr: int, length: int, rip: int, what: str, kcache: int | None = None) -> None:
    machine = pcpu.machine
    log = machine.log
    mmu, physmem, caches = machine.mmu, machine.physmem, machine.caches
    fill = kaddr.byte if isinstance(kaddr, Fill) else None
    src = ZERO_PAGE if fill is not None else KERNEL_STACK if kcache is None else kcache
    view = None if fill is not None else memoryview(kaddr).cast("B")
    off = 0
    va = udaddr
    while off < length:
        n = min(PAGE_SIZE - (va & PAGE_MASK), length - off)
        try:
            pa = mmu.translate(va, PGEX_W)
        except (PageFault, GeneralProtection) as fault:
            kernel_fault(fault, rip)
            continue
        if log.recording:
            pfn = pa >> 12
            old = frame_contents(physmem, pfn)
        if fill is not None:
            physmem.fill(pa, fill, n)
        else:
            physmem.write(pa, view[off : off + n])
        log.now += caches.copy_ps(src + off if kcache is not None and fill is None else src, pa, n) // 1000
        if log.recording:
            log.delta(("frame", pfn, old, frame_contents(physmem, pfn)))
            log.emit("mem", what, UserCopy(True, n, va, pa & ~PAGE_MASK))
        else:
            log.emit("mem", what)
        off += n
        va += n


@kfunc
def copyin(udaddr: int, kaddr: bytearray | memoryview, length: int, *, kcache: int | None = None) -> int:
    """Copy `length` bytes from user address udaddr into kaddr (kcache: as copyout's)."""
    rip = kernel_symbol("copyin") + 0x40
    return _guarded_copy(
        "copyin", udaddr, length, lambda: _copy_from_user(udaddr, kaddr, length, rip, "copyin", kcache)
    )


def _copy_from_user(udaddr: int, kaddr, length: int, rip: int, what: str, kcache: int | None = None) -> None:
    machine = pcpu.machine
    log = machine.log
    mmu, physmem, caches = machine.mmu, machine.physmem, machine.caches
    dest = kaddr if isinstance(kaddr, memoryview) else memoryview(kaddr)
    off = 0
    va = udaddr
    while off < length:
        n = min(PAGE_SIZE - (va & PAGE_MASK), length - off)
        try:
            pa = mmu.translate(va, 0)
        except (PageFault, GeneralProtection) as fault:
            kernel_fault(fault, rip)
            continue
        physmem.read_into(pa, n, dest, off)
        log.now += caches.copy_ps(pa, KERNEL_STACK if kcache is None else kcache + off, n) // 1000
        log.emit("mem", what, UserCopy(False, n, va, pa & ~PAGE_MASK) if log.recording else None)
        off += n
        va += n


@kfunc
def copyinstr(udaddr: int, kaddr: bytearray, maxlen: int) -> tuple[int, int]:
    """Copy a NUL-terminated string of at most maxlen bytes (NUL included): (error, bytes copied)."""
    machine, td = pcpu.machine, pcpu.curthread
    _set_onfault(td, _label("copyinstr_fault"))
    physmem = machine.physmem
    rip = kernel_symbol("copyinstr") + 0x40
    copied = 0
    va = udaddr
    _user_access(True)
    try:
        while copied < maxlen:
            if va >= VM_MAXUSER_ADDRESS:
                _user_access(False)
                return _copy_fault(td, "copyinstr", CopyFault("copyinstr", va, 0, False, False)), copied
            n = min(PAGE_SIZE - (va & PAGE_MASK), maxlen - copied)
            pa = _translate(va, 0, rip)
            chunk = physmem.read(pa, n)
            machine.charge(machine.caches.copy_ps(pa, KERNEL_STACK, n) // 1000)
            nul = chunk.find(0)
            if nul >= 0:
                kaddr[copied : copied + nul + 1] = chunk[: nul + 1]
                copied += nul + 1
                _user_access(False)
                _set_onfault(td, 0)
                return 0, copied
            kaddr[copied : copied + n] = chunk
            copied += n
            va += n
    except OnFault:
        _user_access(False)
        return _copy_fault(td, "copyinstr", CopyFault("copyinstr", machine.cpu["cr2"], 0, False, True)), copied
    _user_access(False)
    _set_onfault(td, 0)
    return ENAMETOOLONG, copied


def _fetch(routine: str, base: int, size: int) -> int | None:
    """fubyte/fuword32/fueword: read `size` bytes at base, None on a fault (fusufault)."""
    machine, td = pcpu.machine, pcpu.curthread
    _set_onfault(td, _label("fusufault"))
    if base < 0 or base > VM_MAXUSER_ADDRESS - size:
        _copy_fault(td, "fusu", CopyFault(routine, base, size, False, False))
        return None
    _user_access(True)
    try:
        data = bytearray(size)
        _copy_from_user(base, data, size, kernel_symbol(routine) + 0x20, routine)
    except OnFault:
        _user_access(False)
        _copy_fault(td, "fusu", CopyFault(routine, base, 0, False, True))
        return None
    _user_access(False)
    _set_onfault(td, 0)
    machine.emit("mem", routine, UserFetched(int.from_bytes(data, "little"), base))
    return int.from_bytes(data, "little")


def _store(routine: str, base: int, value: int, size: int) -> int:
    td = pcpu.curthread
    _set_onfault(td, _label("fusufault"))
    if base < 0 or base > VM_MAXUSER_ADDRESS - size:
        _copy_fault(td, "fusu", CopyFault(routine, base, size, True, False))
        return -1
    _user_access(True)
    try:
        data = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        _copy_to_user(data, base, size, kernel_symbol(routine) + 0x20, routine)
    except OnFault:
        _user_access(False)
        _copy_fault(td, "fusu", CopyFault(routine, base, 0, True, True))
        return -1
    _user_access(False)
    _set_onfault(td, 0)
    return 0


@kfunc
def fueword(base: int) -> tuple[int, int]:
    """Fetch a 64-bit word: (0, value), or (-1, 0) on a fault."""
    value = _fetch("fueword", base, 8)
    return (-1, 0) if value is None else (0, value)


@kfunc
def fueword32(base: int) -> tuple[int, int]:
    value = _fetch("fueword32", base, 4)
    return (-1, 0) if value is None else (0, value)


@kfunc
def fuword(base: int) -> int:
    value = _fetch("fuword", base, 8)
    return -1 if value is None else value


@kfunc
def fuword32(base: int) -> int:
    value = _fetch("fuword32", base, 4)
    return -1 if value is None else value


@kfunc
def fubyte(base: int) -> int:
    value = _fetch("fubyte", base, 1)
    return -1 if value is None else value


@kfunc
def suword(base: int, word: int) -> int:
    return _store("suword", base, word, 8)


@kfunc
def suword32(base: int, word: int) -> int:
    return _store("suword32", base, word, 4)


@kfunc
def subyte(base: int, byte: int) -> int:
    return _store("subyte", base, byte, 1)


def kernel_deref(va: int, write: bool = False, value: int = 0) -> int:
    """Kernel code dereferencing a pointer directly (no copy routine, no stac): what a kernel bug does.

    A user page touched this way faults as an SMAP violation when CR4.SMAP is set, and any unresolvable fault
    here (a NULL pointer) is fatal: trap_fatal prints "Fatal trap 12" and the machine panics (MachineHalted).
    Returns the 8-byte value read (or 0 after a write).
    """
    machine = pcpu.machine
    physmem = machine.physmem
    rip = kernel_symbol("kernel_deref") + 0x10
    machine.emit("insn", "movq (%rax),%rax" if not write else "movq %rdx,(%rax)", KernelDeref(va))
    while True:
        try:
            pa = machine.mmu.translate(va, PGEX_W if write else 0)
            break
        except (PageFault, GeneralProtection) as fault:
            kernel_fault(fault, rip)
    n = min(8, PAGE_SIZE - (pa & PAGE_MASK))
    if write:
        physmem.write(pa, (value & ((1 << 64) - 1)).to_bytes(8, "little")[:n])
        return 0
    return int.from_bytes(physmem.read(pa, n), "little")
