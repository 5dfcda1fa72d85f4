"""The flame graph's views over HTTP and in the library: the time-order chart (sim/trace/flame_chart.py) and its
JSON, each frame's kind, the aggregation a script fills shown without asking, projector mode on /trace, and
speedscope served by the app itself."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import unquote

import pytest

from app import speedscope
from app.flame_view import frame_kind
from app.trace_examples import LECTURE_PROFILE, LECTURE_SYSCALL_TIMES
from sim.run import RunSpec, record
from sim.trace.flame import flame_from_run
from sim.trace.flame_chart import flame_chart
from tests.test_trace_routes import DD, figure, folded_of


@pytest.fixture(scope="module")
def dd_run():
    return record(RunSpec(DD))


# --- time order ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["getpid", "write-file", "fork"])
def test_a_stacks_frames_in_time_order_add_up_to_its_value_in_the_flame_graph(command):
    run = record(RunSpec(command))
    chart, graph = flame_chart(run), flame_from_run(run)
    assert chart.end_ns == graph.total  # on-CPU time: the idle CPU's halts are left out of both
    widths: dict[tuple[str, ...], int] = {}
    for frame in chart.frames:
        widths[frame.stack] = widths.get(frame.stack, 0) + frame.width
    assert widths == {stack: graph.value_of(stack) for stack in widths}
    assert set(graph.stacks) <= set(widths)


def test_time_order_keeps_frames_in_the_order_they_ran(dd_run):
    chart = flame_chart(dd_run)
    starts = [frame.start_ns for frame in chart.frames]
    assert starts == sorted(starts)
    by_stack: dict[tuple, list] = {}  # the frames of each stack, in the order they ran
    for frame in chart.frames:
        by_stack.setdefault(frame.stack, []).append(frame)
    for frame in chart.frames[:2000]:  # a frame lies inside one frame of the depth below, its parent
        if frame.depth:
            parents = [f for f in by_stack.get(frame.stack[:-1], []) if f.start_ns <= frame.start_ns]
            assert parents and parents[-1].end_ns >= frame.end_ns


def test_a_view_merges_frames_too_narrow_to_draw_and_says_how_many(dd_run):
    chart = flame_chart(dd_run)
    whole = chart.visible(0, chart.end_ns, 1200)
    assert len(whole) < 200  # 73,000 frames, of which a pixel's worth each
    merged = [f for f in whole if f.count > 1]
    faults = max(merged, key=lambda f: f.busy_ns if "trap" in f.stack[-1] else 0)
    assert faults.count > 5000 and faults.busy_ns < faults.width  # dd's page faults, with the user time between
    first_fault = next(f for f in chart.frames if f.stack[-1] == "trap_pfault")
    close = chart.visible(first_fault.start_ns, first_fault.end_ns, 1200)
    assert any(f.count == 1 and f.stack[-1] == "vm_fault" for f in close)  # zoomed in, frames are themselves


def test_the_chart_endpoint_answers_the_frames_of_a_range(client, dd_run):
    response = client.get("/trace/flame/chart", params={"command": DD, "from": 0, "to": 2_000_000, "width": 800})
    assert response.status_code == 200
    data = response.json()
    assert data["start"] == 0 and data["end"] == 2_000_000
    stacks = [tuple(data["names"][i] for i in indices) for indices, _ in data["stacks"]]
    for start, end, _stack, _at, count, busy in data["frames"]:
        assert end > 0 and start < 2_000_000 and count >= 1 and busy <= end - start
    assert ("dd", "-", "Xfast_syscall") in stacks


@pytest.mark.parametrize(
    "params, message",
    [
        ({"from": "x"}, "query parameter 'from' must be a whole number"),
        ({"to": "-5"}, "query parameter 'to' must be a whole number"),
        ({"from": "100", "to": "100"}, "must be after 'from'"),
        ({"width": "99999"}, "query parameter 'width' must be a whole number from 0 to 8,000"),
    ],
)
def test_the_chart_endpoint_names_a_bad_parameter(client, params, message):
    response = client.get("/trace/flame/chart", params={"command": "getpid", **params})
    assert response.status_code == 422 and message in html.unescape(response.text)


# --- kinds --------------------------------------------------------------------------------------------------


def test_frame_kinds_tell_kernel_from_user_in_both_sources():
    assert [frame_kind("nanoseconds", ("dd", "-", "Xpage"), d) for d in range(3)] == ["p", "s", "k"]
    assert frame_kind("nanoseconds", ("dd", "user"), 1) == "u"
    sampled = ("dd", "kernel`0xffffffff802f1fa0", "kernel`trap", "libc.so.7`memset", "user")
    assert [frame_kind("samples", sampled, d) for d in range(5)] == ["p", "k", "k", "u", "u"]


# --- the page -----------------------------------------------------------------------------------------------


def test_a_script_that_fills_a_stack_aggregation_shows_it_at_once(client):
    response = client.get("/trace/flame", params={"command": DD, "script": LECTURE_PROFILE})
    assert response.status_code == 200
    current = re.search(r'aria-current="true" class="current">([^<]*)<', response.text)
    assert current and current.group(1) == "@traces by stack (D aggregation)"
    assert all(stack[0].startswith(("kernel`", "user")) for stack in folded_of(response.text))
    plain = client.get("/trace/flame", params={"command": DD, "script": LECTURE_SYSCALL_TIMES})
    assert "exact frame times of the run</a>" in plain.text  # no stack aggregation: the run's times
    assert figure(plain.text, "flame-data")["total"] == flame_from_run(record(RunSpec(DD))).total


def test_the_trace_page_has_a_projector_mode(client):
    page = client.get("/trace", params={"command": "getpid", "mode": "projector"})
    assert page.status_code == 200 and '<body class="projector">' in page.text
    assert 'id="trace-mode"' in page.text and 'href="/trace?command=getpid"' in page.text
    assert "mode=projector" in client.get("/trace", params={"command": "getpid"}).text
    bad = client.get("/trace", params={"command": "getpid", "mode": "cinema"})
    assert bad.status_code == 422 and "query parameter 'mode' must be projector or normal" in html.unescape(bad.text)


# --- speedscope ---------------------------------------------------------------------------------------------


def test_open_in_speedscope_links_the_apps_own_speedscope_to_the_same_profile(client):
    response = client.get("/trace/flame", params={"command": DD, "script": LECTURE_PROFILE})
    link = re.search(r'id="open-speedscope" class="button" href="([^"]+)"', response.text).group(1)
    link = link.replace("&amp;", "&")
    assert link.startswith("/speedscope/#profileURL=")
    profile_url = re.search(r"profileURL=([^&]+)", link).group(1)
    profile = client.get(unquote(profile_url))
    assert profile.status_code == 200
    body = json.loads(profile.content)
    assert body["profiles"][0]["type"] == "sampled" and "traces" in unquote(profile_url)


def test_speedscope_is_served_from_the_npm_package_under_its_own_policy(client):
    page = client.get("/speedscope/")
    assert page.status_code == 200 and "<title>speedscope</title>" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in policy and "frame-ancestors 'self'" in policy
    assert "http" not in policy  # nothing from another origin
    scripts = re.findall(r'src="([^"]+)"', page.text)
    assert scripts and all(not s.startswith(("http:", "https:", "//")) for s in scripts)
    for name in scripts + re.findall(r'href="([^"]+)"', page.text):
        assert client.get(f"/speedscope/{name}").status_code == 200, name
    assert client.get("/speedscope/../package.json").status_code == 404
    assert client.get("/speedscope/nothing.js").status_code == 404


def test_speedscope_links_name_its_view():
    assert speedscope.page_url("/p", "t", "time").endswith("&view=time-ordered")
    assert speedscope.page_url("/p", "t", "sandwich").endswith("&view=sandwich")
