"""The L41 IPC benchmark run on the simulated kernel: what a student measures in Lab 2."""

import re

import pytest

from sim.run import RunError, RunSpec, record

RATE = re.compile(r"^(\d+\.\d\d) KBytes/sec\n$", re.M)
TOTAL = 1 << 20  # a quicker total than the lab's 16 MiB; the mechanism is the same


def _blocker(mode: str) -> str | None:
    """Why a mode cannot be measured on this kernel yet, or None: it must finish and time a finite rate."""
    try:
        result = record(RunSpec(command=f"ipc-static -B -b 65536 -t 65536 {mode}"), record_budget=0,
                        event_budget=2_000_000)  # fmt: skip
    except (RunError, NotImplementedError, TypeError) as error:
        return f"{type(error).__name__}: {error}"
    if result.exit_status != 0 or not RATE.search(result.output):
        return f"exit status {result.exit_status}, output {result.output.strip()!r}"
    return None


BLOCKERS = {mode: _blocker(mode) for mode in ("1thread", "2thread", "2proc")}


def needs(*modes):
    blocked = {m: BLOCKERS[m] for m in modes if BLOCKERS[m]}
    return pytest.mark.skipif(bool(blocked), reason=f"not measurable on this kernel yet: {blocked}")


def run(command, profile="lecture"):
    return record(RunSpec(command=command, profile=profile), record_budget=0)


def rate(result):
    match = RATE.search(result.output)
    assert match, result.output
    return float(match.group(1))


@pytest.mark.parametrize("mode", [pytest.param(m, marks=needs(m)) for m in ("1thread", "2thread", "2proc")])
@pytest.mark.parametrize("ipc", ["pipe", "local"])
def test_every_mode_moves_the_total_and_prints_a_bandwidth(mode, ipc):
    result = run(f"ipc-static -B -i {ipc} -t {TOTAL} {mode}")
    assert result.exit_status == 0, result.output
    assert rate(result) > 0
    by_name = result.syscalls_by_name
    assert by_name["read"] >= TOTAL // (128 * 1024)  # a read returns at most what the object holds


@needs("2proc")
def test_2proc_forks_and_shares_the_start_time_through_an_inherit_share_page():
    result = run(f"ipc-static -B -t {TOTAL} 2proc")
    by_name = result.syscalls_by_name
    assert by_name["fork"] == 1 and by_name["minherit"] == 1 and by_name["wait4"] == 1
    assert len({pid for pid, comm in result.threads.values() if comm == "ipc-static"}) == 2
    assert rate(result) < 10**9  # a start time of 0 (an unshared page) would give an absurd rate


@needs("1thread")
def test_the_buffers_are_faulted_in_before_the_timed_loop():
    result = run(f"ipc-static -B -q -b 65536 -t {TOTAL} 1thread").summary()
    assert result["faults_user_mode"] >= 2 * 65536 // 4096


@needs("1thread", "2thread")
def test_quiet_prints_nothing_and_verbose_describes_the_run():
    assert run(f"ipc-static -B -q -t {TOTAL} 1thread").output == ""
    verbose = run(f"ipc-static -B -v -b 4096 -t {TOTAL} 2thread").output
    assert "Benchmark configuration:\n  buffersize: 4096\n  totalsize: 1048576\n  blockcount: 256\n" in verbose
    assert "  mode: 2thread\n  ipctype: pipe\n  time: 0." in verbose


@needs("2thread")
def test_buffer_size_changes_the_bandwidth():
    small = rate(run(f"ipc-static -B -b 512 -t {TOTAL} 2thread"))
    large = rate(run(f"ipc-static -B -b 131072 -t {TOTAL} 2thread"))
    assert large > small  # fewer system calls for the same bytes


@needs("1thread")
def test_without_bare_mode_it_syncs_and_sleeps_first():
    result = run(f"ipc-static -t {TOTAL} 1thread")
    assert result.syscalls_by_name["sync"] == 3
    assert result.wall_ns > 10**9  # the one-second settle is wall time
    assert result.sys_ns + result.user_ns < 10**9


@needs("1thread")
def test_the_dynamic_build_runs_the_run_time_linker_first():
    static = run(f"ipc-static -B -q -t {TOTAL} 1thread").syscalls_by_name
    dynamic = run(f"ipc-dynamic -B -q -t {TOTAL} 1thread").syscalls_by_name
    assert "access" in dynamic and "access" not in static
    assert dynamic["mmap"] > static["mmap"]
