"""The course's later benchmark, `ipc-benchmark` (ipc.c with libxo): -j, -n, -g, -v/describe, -i tcp, -p, -P;
usage errors print the usage on stderr and exit EX_USAGE (64); ipc-static keeps the 2017 interface."""

from __future__ import annotations

import json

import pytest

from sim.run import RunSpec, record
from sim.user.programs import validate
from sim.user.shell import CommandLineError


def run(command: str):
    return record(RunSpec(command), record_budget=0)


def test_text_output_is_one_datum_with_bandwidth_and_time():
    done = run("ipc-benchmark -B -b 65536 1thread")
    lines = done.output.splitlines()
    assert lines[0] == "datum:" and lines[1].startswith("  bandwidth: ") and lines[1].endswith(" KBytes/sec")
    assert lines[2].startswith("  time: 0.") and lines[2].endswith(" seconds") and done.exit_status == 0
    # the buffers are unmapped at the end, after the CPU-0 pinning at the start
    assert done.syscalls_by_name["cpuset_setaffinity"] == 1 and done.syscalls_by_name["munmap"] >= 2


def test_json_holds_a_sample_per_iteration_with_getrusage_fields():
    done = run("ipc-benchmark -B -j -g -n 3 -b 65536 -i local 2thread")
    samples = json.loads(done.output)["benchmark_samples"]
    assert len(samples) == 3
    for sample in samples:
        assert set(sample) == {"bandwidth", "time", "stime", "utime", "msgsnd", "msgrcv", "nvcsw", "nivcsw"}
        assert sample["msgsnd"] == (16 << 20) // 65536  # one sosend a write on a local socket
        assert sample["nvcsw"] > 0 and sample["stime"] > 0
    assert done.syscalls_by_name["getrusage"] == 3 * 4  # self and children, before and after each run


def test_pipes_count_no_messages():
    sample = json.loads(run("ipc-benchmark -B -j -g -b 65536 2proc").output)["benchmark_samples"][0]
    assert sample["msgsnd"] == sample["msgrcv"] == 0


@pytest.mark.parametrize(
    "command",
    [
        "ipc-benchmark -x 1thread",
        "ipc-benchmark 3thread",
        "ipc-benchmark",
        "ipc-benchmark -p 70000 1thread",
        "ipc-benchmark -b 0 1thread",
        "ipc-benchmark -s 1thread",
        "ipc-benchmark -P l2 1thread",
        "ipc-benchmark -n 1thread",
    ],  # fmt: skip
)
def test_a_usage_error_prints_the_usage_and_exits_ex_usage(command):
    validate(tuple(command.split()), {})  # not refused before the run: the program's own usage() answers
    done = run(command)
    assert done.exit_status == 64
    assert done.output.startswith("ipc-benchmark [-Bgjqsv] [-b buffersize] [-i pipe|local|tcp] [-n iterations]")


def test_a_total_not_a_multiple_of_the_buffer_is_ex_usage_too():
    done = run("ipc-benchmark -b 1000 1thread")
    assert done.exit_status == 64
    assert done.output == "ipc-benchmark: FAIL: data size (16777216) is not a multiple of buffersize (1000)\n"


def test_describe_reads_sysctls_until_one_this_amd64_machine_has_not_got():
    done = run("ipc-benchmark describe")
    assert done.output.splitlines()[:4] == ["Hardware configuration:", "  hw.machine: amd64",
                                            "  hw.model: trapscope simulated amd64 CPU (lecture profile)",
                                            "  hw.ncpu: 1"]  # fmt: skip
    assert "  hw.pagesizes: 4096, 2097152, 0\n" in done.output
    assert done.output.endswith("ipc-benchmark: sysctlbyname: hw.cpufreq.arm_freq: No such file or directory\n")
    assert done.exit_status == 71 and done.syscalls_by_name["__sysctl"] >= 10


def test_tcp_needs_a_kernel_with_inet_and_pmc_needs_hwpmc():
    tcp = run("ipc-benchmark -B -i tcp -p 10141 1thread")
    assert tcp.exit_status == 71
    assert tcp.output == "ipc-benchmark: sysctlbyname: net.inet.tcp.hostcache.purgenow: No such file or directory\n"
    pmc = run("ipc-benchmark -B -P arch 1thread")
    assert (pmc.exit_status, pmc.output) == (71, "ipc-benchmark: FAIL: pmc_init: No such file or directory\n")


def test_ipc_static_keeps_the_2017_interface():
    with pytest.raises(CommandLineError, match="illegal option -- j"):
        validate(("ipc-static", "-j", "1thread"), {})
    assert run("ipc-static -B -b 65536 1thread").output.endswith(" KBytes/sec\n")
