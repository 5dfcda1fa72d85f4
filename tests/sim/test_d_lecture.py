"""The lecture's three DTrace scripts, verbatim, over real simulated runs, and the probe effect they pay."""

# ruff: noqa: UP031 - expected lines are written with dtrace's own printf formats (" %16d", "  %-50s")
from __future__ import annotations

import pytest

from sim.kern.kernel import KernelConfig
from sim.machine.profiles import PROFILES
from sim.run import RunSpec, record
from sim.trace.dtrace import run_dtrace
from sim.user.programs import PROGRAMS
from tests.sim.test_d_language import LECTURE_PROFILE, LECTURE_SYSCALL_TIMES, LECTURE_TRAPS

HEADER = "CPU     ID                    FUNCTION:NAME\n"
END_LINE = "  0      2                             :END "
DD = "dd if=/dev/zero of=/dev/null bs=10m count=1"
needs_dd = pytest.mark.skipif("dd" not in PROGRAMS, reason="the simulated dd is not in sim/user yet")


def test_the_syscall_timing_script_runs_verbatim_and_prints_dtraces_shape():
    result = run_dtrace(LECTURE_SYSCALL_TIMES, "getpid 3", script_name="syscalls.d")
    # execname is "getpid", not "dd": both aggregations stay empty, and printa prints only its newline
    assert result.output == HEADER + END_LINE + "\n\n" + "\n" + "\n"
    assert result.stderr.startswith("dtrace: script 'syscalls.d' matched ")
    assert result.stderr.endswith("dtrace: pid 1000 has exited\n")
    assert result.exit_status == 0


def test_the_syscall_timing_script_measures_each_call_with_its_probe_effect():
    script = LECTURE_SYSCALL_TIMES.replace('"dd"', '"getpid"')
    result = run_dtrace(script, "getpid 100", quiet=True)
    times = result.aggregations["syscall_time"].data
    assert list(times) == [("getpid",)]  # exit never returns, so it has no return probe
    total = result.aggregations["totaltime"].data[()]
    assert times[("getpid",)] == total
    per_call = total // 100
    probe_effect = PROFILES["lecture"].systrace_probe_ns
    assert probe_effect < per_call < 2 * probe_effect  # one probe's cost falls inside each measured interval
    lines = result.output.splitlines()
    assert lines[1] == "  %-50s %16d" % ("getpid", total)
    assert lines[3] == " %16d" % total


def test_enabling_syscall_probes_slows_the_traced_run_by_their_probe_effect():
    plain = record(RunSpec("getpid 1000", config=KernelConfig()))
    cost = PROFILES["lecture"].systrace_probe_ns
    traced = run_dtrace("syscall:::entry { @ = count(); }", "getpid 1000", quiet=True).run
    firings = 1000 + 1  # only entry probes are enabled: each getpid's, and exit's
    assert traced.wall_ns - plain.wall_ns == firings * cost
    both = run_dtrace("syscall:::entry, syscall:::return { @ = count(); }", "getpid 1000", quiet=True).run
    firings = 2 * 1000 + 1  # entry and return of each getpid, and exit's entry (it never returns)
    assert both.wall_ns - plain.wall_ns == firings * cost


def test_syscall_arguments_and_return_values_come_from_the_recorded_run():
    # guards the event shapes the syscall provider reads: "syscall" details carry the arguments, "sysret" the result
    result = run_dtrace(
        "syscall::getpid:return { @ret[arg0, errno] = count(); } syscall::exit:entry { @status[arg0] = count(); }",
        "getpid 4",
        quiet=True,
    )
    pid = result.run.threads[min(result.run.threads)][0]
    assert result.aggregations["ret"].data == {(pid, 0): 4}
    assert result.aggregations["status"].data == {(0,): 1}


def test_the_trap_script_runs_verbatim():
    result = run_dtrace(LECTURE_TRAPS, "getpid 3", script_name="traps.d")
    assert result.output == HEADER + END_LINE + "\n" * 4 + "\n" + "\n"


def test_the_trap_script_counts_system_calls_of_the_named_program():
    result = run_dtrace(LECTURE_TRAPS.replace('"dd"', '"getpid"'), "getpid 10", quiet=True)
    assert result.aggregations["syscalls"].data == {(): 11}  # ten getpids and the exit


def test_the_profile_script_samples_kernel_stacks_of_the_named_program():
    script = LECTURE_PROFILE.replace('"dd"', '"getpid"').replace("profile-997", "profile-4999")
    result = run_dtrace(script, "getpid 10000", quiet=True)
    stacks = result.aggregations["traces"].data
    period = 1_000_000_000 // 4999
    assert sum(stacks.values()) == result.run.events[-1].t_ns // period  # one sample per period of simulated time
    kernel = [key[0] for key in stacks if key[0]]
    assert kernel, "getpid spends almost all its time in the kernel: some samples must land there"
    # every kernel stack bottoms out in the SYSCALL entry code, assembly that dtrace prints as an address
    assert all(frames[-1].startswith("kernel`0xffffffff") for frames in kernel)
    assert any("kernel`amd64_syscall+0x" in frame for frames in kernel for frame in frames)


def test_the_profile_script_runs_verbatim():
    result = run_dtrace(LECTURE_PROFILE, "getpid 3000", quiet=True)
    assert result.output == "\n"  # no sample was taken in a process named dd


@needs_dd
def test_dd_spends_far_longer_in_traps_than_in_system_calls():
    result = run_dtrace(LECTURE_TRAPS, DD, quiet=True)
    aggregations = {name: agg.data.get((), 0) for name, agg in result.aggregations.items()}
    assert aggregations["syscalls"] > 10
    assert aggregations["traps"] > 1000
    assert aggregations["trap_time"] > 10 * aggregations["syscall_time"]


@needs_dd
def test_dd_kernel_stacks_are_dominated_by_page_zeroing():
    result = run_dtrace(LECTURE_PROFILE, DD, quiet=True)
    stacks = result.aggregations["traces"].data
    top = max(stacks, key=stacks.get)
    assert any(name in top[0][0] for name in ("pagezero", "pmap_zero_page"))
    assert any("kernel`trap+0x" in frame for frame in top[0])


@needs_dd
def test_dd_syscall_times_list_the_calls_dd_makes():
    result = run_dtrace(LECTURE_SYSCALL_TIMES, DD, quiet=True)
    names = {key[0] for key in result.aggregations["syscall_time"].data}
    assert {"read", "write"} <= names


@needs_dd
def test_dd_syscall_times_reproduce_slide_16_a_few_ms_with_read_under_1_ms_and_mmap_the_largest():
    """Slide 16: ~3.2 ms in all, read 0.70 ms, mmap 0.77 ms the largest, clock_gettime a system call. A booted
    system has rtld's libmap.conf and hints in the buffer cache: no read waits for the disk."""
    result = run_dtrace(LECTURE_SYSCALL_TIMES, DD + " status=none", quiet=True)
    times = {key[0]: ns for key, ns in result.aggregations["syscall_time"].data.items()}
    total = result.aggregations["totaltime"].data[()]
    assert 1_000_000 < total < 5_000_000
    assert 600_000 < times["read"] < 1_000_000  # the 10 MiB copyout; rtld's small reads are from the cache
    assert max(times, key=times.get) == "mmap"
    assert "clock_gettime" in times  # dd's setup() times the copy: a system call on the lecture's machine


# The probefunc column of slide 16's table, as the lecture printed it.
SLIDE_16_CALLS = {
    "sysarch", "issetugid", "lseek", "sigaction", "clock_gettime", "ioctl", "write", "readlink", "access",
    "sigprocmask", "fstat", "munmap", "close", "lstat", "openat", "read", "mmap",
}  # fmt: skip


@needs_dd
def test_dd_syscall_times_list_exactly_slide_16s_calls_lstat_from_rtlds_libmap_realpath():
    """lstat is FreeBSD 11's libc realpath(), which rtld's libmap.c calls on /etc/libmap.conf and its includedir
    (sim/user/rtld_libmap.py): six calls, one per prefix of each path."""
    result = run_dtrace(LECTURE_SYSCALL_TIMES, DD + " status=none", quiet=True)
    assert {key[0] for key in result.aggregations["syscall_time"].data} == SLIDE_16_CALLS
    run = record(RunSpec(command=DD + " status=none"), record_budget=0)
    assert run.syscalls_by_name["lstat"] == 6
