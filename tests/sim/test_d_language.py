"""The D language: every construct the interpreter supports, checked by what a program prints."""

# ruff: noqa: UP031 - expected lines are written with dtrace's own printf formats (" %16d", "  %-50s")
from __future__ import annotations

import re
from pathlib import Path

import pytest

from sim.trace.dtrace import compile_script
from sim.trace.lecture_scripts import LECTURE_PROFILE, LECTURE_SYSCALL_TIMES, LECTURE_TRAPS
from tests.sim.d_logs import LogBuilder, trace


def begin(body: str, quiet: bool = True) -> str:
    """What `BEGIN { body }` prints (without dtrace's final newline)."""
    log = LogBuilder()
    log.end()
    output = trace(f"BEGIN {{ {body} }}", log, quiet=quiet).output
    assert output.endswith("\n")
    return output[:-1]


@pytest.mark.parametrize("script", [LECTURE_SYSCALL_TIMES, LECTURE_TRAPS, LECTURE_PROFILE])
def test_the_lectures_scripts_compile_verbatim(script):
    compiled = compile_script(script, "lecture.d")
    assert compiled.program.matched > 0
    assert all(clause.probes for clause in compiled.program.clauses)


LECTURE_TEXT = Path(__file__).resolve().parents[2].parent / "shared" / "lecture"


@pytest.mark.skipif(not LECTURE_TEXT.is_dir(), reason="../shared/lecture is not beside the project")
def test_the_scripts_as_the_lecture_text_has_them_are_the_ones_tested():
    blocks = []
    for path in LECTURE_TEXT.glob("*.txt"):
        blocks += re.findall(r"```\n(.*?)```", path.read_text(), re.S)
    scripts = [b for b in blocks if re.match(r"\s*(syscall|profile)", b)]
    scripts = [b.split("\n\n...")[0] + ("\n" if "\n\n..." in b else "") for b in scripts]
    normalise = lambda text: re.sub(r"\s+", " ", text).strip()  # noqa: E731 - the slides' blank lines vary
    assert [normalise(s) for s in scripts] == [
        normalise(s) for s in (LECTURE_SYSCALL_TIMES, LECTURE_TRAPS, LECTURE_PROFILE)
    ]
    for script in scripts:
        compile_script(script, "lecture.d")


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("10 - 4 - 3", "3"),  # left-associative
        ("100 / 10 / 5", "2"),
        ("-7 / 2", "-3"),  # C division truncates toward zero
        ("-7 % 2", "-1"),
        ("1 << 4 + 1", "32"),  # + binds tighter than <<
        ("6 & 3 | 8", "10"),
        ("6 ^ 3", "5"),
        ("1 | 2 ^ 3 & 4", "3"),  # & before ^ before |
        ("3 > 2 == 1", "1"),  # relational before equality
        ("1 == 1 && 0 || 1", "1"),
        ("1 ^^ 1", "0"),  # D's logical exclusive or
        ("0 ^^ 5", "1"),
        ("1 || 0 ^^ 1", "1"),  # ^^ binds tighter than ||
        ("0 && 1 ^^ 1", "1"),  # and looser than &&: (0 && 1) ^^ 1
        ("!0 + !5", "1"),
        ("~0", "-1"),
        ("-(3)", "-3"),
        ("0 ? 1 : 2 ? 3 : 4", "3"),  # ?: is right-associative
        ("1 ? 2 : 3 + 10", "2"),
        ("(char)257", "1"),
        ("(uint8_t)-1", "255"),
        ("(int)4294967297", "1"),
        ("2147483647 + 1", "-2147483648"),  # int arithmetic wraps at 32 bits
        ("0x10 + 010 + 'A'", "89"),  # hex, octal and character constants
        ("(1, 2)", "2"),  # the comma operator
        ('"abc" < "abd"', "1"),
        ('"dd" == "dd"', "1"),
    ],
)
def test_operators_follow_ds_precedence_and_cs_arithmetic(expression, value):
    assert begin(f"trace({expression});") == value


def test_strings_escape_and_compare():
    assert begin(r'trace("tab\there\n");') == "tab\there\n"
    assert begin('trace("a" != "b" ? "differ" : "same");') == "differ"


def test_globals_are_created_on_assignment_and_typed_by_it():
    assert begin("x = 5; x += 2; x *= 3; x -= 1; x /= 4; x <<= 1; trace(x);") == "10"
    assert begin('s = "str"; trace(s);') == "str"
    assert begin("i = 0; i++; ++i; trace(i--); trace(i);") == "21"


def test_thread_locals_read_zero_until_assigned_and_clause_locals_last_one_firing():
    log = LogBuilder()
    log.syscall("getpid")
    log.syscall("getpid")
    log.end()
    result = trace(
        "syscall::getpid:entry { trace(self->n); trace(this->c); self->n += 10; this->c = 1; }"
        " syscall::getpid:entry { trace(this->c); }",
        log,
    )
    # firing 1: 0, 0, then 1 from the second clause; firing 2: self->n kept (10), this->c fresh (0), then 1
    assert result.output == "0011001\n"


def test_associative_arrays_key_by_tuples():
    assert begin('a["x", 1] = 4; a["x", 2] = 5; trace(a["x", 1] + a["x", 2] + a["y", 1]);') == "9"


def test_builtins_describe_the_firing():
    log = LogBuilder(tid=100007, pid=1042, comm="dd")
    log.syscall("getpid", retval=1042)
    log.end()
    result = trace(
        'syscall::getpid:return { printf("%s:%s:%s:%s %s %d %d %d %d %d", probeprov, probemod, probefunc, '
        "probename, execname, pid, tid, cpu, arg0, errno); }",
        log,
    )
    assert result.output == "syscall:freebsd:getpid:return dd 1042 100007 0 1042 0\n"
    assert begin("trace(walltimestamp > 1000000000000000000);") == "1"
    assert begin("trace(args[0] == arg0);") == "1"


@pytest.mark.parametrize(
    ("aggregation", "values", "printed"),
    [
        ("count()", [5, 7], "2"),
        ("sum(v)", [5, 7], "12"),
        ("avg(v)", [5, 8], "6"),  # integer average
        ("min(v)", [5, -7], "-7"),
        ("max(v)", [5, -7], "5"),
        ("stddev(v)", [2, 4, 4, 4, 5, 5, 7, 9], "2"),
    ],
)
def test_aggregating_functions(aggregation, values, printed):
    body = " ".join(f"v = {v}; @a = {aggregation};" for v in values)
    assert begin(body + " printa(@a);") == "\n" + " %16s\n" % printed


def test_aggregations_key_by_tuples_and_printa_takes_a_format():
    body = '@c["read", 3] = count(); @c["read", 3] = count(); @c["write", 1] = count(); printa("%s/%d: %@d\\n", @c);'
    assert begin(body) == "write/1: 1\nread/3: 2\n"


def test_quantize_and_lquantize_bucket_values():
    out = begin("@q = quantize(0); @q = quantize(1); @q = quantize(5); @q = quantize(-3); printa(@q);")
    rows = {line.split("|")[0].strip(): line.split()[-1] for line in out.splitlines() if "|" in line}
    assert rows == {"-4": "0", "-2": "1", "-1": "0", "0": "1", "1": "1", "2": "0", "4": "1", "8": "0"}
    out = begin("@l = lquantize(-5, 0, 10, 5); @l = lquantize(7, 0, 10, 5); @l = lquantize(12, 0, 10, 5); printa(@l);")
    rows = {line.split("|")[0].strip(): line.split()[-1] for line in out.splitlines() if "|" in line}
    assert rows == {"< 0": "1", "0": "0", "5": "1", ">= 10": "1"}


def test_clear_and_trunc():
    assert begin("@a[1] = sum(5); @a[2] = sum(9); clear(@a); printa(@a);") == (
        "\n" + " %8d %16d\n" % (1, 0) + " %8d %16d\n" % (2, 0)
    )
    assert begin("@a[1] = sum(5); @a[2] = sum(9); @a[3] = sum(1); trunc(@a, 1); printa(@a);") == (
        "\n" + " %8d %16d\n" % (2, 9)
    )


def test_printf_conversions():
    out = begin('printf("[%5d|%-5d|%05d|%x|%X|%o|%c|%s|%10s|%-4s|%%|%lld|%u]", 42, 42, 42, 255, 255, 8, 65, "ok", '
                '"right", "l", 7, -1);')  # fmt: skip
    assert out == "[   42|42   |00042|ff|FF|10|A|ok|     right|l   |%|7|4294967295]"


def test_trace_and_stack_as_an_action():
    log = LogBuilder()
    log.enter("trap")
    log.call("vm_fault", 5)
    log.exit("trap")
    log.end()
    result = trace("fbt::vm_fault:entry { stack(); trace(probefunc); }", log, quiet=True)
    assert result.output.startswith("\n              kernel`trap+0x")
    assert result.output.endswith("vm_fault\n")


def test_a_clause_may_list_several_probe_descriptions_and_run_in_program_order():
    log = LogBuilder()
    log.syscall("getpid")
    log.end()
    result = trace(
        'fbt::syscallenter:entry, fbt::amd64_syscall:entry { printf("%s ", probefunc); }'
        ' fbt::syscallenter:entry { printf("second "); }',
        log,
    )
    assert result.output == "amd64_syscall syscallenter second \n"


def test_pragmas_and_comments():
    log = LogBuilder()
    log.end()
    source = "#pragma D option quiet\n/* a comment\n over lines */\nBEGIN { trace(1); }\n"
    assert trace(source, log, quiet=False).output == "1\n"
    assert trace("#!/usr/sbin/dtrace -qs\nBEGIN { trace(2); }", log, quiet=False).output == "2\n"


def test_predicates_choose_between_clauses():
    log = LogBuilder()
    for _ in range(3):
        log.syscall("getpid")
    log.end()
    result = trace(
        "BEGIN { n = 0; m = 0; } syscall::getpid:entry /n < 2/ { n++; } syscall::getpid:entry /n >= 2/ { m++; }"
        ' END { printf("%d %d", n, m); }',
        log,
    )
    # the third firing's first clause is skipped; the second clause already ran in the second firing
    assert result.output == "2 2\n"


def test_division_in_a_predicate_is_not_the_end_of_the_predicate():
    log = LogBuilder()
    log.syscall("getpid")
    log.end()
    assert trace("syscall::getpid:entry /10 / 5 == 2/ { trace(1); }", log).output == "1\n"
