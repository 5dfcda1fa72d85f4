"""execve() (sys/kern/kern_exec.c, FreeBSD 11), for the simulated programs in /bin.

The new program replaces the process's image: its address space (exec_new_vmspace), its caught signals
(execsigs: they revert to the default action, since the handlers' code is gone), its close-on-exec
descriptors, and its registers (exec_setregs: %rip at the program's entry point, %rsp at the strings copied
onto the new stack). The call returns EJUSTRETURN: there is no caller left to return a value to. A vfork
parent waiting for this child is released (P_PPWAIT).
"""

from __future__ import annotations

from sim.core.events import Exec
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.core.sdt import sdt_fire
from sim.kern.errno import E2BIG, EACCES, EFAULT, EJUSTRETURN, ENOEXEC
from sim.kern.imgact_elf import exec_new_vmspace
from sim.kern.kernel import syscall_handler
from sim.kern.ksyms import PROGRAM_TEXT
from sim.kern.proc import P_EXEC, PCB_FULL_IRET, Thread
from sim.machine.cpu import PSL_USER

ARG_MAX = 256 * 1024  # sys/sys/syslimits.h
_KUCSEL, _KUDSEL = 0x43, 0x3B


def fetch_strings(uvec: int) -> tuple[int, list[str]]:
    """Read a NULL-terminated array of user string pointers (exec_copyin_args's fueword + copyinstr)."""
    from sim.kern.support import fueword
    from sim.kern.vfs_syscalls import copyinstr

    strings: list[str] = []
    if not uvec:
        return 0, strings
    total = 0
    while True:
        error, pointer = fueword(uvec + 8 * len(strings))
        if error:
            return EFAULT, []
        if pointer == 0:
            return 0, strings
        error, text = copyinstr(pointer, ARG_MAX)
        if error:
            return error, []
        total += len(text) + 1
        if total > ARG_MAX:
            return E2BIG, []
        strings.append(text)


@syscall_handler
@kfunc
def sys_execve(td: Thread, fname: int, argv: int, envv: int) -> int:
    from sim.kern.vfs_syscalls import copyinstr

    error, path = copyinstr(fname)
    if error:
        return error
    error, args = fetch_strings(argv)
    if error:
        return error
    error, env = fetch_strings(envv)
    if error:
        return error
    return kern_execve(td, path, args, env)


@kfunc
def kern_execve(td: Thread, path: str, argv: list[str], env: list[str]) -> int:
    from sim.kern.kern_descrip import fdcloseexec
    from sim.kern.kern_fork import release_ppwait
    from sim.kern.kern_sig import execsigs
    from sim.kern.vfs_syscalls import namei

    machine = pcpu.machine
    error, vp = namei(path)
    if error:
        return error
    if vp.v_main is None:
        return ENOEXEC if vp.i_size else EACCES  # not one of the simulated programs: no image activator
    machine.charge(machine.profile.exec_ns)
    p = td.td_proc
    p.p_args = (tuple(argv), tuple(env))
    error, stack = exec_new_vmspace(td, argv, env, vp)  # the old address space is gone from here on
    if error:
        return error
    p.p_flag |= P_EXEC
    p.p_comm = path.rsplit("/", 1)[-1][:19]  # MAXCOMLEN
    p.p_textvp = vp
    release_ppwait(p)  # a vfork parent may go on: the child no longer uses its address space
    execsigs(p)
    fdcloseexec(td)
    exec_setregs(td, PROGRAM_TEXT, stack)
    td.td_ucontinuation = None
    sdt_fire("proc", ("exec", "exec-success"))  # SDT_PROBE1(proc, , , exec, fname), then exec__success
    machine.emit("proc", "exec", Exec(p.p_pid, path, tuple(argv)))
    return EJUSTRETURN  # the registers are the new program's: leave them as exec_setregs made them


def exec_setregs(td: Thread, entry: int, stack: int) -> None:
    """Registers for the new program's first instruction (sys/amd64/amd64/machdep.c)."""
    frame = td.td_frame
    for name in frame.regs:
        frame.set(name, 0)
    frame.set("tf_rip", entry)
    frame.set("tf_rsp", ((stack - 8) & ~0xF) + 8)  # as if _start were called: 16-byte alignment minus 8
    frame.set("tf_rdi", stack)  # the start of the argument block: argc, argv, envp
    frame.set("tf_rflags", PSL_USER)
    frame.set("tf_cs", _KUCSEL)
    frame.set("tf_ss", _KUDSEL)
    frame.set("tf_flags", 0x1)
    td.td_pcb.pcb_flags |= PCB_FULL_IRET
