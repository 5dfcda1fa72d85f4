"""The L41 IPC benchmark's command line: getopt flags, defaults, and its usage errors before a run."""

import pytest

from sim.run import RunSpec, record
from sim.user.ipc_benchmark import BUFFERSIZE, TOTALSIZE, parse
from sim.user.programs import PROGRAMS, validate
from sim.user.shell import CommandLineError


def test_defaults_are_the_labs_128k_buffer_and_16m_total():
    o = parse(("ipc-static", "1thread"))
    assert (o.buffersize, o.totalsize, o.ipc_type, o.mode) == (128 * 1024, 16 * 1024 * 1024, "pipe", "1thread")
    assert (BUFFERSIZE, TOTALSIZE) == (131072, 16777216)
    assert not (o.bflag or o.qflag or o.sflag or o.vflag)


def test_flags_group_and_take_attached_or_separate_arguments():
    o = parse(("ipc-dynamic", "-Bqs", "-ilocal", "-b", "4096", "-t4194304", "2proc"))
    assert (o.bflag, o.qflag, o.sflag, o.vflag) == (True, True, True, False)
    assert (o.ipc_type, o.buffersize, o.totalsize, o.mode) == ("local", 4096, 4194304, "2proc")


def test_static_and_dynamic_builds_are_both_programs():
    assert {"ipc-static", "ipc-dynamic", "ipc-benchmark"} <= set(PROGRAMS)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("ipc-static",), "name exactly one mode"),
        (("ipc-static", "3thread"), "unknown mode '3thread'"),
        (("ipc-static", "1thread", "2proc"), "unexpected operand '2proc'"),
        (("ipc-static", "-x", "1thread"), "illegal option -- x"),
        (("ipc-static", "-b"), "option requires an argument -- b"),
        (("ipc-static", "-b", "0", "1thread"), "-b needs a positive whole number"),
        (("ipc-static", "-b", "12k", "1thread"), "-b needs a positive whole number"),
        (("ipc-static", "-i", "fifo", "1thread"), "the IPC type is pipe or local"),
        (("ipc-static", "-s", "1thread"), "-s sets socket-buffer sizes, so it needs -i local"),
    ],
)
def test_usage_errors(argv, message):
    with pytest.raises(CommandLineError) as excinfo:
        validate(argv, {})
    assert message in str(excinfo.value)
    assert "[-Bqsv] [-b buffersize] [-i pipe|local] [-t totalsize] mode" in str(excinfo.value)


def test_total_not_a_multiple_of_the_buffer_fails_as_the_lab_program_does():
    message = r"FAIL: data size \(16777216\) is not a multiple of buffersize \(1000\)"
    with pytest.raises(CommandLineError, match=message):
        validate(("ipc-static", "-b", "1000", "2thread"), {})


def test_a_usage_error_stops_the_run_before_it_starts():
    with pytest.raises(CommandLineError, match="unknown mode"):
        record(RunSpec(command="ipc-static -B 4proc"))
