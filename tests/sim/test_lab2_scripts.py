"""Lab 2's D over the lab's benchmark: the 2017 idiom that brackets the benchmark loop with clock_gettime (a
system call on the lecture's machine, whose HPET timecounter the vdso cannot read) and takes the distributions
of read() and write() return values inside it.

Not yet: the later labs' scripts that read pipe state through `args[0]->f_data` at fbt probes (fbt's arguments
are not modelled: the script is refused at compile time, see the last test)."""

from __future__ import annotations

import re

from sim.trace.d_parser import DtraceError
from sim.trace.dtrace import run_dtrace

BRACKETED = """int in_bench;

syscall::clock_gettime:return
/execname == "ipc-static" && !in_bench/
{
	in_bench = 1;
}

syscall::clock_gettime:entry
/execname == "ipc-static" && in_bench/
{
	in_bench = 0;
}

syscall::read:return, syscall::write:return
/execname == "ipc-static" && in_bench/
{
	@[probefunc] = quantize(arg0);
}
"""
COMMAND = "ipc-static -B -b 65536 -t 1048576 2thread"


def buckets(output: str, name: str) -> dict[int, int]:
    """The non-empty rows of one quantize() aggregation as dtrace prints it: value -> count."""
    block = output.split(f"  {name}")[1].split("\n\n")[0]
    return {int(v): int(c) for v, c in re.findall(r"^\s+(-?\d+) \|@*\s+(\d+)", block, re.M) if int(c)}


def test_the_bracketed_distributions_show_the_benchmarks_reads_and_writes():
    result = run_dtrace(BRACKETED, COMMAND, quiet=True, script_name="lab2.d")
    assert result.exit_status == 0
    assert buckets(result.output, "read") == {65536: 16}  # 1 MiB in 64 KiB reads, each returning all it asked
    writes = buckets(result.output, "write")
    assert writes[65536] == 16
    # The idiom re-arms at the receiver's final clock_gettime:return, so the result line's write is counted too,
    # as it would be on FreeBSD: a global flag set by whichever thread returns from clock_gettime first.
    assert set(writes) <= {65536, 16}


def test_without_the_declaration_the_flag_is_refused_as_dtrace_refuses_it():
    try:
        run_dtrace(BRACKETED.removeprefix("int in_bench;\n\n"), COMMAND, quiet=True, script_name="lab2.d")
    except DtraceError as error:
        assert "failed to resolve in_bench: Unknown variable name" in str(error)
    else:
        raise AssertionError("an undeclared variable read before its first assignment compiled")


def test_pipe_state_through_fbt_arguments_is_not_modelled_yet():
    script = "fbt::pipe_read:entry { @[probefunc] = quantize(((struct pipe *)args[0]->f_data)->pipe_buffer.cnt); }"
    try:
        run_dtrace(script, COMMAND, quiet=True, script_name="lab2.d")
    except DtraceError as error:
        assert "args is not available at fbt:kernel:pipe_read:entry" in str(error)
    else:
        raise AssertionError("fbt arguments are modelled now: turn this into a test of the lab's f_data scripts")
