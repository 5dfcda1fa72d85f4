"""Machine profiles: the cost, in simulated nanoseconds, of each primitive the simulator models.

Times in a run come only from these costs multiplied by what the mechanism does; no profile holds an answer.
Each constant says where its figure comes from. `lecture` is calibrated on the L41 lecture's board and kernel
(a debug -CURRENT kernel, 2017); `modern` is a current amd64 machine running a release kernel.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    # user mode
    user_insn_ns: int  # one simple user-mode instruction or library step
    # the system-call instruction pair and the entry/exit glue in exception.S
    syscall_insn_ns: int  # SYSCALL: save rip/rflags, load LSTAR, drop to CPL 0
    sysret_insn_ns: int  # SYSRETQ back to CPL 3
    swapgs_ns: int
    trapframe_ns: int  # push or pop a full trapframe
    flag_test_ns: int  # test one per-thread/per-process flag that is normally clear
    # hooks when their flag is set
    cred_update_ns: int
    fetch_args_ns: int  # cpu_fetch_syscall_args with all six arguments in registers
    ktrace_record_ns: int  # build and queue one ktrace record
    ptracestop_ns: int  # stop for the debugger and resume (excluding the debugger's own time)
    systrace_probe_ns: int  # one DTrace syscall probe firing: the probe effect
    fbt_probe_ns: int  # an fbt probe firing past its #BP trap: dtrace_invop, fbt_invop, dtrace_probe, emulation
    profile_probe_ns: int  # a profile-N/tick-N firing past its timer interrupt: the cyclic, profile_fire, dtrace_probe
    audit_record_ns: int  # audit_syscall_enter/exit building a record
    set_retval_ns: int
    sched_userret_ns: int
    # system-call bodies (fixed work beyond copies)
    sys_getpid_ns: int
    sys_simple_ns: int  # a small body touching only its own process's state (getuid, sigaction, kill, dup)
    # processes, scheduling and signals
    cpu_switch_ns: int  # mi_switch + cpu_switch: save one thread's context and load another's
    sleepq_ns: int  # put a thread on a sleep queue or take it off again
    fork_ns: int  # fork1's fixed work (proc, thread, credentials, sigacts, descriptor table), VM excluded
    exit_ns: int  # exit1's fixed work (close descriptors, free sigacts, become a zombie, tell the parent)
    exec_ns: int  # image activation's fixed work (read the header, new image state), VM excluded
    sendsig_ns: int  # build a signal frame: registers, mask and siginfo for the handler
    # descriptors, pipes, sockets, files
    file_op_ns: int  # fget/fdrop and the fo_read/fo_write dispatch of one read or write
    pipe_op_ns: int  # one pipe_read/pipe_write pass: pipe lock, state checks, wakeups
    socket_op_ns: int  # one sosend/soreceive pass: sockbuf lock, mbuf chain walk, pru_send/pru_rcvd
    mbuf_ns: int  # allocate or free one mbuf cluster
    vop_ns: int  # a vnode operation's fixed work (lookup, open, read, write), buffers excluded
    getblk_ns: int  # find or create one buffer in the buffer cache
    disk_io_ns: int  # a disk request's fixed latency: command, seek, completion interrupt
    disk_block_ns: int  # transfer one 32 KiB file-system block to or from the disk
    aio_job_ns: int  # queue or complete one AIO job
    # memory: the MMU, the VM system and the copy routines (sim/machine/mmu.py, sim/vm/, sim/kern/support.py)
    phys_mem_bytes: int  # physical memory the VM system manages
    tlb_entries: int  # 4 KiB translations the TLB holds (oldest evicted first)
    tlb_large_entries: int  # 2 MiB translations it holds
    tlb_walk_ns: int  # a TLB miss: the hardware walks the four levels
    invlpg_ns: int  # invalidate one TLB entry
    tlb_flush_ns: int  # reload %cr3: drop every non-global entry
    trap_entry_ns: int  # exception delivery through the IDT and alltraps' register save (trapframe_ns extra)
    iretq_ns: int  # IRETQ back to the interrupted context
    stac_clac_ns: int  # one stac or clac around a user access (SMAP)
    vm_fault_ns: int  # vm_fault's bookkeeping: map lookup, object locks and chain walk, page activation
    vm_page_alloc_ns: int  # take one page from the free pool (vm_page_alloc)
    vm_page_free_ns: int  # return one page to the free pool
    pmap_enter_ns: int  # install one mapping: PTE, pv entry, page flags
    pte_update_ns: int  # change or clear one PTE in pmap_remove/pmap_protect
    page_zero_ns: int  # pagezero(): zero one 4 KiB page
    page_copy_ns: int  # pmap_copy_page(): copy one 4 KiB page
    copy_byte_ps: int  # copyin/copyout: picoseconds per byte moved
    user_byte_ps: int  # a user-mode memset/memcpy: picoseconds per byte stored
    vm_map_op_ns: int  # insert, clip, protect or delete one vm_map entry (map lock, entry allocation)
    vm_object_op_ns: int  # allocate, shadow, collapse or free one vm_object
    pageout_page_ns: int  # the page daemon examines one page
    # user-space libraries (sim/user): the C library's and the run-time linker's own work
    malloc_call_ns: int  # one malloc() or free() through jemalloc's fast path, its page touches excluded
    rtld_reloc_ns: int  # the run-time linker processes one relocation (symbol lookup through its cache)
    malloc_junk_default: bool  # the libc build's opt_junk: a debug (-CURRENT) jemalloc junk-fills by default
    # The machine's supervisor-mode protections, as its kernel turns them on (a run's KernelConfig may override):
    # SMEP since FreeBSD 10 (initializecpu/pmap_bootstrap); SMAP, with stac/clac in the copy routines and PSL_AC
    # in MSR_SF_MASK, only since FreeBSD 12.
    smap: bool = True
    smep: bool = True


LECTURE = Profile(
    name="lecture",
    description="The L41 lecture's machine: a slow board running a debug (INVARIANTS, WITNESS) FreeBSD -CURRENT "
    "kernel with DTrace loaded, as in the lecture's dd measurements.",
    # A 1 GHz in-order core retires about one simple instruction per ns (BeagleBone Black, L41 course board).
    user_insn_ns=1,
    # Null-syscall entry and exit on a slow core with a debug kernel: a few hundred ns each side; the lecture's
    # own DTrace table gives ~7.6 us for sysarch, the cheapest syscall it lists, with probes enabled.
    syscall_insn_ns=120,
    sysret_insn_ns=120,
    swapgs_ns=10,
    trapframe_ns=60,
    flag_test_ns=2,  # one load and compare of a cache-resident flag word at 1 GHz
    cred_update_ns=400,  # crhold/crfree with WITNESS-checked locks
    fetch_args_ns=150,
    ktrace_record_ns=4000,  # ktrace allocates a request and queues it to the ktrace writer thread
    ptracestop_ns=20000,  # two context switches to and from the debugger
    systrace_probe_ns=2500,  # a DTrace probe firing on the lecture board: the probe effect per firing
    # fbt and profile firings run the same dtrace_probe (its ECB walk, predicates and actions) as a syscall
    # probe's, plus their own dispatch, each ~100 instructions at ~1 instruction/ns: dtrace_invop's handler list,
    # fbt_invop's patch-point hash lookup and the displaced push/ret emulated (fbt_isa.c, dtrace_asm.S); the
    # cyclic's expiry and profile_fire's bookkeeping (profile.c). The #BP or timer interrupt itself is charged
    # with trap_entry_ns, trapframe_ns and iretq_ns (sim/kern/dtrace_probe.py). Low confidence, like systrace's.
    fbt_probe_ns=2600,
    profile_probe_ns=2600,
    audit_record_ns=3000,  # audit record allocation and BSM token building
    set_retval_ns=40,
    sched_userret_ns=60,
    sys_getpid_ns=80,
    # Process-model costs on a 1 GHz ARMv7 board with a WITNESS kernel; order-of-magnitude, low confidence:
    # lmbench on boards of this class reports context switches of ~10 us, signal catch ~5-10 us, fork+exit
    # ~0.5-1 ms (most of it VM work, which the VM model charges separately).
    sys_simple_ns=500,  # sys_getpid_ns plus a lock/unlock pair under WITNESS
    cpu_switch_ns=8000,
    sleepq_ns=600,
    fork_ns=150000,
    exit_ns=50000,
    exec_ns=200000,
    sendsig_ns=4000,
    file_op_ns=1500,  # the lecture's DTrace: write() of a few bytes ~10 us in all, probes included
    pipe_op_ns=2000,
    socket_op_ns=4000,
    mbuf_ns=800,
    vop_ns=3000,
    getblk_ns=2000,
    disk_io_ns=1000000,  # an SD card, as on the BeagleBone: ~1 ms per request
    disk_block_ns=3300000,  # 32 KiB at ~10 MB/s (class-10 SD card)
    aio_job_ns=5000,
    # Memory. The lecture's own figures calibrate the costs of primitives (reference section 10):
    # - pagezero: the profile-997 stacks put 346 samples (346/997 s = 0.347 s) in pagezero over the 5,120
    #   zero-fills of dd's 20 MiB buffer: ~67.8 us a page. Writing a freshly allocated frame is that slow on the
    #   lecture's machine (its platform is unverified), so a page copy, which also writes a fresh frame, is too.
    # - the rest of a fault: 5,185 traps took 380,762,894 ns (73.4 us each); less pagezero leaves ~5.6 us for
    #   vm_fault, the page allocation and pmap_enter on a WITNESS kernel, split among them below.
    # - copies: read() copied out 10 MiB in 697,051 ns with no faults (the pages were already junk-filled):
    #   ~66 ps a byte; user-mode stores run at the same memory bandwidth.
    phys_mem_bytes=4 << 30,  # the platform is unverified; 4 GiB so the lab's sizes run without paging
    tlb_entries=64,
    tlb_large_entries=16,
    tlb_walk_ns=100,  # a few cache misses at ~1 GHz (section 10: 200+ cycles cold)
    invlpg_ns=200,
    tlb_flush_ns=300,
    trap_entry_ns=150,  # like SYSCALL's entry (syscall_insn_ns) plus pushing the hardware frame
    iretq_ns=150,
    stac_clac_ns=10,
    vm_fault_ns=3300,
    vm_page_alloc_ns=1300,
    vm_page_free_ns=800,
    pmap_enter_ns=1000,
    pte_update_ns=300,
    page_zero_ns=67800,
    page_copy_ns=67800,
    copy_byte_ps=66,
    user_byte_ps=66,
    vm_map_op_ns=20000,  # the lecture's DTrace: mmap totalled 770,581 ns over rtld's dozen or so calls
    vm_object_op_ns=2000,
    pageout_page_ns=1000,
    # jemalloc 4 built without MALLOC_PRODUCTION (a -CURRENT libc) runs its assertions and statistics: a few
    # hundred instructions a call at ~1 instruction/ns. Low confidence.
    malloc_call_ns=300,
    # rtld's reloc_non_plt(): a hashed symbol lookup with strcmp per relocation, ~200 instructions. Low confidence.
    rtld_reloc_ns=200,
    # FreeBSD -CURRENT builds jemalloc with opt_junk on (MALLOC_PRODUCTION undefined); the lecture ran -CURRENT.
    malloc_junk_default=True,
    smap=False,  # FreeBSD 11: copyin/copyout have no stac/clac, MSR_SF_MASK has no PSL_AC, CR4.SMAP stays clear
)

MODERN = Profile(
    name="modern",
    description="A current amd64 server core (about 4 GHz) and a release build's costs (no debugging options; "
    "DTrace loaded but only the enabled probes cost anything), running the same FreeBSD 11 code as the lecture "
    "profile with SMAP on: today's costs, not a model of today's FreeBSD.",
    user_insn_ns=1,  # ~4 instructions per ns retire; one "step" of a library routine is a handful of them
    # Null syscall without mitigations: ~70-100 ns round trip (freebsd-kernel-paths.md section 10).
    syscall_insn_ns=25,
    sysret_insn_ns=25,
    swapgs_ns=2,
    trapframe_ns=8,
    flag_test_ns=1,
    cred_update_ns=30,
    fetch_args_ns=10,
    ktrace_record_ns=600,
    ptracestop_ns=5000,
    systrace_probe_ns=250,  # DTrace probe firing on a modern core: a few hundred ns
    # fbt and profile: the same dtrace_probe plus ~100 instructions of dispatch (dtrace_invop/fbt_invop and the
    # emulated instruction; the cyclic and profile_fire) at ~4 instructions/ns; the #BP or timer interrupt is
    # charged separately (trap_entry_ns, trapframe_ns, iretq_ns). Low confidence.
    fbt_probe_ns=275,
    profile_probe_ns=275,
    audit_record_ns=400,
    set_retval_ns=3,
    sched_userret_ns=5,
    sys_getpid_ns=5,
    # Process-model costs on a current x86 core, order-of-magnitude, low confidence: lmbench lat_ctx ~1-2 us,
    # lat_sig catch ~1 us, fork+exit ~50-100 us in all (VM work charged separately by the VM model).
    sys_simple_ns=20,
    cpu_switch_ns=1500,
    sleepq_ns=60,
    fork_ns=20000,
    exit_ns=10000,
    exec_ns=40000,
    sendsig_ns=400,
    file_op_ns=50,
    pipe_op_ns=100,
    socket_op_ns=300,
    mbuf_ns=50,
    vop_ns=200,
    getblk_ns=150,
    disk_io_ns=20000,  # an NVMe SSD: ~20 us per request
    disk_block_ns=16000,  # 32 KiB at ~2 GB/s
    aio_job_ns=500,
    # Memory on a current x86 core (reference section 10, low confidence where it says so): zeroing 4 KiB with
    # rep stosq ~0.3 us at ~14 GB/s; a minor (zero-fill) fault ~1 us in all, so ~0.6 us of fault bookkeeping;
    # a TLB miss ~10-50 ns with paging-structure caches; copies at ~20 GB/s.
    phys_mem_bytes=16 << 30,
    tlb_entries=1536,  # second-level TLB of a recent core
    tlb_large_entries=1024,
    tlb_walk_ns=20,
    invlpg_ns=40,
    tlb_flush_ns=100,
    trap_entry_ns=40,
    iretq_ns=30,
    stac_clac_ns=2,
    vm_fault_ns=350,
    vm_page_alloc_ns=80,
    vm_page_free_ns=50,
    pmap_enter_ns=100,
    pte_update_ns=10,
    page_zero_ns=300,
    page_copy_ns=400,
    copy_byte_ps=50,
    user_byte_ps=50,
    vm_map_op_ns=400,
    vm_object_op_ns=100,
    pageout_page_ns=50,
    malloc_call_ns=20,  # jemalloc's fast path on a current core: ~20 ns (jemalloc's own benchmarks, approximate)
    rtld_reloc_ns=25,  # a symbol lookup with a warm cache: ~100 instructions. Low confidence.
    malloc_junk_default=False,  # release builds define MALLOC_PRODUCTION: opt_junk is off
)

PROFILES: dict[str, Profile] = {p.name: p for p in (LECTURE, MODERN)}
DEFAULT_PROFILE = LECTURE.name  # a run names its machine only when it is not the lecture's
