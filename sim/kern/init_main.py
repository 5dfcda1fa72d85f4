"""The first user process's start (after sys/kern/init_main.c's proc0_init and init's own set-up).

Importing this module loads every system-call handler (SYSINIT order does not matter here: each registers its
sysent entry by name). proc0_init gives the first process what login and the shell would have left it: a
credential (in capability mode if the run asks), default signal actions, and descriptors 0, 1 and 2 open on
the terminal.
"""

from __future__ import annotations

# Every module with system calls registers them when imported.
from sim.kern import (  # noqa: F401
    audit_syscalls,
    kern_context,
    kern_descrip,
    kern_exec,
    kern_exit,
    kern_fork,
    kern_prot,
    kern_resource,
    kern_sig,
    kern_synch,
    kern_sysctl,
    kern_thr,
    kern_time,
    kld_bugs,
    machdep,
    sys_capability,
    sys_generic,
    sys_pipe,
    uipc_syscalls,
    vfs_aio,
    vfs_syscalls,
)
from sim.kern.kern_descrip import DTYPE_VNODE, FREAD, FWRITE, File, fdinit
from sim.kern.kern_sig import siginit
from sim.kern.proc import CRED_FLAG_CAPMODE, P_TRACED, S_PT_SCE, S_PT_SCX, Proc, Thread
from sim.kern.vfs_subr import install_program, vfs
from sim.kern.vfs_vnops import vnops


def proc0_init(td: Thread, config) -> None:
    """`config` is the run's KernelConfig: capability mode, and whether ktrace or a debugger follow it."""
    from sim.kern.kern_time import exec_sysvec_init_timekeep
    from sim.kern.subr_syscall import KTR_SYSCALL, KTR_SYSRET

    exec_sysvec_init_timekeep()  # the vdso's clock, in the shared page
    p = td.td_proc
    if config.capability_mode:
        p.p_ucred.cr_flags |= CRED_FLAG_CAPMODE  # as if the program had called cap_enter() first
    if config.ktrace:
        p.p_traceflag |= 1 << KTR_SYSCALL | 1 << KTR_SYSRET  # ktrace -t c: record system calls
    if config.ptrace:
        p.p_flag |= P_TRACED  # a debugger attached with PT_SYSCALL: stop at every entry and exit
        p.p_stops |= S_PT_SCE | S_PT_SCX
    siginit(p)
    p.p_fd = fdinit()
    console = vfs().names["/dev/console"]
    tty = File(DTYPE_VNODE, FREAD | FWRITE, vnops, console, f_vnode=console, f_count=3)
    for fd in (0, 1, 2):  # stdin, stdout, stderr: one open of the terminal, shared
        p.p_fd.fd_ofiles[fd] = tty


def process_times(p: Proc) -> tuple[int, int]:
    """What time(1) reports for a process: its own user and system time and its reaped children's."""
    from sim.core.pcpu import pcpu
    from sim.kern.sched import charge_rusage

    if pcpu.curthread.td_proc is p:
        charge_rusage(pcpu.curthread)  # still on the CPU (the run stopped early): count its time so far
    return p.p_rux[0] + p.p_crux[0], p.p_rux[1] + p.p_crux[1]


def exit_status(p: Proc) -> int | None:
    """The shell's $?: the exit code, or 128 + the signal that killed it."""
    if p.p_exitstatus is None:
        return None
    return 128 + p.p_xsig if p.p_xsig else p.p_xexit


def install_world(programs) -> None:
    """installworld: each simulated program as an executable file, at its image's path and as /bin/NAME.
    `programs` yields (name, the program's code, its ELF image or None for a small static one)."""
    from sim.kern.imgact_elf import default_image

    names = vfs().names
    for name, main, image in programs:
        image = image or default_image(name)
        vp = install_program(image.path, image, main)
        names.setdefault(f"/bin/{name}", vp)
