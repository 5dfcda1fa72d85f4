"""The JSON API: scenarios, run summaries and step states, and the 4xx answers to bad input."""

from __future__ import annotations

import pytest

from sim.machine.cpu import KERNEL_CPL, PSL_C, USER_CPL
from sim.replay import Replay
from tests.steps import step_of


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_scenarios_lists_getpid_with_its_page(client):
    scenarios = {s["slug"]: s for s in client.get("/api/scenarios").json()}
    getpid = scenarios["getpid"]
    assert getpid["command"] == "getpid"
    assert getpid["url"] == "/scenarios/getpid"
    assert "trap" in getpid["title"]
    assert client.get(getpid["url"]).status_code == 200


def test_run_summary_counts_getpids_syscalls(client, getpid_run):
    summary = client.get("/api/runs", params={"command": "getpid 3"}).json()
    assert summary["exit_status"] == 0
    assert summary["syscalls_by_name"]["getpid"] == 3
    assert summary["last_step"] == summary["events_recorded"] - 1
    assert summary["wall_ns"] > 0


def test_the_syscall_step_enters_ring_0(client, getpid_run):
    syscall = step_of(getpid_run, "insn", "syscall")
    before = client.get(f"/api/runs/getpid/steps/{syscall - 1}").json()
    at = client.get(f"/api/runs/getpid/steps/{syscall}").json()
    assert (before["cpl"], before["mode"]) == (USER_CPL, "user")
    assert (at["cpl"], at["mode"]) == (KERNEL_CPL, "kernel")
    assert "cpl" in at["changed_registers"]
    assert at["event"]["name"] == "syscall"
    assert "syscall" in at["event"]["narrative"]


def test_after_sysretq_rax_holds_the_pid_and_carry_is_clear(client, getpid_run):
    state = client.get(f"/api/runs/getpid/steps/{step_of(getpid_run, 'insn', 'sysretq')}").json()
    pid = next(pid for pid, name in getpid_run.threads.values() if name == "getpid")
    assert state["cpl"] == USER_CPL
    assert state["registers"]["rax"] == pid
    assert not state["registers"]["rflags"] & PSL_C


def test_the_kernel_stack_at_sys_getpid_is_freebsds_path(client, getpid_run):
    state = client.get(f"/api/runs/getpid/steps/{step_of(getpid_run, 'enter', 'sys_getpid')}").json()
    assert state["stack"][-1] == "sys_getpid"
    assert "amd64_syscall" in state["stack"]
    assert state["stack"].index("amd64_syscall") < state["stack"].index("sys_getpid")


def test_every_step_from_the_api_equals_the_replay(client, getpid_run):
    replay = Replay(getpid_run)
    for step in range(0, replay.last_step + 1, max(1, replay.last_step // 40)):
        api = client.get(f"/api/runs/getpid/steps/{step}").json()
        expected = replay.state_at(step)
        assert api["registers"] == expected.registers, step
        assert api["trapframe"] == expected.trapframe, step
        assert api["stack"] == list(expected.stack), step
        assert api["t_ns"] == expected.t_ns, step


# ---------------------------------------------------------------- bad input: 4xx that say what is wrong


def test_a_step_past_the_end_is_404_naming_the_valid_range(client, getpid_run):
    last = len(getpid_run.events) - 1
    response = client.get(f"/api/runs/getpid/steps/{last + 1}")
    assert response.status_code == 404
    body = response.json()
    assert body["parameter"] == "step"
    assert f"0 to {last}" in body["detail"]
    assert body["valid"] == f"a whole number from 0 to {last}"


def test_a_negative_step_is_404_naming_the_valid_range(client):
    response = client.get("/api/runs/getpid/steps/-1")
    assert response.status_code == 404
    assert "out of range" in response.json()["detail"]


@pytest.mark.parametrize("step", ["abc", "1.5", "1e3", "%20"])
def test_a_non_integer_step_is_422_naming_the_parameter(client, step):
    response = client.get(f"/api/runs/getpid/steps/{step}")
    assert response.status_code == 422
    body = response.json()
    assert body["parameter"] == "n"
    assert "path parameter 'n'" in body["detail"]
    assert "integer" in body["detail"]


def test_an_unknown_scenario_is_404_listing_the_known_ones(client):
    response = client.get("/api/runs/no-such-thing/steps/0")
    assert response.status_code == 404
    assert response.json()["parameter"] == "scenario"
    assert "getpid" in response.json()["detail"]


def test_an_unknown_program_is_400_naming_the_programs(client):
    response = client.get("/api/runs", params={"command": "frobnicate"})
    assert response.status_code == 400
    assert response.json()["parameter"] == "command"
    assert "frobnicate" in response.json()["detail"] and "getpid" in response.json()["detail"]


def test_an_unsplittable_command_line_is_400(client):
    response = client.get("/api/runs", params={"command": "getpid 'unclosed"})
    assert response.status_code == 400
    assert "quotation" in response.json()["detail"]


def test_an_unknown_profile_is_422_listing_the_profiles(client):
    response = client.get("/api/runs", params={"command": "getpid", "profile": "cray-1"})
    assert response.status_code == 422
    body = response.json()
    assert body["parameter"] == "profile"
    assert "lecture" in body["valid"] and "cray-1" in body["detail"]


def test_a_missing_command_is_422_naming_it(client):
    response = client.get("/api/runs")
    assert response.status_code == 422
    assert response.json()["parameter"] == "command"
    assert "command" in response.json()["detail"]


def test_an_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")


def test_the_openapi_schema_describes_the_step_endpoint(client):
    schema = client.get("/api/openapi.json").json()
    assert "/api/runs/{scenario}/steps/{n}" in schema["paths"]
    assert "StepOut" in schema["components"]["schemas"]
