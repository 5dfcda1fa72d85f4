"""Lab 2's D over the lab's benchmark: the 2017 idiom that brackets the benchmark loop with clock_gettime (a
system call on the lecture's machine, whose HPET timecounter the vdso cannot read) and takes the distributions
of read() and write() return values inside it.

And the later labs' pattern, pipe state through `args[0]->f_data` at fbt probes (typed fbt arguments arrived with
the dtypes merge)."""

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


def test_pipe_state_through_fbt_arguments():
    """The later labs' f_data idiom: at each pipe_read() the reader's struct pipe, as it was when it was entered.
    With 64 KiB writes from user memory the writer takes the direct path (PIPE_DIRECTW), and here the reader gets
    there first and sleeps: neither the buffer nor the writer's mapped pages hold a byte yet at any entry."""
    script = """fbt::pipe_read:entry {
        this->pipe = (struct pipe *)args[0]->f_data;
        @buffered = quantize(this->pipe->pipe_buffer.cnt);
        @mapped = quantize(this->pipe->pipe_map.cnt);
        @wanted = sum(args[1]->uio_resid);
    }
    syscall::read:entry /execname == "ipc-static"/ { @reads = count(); }
    END { printa("%@d\\n", @reads); printa("%@d\\n", @wanted); }"""
    result = run_dtrace(script, COMMAND, quiet=True, script_name="lab2.d")
    assert result.stderr.count("error on enabled probe") == 0
    histograms = re.findall(r"^ +0 \|@+ (\d+)", result.output, re.M)
    reads, wanted = result.output.split()[:2]  # END's printa lines; the histograms print after END
    assert histograms == [reads, reads]  # every read found 0 bytes buffered and 0 mapped
    assert int(wanted) == 1048576  # the reads asked for the whole transfer, 64 KiB at a time


def test_the_later_labs_read_pipe_state_through_args_f_data():
    """The later labs' pattern (fbt arguments, typed, since the dtypes merge): the peer's pipe buffer and each
    write's residual count, through `args[0]->f_data` and `args[1]->uio_resid`."""
    script = (
        "fbt::pipe_write:entry { this->pipe = (struct pipe *)args[0]->f_data;\n"
        "    @peer_buffer = max(this->pipe->pipe_peer->pipe_buffer.size); @resid = quantize(args[1]->uio_resid); }\n"
    )
    result = run_dtrace(script, "ipc-static -q -i pipe -b 4096 -t 65536 2thread", quiet=True, script_name="lab2.d")
    assert result.exit_status == 0
    resid = {int(v): int(c) for v, c in re.findall(r"^\s+(\d+) \|@*\s+(\d+)", result.output, re.M) if int(c)}
    assert resid == {4096: 16}  # 64 KiB in 4 KiB writes, each pipe_write with the whole buffer left to move
    assert re.search(r"^\s+16384\s*$", result.output, re.M)  # the peer's buffer: PIPE_SIZE, never grown


# The 2017-18 Lab 2 template notebook's script (teachbsd/cambridge-l41-aos-labs,
# 2017-2018/Laboratories/2017-2018-l41-lab-2-ipc-template.ipynb), verbatim: read() and write() return values
# inside the benchmark's clock_gettime brackets, over the notebook's own command.
LAB2_2017_TEMPLATE = """
syscall::clock_gettime:return
/execname == "ipc-static" && !self->ipc_loop/
{
    self->ipc_loop = 1;
}

syscall::clock_gettime:entry
/self->ipc_loop/
{
    self->ipc_loop = 0;
}

syscall:::return
/self->ipc_loop/
{
    @a[probefunc] = quantize(arg0);
}
"""


def test_the_2017_lab_2_templates_script_runs_verbatim_over_its_command():
    result = run_dtrace(LAB2_2017_TEMPLATE, "ipc-static -B -q -i local 1thread", quiet=True, script_name="lab2.d")
    assert result.exit_status == 0
    # The 1thread loop's non-blocking calls on a local socket move its 8 KiB send buffer's worth each time:
    # 16 MiB of 128 KiB writes comes out as 2,048 writes and 2,048 reads of 8 KiB.
    assert buckets(result.output, "read") == {8192: 2048}
    assert buckets(result.output, "write") == {8192: 2048}
    # DTrace runs a probe's clauses in order: the return that sets the flag is counted by the third clause too,
    # as is the closing call's (the flag set again), and the close()s after the loop.
    assert buckets(result.output, "clock_gettime") == {0: 2}
