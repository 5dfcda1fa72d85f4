"""The dtrace command line: macro arguments, -x options, -l, several -n/-s programs at once."""

from __future__ import annotations

import argparse

import pytest

from sim.cli import _scenario_spec, run_command
from sim.trace import dtrace
from sim.trace.d_command import expand_macros
from sim.trace.d_parser import CompileError


def dtrace_cli(capsys, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="trapscope")
    dtrace.add_parser(parser.add_subparsers(dest="command_name", required=True), _scenario_spec)
    status = run_command(parser.parse_args(["dtrace", *argv]))
    out, err = capsys.readouterr()
    return status, out, err


def test_macro_arguments_are_tokens_and_strings(capsys):
    status, out, _ = dtrace_cli(
        capsys, "-q", "-n", 'BEGIN { printf("%d %s %s", $1 + 1, $$2, $$0); exit(0); }', "-c", "getpid 1", "41", "hi"
    )
    assert status == 0 and out.startswith("42 hi ")


def test_dollars_in_strings_and_comments_are_not_macros():
    text = 'BEGIN { /* $1 */ printf("$1 costs $$2"); }'
    assert expand_macros(text, [], "x.d") == text


@pytest.mark.parametrize(
    ("arguments", "message"),
    [([], "macro argument $1 is not defined"), (["1", "2"], "extraneous argument '2' ($2 is not referenced)")],
)
def test_missing_and_unreferenced_macro_arguments_are_refused(arguments, message):
    with pytest.raises(CompileError, match=message.replace("$", r"\$").replace("(", r"\(").replace(")", r"\)")):
        expand_macros("BEGIN { trace($1); }", arguments, "x.d")


def test_defaultargs_makes_a_missing_argument_zero():
    assert expand_macros("BEGIN { trace($1); }", [], "x.d", defaults=True) == "BEGIN { trace(0); }"


def test_x_sets_options_and_the_programs_pragmas_win(capsys):
    program = 'BEGIN { printf("%d %d\\n", speculation(), speculation()); exit(0); }'
    status, out, _ = dtrace_cli(capsys, "-q", "-x", "nspec=2", "-n", program, "-c", "getpid 1")
    assert out.startswith("1 2\n")
    pragma = "#pragma D option nspec=1\n" + program
    status, out, _ = dtrace_cli(capsys, "-q", "-x", "nspec=2", "-n", pragma, "-c", "getpid 1")
    assert out.startswith("1 0\n")


def test_a_bad_x_option_is_refused_in_dtraces_words(capsys):
    status, _, err = dtrace_cli(capsys, "-x", "bufsize=-1", "-n", "BEGIN {}", "-c", "getpid 1")
    assert status == 1 and err == "dtrace: failed to set -x bufsize=-1: Invalid value for specified option\n"


def test_l_lists_the_probes_a_description_matches(capsys):
    status, out, _ = dtrace_cli(capsys, "-l", "-n", "syscall::read:")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "PROVIDER", "MODULE", "FUNCTION", "NAME"]
    assert [line.split()[1:] for line in lines[1:]] == [
        ["syscall", "freebsd", "read", "entry"],
        ["syscall", "freebsd", "read", "return"],
    ]
    status, _, err = dtrace_cli(capsys, "-l", "-n", "nosuch:::")
    assert status == 1 and "probe description nosuch::: does not match any probes" in err


def test_several_programs_run_together_in_order(capsys, tmp_path):
    script = tmp_path / "end.d"
    script.write_text('END { printf("end\\n"); }\n')
    status, out, err = dtrace_cli(
        capsys, "-n", 'BEGIN { printf("begin\\n"); }', "-s", str(script), "-q", "-c", "getpid 1"
    )
    assert status == 0 and out == "begin\nend\n\n"
    status, out, err = dtrace_cli(capsys, "-n", "BEGIN {}", "-s", str(script), "-c", "getpid 1")
    assert "dtrace: description 'BEGIN ' matched 1 probe" in err
    assert f"dtrace: script '{script}' matched 1 probe" in err


IPC = "ipc-static -q -t 65536 -b 8192 2proc"
LAST_EXIT = 'proc:::exit { last = timestamp; } END { printf("%d %d %d", $target, last, timestamp); }'


def test_target_is_the_commands_pid_and_dollar_pid_is_dtraces(capsys):
    status, out, _ = dtrace_cli(capsys, "-q", "-n", 'BEGIN { printf("%d %d", $target, $pid); exit(0); }', "-c", IPC)
    assert (status, out.split()) == (0, ["1000", "999"])


def test_p_grabs_a_process_of_the_run_and_tracing_ends_when_it_exits(capsys):
    _, whole, _ = dtrace_cli(capsys, "-q", "-n", LAST_EXIT, "-c", IPC)
    status, grabbed, err = dtrace_cli(capsys, "-n", LAST_EXIT, "-c", IPC, "-p", "1001")
    target, last_exit, end = (int(word) for word in grabbed.split()[-3:])
    assert status == 0 and target == 1001 and "dtrace: pid 1001 has exited" in err
    assert end == last_exit  # END fires as the child exits ...
    assert end < int(whole.split()[-1])  # ... before the parent, whose exit ends the whole run


def test_p_refuses_a_pid_the_run_never_had_and_a_kernel_process(capsys):
    status, _, err = dtrace_cli(capsys, "-n", "BEGIN {}", "-c", "getpid 1", "-p", "1234")
    assert status == 1 and "failed to grab pid 1234: No such process (the run's pids: 1000)" in err
    status, _, err = dtrace_cli(capsys, "-n", "BEGIN {}", "-c", "getpid 1", "-p", "11")
    assert status == 1 and "failed to grab pid 11: system process" in err
    status, _, err = dtrace_cli(capsys, "-n", "BEGIN {}", "-p", "1001")
    assert status == 1 and "give the run with -c 'COMMAND' or --scenario NAME" in err


def test_scenario_gives_the_run_and_an_unknown_one_is_named(capsys):
    status, out, _ = dtrace_cli(capsys, "-q", "-n", LAST_EXIT, "--scenario", "fork-returns-twice", "-p", "1001")
    assert status == 0 and out.split()[-3] == "1001"  # after what the program printed
    status, _, err = dtrace_cli(capsys, "-n", "BEGIN {}", "--scenario", "nope")
    assert status == 1 and "no scenario named 'nope'" in err


def test_q_x_l_mixed_n_and_s_and_macro_arguments_together(capsys, tmp_path):
    script = tmp_path / "two.d"
    script.write_text('BEGIN { printf("%s %d|", $$1, $2); exit(0); }')
    status, out, err = dtrace_cli(
        capsys, "-x", "quiet", "-n", 'BEGIN { printf("%d %s|", $2 + 1, $$1); }', "-s", str(script), "-c",
        "getpid 1", "hello", "41",
    )  # fmt: skip
    assert status == 0 and out.startswith("42 hello|hello 41|") and err == ""  # -x quiet: no "matched" lines
