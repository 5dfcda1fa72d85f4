"""copyin() and copyinstr(): a live program reads the traced process's user memory, through its page tables, as it
is at the firing."""

from __future__ import annotations

from sim.core.events import Exec
from sim.kern.kernel import KernelConfig
from sim.run import RunSpec, record
from sim.trace.dtrace import compile_script, required_config, run_dtrace, trace_run


def test_copyinstr_reads_the_path_execve_was_given():
    result = run_dtrace('syscall::execve:entry { printf("%s|", copyinstr(arg0)); }', "forkexec", quiet=True)
    (execed,) = [e.data for e in result.run.events if type(e.data) is Exec]
    assert result.output.strip() == f"{execed.path}|"


def test_copyin_reads_the_bytes_write_is_given_and_copyinstr_stops_at_maxlen():
    result = run_dtrace(
        'syscall::write:entry /arg0 == 3/ { this->b = (char *)copyin(arg1, arg2); printf("%c%c%c|%s|", '
        "this->b[0], this->b[1], this->b[8], copyinstr(arg1, 4)); }",
        "write-file",
        quiet=True,
    )
    assert "holds b'lecture 4\\n'" in result.program_output
    assert result.output.startswith("le4|lec|")  # maxlen 4: three characters and the NUL


def test_an_address_with_no_page_is_an_invalid_address_fault():
    result = run_dtrace(
        'syscall::write:entry /arg0 == 3/ { copyinstr(16); } ERROR { printf("%d %d", arg4, arg5); }',
        "write-file",
        quiet=True,
    )
    assert "invalid address (0x10)" in result.stderr
    assert result.output.strip().startswith("1 16")  # DTRACEFLT_BADADDR, the address


def test_a_stored_run_has_no_memory_to_copy_in_from():
    compiled = compile_script('syscall::write:entry { printf("%s", copyinstr(arg1)); }')
    run = record(RunSpec(command="write-file", config=required_config(compiled, KernelConfig())))
    result = trace_run(compiled, run, quiet=True)
    assert "a stored run kept none" in result.stderr
