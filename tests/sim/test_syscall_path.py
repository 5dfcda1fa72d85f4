"""The system-call path a student follows on the lecture's slides: syscallenter's hooks in FreeBSD's order, what
a disabled hook costs, and each errno path happening for FreeBSD's own reason."""

from __future__ import annotations

from sim.core.events import PrivCheck
from sim.kern import errno as E
from sim.kern.kern_priv import PRIV_AUDIT_GETAUDIT
from sim.kern.kern_sig import SIG_IGN, SIGSYS
from sim.kern.kernel import KernelConfig
from sim.machine.cpu import PSL_C
from sim.machine.profiles import LECTURE
from sim.narrative import detail as event_detail
from sim.replay import Replay
from sim.user.libc import Libc
from tests.sim.procutil import buffer, cstring, events_named, frame, open_path, run_program, syscall_events

# The lecture's slide "System-call entry - syscallenter", in order.
SLIDE = [
    "cred_update_thread",
    "sv_fetch_syscall_args",
    "ktrsyscall",
    "ptracestop",
    "IN_CAPABILITY_MODE",
    "syscall_thread_enter",
    "systrace_probe_func",
    "AUDIT_SYSCALL_ENTER",
    "sa->callp->sy_call",
    "AUDIT_SYSCALL_EXIT",
    "systrace_probe_func",
    "syscall_thread_exit",
    "sv_set_syscall_retval",
]
# What the simulator's log calls each step: the function entered, or the hook run or skipped. The slide shows 10.x's
# cred_update_thread; FreeBSD 11 (the simulator) has thread_cow_update in its place.
LOG_NAMES = {
    "thread_cow_update": "cred_update_thread",
    "cpu_fetch_syscall_args": "sv_fetch_syscall_args",
    "audit_syscall_enter": "AUDIT_SYSCALL_ENTER",
    "audit_syscall_exit": "AUDIT_SYSCALL_EXIT",
    "cpu_set_syscall_retval": "sv_set_syscall_retval",
}
ALL_HOOKS = KernelConfig(audit=True, dtrace_syscall=True, ktrace=True, ptrace=True)


def syscallenter_steps(run, start: int) -> list[str]:
    """The hooks of one syscallenter, as the slide names them: functions it calls and hooks it tests."""
    steps = frame(run, start, "syscallenter")
    depth = run.events[steps[0]].depth + 1
    names = []
    for i in steps[1:-1]:
        e = run.events[i]
        if e.kind == "enter" and e.depth == depth and not e.name.startswith("sys_"):  # not sy_call's body
            names.append(LOG_NAMES.get(e.name, e.name))
        elif e.kind in ("hook", "skip") and e.depth == depth - 1 and e.name != "sv_fetch_syscall_args":
            names.append(LOG_NAMES.get(e.name, e.name))
        elif e.kind == "syscall":
            names.append("sa->callp->sy_call")
    return names


def cap_enter_then_getpid(libc: Libc, argv, env) -> int:
    libc.syscall("cap_enter")  # a new credential: the next call's syscallenter must update the thread's
    libc.getpid()
    return 0


def test_with_every_hook_enabled_syscallenter_runs_them_in_the_slides_order():
    run = run_program(cap_enter_then_getpid, ALL_HOOKS)
    getpid = syscall_events(run, "getpid")[0]
    syscallenter = max(i for i in events_named(run, "enter", "syscallenter") if i < getpid)
    assert syscallenter_steps(run, syscallenter) == SLIDE


def getpid_once(libc: Libc, argv, env) -> int:
    return 0 if libc.getpid() > 0 else 1


def test_a_hook_whose_flag_is_clear_is_skipped_and_costs_only_the_flag_test():
    run = run_program(getpid_once)
    getpid = syscall_events(run, "getpid")[0]
    steps = syscallenter_steps(run, max(i for i in events_named(run, "enter", "syscallenter") if i < getpid))
    assert steps[1:] == SLIDE[1:]  # same order; thread_cow_update is skipped before the args are fetched
    for hook in ("ktrsyscall", "ptracestop", "AUDIT_SYSCALL_ENTER", "systrace_probe_func"):
        skip = next(i for i in events_named(run, "skip", hook) if i < getpid)
        assert run.events[skip].t_ns - run.events[skip - 1].t_ns == LECTURE.flag_test_ns
    assert not events_named(run, "enter", "ktrsyscall")
    traced = run_program(getpid_once, KernelConfig(ktrace=True))
    assert traced.wall_ns - run.wall_ns >= 2 * LECTURE.ktrace_record_ns  # entry and return records


def read_into_the_kernel(libc: Libc, argv, env) -> int:
    fd = open_path(libc, "/dev/zero")
    n = libc.syscall("read", fd, 0xFFFFFFFF80000000, 4096)  # KERNBASE: a kernel address
    return libc.errno if n == -1 else 0


def test_a_kernel_pointer_passed_to_read_gets_efault_from_copyout():
    run = run_program(read_into_the_kernel)
    assert run.exit_status == E.EFAULT
    read = syscall_events(run, "read")[0]
    after = [e for e in run.events[read:]]
    fault = next(e for e in after if e.kind == "hook" and e.name == "copyout_fault")
    assert not fault.data.in_range  # refused by the range check, before any access
    assert "VM_MAXUSER_ADDRESS" in event_detail(fault)
    assert next(e for e in after if e.kind == "sysret").name == "error"


def unimplemented_number(libc: Libc, argv, env) -> int:
    libc.sigaction(SIGSYS, SIG_IGN)
    rv = libc.syscall("syscall", 333)  # 333 is not in syscalls.master: the indirect call reaches nosys
    return libc.errno if rv == -1 else 0


def test_an_unimplemented_number_gets_enosys_from_nosys():
    run = run_program(unimplemented_number)
    assert run.exit_status == E.ENOSYS
    assert events_named(run, "enter", "nosys")


def unimplemented_unprepared(libc: Libc, argv, env) -> int:
    libc.syscall("syscall", 333)
    return 0


def test_without_ignoring_sigsys_an_unimplemented_call_kills_the_process():
    run = run_program(unimplemented_unprepared)
    assert run.exit_status == 128 + SIGSYS  # nosys posts SIGSYS, whose default action is to terminate


def getauid(libc: Libc, argv, env) -> int:
    auid = buffer(libc)
    return libc.errno if libc.syscall("getauid", auid) == -1 else 0


def test_getauid_in_a_jail_is_enosys_before_any_privilege_check():
    run = run_program(getauid, KernelConfig(jailed=True))
    assert run.exit_status == E.ENOSYS
    assert not events_named(run, "enter", "priv_check_cred")


def test_getauid_as_an_unprivileged_user_is_eperm_from_priv_check():
    run = run_program(getauid, KernelConfig(uid=1001))
    assert run.exit_status == E.EPERM
    check = events_named(run, "hook", "priv_check")[0]
    assert run.events[check].data == PrivCheck(priv=PRIV_AUDIT_GETAUDIT, uid=1001, error=E.EPERM)
    assert run_program(getauid).exit_status == 0  # root may


def open_in_capability_mode(libc: Libc, argv, env) -> int:
    if libc.getpid() <= 0:  # getpid is CAPENABLED: allowed
        return 1
    fd = open_path(libc, "/dev/null")
    return libc.errno if fd == -1 else 0


def test_open_in_capability_mode_enters_and_namei_fails_it_with_ecapmode():
    """FreeBSD 11's capabilities.conf lists open (so that it leaves an audit trail): syscallenter lets it in, and
    namei() refuses the global namespace (AT_FDCWD)."""
    run = run_program(open_in_capability_mode, KernelConfig(capability_mode=True))
    assert run.exit_status == E.ECAPMODE
    assert not events_named(run, "hook", "IN_CAPABILITY_MODE")
    enter = events_named(run, "enter", "sys_open")
    refused = events_named(run, "hook", "namei")
    assert enter and refused and enter[0] < refused[0]
    assert run.events[refused[0]].data.path == "/dev/null"
    assert run_program(open_in_capability_mode).exit_status == 0


def stat_in_capability_mode(libc: Libc, argv, env) -> int:
    return libc.errno if libc.syscall("stat", cstring(libc, "/dev/null"), buffer(libc, 256)) == -1 else 0


def test_a_call_capabilities_conf_does_not_list_is_refused_at_syscallenter():
    run = run_program(stat_in_capability_mode, KernelConfig(capability_mode=True))
    assert run.exit_status == E.ECAPMODE
    check = next(e for e in run.events if e.kind == "hook" and e.name == "IN_CAPABILITY_MODE")
    assert check.data.syscall == "stat"
    assert not events_named(run, "enter", "sys_stat")
    assert run_program(stat_in_capability_mode).exit_status == 0


def test_an_error_returns_errno_in_rax_with_the_carry_set():
    run = run_program(open_in_capability_mode, KernelConfig(capability_mode=True))
    refused = events_named(run, "hook", "namei")[0]
    sysret = next(i for i in range(refused, len(run.events)) if run.events[i].name == "sysretq")
    state = Replay(run).state_at(sysret)
    assert state.registers["rax"] == E.ECAPMODE and state.registers["rflags"] & PSL_C
