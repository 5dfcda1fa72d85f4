"""The D console's limits: each bounds what one program may cost, and answers with a message that names it.

Compile: nesting depth, probe descriptions, printf widths, integer constants; compiled once, off the event loop.
Run: an evaluation budget (work done so far kept), aggregations' keys and bytes (histograms stored sparse).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import pytest

from app import d_programs
from app.d_programs import CompiledPrograms
from sim.trace import d_interp
from sim.trace.d_output import MAX_PRINTF_WIDTH, Buckets
from sim.trace.d_parser import MAX_NESTING, MAX_PROBE_DESCRIPTIONS, DtraceError
from sim.trace.dtrace import compile_script, trace_run
from sim.trace.providers import ProbeCatalog
from tests import aio


def compile_error(script: str) -> str:
    with pytest.raises(DtraceError) as caught:
        compile_script(script, "limits.d")
    return str(caught.value)


def trace_page(client, script: str, **params: str):
    return client.get("/trace?" + urlencode({"script": script, **params}), headers={"HX-Request": "true"})


# --- compile ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "!" * 1000 + "1",
        "-" * 3000 + "1",
        "1" + "+1" * 3000,
        "a = " * 2000 + "1",
        "(" * 150 + "1 + " * 150 + "1" + ")" * 150,
    ],
)
def test_deep_nesting_is_a_compile_error_naming_the_limit_not_a_stack_overflow(expression):
    message = compile_error(f"BEGIN {{ x = {expression}; }}")
    assert f"expressions nest more than {MAX_NESTING} levels deep (the nesting limit)" in message


def test_nesting_within_the_limit_compiles_and_deep_parentheses_alone_do_not_nest(getpid_run):
    within = compile_script("BEGIN { x = " + "!" * 90 + '1; printf("%d", x); exit(0); }', "ok.d")
    assert trace_run(within, getpid_run, quiet=True).output.startswith("1")  # 90 negations of 1
    parenthesised = compile_script('BEGIN { printf("%d", ' + "(" * 1000 + "7" + ")" * 1000 + "); exit(0); }")
    assert trace_run(parenthesised, getpid_run, quiet=True).output.startswith("7")


def test_too_many_probe_descriptions_are_refused_with_the_limit():
    message = compile_error(",".join([":::"] * 1000) + " { }")  # 4 KB: it took 80 s to compile
    assert f"the program has 1,000 probe descriptions; the limit is {MAX_PROBE_DESCRIPTIONS}" in message


def test_a_clause_enables_each_probe_once_however_many_descriptions_name_it():
    compiled = compile_script(",".join([":::"] * MAX_PROBE_DESCRIPTIONS) + " { }", "all.d")
    every_probe = len(ProbeCatalog().probes)
    assert compiled.program.matched == every_probe
    assert len({p.id for p in compiled.program.clauses[0].probes}) == every_probe


@pytest.mark.parametrize("conversion", ["%3000000000d", "%.3000000000d", "%1025s", "%99999999999999999999999999d"])
def test_a_printf_width_or_precision_over_the_limit_is_a_compile_error(conversion):
    message = compile_error(f'BEGIN {{ printf("{conversion}", 1); }}'.replace('s", 1', 's", "x"'))
    assert f"is over the limit of {MAX_PRINTF_WIDTH:,}" in message
    assert len(message) < 200  # the conversion is quoted cut short


def test_a_printf_width_at_the_limit_prints(getpid_run):
    compiled = compile_script(f'BEGIN {{ printf("%{MAX_PRINTF_WIDTH}d", 1); exit(0); }}', "wide.d")
    assert trace_run(compiled, getpid_run, quiet=True).output.startswith(" " * (MAX_PRINTF_WIDTH - 1) + "1")


def test_a_printf_width_in_other_digits_is_not_a_width():
    assert "invalid format conversion" in compile_error('BEGIN { printf("%²d", 1); }')


def test_a_constant_with_thousands_of_digits_is_too_large_not_a_crash():
    message = compile_error("BEGIN { x = " + "9" * 5000 + "; }")
    assert "integer constant 999999999999999999999999... is too large" in message
    assert "9" * 30 not in message
    assert "too large" in compile_error("BEGIN { x = 0" + "0" * 4000 + "1; }")  # leading zeros count too


def test_a_profile_probe_with_thousands_of_digits_matches_nothing():
    assert "does not match any probes" in compile_error("profile-" + "9" * 5000 + " { }")


# --- compiled once, off the event loop ----------------------------------------------------------------------


def on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False  # no event loop in this thread: a worker's
    return True


def test_a_program_is_compiled_once_in_a_worker_thread_and_its_error_kept(monkeypatch):
    compiled_on_loop: list[bool] = []

    def compile_in(script: str, name: str):
        compiled_on_loop.append(on_event_loop())
        return compile_script(script, name)

    monkeypatch.setattr(d_programs, "compile_script", compile_in)
    programs = CompiledPrograms(max_entries=2)

    async def twice(script: str) -> None:
        for _ in range(2):
            try:
                await asyncio.to_thread(programs.get, script, "s.d")
            except DtraceError:
                pass

    aio.run(twice("BEGIN { exit(0); }"))
    aio.run(twice("BEGIN { x = ; }"))
    assert compiled_on_loop == [False, False]  # two programs, each compiled once
    assert programs.has("BEGIN { x = ; }", "s.d")
    aio.run(twice("END { }"))
    assert len(programs) == 2 and not programs.has("BEGIN { exit(0); }", "s.d")  # bounded: the oldest goes


def test_the_trace_page_compiles_a_program_once_across_requests_off_the_event_loop(client, monkeypatch):
    calls = []
    real = d_programs.compile_script
    monkeypatch.setattr(d_programs, "compile_script", lambda s, n: calls.append((s, on_event_loop())) or real(s, n))
    script = "syscall::getpid:entry { @ = count(); } /* compiled once */"
    for _ in range(3):
        assert trace_page(client, script, command="getpid 3").status_code == 200
    assert calls == [(script, False)]


# --- run ----------------------------------------------------------------------------------------------------


def test_the_evaluation_budget_stops_tracing_keeps_the_work_done_and_says_so(getpid_run):
    script = 'fbt:::entry { printf("%s\\n", probefunc); @calls = count(); } END { printa("%@d calls\\n", @calls); }'
    whole = trace_run(compile_script(script, "s.d"), getpid_run, quiet=True)
    cut = trace_run(compile_script(script, "s.d"), getpid_run, quiet=True, ops_budget=200)
    assert "evaluation budget" not in whole.stderr
    assert "dtrace: the program used its evaluation budget of 200 operations: tracing stopped there" in cut.stderr
    lines = cut.output.split("\n")
    assert 0 < cut.firings < whole.firings
    assert lines[0] in whole.output and f"{cut.firings - 1} calls" in cut.output  # END ran, on what was counted


def test_a_sparse_lquantize_costs_a_bucket_per_value_and_prints_as_dtrace_does(getpid_run):
    script = "syscall:::entry { @[probefunc] = lquantize(1, 0, 65535, 1); }"
    result = trace_run(compile_script(script, "s.d"), getpid_run, quiet=True)
    datum = next(iter(result.aggregations["_"].data.values()))
    assert isinstance(datum, Buckets) and len(datum) == 1 and datum.size == 65537
    assert "\n           value  ------------- Distribution ------------- count    \n" in result.output
    assert "               0 |                                         0        \n" in result.output
    assert "               2 |                                         0        \n" in result.output


def test_aggregations_over_their_memory_limit_drop_keys_and_say_so(getpid_run, monkeypatch):
    monkeypatch.setattr(d_interp, "MAX_AGGREGATION_BYTES", 3 * d_interp.KEY_BYTES + 50)
    script = "fbt:::entry { @[timestamp] = count(); }"
    result = trace_run(compile_script(script, "s.d"), getpid_run, quiet=True)
    assert len(result.aggregations["_"].data) == 3
    assert "aggregation drops on CPU 0 (the aggregations' memory limit of 0 MiB)" in result.stderr


def test_histogram_buckets_count_against_the_memory_limit(getpid_run, monkeypatch):
    monkeypatch.setattr(d_interp, "MAX_AGGREGATION_BYTES", d_interp.KEY_BYTES + d_interp.BUCKET_BYTES)
    script = "fbt:::entry { @ = lquantize(timestamp % 1000, 0, 1000, 1); }"
    result = trace_run(compile_script(script, "s.d"), getpid_run, quiet=True)
    assert len(result.aggregations["_"].data[()]) == 1
    assert "the aggregations' memory limit" in result.stderr


def test_a_result_keeps_its_aggregations_when_the_program_is_traced_again(getpid_run, dd_run):
    compiled = compile_script("syscall:::entry { @[probefunc] = count(); }", "s.d")
    first = trace_run(compiled, getpid_run, quiet=True)
    kept = dict(first.aggregations["_"].data)
    trace_run(compiled, dd_run, quiet=True)
    assert first.aggregations["_"].data == kept


# --- through the web ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "words"),
    [
        ("BEGIN { x = " + "!" * 1000 + "1; }", "nest more than 100 levels deep"),
        (",".join([":::"] * 1000) + " { }", "the limit is 256"),
        ('BEGIN { printf("%3000000000d", 1); }', "over the limit of 1,024"),
        ("BEGIN { x = " + "9" * 5000 + "; }", "is too large"),
    ],
)
def test_a_program_over_a_limit_is_a_400_naming_it_on_the_trace_page(client, script, words):
    response = trace_page(client, script)
    assert response.status_code == 400
    assert words in response.text


def test_the_web_evaluates_a_program_within_its_budget(client, monkeypatch):
    monkeypatch.setattr("app.routes_trace.WEB_OPS_BUDGET", 30)
    response = trace_page(client, "syscall:::entry { @[probefunc] = count(); } /* budget */", command="getpid 50")
    assert response.status_code == 200
    assert "evaluation budget of 30 operations" in response.text
