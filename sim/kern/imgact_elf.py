"""A new process image (sys/kern/kern_exec.c exec_new_vmspace and exec_copyout_strings, sys/kern/imgact_elf.c
load_section and load_file, FreeBSD 11).

execve() throws the old address space away and builds a new one:
  - each PT_LOAD segment of the program is mapped from the file's vnode object, copy-on-write (text r-x, data
    rw-), with its resident pages prefaulted (MAP_PREFAULT); the file bytes in the data segment's last partial
    page are copied out to a fresh anonymous page, which begins the bss (mapped rwx, as FreeBSD 11 does);
  - a dynamically linked program also gets its interpreter, ld-elf.so.1, at the address mmap(0, ...) would
    choose: just above the data segment plus the largest heap RLIMIT_DATA allows;
  - the stack (grows down from USRSTACK) and the shared page above it (signal trampoline, vdso data);
  - argv and envp are copied onto the top of the stack (exec_copyout_strings): the kernel's copyouts fault in
    the stack's top page in kernel mode.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.core.pcpu import pcpu
from sim.kern.ksyms import PROGRAM_TEXT
from sim.machine.cpu import KERNEL_CPL
from sim.machine.physmem import PAGE_SIZE
from sim.vm.pmap import pmap_activate
from sim.vm.vm_map import VmMap, vm_map_insert, vm_map_protect, vmspace_alloc, vmspace_free
from sim.vm.vm_meter import VmMeter
from sim.vm.vm_object import OBJT_PHYS, vm_object_allocate
from sim.vm.vm_page import VM_PAGE_BITS_ALL, VmPage, vm_page_insert
from sim.vm.vm_pager import MemoryVnode, vnode_pager_alloc
from sim.vm.vm_param import (
    KERN_SUCCESS,
    MAP_COPY_ON_WRITE,
    MAP_DISABLE_COREDUMP,
    MAP_INHERIT_SHARE,
    MAP_PREFAULT,
    MAP_STACK_GROWS_DOWN,
    MAXDSIZ,
    SHAREDPAGE,
    USRSTACK,
    VM_PROT_ALL,
    VM_PROT_EXECUTE,
    VM_PROT_READ,
    VM_PROT_WRITE,
    round_page,
    trunc_page,
)

PF_X, PF_W, PF_R = 0x1, 0x2, 0x4
MAXSSIZ = 512 << 20  # maxssiz on amd64: the stack's entry (FreeBSD 11 maps sgrowsiz and grows it; not modelled)
PS_STRINGS_SIZE = 32  # struct ps_strings
ARGV_CANARY_SIZE = 64  # exec_copyout_strings' SSP canary
PAGESIZES = (4096, 2 << 20, 1 << 30)  # the pagesizes array rtld and libc read
AT_NULL, AT_PHDR, AT_PAGESZ, AT_BASE, AT_ENTRY, AT_EXECPATH, AT_CANARY, AT_PAGESIZES = 0, 3, 6, 7, 9, 15, 16, 20
SHARED_PAGE_PA = 0x1F00000  # a kernel page (below the free pool) holding the shared page's contents
RTLD_PATH = "/libexec/ld-elf.so.1"


@dataclass(frozen=True)
class LoadSegment:
    """A PT_LOAD program header (the same fields as sim.user.rtld.Segment)."""

    vaddr: int
    offset: int
    filesz: int
    memsz: int
    flags: int


@dataclass(frozen=True)
class StaticImage:
    """An ELF image as the image activator needs it: its path and PT_LOAD segments; `needed` names shared
    libraries (a dynamically linked program, so the kernel also maps ld-elf.so.1)."""

    path: str
    segments: tuple[LoadSegment, ...]
    needed: tuple[str, ...] = ()


# ld-elf.so.1 of FreeBSD 11/amd64 (sizes approximate): position independent, mapped at a hint address.
RTLD_IMAGE = StaticImage(
    RTLD_PATH,
    (LoadSegment(0x0, 0x0, 0x1F000, 0x1F000, PF_R | PF_X), LoadSegment(0x21F000, 0x1F000, 0x900, 0x1C00, PF_R | PF_W)),
)


def default_image(name: str) -> StaticImage:
    """A small statically linked program (text at 0x400000, where FreeBSD 11's GNU ld links amd64 programs, a
    data page 2 MiB above its end and some bss) for programs that bring no image of their own."""
    return StaticImage(
        f"/bin/{name}",
        (
            LoadSegment(0x400000, 0x0, 0x2000, 0x2000, PF_R | PF_X),
            LoadSegment(0x602000, 0x2000, 0x300, 0x1800, PF_R | PF_W),
        ),
    )


def _prot(flags: int) -> int:
    return (
        (VM_PROT_READ if flags & PF_R else 0)
        | (VM_PROT_WRITE if flags & PF_W else 0)
        | (VM_PROT_EXECUTE if flags & PF_X else 0)
    )


def _file_extent(image) -> int:
    return max((s.offset + s.filesz for s in image.segments), default=0)


def _vnode_of(image, vp=None):
    """The vnode to map an image from: the one execve looked up, the file system's, or one made for it."""
    if vp is not None:
        return vp
    vm = pcpu.kernel.vm
    vp = vm.image_vnodes.get(image.path)
    if vp is None:
        vp = MemoryVnode(image.path, _file_extent(image), lambda pindex: 0, cached=True)
        vm.image_vnodes[image.path] = vp
    return vp


def _load_section(map: VmMap, object, seg, base: int) -> int:
    """imgact_elf.c load_section: map the file part COW, the rest (bss) anonymous; copy the partial page."""
    from sim.kern.support import copyout

    vaddr = base + seg.vaddr
    prot = _prot(seg.flags)
    map_addr = trunc_page(vaddr)
    file_addr = trunc_page(seg.offset)
    if seg.filesz == 0:
        map_len = 0
    elif seg.memsz > seg.filesz:
        map_len = trunc_page(seg.offset + seg.filesz) - file_addr
    else:
        map_len = round_page(seg.offset + seg.filesz) - file_addr
    if map_len:
        cow = MAP_COPY_ON_WRITE | MAP_PREFAULT | (0 if prot & VM_PROT_WRITE else MAP_DISABLE_COREDUMP)
        if vm_map_insert(map, object, file_addr, map_addr, map_addr + map_len, prot, VM_PROT_ALL, cow) != KERN_SUCCESS:
            return -1
        if seg.memsz == seg.filesz:
            return 0
    copy_len = 0 if seg.filesz == 0 else (seg.offset + seg.filesz) - trunc_page(seg.offset + seg.filesz)
    map_addr = trunc_page(vaddr + seg.filesz)
    map_len = round_page(vaddr + seg.memsz) - map_addr
    if map_len and vm_map_insert(map, None, 0, map_addr, map_addr + map_len, VM_PROT_ALL, VM_PROT_ALL, 0):
        return -1
    if copy_len:
        # vm_imgact_map_page: the file page through the vnode object, then its head copied out to the bss page.
        src = _object_page_bytes(object, (seg.offset + seg.filesz) // PAGE_SIZE)
        if copyout(src[:copy_len], map_addr, copy_len):
            return -1
    if not prot & VM_PROT_WRITE:
        vm_map_protect(map, trunc_page(map_addr), round_page(map_addr + map_len), prot, False)
    return 0


def _object_page_bytes(object, pindex: int) -> bytes:
    m = object.memq.get(pindex)
    if m is None:
        from sim.vm.vm_pager import vnode_getpage

        content = vnode_getpage(object.handle, pindex)
        return bytes([content]) * PAGE_SIZE if isinstance(content, int) else bytes(content).ljust(PAGE_SIZE, b"\0")
    return pcpu.machine.physmem.read(m.phys_addr, PAGE_SIZE)


def _load_image(map: VmMap, image, vp, base: int) -> int:
    object = vnode_pager_alloc(vp, _file_extent(image))
    for seg in image.segments:
        if _load_section(map, object, seg, base):
            return -1
    return 0


def _shared_page_object():
    """The shared page's object (OBJT_PHYS), one resident page made at boot and mapped into every process."""
    vm = pcpu.kernel.vm
    if vm.shared_page_obj is None:
        object = vm_object_allocate(OBJT_PHYS, 1)
        m = VmPage(SHARED_PAGE_PA)
        m.valid = VM_PAGE_BITS_ALL
        m.wire_count = 1
        vm_page_insert(m, object, 0)
        vm.page_array[SHARED_PAGE_PA >> 12] = m
        vm.shared_page_obj = object
    object = vm.shared_page_obj
    object.ref_count += 1
    return object


def exec_new_vmspace(td, argv: list[str], env: list[str], vp=None) -> tuple[int, int]:
    """Replace td's process's address space with the image of vp (its v_image), argv and env on the stack:
    (error, the stack pointer, which points at argc)."""
    from sim.kern.errno import ENOEXEC, ENOMEM

    p = td.td_proc
    image = getattr(vp, "v_image", None) if vp is not None else None
    if image is None or not hasattr(image, "segments"):
        image = default_image(p.p_comm)
    old = p.p_vmspace
    vm = vmspace_alloc(name=f"pid {p.p_pid}")
    p.p_vmspace = vm
    pmap_activate(vm.vm_pmap)
    if old is not None:
        vmspace_free(old)
    map = vm.vm_map
    if _load_image(map, image, _vnode_of(image, vp), 0):
        return ENOEXEC, 0
    text = next((s for s in image.segments if s.flags & PF_X), image.segments[0])
    data = next((s for s in image.segments if s.flags & PF_W), image.segments[-1])
    vm.vm_taddr, vm.vm_tsize = trunc_page(text.vaddr), round_page(text.memsz) // PAGE_SIZE
    vm.vm_daddr, vm.vm_dsize = trunc_page(data.vaddr), round_page(data.memsz) // PAGE_SIZE
    if getattr(image, "needed", ()):
        # "We load the dynamic linker where a userland call to mmap(0, ...) would put it."
        rtld_base = round_page(vm.vm_daddr + MAXDSIZ)
        if _load_image(map, RTLD_IMAGE, _vnode_of(RTLD_IMAGE), rtld_base):
            return ENOEXEC, 0
    stack_top = USRSTACK
    if vm_map_insert(map, None, 0, stack_top - MAXSSIZ, stack_top, VM_PROT_ALL, VM_PROT_ALL, MAP_STACK_GROWS_DOWN):
        return ENOMEM, 0
    vm.vm_ssize = MAXSSIZ // PAGE_SIZE
    prot = VM_PROT_READ | VM_PROT_EXECUTE
    vm_map_insert(map, _shared_page_object(), 0, SHAREDPAGE, SHAREDPAGE + PAGE_SIZE, prot, prot, MAP_INHERIT_SHARE)
    return exec_copyout_strings(image.path, argv, env)


def exec_copyout_strings(execpath: str, argv: list[str], env: list[str]) -> tuple[int, int]:
    """Copy the strings, the canary, the page sizes and the argv/envp/auxv vectors to the top of the stack."""
    from sim.kern.errno import EFAULT
    from sim.kern.support import copyout, suword, suword32

    arginfo = USRSTACK - PS_STRINGS_SIZE
    destp = arginfo
    path = execpath.encode() + b"\0"
    destp -= len(path)
    execpathp = destp
    error = copyout(path, destp, len(path))
    canary = bytes((i * 151 + 89) & 0xFF for i in range(ARGV_CANARY_SIZE))  # arc4rand(); fixed: runs repeat
    destp -= len(canary)
    canaryp = destp
    error = error or copyout(canary, destp, len(canary))
    sizes = b"".join(size.to_bytes(8, "little") for size in PAGESIZES)
    destp = (destp - len(sizes)) & ~7
    pagesizesp = destp
    error = error or copyout(sizes, destp, len(sizes))
    strings = b"".join(s.encode() + b"\0" for s in (*argv, *env))
    destp = (destp - len(strings)) & ~7
    error = error or copyout(strings, destp, len(strings))
    auxv = [(AT_PAGESZ, PAGE_SIZE), (AT_EXECPATH, execpathp), (AT_CANARY, canaryp), (AT_PAGESIZES, pagesizesp)]
    auxv.append((AT_NULL, 0))
    vectp = destp - 8 * (len(argv) + len(env) + 2 + 2 * len(auxv))
    vectp &= ~0xF
    stack_base = vectp - 8  # argc goes below argv (elf64_freebsd_fixup)
    # The vector table: argv pointers, NULL, envp pointers, NULL, then the auxiliary vector.
    pointers = []
    offset = destp
    for s in argv:
        pointers.append(offset)
        offset += len(s.encode()) + 1
    pointers.append(0)
    env_start = len(pointers)
    for s in env:
        pointers.append(offset)
        offset += len(s.encode()) + 1
    pointers.append(0)
    table = b"".join(v.to_bytes(8, "little") for v in pointers)
    table += b"".join(a.to_bytes(8, "little") + v.to_bytes(8, "little") for a, v in auxv)
    error = error or copyout(table, vectp, len(table))
    if not error:
        error = (
            suword(arginfo, vectp)
            or suword32(arginfo + 8, len(argv))
            or suword(arginfo + 16, vectp + 8 * env_start)
            or suword32(arginfo + 24, len(env))
            or suword(stack_base, len(argv))
        )
    return (EFAULT, 0) if error else (0, stack_base)


def exec_first_image(td, argv: tuple[str, ...], env: dict[str, str], image=None) -> None:
    """The run's first process, as the shell's execve left it before the run begins: its image mapped and its
    stack set up. That work happened before the run, so it is neither recorded nor timed, the VM
    counters start from zero, and it leaves no trace in %rip or %cr2 (its faults are not in the log, so %cr2 keeps
    its boot value); %cr3, %rsp and %rdi are the new image's, and %rip its entry point, as exec_setregs leaves
    them for the return to user mode."""
    from sim.kern.errno import NAMES

    machine, vm = pcpu.machine, pcpu.kernel.vm
    log, regs = machine.log, machine.cpu.regs
    saved = (log.recording, log.unrecorded, log.event_budget, log.now, log.depth, regs["cpl"], regs["cr2"])
    log.recording = False
    log.event_budget = 1 << 62  # the run's budget starts with the run
    regs["cpl"] = KERNEL_CPL
    try:
        vp = _program_vnode(image or default_image(argv[0]))
        error, stack = exec_new_vmspace(td, list(argv), [f"{k}={v}" for k, v in env.items()], vp)
    finally:
        log.recording, log.unrecorded, log.event_budget, log.now, log.depth, regs["cpl"], regs["cr2"] = saved
        log._pending.clear()
    if error:
        raise RuntimeError(f"exec of {argv[0]} failed: {NAMES.get(error, error)}")
    vm.cnt = VmMeter()
    machine.mmu.hits = machine.mmu.misses = machine.mmu.walks = 0
    regs["rip"] = PROGRAM_TEXT  # exec_setregs: the entry point
    regs["rsp"] = ((stack - 8) & ~0xF) + 8  # exec_setregs: as if _start had been called
    regs["rdi"] = stack


def _program_vnode(image):
    """The program file's vnode in the simulated file system, installed there if it is not yet."""
    from sim.kern.vfs_subr import install_program, vfs

    names = vfs().names
    vp = names.get(image.path)
    if vp is None:
        install_program(image.path, image)
        vp = names[image.path]
    return vp
