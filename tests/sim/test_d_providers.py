"""Probe firings derived from an event log: when each provider fires, and what a clause sees when it does."""

from __future__ import annotations

import pytest

from sim.core.events import Exec, Fork, ProcessExit, Trap
from sim.kern.trap_pfault import T_PAGEFLT
from sim.machine.mmu import PGEX_P, PGEX_U, PGEX_W
from sim.trace.providers import ProbeCatalog, profile_period, split_description
from tests.sim.d_logs import LogBuilder, trace


def getpid_log(systrace: bool, probe_ns: int = 0) -> LogBuilder:
    log = LogBuilder(comm="dd")
    log.user(5)
    log.syscall("read", {"fd": 3, "buf": 0x800000, "nbyte": 4096}, retval=4096, body_ns=1000,
                probe_ns=probe_ns, systrace=systrace)  # fmt: skip
    log.user(5)
    log.syscall("read", {"fd": 99, "buf": 0, "nbyte": 1}, error=9, body_ns=50, probe_ns=probe_ns, systrace=systrace)
    log.end()
    return log


@pytest.mark.parametrize("systrace", [True, False])
def test_syscall_probes_give_name_arguments_return_value_and_errno(systrace):
    log = getpid_log(systrace, probe_ns=2500 if systrace else 0)
    result = trace(
        'syscall:::entry { printf("%s(%d, %d) ", probefunc, arg0, arg2); }'
        ' syscall:::return { printf("= %d errno %d\\n", arg0, errno); }',
        log,
        systrace=systrace,
    )
    assert result.output == "read(3, 4096) = 4096 errno 0\nread(99, 1) = -1 errno 9\n\n"


def test_syscall_time_includes_one_probe_effect_when_the_probes_are_enabled():
    # entry fires as systrace_probe_func is entered, return likewise: the interval holds the entry probe's cost
    log = getpid_log(systrace=True, probe_ns=2500)
    result = trace(
        "syscall::read:entry { self->t = timestamp; }"
        " syscall::read:return { @[probefunc] = sum(timestamp - self->t); }",
        log,
        systrace=True,
    )
    # each read: the entry probe's 2500 ns, then sys_read's body (1000 ns, then 50 ns for the failing one)
    assert result.aggregations["_"].data == {("read",): (2500 + 1000) + (2500 + 50)}


def test_fbt_entry_and_return_fire_on_kernel_frames_with_the_return_value():
    log = LogBuilder()
    log.syscall("getpid", retval=1000)
    log.syscall("getpid", error=9)
    log.end()
    result = trace(
        "fbt::sys_getpid:entry { @calls = count(); } fbt::sys_getpid:return { @errors[arg1] = count(); }"
        " fbt:kernel:*syscall*:entry { @f[probefunc] = count(); }",
        log,
    )
    assert result.aggregations["calls"].data == {(): 2}
    assert result.aggregations["errors"].data == {(0,): 1, (9,): 1}
    assert result.aggregations["f"].data == {
        (f,): 2 for f in ("amd64_syscall", "syscallenter", "cpu_set_syscall_retval")
    }


def test_assembly_entry_points_have_no_fbt_probes():
    with pytest.raises(Exception, match="fbt::Xfast_syscall:entry does not match any probes"):
        trace("fbt::Xfast_syscall:entry { }", LogBuilder())


def test_profile_fires_on_simulated_time_with_the_open_kernel_frames_leaf_first():
    log = LogBuilder(comm="dd")
    log.user(500_000)  # user mode until 0.5 ms
    log.enter("Xpage")
    log.enter("trap")
    log.enter("vm_fault")
    log.call("pmap_zero_page", 2_000_000)  # 2 ms zeroing a page: two samples at 1 kHz land in it
    log.exit("vm_fault")
    log.exit("trap")
    log.exit("Xpage")
    log.user(600_000)
    log.end()
    result = trace("profile-1000 { @[stack()] = count(); } tick-1ms { @ticks = count(); }", log)
    stacks = result.aggregations["_"].data
    zeroing = [key for key in stacks if key[0] and "pmap_zero_page" in key[0][0]]
    assert len(zeroing) == 1 and stacks[zeroing[0]] == 2
    frames = zeroing[0][0]
    assert frames[0] == "kernel`pmap_zero_page+0x1"  # the leaf first, just past its prologue
    assert frames[1].startswith("kernel`vm_fault+0x") and frames[2].startswith("kernel`trap+0x")
    assert frames[3].startswith("kernel`0xffffffff")  # Xpage is assembly: dtrace can name only the module
    assert stacks[((),)] == 1  # the sample at 3 ms was taken in user mode: an empty kernel stack
    assert result.aggregations["ticks"].data == {(): 3}


def test_profile_sample_arguments_tell_kernel_from_user_mode():
    log = LogBuilder()
    log.user(1, rip=0x201234)
    log.user(1_500_000, rip=0x201239)  # the sample at 1 ms lands in this step, at the instruction before it
    log.call("trap", 1_000_000)
    log.end()
    result = trace('profile-1000 { printf("%d %x\\n", arg0 != 0, arg1); }', log)
    assert result.output == "0 201234\n1 0\n\n"


def test_execname_pid_and_tid_follow_the_thread_on_the_cpu():
    log = LogBuilder(tid=100000, pid=1000, comm="sh")
    log.syscall("getpid", retval=1000)
    log.switch(100001, 1001, "dd")
    log.syscall("getpid", retval=1001)
    log.switch(100000, 1000, "sh")
    log.syscall("getpid", retval=1000)
    log.end()
    result = trace('syscall::getpid:return { printf("%s %d %d %d\\n", execname, pid, tid, arg0); }', log)
    assert result.output == "sh 1000 100000 1000\ndd 1001 100001 1001\nsh 1000 100000 1000\n\n"


def test_execname_follows_fork_and_exec():
    log = LogBuilder(tid=100000, pid=1000, comm="sh")
    log.threads[100001] = (1001, "dd")  # what the run ends with: the child has exec'd dd
    log.syscall("getpid")
    log.emit(10, "proc", "fork", Fork(parent=1000, child=1001, tid=100001))
    log.switch(100001, 1001, "dd")
    log.syscall("getpid")  # the child before exec is still "sh"
    log.emit(10, "proc", "exec", Exec(pid=1001, path="/bin/dd", argv=("dd", "if=/dev/zero")))
    log.syscall("getpid")
    log.end()
    result = trace('syscall::getpid:entry { printf("%d %s\\n", pid, execname); }', log)
    assert result.output == "1000 sh\n1001 sh\n1001 dd\n\n"


def test_thread_locals_belong_to_one_thread():
    log = LogBuilder(tid=100000, pid=1000, comm="a")
    log.syscall("getpid")
    log.switch(100001, 1001, "b")
    log.syscall("getpid")
    log.end()
    result = trace("syscall::getpid:entry { self->n++; @[execname] = max(self->n); }", log)
    assert result.aggregations["_"].data == {("a",): 1, ("b",): 1}


def test_proc_and_vminfo_probes_fire_from_proc_and_fault_events():
    log = LogBuilder(comm="sh")
    log.emit(10, "proc", "fork", Fork(parent=1000, child=1001, tid=100001))
    log.emit(10, "trap", "#PF", Trap(T_PAGEFLT, PGEX_U | PGEX_W, 0x800000, user=True))
    log.emit(10, "fault", "zero_fill", "write at 0x800000: demand-zero")
    log.emit(10, "trap", "#PF", Trap(T_PAGEFLT, PGEX_W, 0x801000, user=False))
    log.emit(10, "fault", "zero_fill", "write at 0x801000: demand-zero")
    log.emit(10, "trap", "#PF", Trap(T_PAGEFLT, PGEX_P | PGEX_U | PGEX_W, 0x600000, user=True))
    log.emit(10, "fault", "cow", "write at 0x600000: copy-on-write")
    log.emit(10, "proc", "exit", ProcessExit(pid=1000, comm="sh", status=0, signal=0))
    log.end()
    result = trace(
        'proc:::create { printf("child %d\\n", args[0]->p_pid); } proc:::exit { printf("exit %d\\n", arg0); }'
        " vminfo:::zfod, vminfo:::cow_fault, vminfo:::as_fault, vminfo:::kernel_asflt { @[probename] = sum(arg0); }",
        log,
    )
    assert result.output.startswith("child 1001\nexit 1\n")
    assert result.aggregations["_"].data == {("zfod",): 2, ("cow_fault",): 1, ("as_fault",): 3, ("kernel_asflt",): 1}


def test_begin_fires_first_and_end_last_in_dtraces_own_process():
    log = getpid_log(systrace=False)
    result = trace(
        'BEGIN { printf("%s %d\\n", execname, timestamp); } syscall:::entry { printf("%s\\n", probefunc); }'
        ' END { printf("%s %d\\n", probename, timestamp); }',
        log,
    )
    assert result.output == f"dtrace 0\nread\nread\nEND {log.t}\n\n"


def test_exit_stops_tracing_and_end_still_fires():
    log = getpid_log(systrace=False)
    result = trace(
        "BEGIN { n = 0; m = 0; } syscall:::entry { n = n + 1; exit(7); } syscall:::entry { m = m + 1; }"
        ' END { printf("%d %d", n, m); }',
        log,
    )
    assert result.exit_status == 7
    assert result.output == "1 1\n"  # the rest of that firing's clauses ran; no later firing did


def test_timestamp_is_the_same_in_every_clause_of_one_firing_and_vtimestamp_excludes_probes():
    log = getpid_log(systrace=True, probe_ns=2500)
    result = trace(
        "syscall::read:entry { a = timestamp; v = vtimestamp; } syscall::read:entry { @same = sum(timestamp == a); }"
        " syscall::read:return { @probe_time = max(timestamp - a - (vtimestamp - v)); }",
        log,
        systrace=True,
    )
    assert result.aggregations["same"].data == {(): 2}
    assert result.aggregations["probe_time"].data == {(): 2500}  # the entry probe's own cost


def test_probe_descriptions_read_fields_from_the_right_and_match_globs():
    assert split_description("BEGIN") == ("", "", "", "BEGIN")
    assert split_description("read:entry") == ("", "", "read", "entry")
    catalog = ProbeCatalog()
    assert {p.description for p in catalog.match("syscall::read:entry")} == {"syscall:freebsd:read:entry"}
    assert {p.function for p in catalog.match("syscall::*pid:entry")} >= {"getpid"}
    assert all(p.name == "return" for p in catalog.match("syscall::[gr]e*:return"))
    assert {p.name for p in catalog.match("syscall::read:[!e]*")} == {"return"}
    assert catalog.match("BEGIN")[0].id == 1 and catalog.match("dtrace:::END")[0].id == 2


def test_profile_probes_are_made_on_demand_with_dtraces_units():
    assert profile_period("profile-997") == 1_000_000_000 // 997
    assert profile_period("tick-10ms") == 10_000_000
    assert profile_period("tick-1s") == 1_000_000_000
    assert profile_period("profile-100us") == 0  # faster than 5000 Hz: the profile provider refuses it
    catalog = ProbeCatalog()
    made = catalog.match("profile-1234")
    assert len(made) == 1 and made[0].provider == "profile" and catalog.match("profile-1234") == made
