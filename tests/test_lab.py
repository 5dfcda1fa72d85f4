"""The IPC lab (L41 Lab 2): the page offers the six basic modes and the sweep's buffer sizes; a point is one run
of the lab's benchmark whose bandwidth is the program's own output; bad input is a 422 naming the parameter."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

from app import lab
from app.params import WEB_EVENT_BUDGET
from sim.run import RunSpec, record


def point(client, **params) -> dict:
    response = client.get("/api/lab/point", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_page_offers_the_six_modes_and_eleven_sizes_from_32_bytes_to_16_mib(client):
    page = client.get("/lab").text
    assert re.findall(r'name="modes" value="([^"]+)"', page) == [
        "pipe 1thread", "pipe 2thread", "pipe 2proc", "local 1thread", "local 2thread", "local 2proc"]  # fmt: skip
    sizes = [int(s) for s in re.findall(r'name="sizes" value="([0-9]+)"', page)]
    assert len(sizes) == 11 and sizes[0] == 32 and sizes[-1] == 16 << 20 and sizes == sorted(sizes)
    assert 'id="lab-chart"' in page and "lab.js" in page


def test_a_point_is_the_benchmarks_own_output_and_offers_dtrace_on_its_command(client):
    measured = point(client, ipc="pipe", mode="1thread", b="32")
    assert measured["command"] == "ipc-static -i pipe -b 32 1thread"
    assert f"{measured['bandwidth_kib_s']:.2f} KBytes/sec" in measured["output"]
    assert measured["syscalls"] > 2 * (16 << 20) // 32  # a write and a read per 32 bytes, then the rest
    trace = parse_qs(urlparse(measured["trace_url"]).query)
    total = measured["trace_total"]
    assert trace["command"] == [f"ipc-static -i pipe -b 32 -t {total} 1thread"] and total % 32 == 0
    # the traced run takes every step (nothing is replayed while DTrace watches): it must fit the web's budget
    traced = record(RunSpec(trace["command"][0]), record_budget=0)
    assert traced.summary()["events"] <= WEB_EVENT_BUDGET
    assert "syscall::read:return" in trace["script"][0]


def test_bandwidth_rises_with_the_buffer_size_as_system_calls_are_amortised(client):
    rates = [point(client, ipc="local", mode="1thread", b=str(size))["bandwidth_kib_s"] for size in (32, 512, 8192)]
    assert rates == sorted(rates) and rates[-1] > 10 * rates[0]


@pytest.mark.parametrize("mode", ["2thread", "2proc"])
def test_two_thread_modes_run_the_32_byte_point_whole(client, mode):
    """Their two loops are replayed together once steady (sim/user/loop_replay.py SteadyCycle): the lab's 16 MiB
    in 32-byte buffers, a write and a read each, is the program's own result, not a refusal."""
    measured = point(client, ipc="pipe", mode=mode, b="32")
    assert "refused" not in measured
    assert f"{measured['bandwidth_kib_s']:.2f} KBytes/sec" in measured["output"]
    assert measured["syscalls"] > 2 * (16 << 20) // 32


def test_a_point_past_the_step_budget_is_refused_in_words(monkeypatch):
    monkeypatch.setattr(lab, "LAB_STEP_BUDGET", 1_000)
    measured = lab.measure(lab.Point("pipe", "2thread", 32, "lecture"))
    assert measured["refused"].startswith("more than 1,000 steps taken")


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"ipc": "tcp", "b": "32"}, "ipc"),
        ({"mode": "3proc", "b": "32"}, "mode"),
        ({"b": "33"}, "b"),
        ({"b": "３２"}, "b"),
        ({"b": "32", "profile": "vax"}, "profile"),
    ],  # fmt: skip
)
def test_bad_input_is_a_422_that_names_the_parameter(client, params, parameter):
    response = client.get("/api/lab/point", params=params)
    assert response.status_code == 422
    assert response.json()["parameter"] == parameter
