"""D evaluated live: a program sees every event of a run, however far past the record budget it goes."""

from __future__ import annotations

import pytest

from app.cli import main
from sim.kern.kernel import KernelConfig
from sim.run import RunSpec
from sim.trace.dtrace import compile_script, required_config, run_dtrace, trace_live, trace_run
from sim.trace.lecture_scripts import LECTURE_PROFILE, LECTURE_SYSCALL_TIMES, LECTURE_TRAPS

LONG_DD = "dd if=/dev/zero of=/dev/null bs=512 count=32768"  # ~4 M events: far past the 1.5 M record budget
DD_READS = "syscall::read:entry /arg2 == 512/ { @reads = count(); }"


def test_a_d_program_counts_every_read_of_a_run_longer_than_the_record_budget():
    result = run_dtrace(DD_READS, LONG_DD, quiet=True)
    assert result.aggregations["reads"].data[()] == 32768
    assert result.run.unrecorded > 0  # the stepper's record stops at its budget; the program did not
    assert "recording budget" not in result.stderr


def test_trapscope_dtrace_counts_every_read(capsys):
    assert main(["dtrace", "-q", "-n", DD_READS, "-c", LONG_DD]) == 0
    assert capsys.readouterr().out.rstrip().endswith("32768")


DD = "dd if=/dev/zero of=/dev/null bs=1m count=2"
SYSCALLS = (
    "syscall:::entry { self->t = timestamp; } syscall:::return /self->t/ { @[probefunc] = sum(timestamp - self->t); }"
)


@pytest.mark.parametrize(
    ("command", "script"),
    [(DD, LECTURE_SYSCALL_TIMES), (DD, LECTURE_TRAPS), (DD, LECTURE_PROFILE), ("fork", SYSCALLS), ("eintr", SYSCALLS)],
)
def test_live_and_stored_evaluation_agree_on_a_recorded_run(command, script):
    compiled = compile_script(script)
    spec = RunSpec(command, config=required_config(compiled, KernelConfig()))
    live = trace_live(compiled, spec)
    stored = trace_run(compile_script(script), live.run)
    assert live.run.unrecorded == 0
    assert (live.output, live.stderr, live.exit_status) == (stored.output, stored.stderr, stored.exit_status)
    assert live.firings == stored.firings > 0
