"""Privilege checks (sys/kern/kern_priv.c and the jail policy of kern_jail.c, FreeBSD 11).

priv_check() asks whether the thread's credential may use a named privilege. Policies that can only deny
come first (a jail restricts most privileges even for root); then the superuser policy grants it to an
effective uid of 0; the default is to deny with EPERM.
"""

from __future__ import annotations

from sim.core.events import PrivCheck
from sim.core.kfunc import kfunc
from sim.core.pcpu import pcpu
from sim.kern.errno import EPERM
from sim.kern.proc import Thread, Ucred, jailed

# sys/sys/priv.h
PRIV_AUDIT_CONTROL = 40
PRIV_AUDIT_FAILSTOP = 41
PRIV_AUDIT_GETAUDIT = 42  # may read a process's audit properties
PRIV_AUDIT_SETAUDIT = 43
PRIV_AUDIT_SUBMIT = 44
PRIV_NAMES = {value: name for name, value in globals().items() if name.startswith("PRIV_")}

JAIL_ALLOWED: frozenset[int] = frozenset()  # of the privileges modelled here, a jail grants none
SUSER_ENABLED = True  # security.bsd.suser_enabled


def priv_check(td: Thread, priv: int) -> int:
    return priv_check_cred(td.td_ucred, priv, 0)


@kfunc
def priv_check_cred(cred: Ucred, priv: int, flags: int) -> int:
    machine = pcpu.machine
    machine.charge(machine.profile.flag_test_ns * 2)
    error = prison_priv_check(cred, priv)
    if error == 0:
        error = 0 if SUSER_ENABLED and cred.cr_uid == 0 else EPERM
    machine.emit("hook", "priv_check", PrivCheck(priv, cred.cr_uid, error))
    return error


def prison_priv_check(cred: Ucred, priv: int) -> int:
    """A jailed credential keeps only the privileges the jail policy lists."""
    if not jailed(cred):
        return 0
    return 0 if priv in JAIL_ALLOWED else EPERM
