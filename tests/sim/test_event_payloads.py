"""The kernel's and userland's events carry a typed payload (sim/core/events.py) or None, with their words made
only by the narrative (sim/narrative/kern.py and user.py) from those facts. (That no event of any layer carries
text, and that the narrative words every event, is tests/test_event_log_is_data.py's.)"""

from __future__ import annotations

import pytest

from sim.core import events
from sim.core.events import (
    CallArguments,
    Exec,
    Fork,
    ProcessExit,
    SyscallArgs,
    SyscallResult,
    SystraceSkipped,
)
from sim.core.log import Event
from sim.kern.errno import EFAULT, EINTR, EJUSTRETURN, ERESTART
from sim.kern.ksyms import KERNBASE
from sim.narrative import detail
from sim.scenarios.registry import SCENARIOS
from tests.steps import scenario_run

# The events sim/kern and sim/user emit (every kind below, or the names listed for a kind other layers share).
# Not here: the page-fault trap path's "build trapframe" and "iretq" (sim/kern/trap_pfault.py), the copy
# routines' hooks and SMAP instructions (sim/kern/support.py), user memory's load/store/memset/touch
# (sim/user/umem.py), and the VM system's "mem" events: the machine and VM layers convert those.
KERNEL_AND_USER_KINDS = {"start", "end", "syscall", "sysret", "skip", "signal", "proc"}
KERNEL_AND_USER_NAMES = {
    "hook": {"sv_fetch_syscall_args", "ast", "priv_check", "IN_CAPABILITY_MODE", "namei"},
    "insn": {"syscall", "movq PCPU(RSP0),%rsp", "sti", "cli", "swapgs", "restore registers", "sysretq",
             "restore all registers"},
    "mem": {"pipespace", "sbreserve", "ufs_create", "bdwrite", "g_io_request", "bufdone"},
}  # fmt: skip
USER_MEMORY_STEPS = {"load", "store", "memset", "touch"}


def emitted_by_kernel_or_userland(event: Event) -> bool:
    if event.kind in KERNEL_AND_USER_KINDS:
        return True
    if event.kind == "user":
        return event.name not in USER_MEMORY_STEPS
    return event.name in KERNEL_AND_USER_NAMES.get(event.kind, ())


@pytest.mark.parametrize("slug", sorted(SCENARIOS))
def test_every_kernel_and_user_event_carries_a_payload_or_nothing(slug):
    checked = [e for e in scenario_run(slug).events if emitted_by_kernel_or_userland(e)]
    assert checked
    for event in checked:
        data = event.data
        assert data is None or type(data).__module__ == events.__name__, (event.kind, event.name, data)


def test_the_process_events_carry_the_pids_the_views_and_providers_read():
    run = scenario_run("fork-returns-twice")
    start = run.events[0].data
    fork = next(e.data for e in run.events if e.kind == "proc" and e.name == "fork")
    assert fork.parent == start.pid and fork.child == start.pid + 1
    assert run.threads[fork.tid][0] == fork.child
    exits = [e.data for e in run.events if e.kind == "proc" and e.name == "exit"]
    assert {(x.pid, x.signal) for x in exits} == {(fork.parent, 0), (fork.child, 0)}


def test_a_syscall_s_arguments_and_result_are_its_registers():
    run = scenario_run("read-kernel-pointer")
    reads = [i for i, e in enumerate(run.events) if e.kind == "syscall" and e.name == "read"]
    results = [next(e for e in run.events[i:] if e.kind == "sysret") for i in reads]
    into_user, into_kernel = (run.events[i].data for i in reads)
    assert into_user.names == into_kernel.names == ("fd", "buf", "nbyte")
    assert into_user.values[1] < KERNBASE <= into_kernel.values[1]
    assert results[0].data == SyscallResult(error=0, retval=into_user.values[2])  # all the bytes asked for
    assert results[1].name == "error" and results[1].data == SyscallResult(error=EFAULT, retval=0)


def test_the_narrative_words_the_payloads_as_the_kernel_s_log_always_has():
    def words(kind: str, name: str, data: object) -> str:
        return detail(Event(0, kind, name, data, (), 0))

    assert words("syscall", "write", SyscallArgs(("fd", "buf", "nbyte"), (1, 0x7FFFFFFFE000, 26))) == (
        "fd=0x1, buf=0x7fffffffe000, nbyte=0x1a"
    )
    assert words("sysret", "success", SyscallResult(0, 1001)) == "tf_rax = 1001, carry clear"
    assert words("sysret", "error", SyscallResult(EINTR, 0)) == "tf_rax = errno 4, carry set"
    assert words("sysret", "ERESTART", SyscallResult(ERESTART, 0)).startswith("tf_rip backed up by tf_err")
    assert words("sysret", "EJUSTRETURN", SyscallResult(EJUSTRETURN, 0)).startswith("the registers were set")
    assert words("proc", "fork", Fork(1000, 1001, 100002)) == "pid 1000 creates pid 1001 (tid 100002)"
    assert words("proc", "exec", Exec(1001, "/bin/dd", ("dd", "bs=1m"))) == "pid 1001 now runs /bin/dd bs=1m"
    assert words("proc", "exec", Exec(1001, "/bin/getpid", ("getpid",))) == "pid 1001 now runs /bin/getpid"
    assert words("proc", "exit", ProcessExit(1001, "sh", 0, 9)) == (
        "pid 1001 (sh) exits on signal 9: a zombie until its parent waits"
    )
    assert words("user", "call mmap", CallArguments((0, 0x8000, -1))) == "rdi=0x0, rsi=0x8000, rdx=-0x1"
    assert words("skip", "systrace_probe_func", SystraceSkipped("return")) == (
        "systrace_probe_func == NULL || sa->callp->sy_return == 0: no syscall:::return probe for this call"
    )
    assert words("skip", "ktrsyscall", None) == "KTRPOINT(td, KTR_SYSCALL) is false"
