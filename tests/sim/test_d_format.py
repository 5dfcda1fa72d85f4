"""Output byte for byte as dtrace prints it.

Expected texts are built from libdtrace's own format strings (dt_consume.c, dtrace.c) or copied from real
dtrace output: the expected-output files of the DTrace test suite (oracle/dtrace-utils test/unittest/printa/
tst.basics.r, aggs/tst.signedkeys.r, aggs/tst.trunc-lquantize-*.r, aggs/tst.count_notquiet.r) and the lecture's
slides.
"""

# ruff: noqa: UP031 - expected lines are written with dtrace's own printf formats (" %16d", "  %-50s")
from __future__ import annotations

from tests.sim.d_logs import LogBuilder, trace

HEADER = "CPU     ID                    FUNCTION:NAME\n"  # "%3s %6s %32s\n"


def run(script: str, quiet: bool = True, log: LogBuilder | None = None) -> str:
    if log is None:
        log = LogBuilder()
        log.end()
    return trace(script, log, quiet=quiet).output


def test_records_without_q_have_dtraces_header_and_prefix():
    out = run('BEGIN { trace(1); trace("x"); } BEGIN { printf("hello\\n"); }', quiet=False)
    assert out == (
        HEADER
        + "  0      1                           :BEGIN         1  x                                \n"
        + "  0      1                           :BEGIN hello\n\n"  # printf's newline, then the record's
        + "\n"  # dtrace's newline as tracing stops
    )


def test_only_clauses_that_record_data_print_a_line():
    assert run("BEGIN { x = 1; @a = count(); }", quiet=False) == "\n" + " %16d\n" % 1
    assert run("BEGIN { }", quiet=False) == HEADER + "  0      1                           :BEGIN \n\n"


def test_a_tick_clause_with_exit_prints_its_line_then_the_aggregation():
    # aggs/tst.count_notquiet.r, with the CPU and ID columns the test suite strips put back
    log = LogBuilder()
    log.user(1_005_000_000)
    log.end()
    out = run("tick-1005ms { @ = count(); @ = count(); exit(0); }", quiet=False, log=log)
    line = "%3d %6d %32s \n" % (0, _probe_id("tick-1005ms"), ":tick-1005ms")
    assert out == HEADER + line + "\n" + " %16d\n" % 2


def _probe_id(name: str) -> int:
    from sim.trace.providers import ProbeCatalog

    return ProbeCatalog().match(name)[0].id


def test_printa_prints_string_keys_left_aligned_and_values_ascending_as_on_the_lecture_slide():
    out = run(
        'BEGIN { @t["read"] = sum(697051); @t["sysarch"] = sum(7645); @t["mmap"] = sum(770581);'
        ' @t["issetugid"] = sum(8900); @total = sum(697051 + 7645 + 770581 + 8900); printa(@t); printa(@total); }'
    )
    entry = "  %-50s %16d\n"
    assert out == (
        "\n"
        + entry % ("sysarch", 7645)
        + entry % ("issetugid", 8900)
        + entry % ("read", 697051)
        + entry % ("mmap", 770581)
        + "\n"
        + " %16d\n" % 1484177
        + "\n"
    )
    assert "  sysarch                                                        7645\n" in out


def test_integer_keys_print_by_size_and_sort_unsigned():
    # aggs/tst.signedkeys.r (aggregation part): 1- and 2-byte keys print unsigned, 4- and 8-byte signed;
    # with aggsortkey they sort as unsigned values, so -2 and -1 come last
    body = []
    for cast, name in (("char", "i8"), ("short", "i16"), ("int", "i32"), ("long long", "i64")):
        for v in (-2, -1, 0, 1, 2):
            body.append(f"@{name}[({cast}){v}] = sum({v});")
    out = run("#pragma D option aggsortkey\nBEGIN { " + " ".join(body) + " exit(0); }")
    assert out == (
        "\n"
        "   0                0\n   1                1\n   2                2\n"
        " 254               -2\n 255               -1\n"
        "     0                0\n     1                1\n     2                2\n 65534               -2\n"
        " 65535               -1\n"
        "        0                0\n        1                1\n        2                2\n"
        "       -2               -2\n       -1               -1\n"
        "                0                0\n                1                1\n                2                2\n"
        "               -2               -2\n               -1               -1\n"
    )


def test_formatted_printa_of_every_aggregating_function():
    # printa/tst.basics.r
    out = run(
        "BEGIN { @a = avg(1); @b = count(); @c = lquantize(1, 1, 10); @d = max(1); @e = min(1); @f = sum(1);"
        ' @g = quantize(1); printa("@a = %@u\\n", @a); printa("@b = %@u\\n", @b); printa("@c = %@d\\n", @c);'
        ' printa("@d = %@u\\n", @d); printa("@e = %@u\\n", @e); printa("@f = %@u\\n", @f);'
        ' printa("@g = %@d\\n", @g); exit(0); }'
    )
    assert out == (
        "@a = 1\n@b = 1\n@c = \n"
        "           value  ------------- Distribution ------------- count    \n"
        "             < 1 |                                         0        \n"
        "               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 1        \n"
        "               2 |                                         0        \n"
        "\n@d = 1\n@e = 1\n@f = 1\n@g = \n"
        "           value  ------------- Distribution ------------- count    \n"
        "               0 |                                         0        \n"
        "               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 1        \n"
        "               2 |                                         0        \n"
        "\n\n"
    )


def test_lquantize_with_integer_keys_as_dtrace_prints_it_at_exit():
    # the last entry of aggs/tst.trunc-lquantize-5.r: four values each weighted 20101, key 301
    out = run("BEGIN { " + " ".join(f"@[301] = lquantize({v}, 0, 150, 1, 20101);" for v in (102, 103, 104, 105)) + " }")
    assert out == (
        "\n      301\n"
        "           value  ------------- Distribution ------------- count    \n"
        "             101 |                                         0        \n"
        "             102 |@@@@@@@@@@                               20101    \n"
        "             103 |@@@@@@@@@@                               20101    \n"
        "             104 |@@@@@@@@@@                               20101    \n"
        "             105 |@@@@@@@@@@                               20101    \n"
        "             106 |                                         0        \n"
        "\n"
    )


def test_quantize_bars_are_rounded_shares_of_forty():
    out = run("BEGIN { @ = quantize(1); @ = quantize(2); @ = quantize(2); }")
    assert out.splitlines()[4:6] == [
        "               1 |@@@@@@@@@@@@@                            1        ",  # 40 * 1/3 = 13.3 -> 13
        "               2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@              2        ",  # 40 * 2/3 = 26.7 -> 27
    ]


def test_stack_keys_print_indented_frames_leaf_first_then_the_count():
    log = LogBuilder()
    log.user(10)
    log.enter("Xpage")
    log.enter("trap")
    log.call("pagezero", 3_000_000)
    log.exit("trap")
    log.exit("Xpage")
    log.end()
    out = run("profile-997 { @[stack()] = count(); }", log=log)
    lines = out.split("\n")
    assert lines[0] == lines[1] == ""  # dtrace's newline at exit, then the stack's own
    assert lines[2] == "              kernel`pagezero+0x1"
    assert lines[3].startswith("              kernel`trap+0x")
    assert lines[4].startswith("              kernel`0xffffffff")  # Xpage: no symbol size, so a bare address
    assert lines[5] == " %16d" % 2


def test_aggregations_not_printed_by_printa_are_printed_at_exit_in_order_of_first_use():
    out = run('BEGIN { @b = count(); @a["k"] = sum(3); @c = max(4); printa(@a); }')
    assert out == "\n  %-50s %16d\n" % ("k", 3) + "\n" + " %16d\n" % 1 + " %16d\n" % 4


def test_trace_in_quiet_mode_prints_bare_values():
    assert run('BEGIN { trace(42); trace(" "); trace(-1); }') == "42 -1\n"
