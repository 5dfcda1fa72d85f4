"""VM constants: the amd64 address layout (machine/vmparam.h), protections, inheritance and return codes
(vm/vm.h, vm/vm_param.h, sys/mman.h), as FreeBSD 11 defines them."""

from __future__ import annotations

from sim.machine.physmem import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE  # noqa: F401 - re-exported

# amd64 address layout (reference section 8)
VM_MIN_ADDRESS = 0
VM_MAXUSER_ADDRESS = 0x0000800000000000  # top of the 4-level user half (exclusive)
USRSTACK = VM_MAXUSER_ADDRESS - PAGE_SIZE  # the stack grows down from here; the shared page sits above it
SHAREDPAGE = USRSTACK  # signal trampoline and the vdso's timekeeping data
VM_MIN_KERNEL_ADDRESS = 0xFFFFFE0000000000  # the kernel map
DMAP_MIN_ADDRESS = 0xFFFFF80000000000  # the direct map of all physical memory
DMAP_MAX_ADDRESS = 0xFFFFFC0000000000
KERNBASE = 0xFFFFFFFF80000000  # where the kernel is linked
PML4PML4I = 256  # the recursive slot: the page tables map themselves at 0xffff800000000000
DMPML4I = (DMAP_MIN_ADDRESS >> 39) & 0x1FF  # 496
KPML4I = 511  # KERNBASE's slot
KPML4BASE = (VM_MIN_KERNEL_ADDRESS >> 39) & 0x1FF  # 508: the kernel map's slot
NBPDR = 1 << 21  # 2 MiB: what one PDE maps, the superpage size
PDRMASK = NBPDR - 1
NPDEPG = 512
MAXSSIZ = 8 << 20  # the stack mapping made at exec (FreeBSD grows it on demand up to maxssiz; not modelled)
MAXDSIZ = 32 << 30  # RLIMIT_DATA's maximum on amd64: mmap's default hint starts above the data segment


def PHYS_TO_DMAP(pa: int) -> int:  # noqa: N802 - the kernel's macro
    return pa | DMAP_MIN_ADDRESS


def DMAP_TO_PHYS(va: int) -> int:  # noqa: N802
    return va & ~DMAP_MIN_ADDRESS


def trunc_page(x: int) -> int:
    return x & ~PAGE_MASK


def round_page(x: int) -> int:
    return (x + PAGE_MASK) & ~PAGE_MASK


def atop(x: int) -> int:
    return x >> PAGE_SHIFT


def ptoa(x: int) -> int:
    return x << PAGE_SHIFT


OFF_TO_IDX = atop
IDX_TO_OFF = ptoa

# vm_prot_t (vm/vm.h)
VM_PROT_NONE = 0x00
VM_PROT_READ = 0x01
VM_PROT_WRITE = 0x02
VM_PROT_EXECUTE = 0x04
VM_PROT_COPY = 0x08  # copy-on-read: force a shadow on lookup
VM_PROT_ALL = VM_PROT_READ | VM_PROT_WRITE | VM_PROT_EXECUTE
VM_PROT_RW = VM_PROT_READ | VM_PROT_WRITE
VM_PROT_DEFAULT = VM_PROT_ALL


def prot_text(prot: int) -> str:
    """The r, w and x bits of a vm_prot_t as text ("rw-" for read and write); VM_PROT_COPY and above are not shown."""
    return _PROT_TEXTS[prot & VM_PROT_ALL]


_PROT_TEXTS = tuple("".join(c if prot & bit else "-" for bit, c in ((1, "r"), (2, "w"), (4, "x"))) for prot in range(8))


# vm_inherit_t (vm/vm_inherit.h), the values minherit(2) takes
VM_INHERIT_SHARE = 0
VM_INHERIT_COPY = 1
VM_INHERIT_NONE = 2
VM_INHERIT_DEFAULT = VM_INHERIT_COPY
INHERIT_NAMES = {VM_INHERIT_SHARE: "share", VM_INHERIT_COPY: "copy", VM_INHERIT_NONE: "none"}

# Mach return codes (vm/vm_param.h)
KERN_SUCCESS = 0
KERN_INVALID_ADDRESS = 1
KERN_PROTECTION_FAILURE = 2
KERN_NO_SPACE = 3
KERN_INVALID_ARGUMENT = 4
KERN_FAILURE = 5
KERN_RESOURCE_SHORTAGE = 6

# vm_map_entry eflags (vm/vm_map.h)
MAP_ENTRY_NOSYNC = 0x0001
MAP_ENTRY_IS_SUB_MAP = 0x0002
MAP_ENTRY_COW = 0x0004  # copy-on-write: the object is shared with another map
MAP_ENTRY_NEEDS_COPY = 0x0008  # the first write must first give this entry its own shadow object
MAP_ENTRY_NOFAULT = 0x0010
MAP_ENTRY_USER_WIRED = 0x0020
MAP_ENTRY_BEHAV_NORMAL = 0x0000
MAP_ENTRY_NOCOREDUMP = 0x0400
MAP_ENTRY_GROWS_DOWN = 0x1000  # a stack
MAP_ENTRY_VN_WRITECNT = 0x4000

# vm_map_insert's cow argument (vm/vm_map.h)
MAP_INHERIT_SHARE = 0x0001
MAP_COPY_ON_WRITE = 0x0004
MAP_NOFAULT = 0x0008
MAP_PREFAULT = 0x0010
MAP_PREFAULT_PARTIAL = 0x0020
MAP_DISABLE_SYNCER = 0x0040
MAP_CHECK_EXCL = 0x0080
MAP_CREATE_GUARD = 0x0100
MAP_DISABLE_COREDUMP = 0x0200
MAP_STACK_GROWS_DOWN = 0x1000

# vm_map_find's find_space (vm/vm_map.h)
VMFS_NO_SPACE = 0
VMFS_ANY_SPACE = 1
VMFS_OPTIMAL_SPACE = 2  # align to a superpage boundary when the mapping could use superpages
VMFS_SUPER_SPACE = 3

# vm_fault's fault_flags
VM_FAULT_NORMAL = 0
VM_FAULT_WIRE = 1
VM_FAULT_DIRTY = 2

# vm_fault_prefault's window (vm/vm_fault.c): pages mapped behind and ahead of a soft fault
PFBAK = 4
PFFOR = 4

# Fault kinds reported by `trapscope run --json` (the FreeBSD counter each comes from, in vm_meter.py)
FAULT_KINDS = ("zero_fill", "cow", "soft", "hard", "protection", "unmapped")
