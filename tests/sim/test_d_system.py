"""D's system library constants and what dtrace:::ERROR is told about a fault (arg4: its DTRACEFLT_* code, arg5:
the address), checked by what a program prints over a real run."""

from __future__ import annotations

import pytest

from sim.trace.d_parser import DtraceError
from sim.trace.dtrace import compile_script, run_dtrace


def error_report(body: str) -> tuple[str, str]:
    program = (
        'ERROR { printf("%d %d %d %d\\n", arg4, arg5, arg4 == DTRACEFLT_BADADDR, arg4 == DTRACEFLT_DIVZERO); }\n'
        f"BEGIN {{ {body} }}\n"
    )
    result = run_dtrace(program, "getpid 1", quiet=True)
    return result.output.strip(), result.stderr


def test_a_bad_address_reaches_error_as_dtraceflt_badaddr_with_the_address():
    output, stderr = error_report("x = (int *)64; y = *x;")
    assert output == "1 64 1 0"
    assert "invalid address (0x40) in action #2" in stderr


def test_a_division_by_zero_reaches_error_as_dtraceflt_divzero():
    output, _ = error_report("z = 0; y = 1 / z;")
    assert output == "4 0 0 1"


def test_the_fault_codes_are_unistd_d_s():
    result = run_dtrace(
        'BEGIN { printf("%d %d %d", DTRACEFLT_UNKNOWN, DTRACEFLT_NOSCRATCH, DTRACEFLT_BADSTACK); exit(0); }',
        "getpid 1",
        quiet=True,
    )
    assert result.output.strip() == "0 5 9"


def test_ustack_arguments_are_checked_as_libdtrace_checks_them_before_it_is_refused():
    for program, message in [
        ("BEGIN { ustack(0, 200); }", "ustack( ) argument #1 must be a non-zero positive integer constant"),
        ('BEGIN { ustack(1, "x"); }', "ustack( ) argument #2 must be a positive integer constant"),
        ("BEGIN { jstack(1, 2, 3); }", "jstack( ) prototype mismatch: too many arguments"),
        ("BEGIN { ustack(5); }", "ustack( ) is not supported by trapscope's D"),
    ]:
        with pytest.raises(DtraceError, match=message.replace("(", r"\(").replace(")", r"\)")):
            compile_script(program)
