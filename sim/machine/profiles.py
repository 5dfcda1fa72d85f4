"""Machine profiles: the cost, in simulated nanoseconds, of each primitive the simulator models.

Times in a run come only from these costs multiplied by what the mechanism does; no profile holds an answer.
Each constant says where its figure comes from. `lecture` is calibrated on the L41 lecture's board and kernel
(a debug -CURRENT kernel, 2017); `modern` is a current amd64 machine running a release kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sim.machine.memhier import MemLevel


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
    # The memory hierarchy: caches then memory, with what a byte costs at each (sim/machine/memhier.py). Every
    # copy (copyin/copyout, user loads and stores, pagezero, pagecopy) is charged through it.
    memory: tuple[MemLevel, ...]
    # A virtual machine's host backs a guest frame on its first write (sim/machine/host_backing.py); 0: bare metal
    host_first_touch_ns: int
    vm_map_op_ns: int  # insert, clip, protect or delete one vm_map entry (map lock, entry allocation)
    vm_object_op_ns: int  # allocate, shadow, collapse or free one vm_object
    pageout_page_ns: int  # the page daemon examines one page
    # user-space libraries (sim/user): the C library's and the run-time linker's own work
    malloc_call_ns: int  # one malloc() or free() through jemalloc's fast path, its page touches excluded
    rtld_reloc_ns: int  # the run-time linker processes one relocation (symbol lookup through its cache)
    malloc_junk_default: bool  # the libc build's opt_junk: a debug (-CURRENT) jemalloc junk-fills by default
    # kern.timecounter.hardware: only the TSC has a reader in the vdso (x86 cpu_fill_vdso_timehands), so with any
    # other timecounter the kernel publishes tk_enabled = 0 and libc's clock_gettime makes the system call.
    timecounter: str
    # The machine's supervisor-mode protections, as its kernel turns them on (a run's KernelConfig may override):
    # SMEP since FreeBSD 10 (initializecpu/pmap_bootstrap); SMAP, with stac/clac in the copy routines and PSL_AC
    # in MSR_SF_MASK, only since FreeBSD 12.
    smap: bool = True
    smep: bool = True


_LECTURE_PAGEZERO_NS = 346 * 10**9 // 997 // 5120  # the lecture's pagezero samples over dd's 5,120 zero-fills
_HASWELL = "Intel 64 and IA-32 Optimization Reference Manual, 2.3 (Haswell): the size; the bandwidth: low confidence"
_LECTURE_MEMORY = (
    MemLevel("L1D", 32 << 10, 10, 10, _HASWELL),
    MemLevel("L2", 256 << 10, 16, 16, _HASWELL),
    MemLevel("L3", 6 << 20, 25, 25, _HASWELL),
    # Only the write is calibrated (on the lecture's read(), with L1's read: 66 - 10 ps); the read: DDR3-1600
    # dual channel, one core's share ~20 GB/s.
    MemLevel("DRAM", 0, 50, 56, "the lecture's read() of 10 MiB from /dev/zero in 697 us (write); DDR3 (read)"),
)
_MODERN_MEMORY = (
    MemLevel("L1D", 48 << 10, 4, 4, "a current server core: 48 KiB L1D, ~2x32 B a cycle at ~4 GHz, halved"),
    MemLevel("L2", 2 << 20, 7, 7, "a current server core: 2 MiB L2 per core, ~64 B a cycle peak, shared"),
    MemLevel("L3", 32 << 20, 15, 15, "a current server part: 32 MiB L3, ~30 GB/s a core for a copy"),
    MemLevel("DRAM", 0, 35, 35, "DDR5: one core's copy reaches ~15 GB/s"),
)

LECTURE = Profile(
    name="lecture",
    description="The L41 lecture's machine: an amd64 virtual machine (its host backs guest memory on first "
    "touch) running a debug (INVARIANTS, WITNESS) FreeBSD -CURRENT kernel with DTrace loaded, as in the "
    "lecture's dd measurements.",
    user_insn_ns=1,  # one simple step of a debug build's library code, ~1 ns (low confidence)
    # Null-syscall entry and exit on a slow core with a debug kernel: a few hundred ns each side; the lecture's
    # own DTrace table gives ~7.6 us for sysarch, the cheapest syscall it lists, with probes enabled.
    syscall_insn_ns=120,
    sysret_insn_ns=120,
    swapgs_ns=10,
    trapframe_ns=60,
    flag_test_ns=2,  # one load and compare of a cache-resident flag word at 1 GHz
    cred_update_ns=400,  # crhold/crfree with WITNESS-checked locks
    fetch_args_ns=150,  # six argument registers from the trapframe, with a debug kernel's assertions
    ktrace_record_ns=4000,  # ktrace allocates a request and queues it to the ktrace writer thread
    ptracestop_ns=20000,  # two context switches to and from the debugger
    systrace_probe_ns=2500,  # a DTrace probe firing on the lecture's machine: the probe effect per firing
    # fbt and profile firings run the same dtrace_probe (its ECB walk, predicates and actions) as a syscall
    # probe's, plus their own dispatch, each ~100 instructions at ~1 instruction/ns: dtrace_invop's handler list,
    # fbt_invop's patch-point hash lookup and the displaced push/ret emulated (fbt_isa.c, dtrace_asm.S); the
    # cyclic's expiry and profile_fire's bookkeeping (profile.c). The #BP or timer interrupt itself is charged
    # with trap_entry_ns, trapframe_ns and iretq_ns (sim/kern/dtrace_probe.py). Low confidence, like systrace's.
    fbt_probe_ns=2600,
    profile_probe_ns=2600,
    audit_record_ns=3000,  # audit record allocation and BSM token building
    # A few dozen instructions each at ~1 instruction/ns (cpu_set_syscall_retval, sched_userret, sys_getpid's
    # body). Low confidence.
    set_retval_ns=40,
    sched_userret_ns=60,
    sys_getpid_ns=80,
    # Process-model costs on a slow core with a WITNESS kernel; order-of-magnitude, low confidence:
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
    # A descriptor object's path on a debug kernel: 1-4 thousand instructions each, their lock operations checked
    # by WITNESS, at ~1 instruction/ns. Low confidence.
    pipe_op_ns=2000,
    socket_op_ns=4000,
    mbuf_ns=800,
    vop_ns=3000,
    getblk_ns=2000,
    disk_io_ns=1000000,  # an SD card, as on the BeagleBone: ~1 ms per request
    disk_block_ns=3300000,  # 32 KiB at ~10 MB/s (class-10 SD card)
    aio_job_ns=5000,  # an AIO job queued or completed, its locks and wakeup: ~5k instructions, low confidence
    # Memory. The lecture's dd ran on amd64 (its stacks show kernel`trap and pagezero), most likely a virtual
    # machine on a laptop-class host: its figures are physically consistent only so, as below.
    # - copies: read() copied out 10 MiB from /dev/zero in 697,051 ns with no faults: zero_read's source is one
    #   physical page (zero_region, L1), its destination the buffer junk-filled 20 MiB earlier (memory), so
    #   L1 read + memory write = ~66 ps a byte, ~15 GB/s: a Haswell-class core's rep movs with fast strings.
    #   The cache sizes are a Haswell client part's (Intel 64 and IA-32 Optimization Reference Manual, 2.3:
    #   32 KiB L1D, 256 KiB L2, a 6 MiB L3 slice set); their bandwidths are that manual's per-core peaks
    #   halved for a copy loop (low confidence), the memory write is what the lecture's read() leaves.
    # - pagezero: the profile-997 stacks put 346 samples (0.347 s) in pagezero over the 5,120 zero-fills of dd's
    #   20 MiB buffer: ~67.8 us a page. Zeroing 4 KiB at memory speed takes ~0.2 us; the rest is the host
    #   backing a guest frame nobody had written since boot (host_first_touch_ns, sim/machine/host_backing.py),
    #   which is what the lecture's "on-demand zeroing of previously untouched pages" costs on such a machine.
    # - the rest of a fault: 5,185 traps took 380,762,894 ns (73.4 us each); less pagezero leaves ~5.6 us for
    #   vm_fault, the page allocation and pmap_enter on a WITNESS kernel, split among them below.
    phys_mem_bytes=4 << 30,  # the platform is unverified; 4 GiB so the lab's sizes run without paging
    tlb_entries=64,
    tlb_large_entries=16,
    tlb_walk_ns=100,  # a few cache misses at ~1 GHz (section 10: 200+ cycles cold)
    # invlpg and a %cr3 reload under a hypervisor with EPT: a few hundred cycles (section 10), low confidence
    invlpg_ns=200,
    tlb_flush_ns=300,
    trap_entry_ns=150,  # like SYSCALL's entry (syscall_insn_ns) plus pushing the hardware frame
    iretq_ns=150,  # IRETQ's return to ring 3, like SYSRETQ's
    stac_clac_ns=10,  # a flag-register write: a few cycles
    # The rest of a fault (see Memory above): the lecture's 73.4 us a trap less pagezero leaves ~5.6 us, split
    # here by the work each does on a WITNESS kernel (low confidence in the split).
    vm_fault_ns=3300,
    vm_page_alloc_ns=1300,
    vm_page_free_ns=800,
    pmap_enter_ns=1000,
    pte_update_ns=300,
    memory=_LECTURE_MEMORY,
    # the lecture's 67.8 us of pagezero a page less 4 KiB stored at memory speed (sim/machine/host_backing.py)
    host_first_touch_ns=_LECTURE_PAGEZERO_NS - 4096 * _LECTURE_MEMORY[-1].write_ps // 1000,
    vm_map_op_ns=20000,  # the lecture's DTrace: mmap totalled 770,581 ns over rtld's dozen or so calls
    # A vm_object allocated, shadowed or collapsed, and one page examined by the page daemon: a few thousand
    # instructions under WITNESS. Low confidence.
    vm_object_op_ns=2000,
    pageout_page_ns=1000,
    # jemalloc 4 built without MALLOC_PRODUCTION (a -CURRENT libc) runs its assertions and statistics: a few
    # hundred instructions a call at ~1 instruction/ns. Low confidence.
    malloc_call_ns=300,
    # rtld's reloc_non_plt(): a hashed symbol lookup with strcmp per relocation, ~200 instructions. Low confidence.
    rtld_reloc_ns=200,
    # FreeBSD -CURRENT builds jemalloc with opt_junk on (MALLOC_PRODUCTION undefined); the lecture ran -CURRENT.
    malloc_junk_default=True,
    # Slide 16 lists clock_gettime as a system call (12,142 ns): the lecture's kernel used a timecounter the
    # vdso cannot read, as a virtual machine's kernel does when the hypervisor does not report an invariant TSC.
    timecounter="HPET",
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
    aio_job_ns=500,  # an AIO job queued or completed: ~2k instructions at ~4 a ns, low confidence
    # Memory on a current x86 core (reference section 10, low confidence where it says so): a minor (zero-fill)
    # fault ~1 us in all, so ~0.6 us of fault bookkeeping; a TLB miss ~10-50 ns with paging-structure caches;
    # the caches and their copy bandwidths are _MODERN_MEMORY's. Bare metal: no host backs frames on demand.
    phys_mem_bytes=16 << 30,
    tlb_entries=1536,  # second-level TLB of a recent core
    tlb_large_entries=1024,  # the second-level TLB's 2 MiB entries (shared with 4 KiB ones on recent cores)
    # A TLB miss walked with paging-structure caches, invlpg and a %cr3 reload (PCID), exception delivery and
    # IRETQ, stac/clac: tens of cycles each at ~4 GHz (section 10), low confidence.
    tlb_walk_ns=20,
    invlpg_ns=40,
    tlb_flush_ns=100,
    trap_entry_ns=40,
    iretq_ns=30,
    stac_clac_ns=2,
    # The rest of a ~1 us minor fault (section 10) less pagezero, split by the work each does. Low confidence.
    vm_fault_ns=350,
    vm_page_alloc_ns=80,
    vm_page_free_ns=50,
    pmap_enter_ns=100,
    pte_update_ns=10,
    memory=_MODERN_MEMORY,
    host_first_touch_ns=0,  # bare metal
    # A vm_map entry or vm_object operation and the page daemon's look at a page: a few hundred instructions
    # under the map and object locks. Low confidence.
    vm_map_op_ns=400,
    vm_object_op_ns=100,
    pageout_page_ns=50,
    malloc_call_ns=20,  # jemalloc's fast path on a current core: ~20 ns (jemalloc's own benchmarks, approximate)
    rtld_reloc_ns=25,  # a symbol lookup with a warm cache: ~100 instructions. Low confidence.
    malloc_junk_default=False,  # release builds define MALLOC_PRODUCTION: opt_junk is off
    timecounter="TSC-low",  # an invariant TSC: the vdso reads it, clock_gettime makes no system call
)

# The BeagleBone Black (TI AM3358: one Cortex-A8 at 1 GHz, 512 MiB DDR3L), the board L41's labs ran on. Its
# figures come from datasheets and published measurements, never from the labs' results. Costs it does not set are
# the lecture profile's: kernel paths of the same order on a ~1 instruction/ns core (low confidence).
_AM335X = "TI AM335x datasheet (SPRS717): Cortex-A8 with 32 KiB L1D, 256 KiB L2; DDR3L-800 on a 16-bit bus"
_BEAGLEBONE_MEMORY = (
    # Cortex-A8 TRM (ARM DDI 0344): L1D one 64-bit load or store a cycle at 1 GHz; a copy loop ~2 GB/s. Both
    # caches replace a random line on a miss (the TRM's replacement policy), so neither has LRU's cliff.
    MemLevel("L1D", 32 << 10, 250, 250, _AM335X + "; ARM Cortex-A8 TRM: 64-bit L1 data path", True),
    # The L2's latency (~9 cycles) and 128-bit path: a copy ~1 GB/s.
    MemLevel("L2", 256 << 10, 550, 450, _AM335X + "; ARM Cortex-A8 TRM: L2 load-to-use ~9 cycles", True),
    # 1.6 GB/s peak, of which a Cortex-A8 copy loop reaches ~320 MB/s (ARM KA13544 measures copy routines on a
    # Cortex-A8 board over 16 MiB: a few hundred MB/s). Low confidence.
    MemLevel("DRAM", 0, 1700, 1400, _AM335X + "; ARM KA13544 (Cortex-A8 copy routines, 16 MiB)"),
)
BEAGLEBONE = replace(
    LECTURE,
    name="beaglebone",
    description="The BeagleBone Black L41's labs ran on (TI AM3358, Cortex-A8 at 1 GHz, 32 KiB L1D, 256 KiB L2, "
    "512 MiB DDR3L) with FreeBSD's costs on the simulator's amd64 kernel paths: bare metal, no vdso clock.",
    user_insn_ns=1,  # a 1 GHz in-order dual-issue core: about one simple instruction a ns
    # Kernel paths as instruction counts at ~1 instruction/ns on a release kernel (no WITNESS): order of
    # magnitude, low confidence. A switch between threads: mi_switch, sched_switch, cpu_switch's register and
    # VFP save, ~2,500 instructions; a sleep queue operation ~400; one pipe_read/pipe_write pass (pipe lock,
    # state checks, wakeups) ~800; one sosend/soreceive pass (sblock, sockbuf and unp locks, uipc_send or
    # uipc_rcvd, sbappend) ~1,500; an mbuf and its cluster from UMA's per-CPU cache and back ~500; fget/fdrop
    # and the fo_read/fo_write dispatch ~600.
    cpu_switch_ns=2500,
    sleepq_ns=400,
    pipe_op_ns=800,
    socket_op_ns=1500,
    mbuf_ns=500,
    file_op_ns=600,
    phys_mem_bytes=512 << 20,  # the board's DDR3L
    tlb_entries=32,  # Cortex-A8 TRM: a 32-entry fully associative data TLB (any page size)
    tlb_large_entries=8,  # (the TLB's entries shared with sections; a share of them)
    tlb_walk_ns=150,  # two descriptor fetches, from L2 or DRAM
    memory=_BEAGLEBONE_MEMORY,
    host_first_touch_ns=0,  # bare metal
    timecounter="AM335x Timecounter",  # am335x_dmtimer.c's: FreeBSD 11's arm vdso has no reader for it
)

PROFILES: dict[str, Profile] = {p.name: p for p in (LECTURE, MODERN, BEAGLEBONE)}
DEFAULT_PROFILE = LECTURE.name  # a run names its machine only when it is not the lecture's
