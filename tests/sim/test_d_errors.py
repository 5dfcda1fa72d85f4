"""Bad D programs and bad commands: dtrace's messages, with the line and column, and no traceback."""

from __future__ import annotations

import argparse

import pytest

from sim.cli import run_command
from sim.trace import d_interp, d_parser, dtrace
from sim.trace.d_parser import DtraceError
from sim.trace.dtrace import compile_script, run_dtrace
from tests.sim.d_logs import LogBuilder, trace


def error_of(script: str, name: str | None = "bad.d") -> DtraceError:
    with pytest.raises(DtraceError) as caught:
        compile_script(script, name)
    return caught.value


@pytest.mark.parametrize(
    ("script", "message", "line", "column"),
    [
        ("BEGIN {\n  x = 1 +;\n}", 'syntax error near ";"', 2, 10),
        ("BEGIN\n{\n  trace(1)\n", "syntax error near end of input", 3, 11),
        ("BEGIN { x = 1; } }", 'syntax error near "}"', 1, 18),
        (
            'syscall:::entry\n/execname == "dd"/\n',
            "expected actions { } following probe description and predicate",
            1,
            1,
        ),
        ("BEGIN\n", "expected predicate and/or actions following probe description", 1, 1),
        ("BEGIN {\n  trace(`x);\n}", 'syntax error near "`"', 2, 9),
    ],
)
def test_syntax_errors_name_the_line_and_column(script, message, line, column):
    error = error_of(script)
    assert str(error) == f"dtrace: failed to compile script bad.d: line {line}: {message}"
    assert (error.line, error.column) == (line, column)
    assert "^ column" in error.context


def test_an_unknown_probe_is_reported_as_dtrace_reports_it():
    error = error_of("fbt::no_such_function:entry { }", None)
    assert str(error) == (
        "dtrace: invalid probe specifier fbt::no_such_function:entry { }: "
        "probe description fbt::no_such_function:entry does not match any probes"
    )
    assert (error.line, error.column) == (1, 1)
    error = error_of("BEGIN { }\nsyscall::getpid:entry,\n  syscall::nosuchcall:entry { }")
    assert error.message.endswith("line 3: probe description syscall::nosuchcall:entry does not match any probes")
    assert (error.line, error.column) == (3, 3)
    assert error_of("BEGINN { }").message.endswith("probe description :::BEGINN does not match any probes")
    assert "too many" in error_of("a:b:c:d:e { }").message


@pytest.mark.parametrize(
    ("script", "message", "line", "column"),
    [
        ("BEGIN {\n  y = lenght;\n}", "failed to resolve lenght: Unknown variable name", 2, 7),
        ("BEGIN {\n  nosuch(1);\n}", "undefined function name: nosuch", 2, 3),
        ("BEGIN {\n  ustack();\n}", "ustack( ) is not supported by trapscope's D", 2, 3),
        ('BEGIN {\n  x = "a" + 1;\n}', 'operands have incompatible types: "string" + "int"', 2, 11),
        ('BEGIN {\n  x = 1;\n  x = "s";\n}', 'operands have incompatible types: "int" = "string"', 3, 5),
        ("BEGIN { trace(execname == 1); }", 'operands have incompatible types: "string" == "int"', 1, 24),
        ("BEGIN { trace(execname * 2); }", "operator * requires operands of arithmetic type", 1, 24),
        ("syscall:::entry /execname/ { }", "predicate result must be of scalar type", 1, 18),
        (
            "BEGIN { @a = count(); @a = sum(1); }",
            "aggregation redefined: @a: current: sum( ), previous: count( ) at line 1",
            1,
            23,
        ),  # fmt: skip
        ("BEGIN { @a = 1; }", "@a must be assigned the result of an aggregating function", 1, 14),
        ("BEGIN { x = count(); }", "count( ) is an aggregating function: assign it to an @aggregation", 1, 13),
        ("BEGIN { @a; }", "expression has null effect: @a", 1, 9),
        (
            'BEGIN { printf("%d %s\\n", 1); }',
            "printf( ) prototype mismatch: conversion #2 (%s) is missing a corresponding value argument",
            1,
            9,
        ),  # fmt: skip
        (
            'BEGIN { printf("%d\\n", "s"); }',
            "printf( ) argument #2 is incompatible with conversion #1 prototype: "
            "conversion %d needs an integer, argument is of type string",
            1,
            24,
        ),
        (
            "BEGIN { @q = lquantize(1, 10, 0); }",
            "lquantize( ) base (argument #1) must be less than limit (argument #2)",
            1,
            14,
        ),
        ("BEGIN { @q = lquantize(1, 0, x); }", "failed to resolve x: Unknown variable name", 1, 30),
        ("BEGIN { printa(@none); }", "printa( ) argument is an undefined aggregation: @none", 1, 16),
        ("BEGIN { x = curpsinfo; }", "built-in variable curpsinfo is not available in trapscope's D", 1, 13),
    ],
)
def test_semantic_errors_name_the_line_and_column(script, message, line, column):
    error = error_of(script)
    assert str(error) == f"dtrace: failed to compile script bad.d: line {line}: {message}"
    assert (error.line, error.column) == (line, column)


def test_unknown_pragma_options_are_refused():
    assert error_of("#pragma D option nosuchoption\nBEGIN { }").message.endswith(
        "line 1: failed to set option 'nosuchoption': Invalid option name"
    )


@pytest.mark.parametrize(
    "control_line",
    ['#pragma ident "@(#)tst.basic.d 1.1 06/08/28 SMI"', "#ident version 1", "#pragma weak foo", "#", "#pragma"],
)
def test_control_lines_dtrace_ignores_are_ignored(control_line):
    compile_script(f"{control_line}\nBEGIN {{ exit(0); }}", "ok.d")  # compiles


@pytest.mark.parametrize(
    ("control_line", "message"),
    [
        ("#pragma D nosuch", "line 1: invalid D pragma: nosuch"),
        ("#nosuch", "line 1: invalid control directive: #nosuch"),
        ("#define X 1", "line 1: invalid control directive: #define (trapscope runs D without the C preprocessor, -C)"),
        ("#pragma D option", "line 1: malformed #pragma option <option>=<val>"),
    ],
)
def test_control_lines_dtrace_refuses_are_refused_in_its_words(control_line, message):
    assert error_of(f"{control_line}\nBEGIN {{ }}").message.endswith(message)


def test_a_script_over_the_size_limit_is_refused():
    error = error_of("BEGIN { }" + " " * d_parser.MAX_SCRIPT_BYTES)
    assert "bytes long; the limit is 65,536" in str(error)


def test_too_many_aggregation_keys_are_dropped_and_counted(monkeypatch):
    monkeypatch.setattr(d_interp, "MAX_AGGREGATION_KEYS", 3)
    log = LogBuilder()
    for _ in range(5):
        log.syscall("getpid")
    log.end()
    result = trace("syscall::getpid:entry { @[timestamp] = count(); }", log)
    assert len(result.aggregations["_"].data) == 3
    assert "dtrace: 2 aggregation drops on CPU 0 (too many distinct keys)\n" in result.stderr


def test_output_past_the_limit_stops_tracing(monkeypatch):
    monkeypatch.setattr(d_interp, "MAX_OUTPUT_BYTES", 100)
    log = LogBuilder()
    for _ in range(50):
        log.syscall("getpid")
    log.end()
    result = trace('syscall::getpid:entry { printf("%s %d\\n", probefunc, timestamp); }', log)
    assert len(result.output) == 100
    assert "the output reached the limit of 100 bytes: tracing stopped" in result.stderr


def test_a_runtime_error_drops_that_clauses_record_and_tracing_goes_on():
    log = LogBuilder()
    log.syscall("getpid")
    log.syscall("getpid")
    log.end()
    result = trace(
        'BEGIN { z = 0; } syscall::getpid:entry { printf("before "); x = 1 / z; }'
        ' syscall::getpid:entry { printf("ok "); }',
        log,
    )
    assert result.output == "ok ok \n"
    assert result.stderr.count("divide-by-zero in action #2") == 2
    assert result.stderr.startswith("dtrace: error on enabled probe ID 2 (ID ")


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="trapscope")
    dtrace.add_parser(parser.add_subparsers(dest="command_name", required=True))
    return run_command(parser.parse_args(argv))


def test_the_command_prints_compile_errors_as_dtrace_does_and_exits_1(capsys, tmp_path):
    script = tmp_path / "bad.d"
    script.write_text("BEGIN\n{\n  x = y;\n}\n")
    assert _cli(["dtrace", "-s", str(script), "-c", "getpid"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"dtrace: failed to compile script {script}: line 3: failed to resolve y: Unknown variable name\n"
    )
    assert "Traceback" not in err
    assert _cli(["dtrace", "-s", str(tmp_path / "missing.d"), "-c", "getpid"]) == 1
    assert "dtrace: failed to open" in capsys.readouterr().err


def test_the_command_reports_a_bad_command_line_without_a_traceback(capsys):
    assert _cli(["dtrace", "-n", "BEGIN { }", "-c", "no-such-program"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trapscope: no-such-program: no such program")
    assert "Traceback" not in err


def test_runtime_errors_print_as_they_happen_before_the_process_exit_and_ends_after_it():
    result = run_dtrace(
        "syscall::read:entry { x = 1/(arg0 - arg0); } END { y = 2/(timestamp - timestamp); }",
        "dd if=/dev/zero of=/dev/null bs=1m count=2 status=none",
    )
    lines = result.stderr.splitlines()
    exited = lines.index("dtrace: pid 1000 has exited")
    assert all("read:entry" in line for line in lines[1:exited]) and exited > 1
    assert "dtrace:::END" in lines[exited + 1]
