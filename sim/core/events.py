"""The event log's schema: the typed payload (Event.data) of each kind of event that carries facts.

A payload holds facts only (numbers, names, flags): views, DTrace providers and exporters read its fields, and
sim/narrative makes the words people read from it. Payloads are immutable, cheap to make on the recorder's hot
paths, and never a reference to a live simulator object.
"""

from __future__ import annotations

import msgspec


class Payload(msgspec.Struct, frozen=True, gc=False, order=True):
    """The base of every payload: a msgspec Struct, fields read by name, compared and ordered field by field.

    gc=False: the garbage collector never tracks a payload (it holds facts, so it can be in no reference cycle). A
    recorded run holds millions of them; as tuples (NamedTuples are never untracked) every young collection walked
    them again, and that was 10-15% of a recorded run's time.
    """


# --- processes and system calls (emitted by sim/kern and sim/run) -----------------------------------------------


class ProcessStart(Payload):
    """kind "start": the run's first process begins."""

    pid: int
    command: str  # the command line, as given


class Fork(Payload):
    """kind "proc", name "fork": fork1() made a process."""

    parent: int  # pid
    child: int  # pid
    tid: int  # the child's first thread


class Exec(Payload):
    """kind "proc", name "exec": a process now runs another program."""

    pid: int
    path: str
    argv: tuple[str, ...]


class ProcessExit(Payload):
    """kind "proc", name "exit": exit1()."""

    pid: int
    comm: str
    status: int  # the exit status (meaningful when signal is 0)
    signal: int  # the signal that ended the process, or 0


class SyscallArgs(Payload):
    """kind "syscall", name = the call: syscallenter dispatches it through sysent."""

    names: tuple[str, ...]  # the parameters' names (syscalls.master)
    values: tuple[int, ...]  # the arguments, as fetched


class SyscallResult(Payload):
    """kind "sysret" (name success, error, ERESTART or EJUSTRETURN): cpu_set_syscall_retval."""

    error: int  # 0, an errno value, or ERESTART / EJUSTRETURN (kernel-internal codes)
    retval: int  # td_retval[0] as set in tf_rax on success; 0 otherwise


class Trap(Payload):
    """kind "trap": the CPU takes an exception (a page fault, a general protection fault)."""

    trapno: int
    err: int  # the error code the CPU pushed
    addr: int  # %cr2 for a page fault
    user: bool  # taken in user mode (False: in kernel mode)


# --- more payloads of the kernel and userland (sim/kern, sim/user) ----------------------------------------------


class RunEnd(Payload):
    """kind "end" (name = the program): the run is complete. No facts: the name varies, so the words cannot be
    keyed by (kind, name) in CONSTANT_WORDS."""


# The system-call path (sim/kern/exception.py, trap.py, subr_syscall.py, subr_trap.py, kern_priv.py).


class FetchedSyscall(Payload):
    """kind "hook", name "sv_fetch_syscall_args": the number and arguments are read from the trapframe."""

    code: int  # the system-call number (from %rax, or %rdi for syscall(2))
    name: str  # its sysent entry's name; "nosys" for a number with no entry
    narg: int  # how many arguments were fetched from registers


class CapabilityMode(Payload):
    """kind "skip", name "IN_CAPABILITY_MODE": the call may go on."""

    in_capability_mode: bool  # True: the process is in capability mode, and the call is CAPENABLED


class CapabilityRefused(Payload):
    """kind "hook", name "IN_CAPABILITY_MODE": a call that is not CAPENABLED, in capability mode: ECAPMODE."""

    syscall: str  # the name the call is dispatched by (the "syscall" event's name)


class NameiCapabilityMode(Payload):
    """kind "hook", name "namei": a lookup in capability mode relative to AT_FDCWD, which the sandbox has not got:
    namei() fails it with ECAPMODE (sys/kern/vfs_lookup.c; the call itself was CAPENABLED)."""

    path: str  # the path as copied in


class SystraceSkipped(Payload):
    """kind "skip", name "systrace_probe_func": no enabled syscall provider probe for this call."""

    probe: str  # "entry" or "return"


class Ast(Payload):
    """kind "hook", name "ast": the AST bits of td_flags are cleared, and what they flagged is handled."""

    td_flags: int  # td_flags as ast() found them


class Sti(Payload):
    """kind "insn", name "sti": interrupts are enabled again."""

    ast_pending: bool  # on the way out, to handle an AST (False: the syscall entry, after saving the trapframe)


class Swapgs(Payload):
    """kind "insn", name "swapgs": %gs's base is exchanged with MSR_KERNELGSBASE."""

    to_kernel: bool  # %gs now points at this CPU's pcpu (False: the user's %gs is back)


class PrivCheck(Payload):
    """kind "hook", name "priv_check": priv_check_cred() decides a privilege."""

    priv: int  # PRIV_* (sim/kern/kern_priv.py)
    uid: int  # the credential's effective uid
    error: int  # 0 (granted) or EPERM


# Processes, threads and the scheduler (kern_fork, kern_exit, kern_thr, kern_synch, sched, sys_capability).


class ForkExit(Payload):
    """kind "proc", name "fork_exit": a new thread runs for the first time."""

    tid: int
    comm: str


class ThreadEnded(Payload):
    """kind "proc", name "thread_exit": another thread of an exiting process is ended (thread_single)."""

    tid: int


class Reap(Payload):
    """kind "proc", name "reap": a parent collects a zombie child (proc_reap)."""

    parent: int  # pid
    child: int  # pid
    status: int  # the wait status, as W_EXITCODE made it


class Sleep(Payload):
    """kind "proc", name "sleep": a thread goes on a sleep queue (sleepq_add)."""

    tid: int
    wmesg: str


class Wakeup(Payload):
    """kind "proc", name "wakeup": a sleeping thread is made runnable."""

    tid: int
    comm: str


class StillRunning(Payload):
    """kind "proc", name "sched_switch": the running thread is still the best one to run; no switch."""

    tid: int


class ContextSwitch(Payload):
    """kind "proc", name "cpu_switch" or "cpu_throw": another thread goes on the CPU."""

    old_tid: int
    old_comm: str
    new_tid: int
    new_comm: str


class CpuIdle(Payload):
    """kind "proc", name "cpu_idle": nothing is runnable; the CPU halts until the next callout."""

    until_ns: int


class ThrNew(Payload):
    """kind "proc", name "thr_new": a process gets another thread."""

    pid: int
    tid: int
    entry: int  # the start routine's address


class ThrExit(Payload):
    """kind "proc", name "thr_exit": a thread of a process that goes on exits."""

    pid: int
    tid: int


class CapEnter(Payload):
    """kind "proc", name "cap_enter": a process enters capability mode."""

    pid: int


class AioQueued(Payload):
    """kind "proc", name "aio_queue": an asynchronous write is queued for the AIO daemons."""

    fd: int
    nbytes: int
    offset: int


class AioDone(Payload):
    """kind "proc", name "aio_complete": an AIO daemon finished a process's job."""

    pid: int  # the process that queued the job
    count: int  # bytes transferred
    error: int


# Signals (kern_sig.py, machdep.py's sendsig): kind "signal", name = the signal's name, or "sendsig".


class SignalDiscarded(Payload):
    """The process ignores the signal: it is discarded when sent."""

    pid: int
    sig: int


class SignalPosted(Payload):
    """The signal is made pending for a thread."""

    pid: int
    tid: int
    sig: int
    blocked: bool  # the thread blocks it: it stays pending


class SignalDelivered(Payload):
    """postsig: the thread takes the signal, to run its handler."""

    tid: int
    sig: int
    handler: int  # the handler's address


class SignalExit(Payload):
    """sigexit: the signal's default action ends the process."""

    pid: int
    comm: str
    uid: int
    sig: int
    coredump: bool  # the default action dumps core (none is written: RLIMIT_CORE is 0)


class SignalFrame(Payload):
    """name "sendsig": the signal frame is on the user stack; the thread goes to the trampoline."""

    sig: int
    frame: int  # the frame's user address
    handler: int


class SignalStackTrashed(Payload):
    """name "sendsig": the frame could not be written to the user stack: the process gets SIGILL."""

    pid: int


# Descriptors, pipes, sockets and files (sys_pipe, uipc_syscalls, vfs_syscalls, vfs_bio, vfs_subr).


class PipeCreated(Payload):
    """kind "proc", name "pipe": kern_pipe made a pipe."""

    rfd: int
    wfd: int
    size: int  # the read side's buffer, bytes


class SocketpairCreated(Payload):
    """kind "proc", name "socketpair": a connected PF_LOCAL stream pair."""

    fd0: int
    fd1: int


class PipeSpace(Payload):
    """kind "mem", name "pipespace": a pipe's buffer is resized."""

    old_size: int
    new_size: int


class SockbufReserve(Payload):
    """kind "mem", name "sbreserve": setsockopt sets a socket buffer's size."""

    optname: int  # SO_SNDBUF or SO_RCVBUF
    size: int


class UfsCreate(Payload):
    """kind "mem", name "ufs_create": open(O_CREAT) makes a new, empty file."""

    path: str


class DelayedWrite(Payload):
    """kind "mem", name "bdwrite": a buffer is dirty in the cache, to be written later by the syncer."""

    path: str
    block: int  # b_lblkno


class DiskRequest(Payload):
    """kind "mem", name "g_io_request": a buffer's transfer is queued on the disk."""

    cmd: int  # BIO_READ or BIO_WRITE
    path: str
    block: int
    done_ns: int  # when the disk completes it


class BufDone(Payload):
    """kind "mem", name "bufdone": a buffer's write is on the disk."""

    path: str
    block: int


class SyncVnode(Payload):
    """kind "proc", name "sync_vnode": the syncer pushes a vnode's dirty buffers."""

    path: str
    dirty: int  # bo_dirty: how many buffers


# Userland (sim/user): kind "user", name = the instruction or the library step.


class CallArguments(Payload):
    """name "call <function>": the C arguments, in %rdi, %rsi, %rdx, %rcx, %r8, %r9 order."""

    values: tuple[int, ...]  # as the C code passed them (a negative int stays negative)


class SyscallNumber(Payload):
    """name "mov $SYS_<call>,%eax" (a libc stub) or "movq $SYS_sigreturn,%rax" (the signal trampoline)."""

    code: int


class CerrorBranch(Payload):
    """name "jb cerror": the stub tests the carry flag the kernel set."""

    taken: bool  # carry set: the call failed


class Cerror(Payload):
    """name "cerror": errno is set from %rax; the call returns -1."""

    errno: int


class UserReturn(Payload):
    """name "ret" (a libc stub): back in the program with the call's result."""

    value: int


class StackLocals(Payload):
    """name "sub $N,%rsp": a libc wrapper makes room for its locals on the stack."""

    size: int  # bytes asked for
    base: int  # their address
    moved: int  # how far %rsp moved (the instruction's immediate): size, plus what keeps %rsp 16-byte aligned


class ThreadStart(Payload):
    """name "thread_start": libthr's new thread calls its start routine."""

    pthread: int  # the struct pthread's address


class VdsoClockGettime(Payload):
    """name "__vdso_clock_gettime": the time is read from the shared page, with no trap."""

    timekeep: int  # the timekeeping page's user address


class Rdtscp(Payload):
    """name "lfence; rdtsc": the time-stamp counter is read (FreeBSD 11's __vdso_gettc on amd64)."""

    tsc: int


class SignalHandlerCall(Payload):
    """name "call *SIGF_HANDLER(%rsp)": the signal trampoline calls the handler."""

    handler: int
    sig: int


class RtldStart(Payload):
    """name "_rtld": the run-time linker starts, for the program at `path`."""

    path: str


class RtldEnvironment(Payload):
    """name "getenv": the run-time linker reads its LD_* variables."""

    trusted: bool  # not set-id (issetugid() == 0): the variables are honoured


class Relocations(Payload):
    """name "reloc_non_plt": an object's relocations are processed."""

    path: str
    count: int


class JumpSlots(Payload):
    """name "reloc_plt": an object's PLT jump slots, bound lazily."""

    path: str
    count: int


class ObjectInit(Payload):
    """name "init": an object's init functions run."""

    path: str


class ObjectFini(Payload):
    """name "fini": an object's fini functions run."""

    path: str


class StaticStart(Payload):
    """name "_init_tls": a statically linked program starts without the run-time linker."""

    image: str


class MainCall(Payload):
    """name "main": crt1 calls the program's main()."""

    image: str
    argc: int


class ExitCall(Payload):
    """name "exit": exit(3) runs the atexit handlers, then _exit(2)."""

    status: int
    handlers: int  # atexit handlers registered


# --- payloads of the machine and the VM system (sim/machine, sim/vm) ---------------------------------------------

# The MMU (sim/machine/mmu.py): a translation the TLB misses is walked level by level, then cached.


class TlbMiss(Payload):
    """kind "tlb", name "miss": va is not in the TLB; the walk starts from %cr3."""

    va: int
    cr3: int


class PdeCacheHit(Payload):
    """kind "walk", name "PDE cache": the paging-structure cache holds va's PML4E, PDPTE and PDE."""

    va: int
    pt: int  # the physical address of the page table it leads to


class WalkLevel(Payload):
    """kind "walk", name PML4E, PDPTE, PDE or PTE: the MMU reads one entry of the page tables."""

    level: int  # 0 (PML4) .. 3 (PT)
    index: int  # the 9 bits of the address that select the entry
    entry_address: int  # its physical address
    entry: int  # its value, with the A bit the walk set (the flags are its low bits and bit 63)

    @property
    def present(self) -> bool:
        return bool(self.entry & 1)

    @property
    def large(self) -> bool:
        """A 1 GiB (PDPTE) or 2 MiB (PDE) page: the walk ends here."""
        return self.level in (1, 2) and bool(self.entry & 0x80)


class TlbFill(Payload):
    """kind "tlb", name "fill": the walk's result is cached."""

    va: int  # the virtual page (4 KiB aligned)
    pa: int  # the physical page (4 KiB aligned)
    page_size: int
    flags: int  # the effective permission bits cached (RW, US, NX, G, D)


class TlbFlush(Payload):
    """kind "tlb", name "flush": a new %cr3 was noticed; the TLB's non-global entries were dropped."""

    cr3: int


class Invlpg(Payload):
    """kind "insn", name "invlpg": the TLB's translation of one page is dropped."""

    va: int  # the page


# The VM system (sim/vm): page-table stores, whole pages, map entries, objects, faults and the page daemon.


class PteStore(Payload):
    """kind "mem", name PML4E, PDPTE, PDE or PTE: the pmap writes a page-table entry."""

    why: str  # the operation, as PTE_STORE_REASONS names it (sim/narrative/vm.py words each one)
    va: int  # the virtual address it concerns
    pa: int  # the physical address mapped (pmap_enter, prefault, pmap_remove_all's page), else 0
    level: int  # 0 (PML4) .. 3 (PT)
    index: int
    entry_address: int
    old: int
    new: int


class NewPml4(Payload):
    """kind "mem", name "PML4E": pmap_pinit made an address space's PML4 and copied the kernel's entries."""

    pml4: int  # its physical address
    kernel_slots: tuple[int, ...]


class Superpage(Payload):
    """kind "mem", name "promotion" (pa: the 2 MiB frame) or "demotion" (pa 0): a 2 MiB mapping is made or split."""

    va: int  # the 2 MiB region
    pa: int


class PageZeroed(Payload):
    """kind "mem", name "page zeroed": pagezero cleared a frame through the direct map."""

    pa: int
    dmap_va: int


class PageCopied(Payload):
    """kind "mem", name "page copied": pagecopy copied one frame to another."""

    src: int  # physical addresses
    dst: int


class Cr3Load(Payload):
    """kind "insn", name "movq %rax,%cr3": pmap_activate loads an address space's PML4."""

    pmap: str  # the pmap's name (its vmspace's), "" for none
    cr3: int


class MapEntry(Payload):
    """A vm_map entry's state: the value of a ("map", MapKey, old, new) delta, and the data of the map's "mem"
    events (vm_map_insert, vm_map_protect, ...)."""

    start: int
    end: int
    protection: int  # VM_PROT_* bits
    max_protection: int
    inheritance: int  # VM_INHERIT_*
    object: int | None  # the vm_object's id; None: anonymous, no object yet
    offset: int  # bytes into the object
    eflags: int  # MAP_ENTRY_* bits


class MapKey(Payload):
    """The key of a ("map", key, old, new) delta: which map, and the entry's start."""

    vmspace: str  # the map's name ("pid 1000")
    start: int


class ObjectState(Payload):
    """A vm_object's state: the value of an ("object", id, old, new) delta (None: it did not exist)."""

    id: int
    type: int  # OBJT_*
    size: int  # pages
    resident: int  # resident_page_count
    refs: int
    path: str | None  # the vnode's path, for a file's object
    backing: int | None  # the object it shadows


class PageState(Payload):
    """A vm_page's state: the value of a ("page", pfn, old, new) delta."""

    object: int | None  # the object it caches a page of; None: none (free, or a page-table page)
    pindex: int
    queue: int  # PQ_*
    wired: bool
    zero: bool  # free, and known to be all zero (PG_ZERO)


class FrameContents(Payload):
    """What a physical frame holds: the value of a ("frame", pfn, old, new) delta."""

    fill: int | None  # every byte holds this value (0: all zero); None: anything else
    table_entries: int | None  # a page-table page: how many entries are not zero
    being_read: bool = False  # the pager is reading it in


class ObjectShadowed(Payload):
    """kind "mem", name "vm_object_shadow": a map entry gets a new object in front of its old one."""

    object: int
    backing: int | None
    entry: MapEntry


class ObjectCollapsed(Payload):
    """kind "mem", name "vm_object_collapse": a backing object is merged into the object that shadowed it."""

    backing: int
    object: int


class FaultFailed(Payload):
    """kind "fault", name "protection" or "unmapped": vm_fault cannot make the page available."""

    fault_type: int  # VM_PROT_READ, _WRITE or _EXECUTE
    va: int
    protection: int | None  # what the entry allows; None: no entry contains va


class FaultResolved(Payload):
    """kind "fault", name = how (zero_fill, cow, soft, hard): vm_fault mapped a page at va."""

    how: str  # the event's name
    fault_type: int
    va: int
    object: int
    pindex: int
    pa: int  # the page's physical address
    protection: int  # as mapped


class VmWait(Payload):
    """kind "proc", name "vmwait": too few pages free; the thread waits for the page daemon."""

    free: int


class PageoutScan(Payload):
    """kind "mem", name "pagedaemon": one pass of vm_pageout_scan."""

    freed: int
    free: int
    target: int


class DiskWait(Payload):
    """kind "proc", name "sleep": a pager waits for the disk."""

    ns: int
    object: int  # the object whose page moves
    pindex: int
    path: str | None  # a file's path (vnode pager: a read at offset pindex * PAGE_SIZE); None: swap
    write: bool  # a swap-out


# The kernel's traps and copies (sim/kern/trap_pfault.py, sim/kern/support.py) and userland's memory access
# (sim/user/umem.py).


class TrapframeBuilt(Payload):
    """kind "insn", name "build trapframe": Xpage or Xprot saved the interrupted context."""

    trapno: int
    err: int
    addr: int
    user: bool
    rip: int  # the faulting instruction (shown for a kernel-mode frame)


class KernelIretq(Payload):
    """kind "insn", name "iretq" after a kernel-mode fault: back to ring 0."""

    rip: int
    onfault: bool  # resumed at pcb_onfault (the copy routine's fault label), not the faulting instruction


class OnFaultResume(Payload):
    """kind "hook", name "pcb_onfault": trap() sends the fault to the copy routine's fault label."""

    rip: int


class Panic(Payload):
    """kind "panic": the kernel gives up."""

    message: str  # panic()'s message, as the console prints it


class CopyFault(Payload):
    """kind "hook", name "<routine>_fault" or "fusu_fault": a copy routine returns EFAULT."""

    routine: str  # copyin, copyout, copyinstr, or the fetch/store routine (fuword, subyte, ...)
    va: int  # the address refused, or the page that would not translate (%cr2)
    size: int  # the bytes asked for (a range check), 0 when a page would not translate
    write: bool
    in_range: bool  # False: the range passed VM_MAXUSER_ADDRESS, no access was tried


class UserCopy(Payload):
    """kind "mem", name the routine (copyin, copyout, ...): bytes moved between the kernel and one user page."""

    to_user: bool
    n: int
    va: int
    frame: int  # the physical page


class UserFetched(Payload):
    """kind "mem", name fuword/fubyte/...: the value a fetch routine read."""

    value: int
    va: int


class KernelDeref(Payload):
    """kind "insn", name a movq: kernel code dereferences a pointer directly."""

    va: int


class UserAccess(Payload):
    """kind "user", name store, memset, load or a caller's word for them: ring 3 touches bytes of one page."""

    access: str  # "store", "fill" or "load"
    n: int
    va: int
    frame: int  # the physical page
    byte: int  # the fill's byte (a fill), else 0


class UserTouch(Payload):
    """kind "user", name touch (or a caller's word) or "fetch": one access to a page, translated to pa."""

    access: str  # "read", "write" or "fetch"
    va: int
    pa: int


# --- kernel objects a kernel function returns (sim/core/kfunc.py) ------------------------------------------------

# A @kfunc's exit event holds its result as facts: an int, a bool or None as it is, a tuple element by element, and
# a kernel object as one of these references (the object's `event_data()`), never the live object.


class PageRef(Payload):
    """A vm_page, by the physical address of its frame."""

    phys_addr: int


class ObjectRef(Payload):
    """A vm_object, by its id."""

    id: int


class VmspaceRef(Payload):
    """A vmspace, by its id."""

    id: int


class VnodeRef(Payload):
    """A vnode, by its path."""

    path: str


class BufRef(Payload):
    """A buffer cache buf: its vnode's path and logical block number."""

    path: str
    lblkno: int


class EntryRef(Payload):
    """A vm_map entry a lookup returns (vm_map_lookup): its state, as a ("map", ...) delta records it."""

    entry: MapEntry


# --- fbt's arguments (emitted by sim/core/kfunc when a D program reads a function's args[]) --------------------


class KernelObject(Payload):
    """A kernel object an argument points to, as fbt's args[] reads it: its struct tag, its address (numbered in the
    order the run first passed each object) and the fields D may read, by FreeBSD's names (sim/kern/dtrace_args.py).
    A pointer field holds another KernelObject; one past the recorded depth has its address only (no fields)."""

    tag: str
    address: int
    fields: tuple[tuple[str, int | str | KernelObject], ...]


class EntryArguments(Payload):
    """kind "enter": the arguments a modelled kernel function was called with (ints, or the objects passed)."""

    values: tuple[int | str | KernelObject, ...]
