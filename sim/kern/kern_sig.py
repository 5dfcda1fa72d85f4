"""Signals (sys/kern/kern_sig.c, FreeBSD 11): sigaction, sigprocmask, kill, posting and delivery.

Posting a signal (tdsendsignal) marks it pending and flags the target thread's AST; if the thread sleeps
interruptibly it is woken with EINTR or ERESTART (sleepq_abort). Delivery happens on the way back to user
mode: ast() asks cursig() for the next deliverable signal and postsig() acts on it: the default action (for
most signals, exit), or sendsig() to run the handler.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from sim.core.events import SignalDelivered, SignalDiscarded, SignalExit, SignalPosted
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.core.sdt import sdt_fire
from sim.kern.errno import ECAPMODE, EFAULT, EINTR, EINVAL, EPERM, ERESTART, ESRCH
from sim.kern.kernel import syscall_handler
from sim.kern.proc import (
    P_SYSTEM,
    PRS_NORMAL,
    TDF_ASTPENDING,
    TDF_NEEDSIGCHK,
    TDF_SINTR,
    TDP_OLDMASK,
    Proc,
    Thread,
    jailed,
)

# sys/signal.h
SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGEMT, SIGFPE = range(1, 9)
SIGKILL, SIGBUS, SIGSEGV, SIGSYS, SIGPIPE, SIGALRM, SIGTERM, SIGURG = range(9, 17)
SIGSTOP, SIGTSTP, SIGCONT, SIGCHLD, SIGTTIN, SIGTTOU, SIGIO, SIGXCPU = range(17, 25)
SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGINFO, SIGUSR1, SIGUSR2, SIGTHR = range(25, 33)
NSIG = 32
SIGNAMES = {value: name for name, value in globals().items() if name.startswith("SIG") and isinstance(value, int)}

SIG_DFL = 0
SIG_IGN = 1
SIG_HOLD = 3  # internal to tdsendsignal: the signal is blocked
SIG_CATCH = 2  # internal: a handler is installed

SA_ONSTACK = 0x0001
SA_RESTART = 0x0002  # restart a system call a caught signal interrupts, rather than fail it with EINTR
SA_RESETHAND = 0x0004
SA_NOCLDSTOP = 0x0008
SA_NODEFER = 0x0010
SA_NOCLDWAIT = 0x0020
SA_SIGINFO = 0x0040

SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 1, 2, 3

SI_USER = 0x10001  # sys/signal.h: the signal came from kill()

# sigprop (kern_sig.c): the default action of each signal (FreeBSD 11 spelled these SA_KILL, SA_CORE, ...;
# 12 renamed them SIGPROP_* to keep them apart from sigaction's SA_ flags)
SIGPROP_KILL = 0x01  # terminates the process by default
SIGPROP_CORE = 0x02  # ditto, and dumps core
SIGPROP_STOP = 0x04
SIGPROP_TTYSTOP = 0x08
SIGPROP_IGNORE = 0x10  # ignored by default
SIGPROP_CONT = 0x20
_K, _C, _S, _T, _I = SIGPROP_KILL, SIGPROP_CORE, SIGPROP_STOP, SIGPROP_TTYSTOP, SIGPROP_IGNORE
SIGPROPERTY = (
    _K, _K, _K | _C, _K | _C, _K | _C, _K | _C, _K | _C, _K | _C,  # HUP INT QUIT ILL TRAP ABRT EMT FPE
    _K, _K | _C, _K | _C, _K | _C, _K, _K, _K, _I,  # KILL BUS SEGV SYS PIPE ALRM TERM URG
    _S, _S | _T, _I | SIGPROP_CONT, _I, _S | _T, _S | _T, _I, _K,  # STOP TSTP CONT CHLD TTIN TTOU IO XCPU
    _K, _K, _K, _I, _I, _K, _K, _I,  # XFSZ VTALRM PROF WINCH INFO USR1 USR2 THR
)  # fmt: skip

# struct sigaction (amd64): the handler, sa_flags, sa_mask (a four-word sigset_t)
SIGACTION = struct.Struct("<Qi4I4x")
WCOREFLAG = 0o200


def sigmask(sig: int) -> int:
    return 1 << (sig - 1)


SIG_CANTMASK = sigmask(SIGKILL) | sigmask(SIGSTOP)  # never blocked, caught or ignored


def sigprop(sig: int) -> int:
    return SIGPROPERTY[sig - 1] if 0 < sig <= NSIG else 0


def _sig_valid(sig: int) -> bool:
    return 0 < sig <= NSIG


@dataclass
class Sigacts:
    """struct sigacts: what each signal does in this process (shared by its threads, copied by fork)."""

    ps_sigact: list[int] = field(default_factory=lambda: [SIG_DFL] * (NSIG + 1))  # handler address by signal
    ps_catchmask: list[int] = field(default_factory=lambda: [0] * (NSIG + 1))  # blocked while the handler runs
    ps_sigignore: int = 0
    ps_sigcatch: int = 0
    ps_sigintr: int = 0  # handlers installed without SA_RESTART: their signal makes sleeps fail with EINTR
    ps_sigonstack: int = 0
    ps_sigreset: int = 0
    ps_signodefer: int = 0
    ps_siginfo: int = 0

    def copy(self) -> Sigacts:
        other = Sigacts(**{name: getattr(self, name) for name in self.__dataclass_fields__})
        other.ps_sigact = list(self.ps_sigact)
        other.ps_catchmask = list(self.ps_catchmask)
        return other


def siginit(p: Proc) -> None:
    """proc0's sigacts: signals whose default is to be ignored start out ignored (SIGCONT excepted)."""
    ps = Sigacts()
    for sig in range(1, NSIG + 1):
        if sigprop(sig) & SIGPROP_IGNORE and sig != SIGCONT:
            ps.ps_sigignore |= sigmask(sig)
    p.p_sigacts = ps


def sigacts(p: Proc) -> Sigacts:
    if p.p_sigacts is None:
        siginit(p)
    return p.p_sigacts


# -- system calls -----------------------------------------------------------------------------------------------


@syscall_handler
@kfunc
def sys_sigaction(td: Thread, sig: int, act: int, oact: int) -> int:
    from sim.kern.support import copyin, copyout

    _charge_simple()
    new = None
    if act:
        raw = bytearray(SIGACTION.size)
        if copyin(act, raw, SIGACTION.size) != 0:
            return EFAULT
        handler, flags, mask, *_ = SIGACTION.unpack(raw)
        new = (handler, flags, mask)
    error, old = kern_sigaction(td, sig, new)
    if error == 0 and oact:
        handler, flags, mask = old
        if copyout(SIGACTION.pack(handler, flags, mask, 0, 0, 0), oact, SIGACTION.size) != 0:
            return EFAULT
    return error


def kern_sigaction(td: Thread, sig: int, act: tuple[int, int, int] | None) -> tuple[int, tuple[int, int, int]]:
    if not _sig_valid(sig):
        return EINVAL, (0, 0, 0)
    p = td.td_proc
    ps = sigacts(p)
    bit = sigmask(sig)
    oflags = 0
    for flag, bits, wanted in (
        (SA_ONSTACK, ps.ps_sigonstack, True),
        (SA_RESTART, ps.ps_sigintr, False),
        (SA_RESETHAND, ps.ps_sigreset, True),
        (SA_NODEFER, ps.ps_signodefer, True),
        (SA_SIGINFO, ps.ps_siginfo, True),
    ):
        if bool(bits & bit) == wanted:
            oflags |= flag
    old = (ps.ps_sigact[sig], oflags, ps.ps_catchmask[sig])
    if act is None:
        return 0, old
    handler, flags, mask = act
    if sig in (SIGKILL, SIGSTOP) and handler != SIG_DFL:
        return EINVAL, old
    ps.ps_catchmask[sig] = mask & ~SIG_CANTMASK
    ps.ps_sigact[sig] = handler
    ps.ps_siginfo = _setbit(ps.ps_siginfo, bit, flags & SA_SIGINFO)
    ps.ps_sigintr = _setbit(ps.ps_sigintr, bit, not flags & SA_RESTART)
    ps.ps_sigonstack = _setbit(ps.ps_sigonstack, bit, flags & SA_ONSTACK)
    ps.ps_sigreset = _setbit(ps.ps_sigreset, bit, flags & SA_RESETHAND)
    ps.ps_signodefer = _setbit(ps.ps_signodefer, bit, flags & SA_NODEFER)
    if handler == SIG_IGN or (sigprop(sig) & SIGPROP_IGNORE and handler == SIG_DFL):
        # Never to be seen again: drop it if pending, and note it ignored (easier for tdsendsignal).
        p.p_siglist &= ~bit
        for thread in p.p_threads:
            thread.td_siglist &= ~bit
        if sig != SIGCONT:
            ps.ps_sigignore |= bit
        ps.ps_sigcatch &= ~bit
    else:
        ps.ps_sigignore &= ~bit
        ps.ps_sigcatch = _setbit(ps.ps_sigcatch, bit, handler != SIG_DFL)
    return 0, old


def _setbit(word: int, bit: int, on: object) -> int:
    return word | bit if on else word & ~bit


@syscall_handler
@kfunc
def sys_sigprocmask(td: Thread, how: int, set_: int, oset: int) -> int:
    from sim.kern.machdep import SIGSET_SIZE, pack_sigset, unpack_sigset
    from sim.kern.support import copyin, copyout

    _charge_simple()
    old = td.td_sigmask
    if set_:
        raw = bytearray(SIGSET_SIZE)
        if copyin(set_, raw, SIGSET_SIZE) != 0:
            return EFAULT
        mask = unpack_sigset(bytes(raw))
        if how == SIG_BLOCK:
            new = old | mask
        elif how == SIG_UNBLOCK:
            new = old & ~mask
        elif how == SIG_SETMASK:
            new = mask
        else:
            return EINVAL
        kern_sigprocmask_setmask(td, new)
    if oset and copyout(pack_sigset(old), oset, SIGSET_SIZE) != 0:
        return EFAULT
    return 0


def kern_sigprocmask_setmask(td: Thread, mask: int) -> None:
    old = td.td_sigmask
    td.td_sigmask = mask & ~SIG_CANTMASK
    if old != td.td_sigmask:
        pcpu.machine.log.delta(("td", "td_sigmask", old, td.td_sigmask))
    signotify(td)  # a signal that was blocked may be deliverable now


@syscall_handler
@kfunc
def sys_sigsuspend(td: Thread, sigmask_ptr: int) -> int:
    """Wait for a signal with a temporary mask; the old mask comes back after the handler (TDP_OLDMASK)."""
    from sim.kern.kern_synch import PCATCH, msleep
    from sim.kern.machdep import SIGSET_SIZE, unpack_sigset
    from sim.kern.sched import PPAUSE
    from sim.kern.support import copyin

    raw = bytearray(SIGSET_SIZE)
    if copyin(sigmask_ptr, raw, SIGSET_SIZE) != 0:
        return EFAULT
    td.td_oldsigmask = td.td_sigmask
    td.td_pflags |= TDP_OLDMASK
    kern_sigprocmask_setmask(td, unpack_sigset(bytes(raw)))
    while msleep(td.td_proc, PPAUSE | PCATCH, "pause") == 0:
        pass
    return EINTR  # always: the handler has run when this returns to user mode


@syscall_handler
@kfunc
def sys_kill(td: Thread, pid: int, signum: int) -> int:
    from sim.kern.subr_syscall import IN_CAPABILITY_MODE

    _charge_simple()
    pid = _signed32(pid)
    # A process in capability mode may signal only itself (abort(3) is kill(getpid(), SIGABRT)).
    if IN_CAPABILITY_MODE(td) and pid != td.td_proc.p_pid:
        return ECAPMODE
    if not 0 <= signum <= NSIG:
        return EINVAL
    if pid > 0:
        p = pfind(pid)
        if p is None:
            return ESRCH
        error = p_cansignal(td, p, signum)
        if error == 0 and signum:
            pksignal(p, signum, SI_USER)
        return error
    # pid 0 (our process group), -1 (everyone we may signal), -pgid: every user process is one group here.
    targets = [p for p in pcpu.kernel.procs if not p.p_flag & P_SYSTEM and p.p_state == PRS_NORMAL]
    if pid == -1:
        targets = [p for p in targets if p is not td.td_proc]
    sent, error = 0, ESRCH
    for p in targets:
        if p_cansignal(td, p, signum) == 0:
            sent += 1
            if signum:
                pksignal(p, signum, SI_USER)
    return 0 if sent else error


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >> 31 else value


def pfind(pid: int) -> Proc | None:
    """Find a process (or a zombie, as kill() also accepts) by pid."""
    for p in pcpu.kernel.procs:
        if p.p_pid == pid:
            return p
    return None


def p_cansignal(td: Thread, p: Proc, signum: int) -> int:
    """cr_cansignal: a process may signal another with its uid, or any if privileged, within its jail."""
    if td.td_proc is p:
        return 0
    cred, target = td.td_ucred, p.p_ucred
    if jailed(cred) and cred.cr_prison is not target.cr_prison:
        return ESRCH
    if p.p_flag & P_SYSTEM:
        return EPERM
    if (
        cred.cr_uid == 0
        or cred.cr_ruid in (target.cr_ruid, target.cr_uid)
        or cred.cr_uid
        in (
            target.cr_ruid,
            target.cr_uid,
        )
    ):
        return 0
    return EPERM


def _charge_simple() -> None:
    machine = pcpu.machine
    machine.charge(machine.profile.sys_simple_ns)


# -- posting -------------------------------------------------------------------------------------------------


def kern_psignal(p: Proc, sig: int) -> None:
    tdsendsignal(p, None, sig, 0)


def pksignal(p: Proc, sig: int, code: int) -> None:
    tdsendsignal(p, None, sig, code)


def tdsignal(td: Thread, sig: int) -> None:
    """A signal for one thread (nosys's SIGSYS, a fault's SIGSEGV)."""
    tdsendsignal(td.td_proc, td, sig, 0)


@kfunc
def tdsendsignal(p: Proc, td: Thread | None, sig: int, code: int) -> None:
    machine = pcpu.machine
    ps = sigacts(p)
    bit = sigmask(sig)
    thread_directed = td is not None
    if td is None:
        td = sigtd(p, sig)
    sdt_fire("proc", ("signal-send",))  # SDT_PROBE3(proc, , , signal__send, td, p, sig)
    if ps.ps_sigignore & bit:
        sdt_fire("proc", ("signal-discard",))
        machine.emit("signal", SIGNAMES[sig], SignalDiscarded(p.p_pid, sig))
        return
    if td.td_sigmask & bit:
        action = SIG_HOLD
    elif ps.ps_sigcatch & bit:
        action = SIG_CATCH
    else:
        action = SIG_DFL
    intrval = EINTR if ps.ps_sigintr & bit else ERESTART
    if p.p_state != PRS_NORMAL:
        return  # a zombie (or a process being made) cannot take signals
    if thread_directed:
        td.td_siglist |= bit
    else:
        p.p_siglist |= bit
    machine.emit("signal", SIGNAMES[sig], SignalPosted(p.p_pid, td.td_tid, sig, action == SIG_HOLD))
    signotify(td)
    if action == SIG_HOLD:
        return
    tdsigwakeup(td, sig, action, intrval)


def sigtd(p: Proc, sig: int) -> Thread:
    """The thread to take a process-directed signal: the current one if it can, else one not blocking it."""
    bit = sigmask(sig)
    td = pcpu.curthread
    if td.td_proc is p and not td.td_sigmask & bit:
        return td
    for other in p.p_threads:
        if not other.td_sigmask & bit:
            return other
    return p.p_threads[0]


def signotify(td: Thread) -> None:
    """Flag the AST that will deliver a pending, unblocked signal at the thread's next return to user mode."""
    from sim.kern.sched import set_td_flags

    pending = (td.td_siglist | td.td_proc.p_siglist) & ~td.td_sigmask
    if pending and (td.td_flags & (TDF_NEEDSIGCHK | TDF_ASTPENDING)) != (TDF_NEEDSIGCHK | TDF_ASTPENDING):
        set_td_flags(td, td.td_flags | TDF_NEEDSIGCHK | TDF_ASTPENDING)


def tdsigwakeup(td: Thread, sig: int, action: int, intrval: int) -> None:
    """Wake the thread if it sleeps interruptibly, so it notices the signal on its way out of the kernel."""
    from sim.kern.kern_synch import sleepq_abort

    if td.td_wchan is not None and td.td_flags & TDF_SINTR:
        sleepq_abort(td, intrval)


def sigintr(td: Thread, sig: int) -> int:
    """What an interrupted sleep returns for this signal: EINTR without SA_RESTART, ERESTART with it."""
    return EINTR if sigacts(td.td_proc).ps_sigintr & sigmask(sig) else ERESTART


# -- delivery ---------------------------------------------------------------------------------------------------


@kfunc
def cursig(td: Thread) -> int:
    """issignal(): the next signal to act on, or 0; ignored and default-ignored signals are dropped here."""
    p = td.td_proc
    ps = sigacts(p)
    while True:
        pending = (td.td_siglist | p.p_siglist) & ~td.td_sigmask
        if not pending:
            return 0
        sig = (pending & -pending).bit_length()  # sig_ffs: the lowest-numbered signal first
        bit = sigmask(sig)
        handler = ps.ps_sigact[sig]
        if not ps.ps_sigignore & bit:
            if handler == SIG_DFL and not sigprop(sig) & (SIGPROP_IGNORE | SIGPROP_STOP):
                return sig
            if handler not in (SIG_DFL, SIG_IGN):
                return sig
        td.td_siglist &= ~bit  # take the signal: its action is to be ignored
        p.p_siglist &= ~bit


@kfunc
def postsig(sig: int) -> None:
    """Take the signal and act on it: the default action, or run the handler (sendsig)."""
    from sim.kern.machdep import sendsig

    td = pcpu.curthread
    p = td.td_proc
    ps = sigacts(p)
    bit = sigmask(sig)
    td.td_siglist &= ~bit
    p.p_siglist &= ~bit
    action = ps.ps_sigact[sig]
    if action == SIG_DFL:
        sigexit(td, sig)
    if td.td_pflags & TDP_OLDMASK:
        returnmask = td.td_oldsigmask
        td.td_pflags &= ~TDP_OLDMASK
    else:
        returnmask = td.td_sigmask
    pcpu.machine.emit("signal", SIGNAMES[sig], SignalDelivered(td.td_tid, sig, action))
    sendsig(action, sig, 0, returnmask, bool(ps.ps_siginfo & bit))
    postsig_done(sig, td, ps)


def postsig_done(sig: int, td: Thread, ps: Sigacts) -> None:
    """Block the handler's mask (and the signal itself unless SA_NODEFER) while it runs."""
    mask = ps.ps_catchmask[sig]
    if not ps.ps_signodefer & sigmask(sig):
        mask |= sigmask(sig)
    kern_sigprocmask_setmask(td, td.td_sigmask | mask)
    if ps.ps_sigreset & sigmask(sig):
        kern_sigaction(td, sig, (SIG_DFL, 0, 0))


@kfunc
def sigexit(td: Thread, sig: int) -> None:
    """The default action: the process exits on the signal (no core file is written: as with ulimit -c 0)."""
    from sim.kern.kern_exit import exit1

    p = td.td_proc
    coredump = bool(sigprop(sig) & SIGPROP_CORE)
    data = SignalExit(p.p_pid, p.p_comm, td.td_ucred.cr_uid, sig, coredump)
    pcpu.machine.emit("signal", SIGNAMES.get(sig, str(sig)), data)
    exit1(td, 0, sig)


@kfunc
def trapsignal(td: Thread, sig: int, code: int, addr: int = 0) -> None:
    """A signal caused by the thread's own trap (SIGSEGV, SIGBUS, SIGILL, SIGTRAP): delivered at once if
    caught and not blocked, otherwise posted (and, if blocked or ignored, forced back to its default)."""
    from sim.kern.machdep import sendsig

    p = td.td_proc
    ps = sigacts(p)
    bit = sigmask(sig)
    if ps.ps_sigcatch & bit and not td.td_sigmask & bit:
        sendsig(ps.ps_sigact[sig], sig, code, td.td_sigmask, bool(ps.ps_siginfo & bit), addr)
        postsig_done(sig, td, ps)
        return
    if td.td_sigmask & bit or ps.ps_sigact[sig] == SIG_IGN:
        td.td_sigmask &= ~bit  # kern_forcesigexit: a fault cannot be ignored, or it would loop forever
        ps.ps_sigcatch &= ~bit
        ps.ps_sigignore &= ~bit
        ps.ps_sigact[sig] = SIG_DFL
    tdsendsignal(p, td, sig, code)


def execsigs(p: Proc) -> None:
    """exec: caught signals revert to their default action; the mask and ignored signals survive."""
    ps = sigacts(p)
    for sig in range(1, NSIG + 1):
        if ps.ps_sigcatch & sigmask(sig):
            ps.ps_sigact[sig] = SIG_DFL
            if sigprop(sig) & SIGPROP_IGNORE and sig != SIGCONT:
                ps.ps_sigignore |= sigmask(sig)
    ps.ps_sigcatch = 0
    ps.ps_sigintr = ps.ps_siginfo = ps.ps_sigreset = ps.ps_signodefer = ps.ps_sigonstack = 0
