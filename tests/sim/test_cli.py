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


def test_pagewalk_json_walks_the_text_page_to_a_physical_address(capsys):
    assert main(["pagewalk", "--json", "--va", "0x401000", "-c", "getpid"]) == 0
    walk = json.loads(capsys.readouterr().out)
    assert walk["va"] == 0x401000
    assert [level["level"] for level in walk["levels"]] == ["PML4E", "PDPTE", "PDE", "PTE"]
    assert [level["index"] for level in walk["levels"]] == [0, 0, 2, 1]  # 0x401000 = PD 2, PT 1
    assert "NX" not in walk["levels"][-1]["flags"] and "P" in walk["levels"][-1]["flags"]
    assert walk["pa"] % 4096 == 0 and "fault" not in walk


def test_pagewalk_of_an_unmapped_address_names_the_level_that_stopped_it(capsys):
    assert main(["pagewalk", "--json", "--va", "0xdead", "-c", "getpid"]) == 1
    walk = json.loads(capsys.readouterr().out)
    assert "pa" not in walk and "not present" in walk["fault"]


def test_pagewalk_of_an_unknown_process_is_a_clear_error(capsys):
    assert main(["pagewalk", "--va", "0x1000", "--pid", "5", "-c", "getpid"]) == 2
    assert "no process 5" in capsys.readouterr().err


def test_run_json_counts_every_kernel_entry_as_a_trap(capsys):
    assert main(["run", "--json", "-c", "dd if=/dev/zero of=/dev/null bs=1m count=1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["traps_by_kind"]["syscall"] == report["syscalls"]
    assert report["traps_by_kind"]["exception"] == report["faults_user_mode"] + report["faults_kernel_mode"]
    assert report["traps"] == report["syscalls"] + report["traps_by_kind"]["exception"]
