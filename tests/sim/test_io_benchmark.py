"""Lab 1's I/O benchmark (sim/user/io_benchmark.py): io.c's interface and exit statuses, the buffer cache it
measures (O_DIRECT gives each buffer back, so reads go to the disk), and the lab's own D scripts over it,
verbatim from the course's 2019-20 Lab 1 notebook (which drives the 2015-era io.c)."""

from __future__ import annotations

import re

import pytest

from sim.run import RunSpec, record
from sim.trace.dtrace import run_dtrace
from sim.user.io_benchmark import USAGE
from sim.user.shell import CommandLineError


def run(command: str):
    return record(RunSpec(command=command), record_budget=0)


def disk_reads(command: str) -> int:
    result = record(RunSpec(command=command))
    assert result.unrecorded == 0
    return sum(1 for e in result.events if e.name == "g_io_request" and e.data.cmd == 1)


def test_no_mode_prints_the_usage_and_exits_ex_usage():
    result = run("io-static iofile")
    assert result.exit_status == 64
    assert result.output == USAGE.format(prog="io-static")


def test_getopts_message_comes_before_the_usage():
    result = run("io-static -x -r iofile")
    assert result.exit_status == 64
    assert result.output.startswith("io-static: illegal option -- x\nio-static -c|-r|-w [-Bdqsv]")
    assert run("io-static -r iofile -b").exit_status == 64  # getopt stops at the first operand: two operands


def test_create_mode_takes_only_the_sizes():
    assert run("io-static -c -d iofile").exit_status == 64
    assert run("io-static -r -w iofile").exit_status == 64
    assert run("io-static -r -b 0 iofile").exit_status == 64  # strtol's value must be positive
    assert run("io-static -r -b 12x iofile").exit_status == 64


def test_a_size_that_does_not_divide_is_errx_with_ex_usage():
    result = run("io-static -r -b 1000 iofile")
    assert result.exit_status == 64
    assert result.output == "io-static: FAIL: data size (16777216) is not a multiple of buffersize (1000)\n"


def test_a_missing_file_is_ex_noinput():
    result = run("io-static -r -B /tmp/nothing")
    assert result.exit_status == 66
    assert result.output == "io-static: FAIL: /tmp/nothing: No such file or directory\n"


def test_reading_past_the_lab_file_is_a_partial_read():
    result = run("io-static -r -B -q -t 33554432 iofile")  # the lab's file holds 16 MiB
    assert result.exit_status == 74
    assert result.output == "io-static: FAIL: partial read\n"


def test_a_read_run_makes_one_read_per_block_and_prints_the_rate():
    result = run("io-static -r -B -b 65536 iofile")
    assert result.exit_status == 0
    assert result.syscalls_by_name["read"] == 256
    assert re.fullmatch(r"[0-9]+\.[0-9]{2} KBytes/sec\n", result.output)


def test_create_mode_writes_and_reports_its_configuration():
    result = run("io-static -c -b 1048576 newfile")
    assert result.exit_status == 0
    assert result.syscalls_by_name["write"] >= 16  # the file's writes, then the report's lines
    assert result.output.startswith("Benchmark configuration:\n  buffersize: 1048576\n  totalsize: 16777216\n"
                                    "  blockcount: 16\n  operation: create\n  path: newfile\n  time: 0.")  # fmt: skip


def test_without_bare_mode_it_flushes_and_sleeps_outside_the_timed_loop():
    result = run("io-static -r -q -b 1048576 iofile")
    assert result.syscalls_by_name["fsync"] == 2 and result.syscalls_by_name["sync"] == 3
    assert result.syscalls_by_name["nanosleep"] == 1


def test_the_lab_file_is_in_the_buffer_cache_so_a_plain_read_never_waits_for_the_disk():
    assert disk_reads("io-static -r -B -q -t 1048576 iofile") == 0


def test_o_direct_gives_each_buffer_back_so_the_second_half_of_each_block_comes_from_the_disk():
    """16 KiB reads of 32 KiB blocks: the first read of a block finds it cached and releases it (B_DIRECT |
    B_RELBUF), so the second must read the block from the disk again; 32 KiB reads touch each block once."""
    assert disk_reads("io-static -r -B -q -d -t 1048576 iofile") == 32
    assert disk_reads("io-static -r -B -q -d -b 32768 -t 1048576 iofile") == 0


def test_o_direct_frees_a_released_buffers_pages_so_every_later_read_of_the_block_goes_to_the_disk():
    """8 KiB reads: four per 32 KiB block, the first from the cache; the pages of each buffer released are freed
    (vfs_vmio_release), so the other three find none valid in the file's VM object and read the disk."""
    assert disk_reads("io-static -r -B -q -d -b 8192 -t 1048576 iofile") == 3 * 32


def test_o_direct_costs_time_on_the_disk():
    cached = run("io-static -r -B -q -t 1048576 iofile")
    direct = run("io-static -r -B -q -d -t 1048576 iofile")
    assert direct.wall_ns > 10 * cached.wall_ns


# The Lab 1 notebook's D, verbatim.
LAB1_TIMING = """
BEGIN {
   self->targetPid = -1;
}

proc:::exec-success
/execname == "io-static"/
{
   self->targetPid = pid;
   self->start = vtimestamp;
}

syscall::*exit:entry
/pid == self->targetPid/
{
   self->targetPid = -1;
   trace(vtimestamp - self->start);
}
END {
    printf("this is the end");
}
"""
LAB1_SYSCALLS = """
syscall:::entry
/execname == "io-static"/
{
    @a[probefunc] = count();
}
"""


def test_the_lab_1_timing_script_traces_the_benchmarks_cpu_time_from_exec_to_exit():
    result = run_dtrace(LAB1_TIMING, "io-static -r -B -q -b 8192 -t 1048576 iofile", quiet=True)
    traced = int(re.match(r"\s*([0-9]+)", result.output).group(1))  # quiet: trace()'s value, no newline
    run_ = run("io-static -r -B -q -b 8192 -t 1048576 iofile")
    assert 0 < traced <= run_.user_ns + run_.sys_ns
    assert result.output.rstrip().endswith("this is the end")


def test_the_lab_1_syscall_script_counts_one_read_per_buffer():
    """The notebook ran it over `-b 512 -t 16777216` and printed 32768 reads; a smaller total keeps the test quick."""
    result = run_dtrace(LAB1_SYSCALLS, "io-static -r -b 512 -t 1048576 iofile", quiet=True)
    counts = {key[0]: n for key, n in result.aggregations["a"].data.items()}
    assert counts["read"] == 2048
    assert counts["clock_gettime"] == 2  # the benchmark's brackets: system calls on the lecture's machine


def test_exec_success_fires_for_an_execve_in_the_run_and_for_the_runs_own_program():
    script = "proc:::exec-success { @[execname] = count(); }"
    result = run_dtrace(script, "forkexec", quiet=True)
    (counts,) = result.aggregations.values()
    assert {key[0]: n for key, n in counts.data.items()} == {"forkexec": 1, "getpid": 1}


def test_sizes_past_the_simulators_limits_are_refused_before_the_run():
    with pytest.raises(CommandLineError, match="-b 999999999: the simulated machine runs at most 67,108,864"):
        run("io-static -r -b 999999999 iofile")
