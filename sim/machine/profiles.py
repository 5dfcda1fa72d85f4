"""Machine profiles: the cost, in simulated nanoseconds, of each primitive the simulator models.

Times in a run come only from these costs multiplied by what the mechanism does; no profile holds an answer.
Each constant says where its figure comes from. `lecture` is calibrated on the L41 lecture's board and kernel
(a debug -CURRENT kernel, 2017); `modern` is a current amd64 machine running a release kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


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
    audit_record_ns: int  # audit_syscall_enter/exit building a record
    set_retval_ns: int
    sched_userret_ns: int
    # system-call bodies (fixed work beyond copies)
    sys_getpid_ns: int

    @classmethod
    def cost_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name.endswith("_ns")]


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
    audit_record_ns=3000,  # audit record allocation and BSM token building
    set_retval_ns=40,
    sched_userret_ns=60,
    sys_getpid_ns=80,
)

MODERN = Profile(
    name="modern",
    description="A current amd64 server core (about 4 GHz) running a FreeBSD release kernel without debugging "
    "options; DTrace loaded but only the enabled probes cost anything.",
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
    audit_record_ns=400,
    set_retval_ns=3,
    sched_userret_ns=5,
    sys_getpid_ns=5,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (LECTURE, MODERN)}
