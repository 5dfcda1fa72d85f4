"""Time (sys/kern/kern_time.c and kern_tc.c, FreeBSD 11): clock_gettime(2), nanosleep(2).

Most clock_gettime() calls never enter the kernel: libc's vdso code reads the timehands the kernel keeps in
the shared page and the CPU's timestamp counter, in user mode. The system call is the fallback (and the only
way to the per-thread and per-process CPU clocks).
"""

from __future__ import annotations

import struct

from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.errno import EFAULT, EINTR, EINVAL, ERESTART
from sim.kern.kernel import syscall_handler
from sim.kern.proc import Thread

CLOCK_REALTIME = 0
CLOCK_VIRTUAL = 1
CLOCK_PROF = 2
CLOCK_MONOTONIC = 4
CLOCK_UPTIME = 5
CLOCK_UPTIME_PRECISE = 7
CLOCK_UPTIME_FAST = 8
CLOCK_REALTIME_PRECISE = 9
CLOCK_REALTIME_FAST = 10
CLOCK_MONOTONIC_PRECISE = 11
CLOCK_MONOTONIC_FAST = 12
CLOCK_SECOND = 13
CLOCK_THREAD_CPUTIME_ID = 14
CLOCK_PROCESS_CPUTIME_ID = 15
REALTIME_CLOCKS = (CLOCK_REALTIME, CLOCK_REALTIME_PRECISE, CLOCK_REALTIME_FAST)
UPTIME_CLOCKS = (CLOCK_MONOTONIC, CLOCK_MONOTONIC_PRECISE, CLOCK_MONOTONIC_FAST, CLOCK_UPTIME,
                 CLOCK_UPTIME_PRECISE, CLOCK_UPTIME_FAST)  # fmt: skip
VDSO_CLOCKS = REALTIME_CLOCKS + UPTIME_CLOCKS + (CLOCK_SECOND,)  # what __vdso_clock_gettime can answer

BOOTTIME_NS = 1510704000 * 10**9  # the simulated machine booted at 2017-11-15 00:00 UTC (the lecture's day)
TIMESPEC = struct.Struct("<qq")  # tv_sec, tv_nsec


def kern_clock_gettime(td: Thread, clock_id: int) -> tuple[int, int]:
    from sim.kern.sched import charge_rusage

    now = pcpu.machine.now
    if clock_id in REALTIME_CLOCKS:
        return 0, BOOTTIME_NS + now
    if clock_id in UPTIME_CLOCKS:
        return 0, now
    if clock_id == CLOCK_SECOND:
        return 0, now // 10**9 * 10**9
    if clock_id in (CLOCK_PROCESS_CPUTIME_ID, CLOCK_PROF, CLOCK_VIRTUAL, CLOCK_THREAD_CPUTIME_ID):
        charge_rusage(td)
        user, system = td.td_proc.p_rux
        return 0, user if clock_id == CLOCK_VIRTUAL else user + system
    return EINVAL, 0


@syscall_handler
@kfunc
def sys_clock_gettime(td: Thread, clock_id: int, tp: int) -> int:
    from sim.kern.support import copyout

    machine = pcpu.machine
    machine.charge(machine.profile.sys_simple_ns)
    error, ns = kern_clock_gettime(td, clock_id)
    if error:
        return error
    return EFAULT if copyout(TIMESPEC.pack(*divmod(ns, 10**9)), tp, TIMESPEC.size) else 0


@syscall_handler
@kfunc
def sys_nanosleep(td: Thread, rqtp: int, rmtp: int) -> int:
    from sim.kern.kern_synch import EWOULDBLOCK, PCATCH, tsleep
    from sim.kern.sched import PWAIT
    from sim.kern.support import copyin, copyout

    raw = bytearray(TIMESPEC.size)
    if copyin(rqtp, raw, TIMESPEC.size) != 0:
        return EFAULT
    sec, nsec = TIMESPEC.unpack(raw)
    if not 0 <= nsec < 10**9 or sec < 0:
        return EINVAL
    end = pcpu.machine.now + sec * 10**9 + nsec
    while True:
        remaining = end - pcpu.machine.now
        if remaining <= 0:
            return 0
        error = tsleep(td, PWAIT | PCATCH, "nanslp", remaining)
        if error == EWOULDBLOCK:
            continue
        if error:
            if rmtp:
                left = max(0, end - pcpu.machine.now)
                if copyout(TIMESPEC.pack(*divmod(left, 10**9)), rmtp, TIMESPEC.size):
                    return EFAULT
            return EINTR if error == ERESTART else error  # nanosleep is never restarted


# -- the vdso's timekeeping data in the shared page (kern_tc.c tc_fill_vdso_timehands, sys/vdso.h) ---------
#
# struct vdso_timekeep: tk_ver, tk_enabled, tk_current, then one struct vdso_timehands: th_algo, th_gen,
# th_scale, th_offset_count, th_counter_mask, th_offset and th_boottime (bintimes). The counter is the TSC,
# which the simulated CPU runs at 1 GHz. FreeBSD keeps a 32-bit th_offset_count and rewrites the timehands
# every tick; with no clock ticks modelled, the simulator publishes one timehands with a 64-bit count.
VDSO_TIMEKEEP = struct.Struct("<IIIIIQQQqQqQ")
TIMEKEEP_OFFSET = 0x200  # after the signal trampoline in the shared page
VDSO_TK_VER_CURR = 1
VDSO_TH_ALGO_X86_TSC = 1
TSC_HZ = 10**9
TH_SCALE = (1 << 64) // TSC_HZ  # bintime fraction per counter tick


def bintime(ns: int) -> tuple[int, int]:
    sec, rest = divmod(ns, 10**9)
    return sec, rest * (1 << 64) // 10**9


def timekeep_bytes(timecounter: str) -> bytes:
    """The timekeep the kernel publishes: uptime 0 at TSC 0, and the boot time. tk_enabled says whether the vdso
    can read the timecounter: x86's cpu_fill_vdso_timehands answers yes only for the TSC (kern.timecounter.fast_gettime
    aside), so on a machine whose timecounter is HPET, ACPI or a board's timer, libc makes the system call."""
    boot_sec, boot_frac = bintime(BOOTTIME_NS)
    enabled = int(timecounter.startswith("TSC"))
    return VDSO_TIMEKEEP.pack(VDSO_TK_VER_CURR, enabled, 0, VDSO_TH_ALGO_X86_TSC, 1, TH_SCALE, 0, (1 << 64) - 1,
                              0, 0, boot_sec, boot_frac)  # fmt: skip


def exec_sysvec_init_timekeep() -> None:
    """At boot: the timekeep goes into the shared page's frame, which every process maps read-only."""
    from sim.kern.imgact_elf import SHARED_PAGE_PA

    machine = pcpu.machine
    machine.physmem.write(SHARED_PAGE_PA + TIMEKEEP_OFFSET, timekeep_bytes(machine.profile.timecounter))


def timekeep_va(p) -> int:
    """elf_aux_info(AT_TIMEKEEP): where the process finds the timekeep, or 0 if its address space has no
    shared page (then libc's clock_gettime makes the system call)."""
    vmspace = getattr(p, "p_vmspace", None)
    if vmspace is None:
        return 0
    from sim.kern.machdep import SHAREDPAGE
    from sim.vm.vm_map import vm_map_lookup_entry

    return SHAREDPAGE + TIMEKEEP_OFFSET if vm_map_lookup_entry(vmspace.vm_map, SHAREDPAGE) else 0


@syscall_handler
@kfunc
def sys_clock_getres(td: Thread, clock_id: int, tp: int) -> int:
    """The timecounter's resolution: one tick of the 1 GHz TSC."""
    from sim.kern.support import copyout

    if clock_id not in (*VDSO_CLOCKS, CLOCK_VIRTUAL, CLOCK_PROF, CLOCK_THREAD_CPUTIME_ID, CLOCK_PROCESS_CPUTIME_ID):
        return EINVAL
    if not tp:
        return 0
    return EFAULT if copyout(TIMESPEC.pack(0, max(1, 10**9 // TSC_HZ)), tp, TIMESPEC.size) else 0
