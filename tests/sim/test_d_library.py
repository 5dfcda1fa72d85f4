"""D past the core: speculations, string subroutines, printa() of several aggregations, normalize(), options,
ERROR clauses and the compile-time refusals libdtrace makes, each checked by what a program prints."""

# ruff: noqa: UP031 - expected lines are written with dtrace's own printf formats
from __future__ import annotations

import pytest

from sim.trace.d_parser import DtraceError
from sim.trace.dtrace import compile_script
from tests.sim.d_logs import LogBuilder, trace


def run(script: str, quiet: bool = True):
    log = LogBuilder()
    log.end()
    return trace(script, log, quiet=quiet)


def error_of(script: str) -> str:
    with pytest.raises(DtraceError) as caught:
        compile_script(script, "t.d")
    return caught.value.message.removeprefix("dtrace: failed to compile script t.d: ")


# --- speculations -------------------------------------------------------------------------------------------


def test_a_committed_speculation_prints_and_a_discarded_one_does_not():
    result = run(
        'BEGIN { a = speculation(); b = speculation(); printf("ids %d %d\\n", a, b); }'
        ' BEGIN { speculate(a); printf("kept\\n"); }'
        ' BEGIN { speculate(b); printf("dropped\\n"); }'
        ' BEGIN { printf("before\\n"); }'
        " BEGIN { commit(a); discard(b); }"
        " BEGIN { exit(0); }"
        "\n#pragma D option nspec=2\n"
    )
    assert result.output == "ids 1 2\nbefore\nkept\n\n"


def test_speculation_returns_0_when_every_buffer_is_taken_and_reports_it():
    result = run('BEGIN { a = speculation(); b = speculation(); printf("%d %d", a, b); exit(0); }')
    assert result.output.startswith("1 0")
    assert "dtrace: 1 failed speculation (no speculative buffer space available)" in result.stderr


def test_a_committed_buffer_is_free_again_only_after_the_cleaner_runs():
    log = LogBuilder()
    log.user(5_000_000)  # the first cleaner run, at 1/101 s, is after this
    log.user(10_000_000)
    log.end()
    script = (
        "BEGIN { a = speculation(); commit(a); b = speculation(); }"
        ' tick-1ms { printf("%d %d %d\\n", a, b, speculation()); exit(0); }'
    )
    # tick-1ms fires at 1 ms, before the cleaner: the buffer is still committing
    assert trace(script, log).output.startswith("1 0 0\n")


def test_speculating_to_an_id_past_nspec_is_an_illegal_operation_that_fires_error():
    result = run('BEGIN { speculate(7); printf("x"); } ERROR { printf("error at %d", arg1); exit(3); }')
    assert result.output.startswith("error at 1")
    assert result.exit_status == 3
    assert "illegal operation in action #1" in result.stderr


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("speculate(1); speculate(1);", "speculate( ) may not follow speculate( )"),
        ('printf("x"); speculate(1);', "speculate( ) may not follow data-recording action(s)"),
        ('commit(1); printf("x");', "data-recording actions may not follow commit( )"),
        ("commit(1); commit(1);", "commit( ) may not follow commit( )"),
        ("trace(1); commit(1);", "commit( ) may not follow data-recording action(s)"),
        ("speculate(1); @a = count();", "aggregating actions may not follow speculate( )"),
        ("commit(1); @a = count();", "aggregating actions may not follow commit( )"),
        ("speculate(1); exit(0);", "exit( ) may not follow speculate( )"),
        ("speculate(1); chill(1);", "destructive actions may not follow speculate( )"),
    ],
)
def test_the_order_of_speculative_actions_is_checked_in_libdtraces_words(body, message):
    assert error_of(f"#pragma D option destructive\nBEGIN {{ {body} }}") == f"line 2: {message}"


def test_assignments_and_discard_may_follow_anything():
    assert compile_script("BEGIN { commit(1); x = 1; discard(2); }", "t.d").program.matched == 1


# --- subroutines --------------------------------------------------------------------------------------------


def test_string_subroutines():
    result = run(
        'BEGIN { printf("%s|%s|%d|%s|%s", toupper("abc/Z9"), tolower("ABC"), strlen("hello"),'
        ' strjoin("ab", "cd"), strstr("foobarbaz", "bar")); exit(0); }'
    )
    assert result.output.startswith("ABC/Z9|abc|5|abcd|barbaz")


@pytest.mark.parametrize(
    ("call", "value"),
    [
        ('strtoll("0x20", 16)', 32),
        ('strtoll("-32")', -32),
        ('strtoll("12j")', 12),
        ('strtoll("1000000000000000000000", 8)', -(1 << 63)),
        ('strtoll("")', 0),
        ("strtoll(lltostr(-1234))", -1234),
    ],
)
def test_strtoll_reads_as_the_kernels_loop(call, value):
    assert run(f'BEGIN {{ printf("%d", {call}); exit(0); }}').output.startswith(str(value))


def test_lltostr_in_bases():
    output = run('BEGIN { printf("%s %s %s", lltostr(255, 16), lltostr(8, 8), lltostr(-5)); exit(0); }').output
    assert output.startswith("0xff 010 -5")


def test_a_subroutines_prototype_is_checked():
    assert error_of("BEGIN { trace(toupper(42)); }").startswith(
        "line 1: toupper( ) argument #1 is incompatible with prototype:\n\tprototype: string\n\t argument: int"
    )
    assert error_of("BEGIN { tolower(); }") == "line 1: tolower( ) prototype mismatch: 0 args passed, 1 expected"


def test_chill_needs_the_destructive_option():
    with pytest.raises(DtraceError, match="could not enable tracing: Destructive actions not allowed"):
        compile_script("BEGIN { chill(10); }", "t.d")


# --- aggregations -------------------------------------------------------------------------------------------


def test_printa_of_several_aggregations_joins_them_on_their_keys():
    result = run(
        "BEGIN { @foo[123] = sum(123); @bar[456] = sum(456); @foo[789] = sum(789); @bar[789] = sum(789);"
        ' printa("%10d %@10d %@10d\\n", @foo, @bar); exit(0); }'
    )
    rows = ["%10d %10d %10d" % row for row in ((456, 0, 456), (123, 123, 0), (789, 789, 789))]
    assert result.output == "".join(row + "\n" for row in rows) + "\n"


def test_printa_refuses_aggregations_with_other_keys():
    assert error_of("BEGIN { @a[1] = count(); @b = count(); printa(@a, @b); }") == (
        "line 1: printa( ): @a and @b do not have matching key signatures: @a has 1 key, @b has 0 keys"
    )


def test_normalize_divides_what_prints_and_denormalize_undoes_it():
    result = run(
        "BEGIN { @s[1] = sum(600); @s[2] = sum(30); normalize(@s, 3); printa(@s);"
        " denormalize(@s); printa(@s); exit(0); }"
    )
    normalized = "%9d %16d\n%9d %16d\n" % (2, 10, 1, 200)
    plain = "%9d %16d\n%9d %16d\n" % (2, 30, 1, 600)
    assert result.output == "\n" + normalized + "\n" + plain + "\n"


def test_aggsortpos_and_setopt_choose_which_aggregations_value_sorts():
    script = (
        "BEGIN { @a[1] = sum(1); @a[2] = sum(2); @b[1] = sum(20); @b[2] = sum(10);"
        ' printa("%d ", @a, @b); setopt("aggsortpos", "1"); printa("%d ", @a, @b); exit(0); }'
    )
    assert run(script).output == "1 2 2 1 \n"


# --- the rest -----------------------------------------------------------------------------------------------


def test_the_first_exit_wins():
    result = run("BEGIN { exit(3); } BEGIN { exit(4); }")
    assert result.exit_status == 3


def test_a_variable_first_met_by_increment_is_an_int64_declared_for_the_whole_program():
    result = run("BEGIN /x == 0/ { x++; } BEGIN { x += 2; trace(x); exit(0); }", quiet=False)
    assert " %16d" % 3 in result.output  # an int64_t: trace() prints it in 16 columns


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("BEGIN { c = 123/(7-7); }", "line 1: expression contains division by zero"),
        ("BEGIN { c = 123 % 0; }", "line 1: expression contains division by zero"),
        ("", "empty D program translation unit"),
        ("#pragma D option quiet\n", "empty D program translation unit"),
        ("#pragma D option nspec=-72\nBEGIN {}", "line 1: failed to set option 'nspec' to '-72': "
         "Invalid value for specified option"),
        ("#pragma D option quiet=please\nBEGIN {}", "line 1: failed to set option 'quiet' to 'please': "
         "Invalid value for specified option"),
        ("#pragma D option nspec=24 * 44\nBEGIN {}", "line 1: malformed #pragma option <option>=<val>"),
        ("#pragma D option cleanrate=10xhz\nBEGIN {}", "line 1: failed to set option 'cleanrate' to '10xhz': "
         "Invalid value for specified option"),
    ],
)  # fmt: skip
def test_programs_libdtrace_refuses_at_compile_time(script, message):
    assert error_of(script) == message


def test_options_take_their_kinds_of_values():
    compiled = compile_script(
        "#pragma D option bufsize=4m\n#pragma D option cleanrate=2000hz\n#pragma D option nspec=0x10\nBEGIN {}", "t.d"
    )
    assert compiled.program.options == {"bufsize": 4 << 20, "cleanrate": 500_000, "nspec": 16}


# --- lquantize and llquantize -------------------------------------------------------------------------------


def test_llquantize_buckets_each_magnitude_in_linear_steps():
    result = run("BEGIN { @ = llquantize(7, 10, 0, 2, 10); @ = llquantize(45, 10, 0, 2, 10); exit(0); }")
    rows = [line.split() for line in result.output.splitlines() if line.strip()[:1].isdigit()]
    # every bucket from one below the first count to one above the last: 6..9 by ones, then 10..50 by tens
    assert [(int(row[0]), int(row[-1])) for row in rows] == [(6, 0), (7, 1), (8, 0), (9, 0), (10, 0), (20, 0),
                                                             (30, 0), (40, 1), (50, 0)]  # fmt: skip


def test_llquantize_counts_below_and_above_its_magnitudes_and_takes_an_increment():
    result = run("BEGIN { @ = llquantize(0, 10, 1, 2, 20, 25); @ = llquantize(5000, 10, 1, 2, 20, 3); exit(0); }")
    assert "            < 10 |" in result.output and " 25 " in result.output
    assert "         >= 1000 |" in result.output and " 3 " in result.output


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("llquantize(1, 1, 0, 10, 10)", "llquantize( ) factor (argument #1) must be two or more"),
        ("llquantize(1, 10, 0, 10, 7)", "llquantize( ) factor (argument #1) must be less than or equal to the "
         "number of linear steps per magnitude (argument #4)"),
        ("llquantize(1, 10, 0, 10, 15)", "llquantize( ) factor (argument #1) must evenly divide the number of "
         "steps per magnitude (argument #4), and the number of steps per magnitude must evenly divide a power "
         "of the factor"),
        ("llquantize(1, 10, -1, 10, 10)", "llquantize( ) argument #2 (low magnitude) must be an unsigned 16-bit "
         "quantity"),
        ("llquantize(1, 10, 0, x, 10)", "llquantize( ) argument #3 (high magnitude) must be an integer constant"),
        ("llquantize(1, 10, 0, 20, 10)", "llquantize( ) factor (10) raised to power of high magnitude (20) plus 1 "
         "overflows 64-bits"),
        ("lquantize(1, 10, 0)", "lquantize( ) base (argument #1) must be less than limit (argument #2)"),
        ("lquantize(1, 0, 10, 20)", "lquantize( ) step (argument #3) too large: must have at least one "
         "quantization level"),
    ],
)  # fmt: skip
def test_histogram_parameters_are_checked_in_libdtraces_words(call, message):
    assert error_of(f"BEGIN {{ x = 1; @ = {call}; }}") == f"line 1: {message}"


def test_an_aggregations_llquantize_parameters_must_match_its_first():
    message = error_of("BEGIN { @ = llquantize(1, 10, 0, 10, 10); @ = llquantize(1, 10, 0, 10, 20); }")
    assert (
        message == "line 1: llquantize( ) linear steps per magnitude (argument #4) doesn't match previous "
        "declaration: expected 10, found 20"
    )


def test_an_lquantize_limit_need_not_be_a_whole_number_of_steps_past_its_base():
    result = run("BEGIN { @ = lquantize(17, 1, 20, 5); exit(0); }")
    assert "           >= 16 |" in result.output


def test_if_and_else_run_the_branch_the_condition_picks():
    script = (
        'BEGIN { x = 3; if (x > 5) { printf("big "); } else if (x > 2) printf("mid "); else { printf("small "); }'
        ' if (0) printf("never "); printf("end"); exit(0); }'
    )
    assert run(script).output.startswith("mid end")


def test_an_if_condition_must_be_scalar():
    assert error_of('BEGIN { if ("s") { exit(0); } }') == "line 1: if-statement condition must be of scalar type"


def test_epid_numbers_each_clauses_probes_in_turn():
    result = run('BEGIN { printf("%d ", epid); } BEGIN, END { printf("%d ", epid); } END { exit(0); }')
    assert result.output.startswith("1 2 3 ")


def test_stackdepth_counts_the_frames_stack_prints():
    log = LogBuilder()
    log.syscall("getpid")
    log.end()
    output = trace('syscall::getpid:entry { printf("%d", stackdepth); stack(); }', log).output
    depth, frames = output.split("\n", 1)
    assert int(depth) == len([line for line in frames.splitlines() if line.strip()]) > 0


def test_thread_local_associative_arrays():
    result = run(
        'BEGIN { self->x[1] = 5; self->x[2]++; self->s["a", 1] = "str";'
        ' printf("%d %d %d %s|%s", self->x[1], self->x[2], self->x[3], self->s["a", 1], self->s["b", 1]); exit(0); }'
    )
    assert result.output.startswith("5 1 0 str|")


@pytest.mark.parametrize(("setting", "quiet"), [("quiet=yes", True), ("quiet=On", True), ("quiet=disabled", False)])
def test_switches_take_yes_and_no_in_words(setting, quiet):
    assert ("quiet" in compile_script(f"#pragma D option {setting}\nBEGIN {{}}", "t.d").program.options) is quiet
