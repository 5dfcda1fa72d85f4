"""`trapscope run` as a user types it."""

from __future__ import annotations

import json

from app.cli import main


def test_run_prints_a_csh_time_line(capsys):
    assert main(["run", "-c", "getpid"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    fields = line.split()
    assert fields[0].endswith("u") and fields[1].endswith("s") and fields[3].endswith("%")


def test_run_json_reports_counters_and_the_run_id(capsys):
    assert main(["run", "--json", "-c", "getpid"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["syscalls_by_name"] == {"exit": 1, "getpid": 1}
    assert report["syscalls"] == 2
    assert report["exit_status"] == 0
    assert report["sys_ns"] > 0 and len(report["run_id"]) == 16


def test_an_unknown_program_is_a_clear_error_not_a_traceback(capsys):
    assert main(["run", "-c", "frobnicate --now"]) == 2
    err = capsys.readouterr().err
    assert "frobnicate: no such program" in err and "Traceback" not in err


def test_an_unbalanced_quote_is_a_clear_error(capsys):
    assert main(["run", "-c", "getpid 'oops"]) == 2
    assert "No closing quotation" in capsys.readouterr().err
