"""Exports checked against their formats: folded-stack syntax, speedscope's file-format spec, Chrome trace events
that nest per thread; and `trapscope export` as a user types it."""

from __future__ import annotations

import json
import re
from collections import Counter

import jsonschema_rs
import pytest

from app.cli import main
from app.trace_examples import LECTURE_PROFILE
from sim.run import RunSpec, record
from sim.trace.dtrace import run_dtrace
from sim.trace.export import (
    FORMATS,
    ExportError,
    aggregation_graph,
    check_format,
    chrome_flame_chart,
    chrome_trace,
    export_graph,
    export_run,
    folded,
    speedscope_evented,
    speedscope_sampled,
)
from sim.trace.flame import flame_from_run

DD = "dd if=/dev/zero of=/dev/null bs=10m count=1"

# speedscope's file format (jlfwong/speedscope src/lib/file-format-spec.ts) as a JSON Schema.
_VALUE_UNIT = {"enum": ["none", "nanoseconds", "microseconds", "milliseconds", "seconds", "bytes"]}
_EVENT = {
    "type": "object",
    "required": ["type", "frame", "at"],
    "properties": {"type": {"enum": ["O", "C"]}, "frame": {"type": "integer", "minimum": 0}, "at": {"type": "number"}},
}
SPEEDSCOPE_SCHEMA = {
    "type": "object",
    "required": ["$schema", "shared", "profiles"],
    "properties": {
        "$schema": {"const": "https://www.speedscope.app/file-format-schema.json"},
        "version": {"type": "string"},
        "name": {"type": "string"},
        "activeProfileIndex": {"type": "integer", "minimum": 0},
        "exporter": {"type": "string"},
        "shared": {
            "type": "object",
            "required": ["frames"],
            "properties": {
                "frames": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "file": {"type": "string"},
                            "line": {"type": "number"},
                            "col": {"type": "number"},
                        },
                    },
                }
            },
        },
        "profiles": {
            "type": "array",
            "items": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["type", "name", "unit", "startValue", "endValue", "events"],
                        "properties": {
                            "type": {"const": "evented"},
                            "name": {"type": "string"},
                            "unit": _VALUE_UNIT,
                            "startValue": {"type": "number"},
                            "endValue": {"type": "number"},
                            "events": {"type": "array", "items": _EVENT},
                        },
                    },
                    {
                        "type": "object",
                        "required": ["type", "name", "unit", "startValue", "endValue", "samples", "weights"],
                        "properties": {
                            "type": {"const": "sampled"},
                            "name": {"type": "string"},
                            "unit": _VALUE_UNIT,
                            "startValue": {"type": "number"},
                            "endValue": {"type": "number"},
                            "samples": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
                            "weights": {"type": "array", "items": {"type": "number"}},
                        },
                    },
                ]
            },
        },
    },
}
FOLDED_LINE = re.compile(r"^([^;\s][^;]*)(;[^;]+)* (\d+)$")


@pytest.fixture(scope="module")
def dd_run():
    return record(RunSpec(DD))


@pytest.fixture(scope="module")
def profile_graph():
    result = run_dtrace(LECTURE_PROFILE, DD, quiet=True)
    return aggregation_graph(result.aggregations, None)[1]


def check_folded(text: str) -> dict[tuple[str, ...], int]:
    lines = text.splitlines()
    assert text.endswith("\n") and lines == sorted(lines)
    stacks = {}
    for line in lines:
        assert FOLDED_LINE.match(line), line
        stack, count = line.rsplit(" ", 1)
        assert tuple(stack.split(";")) not in stacks
        stacks[tuple(stack.split(";"))] = int(count)
    return stacks


def check_speedscope(document: dict) -> None:
    jsonschema_rs.validate(SPEEDSCOPE_SCHEMA, document)
    frames = len(document["shared"]["frames"])
    for profile in document["profiles"]:
        if profile["type"] == "evented":
            open_frames: list[int] = []
            last = profile["startValue"]
            for event in profile["events"]:
                assert last <= event["at"] <= profile["endValue"]  # `at` never decreases
                last = event["at"]
                assert 0 <= event["frame"] < frames
                if event["type"] == "O":
                    open_frames.append(event["frame"])
                else:
                    assert open_frames.pop() == event["frame"]  # closes the innermost open frame
            assert not open_frames
        else:
            assert len(profile["samples"]) == len(profile["weights"])
            assert profile["endValue"] - profile["startValue"] == sum(profile["weights"])
            assert all(0 <= i < frames for sample in profile["samples"] for i in sample)


def check_chrome(document: dict) -> None:
    assert document["displayTimeUnit"] == "ns"
    open_slices: dict[tuple[int, int], list[dict]] = {}
    last_ts: dict[tuple[int, int], float] = {}
    named_threads = set()
    for event in document["traceEvents"]:
        assert {"name", "ph", "pid", "tid"} <= set(event)
        if event["ph"] == "M":
            assert event["name"] in ("process_name", "thread_name") and isinstance(event["args"]["name"], str)
            if event["name"] == "thread_name":
                named_threads.add((event["pid"], event["tid"]))
            continue
        assert isinstance(event["ts"], int | float)
        thread = (event["pid"], event["tid"])
        assert event["ts"] >= last_ts.get(thread, 0)  # in time order on each thread
        last_ts[thread] = event["ts"]
        stack = open_slices.setdefault(thread, [])
        if event["ph"] == "B":
            stack.append(event)
        elif event["ph"] == "E":
            assert stack and stack.pop()["name"] == event["name"]  # nests perfectly
        else:
            assert event["ph"] == "X" and event["dur"] >= 0
    assert all(not stack for stack in open_slices.values())
    assert set(open_slices) <= named_threads


# --- the formats --------------------------------------------------------------------------------------------


def test_folded_stacks_are_stackcollapse_lines_that_sum_to_the_runs_time(dd_run):
    graph = flame_from_run(dd_run)
    stacks = check_folded(folded(graph))
    assert stacks == graph.stacks
    assert sum(stacks.values()) == graph.total
    assert stacks[("dd", "user")] == dd_run.user_ns


def test_a_runs_speedscope_file_has_one_evented_profile_per_thread(dd_run):
    document = speedscope_evented(dd_run)
    check_speedscope(document)
    names = [p["name"] for p in document["profiles"]]
    assert names[0] == "dd (pid 1000, tid 100000)"
    dd = document["profiles"][0]
    assert dd["unit"] == "nanoseconds" and dd["endValue"] <= dd_run.wall_ns
    frame_names = [f["name"] for f in document["shared"]["frames"]]
    opened = Counter(frame_names[e["frame"]] for e in dd["events"] if e["type"] == "O")
    assert opened["pagezero"] == dd_run.vm["vmmeter"]["v_pagezero"]  # one slice per page the kernel zeroed


def test_a_runs_chrome_trace_nests_per_thread_and_its_user_slices_add_up_to_user_time(dd_run):
    document = chrome_trace(dd_run)
    check_chrome(document)
    events = [e for e in document["traceEvents"] if e["ph"] in "BE" and e["tid"] == 100000]
    user = 0.0
    for begin, end in zip(events, events[1:], strict=False):
        if begin["ph"] == "B" and begin["name"] == "user" and end["ph"] == "E":
            user += end["ts"] - begin["ts"]
    assert user * 1000 == pytest.approx(dd_run.user_ns, rel=1e-9)
    processes = {e["args"]["name"] for e in document["traceEvents"] if e["name"] == "process_name"}
    assert "dd (pid 1000)" in processes


def test_samples_export_as_a_sampled_speedscope_profile_and_a_chrome_flame_chart(profile_graph):
    document = speedscope_sampled(profile_graph)
    check_speedscope(document)
    (profile,) = document["profiles"]
    assert profile["unit"] == "none" and sum(profile["weights"]) == profile_graph.total
    names = [f["name"] for f in document["shared"]["frames"]]
    stacks = {tuple(names[i] for i in s): w for s, w in zip(profile["samples"], profile["weights"], strict=True)}
    assert stacks == profile_graph.stacks
    chart = chrome_flame_chart(profile_graph)
    check_chrome(chart)
    enclosing: list[dict] = []  # the X events laid out so far that may contain the next one
    roots = 0
    for event in (e for e in chart["traceEvents"] if e["ph"] == "X"):
        while enclosing and event["ts"] >= enclosing[-1]["ts"] + enclosing[-1]["dur"]:
            enclosing.pop()
        if enclosing:  # a frame lies inside its parent
            parent = enclosing[-1]
            assert parent["ts"] <= event["ts"] and event["ts"] + event["dur"] <= parent["ts"] + parent["dur"]
        else:
            roots += event["dur"]
        enclosing.append(event)
    assert roots == profile_graph.total


def test_each_format_has_its_file_name_and_an_unknown_one_is_refused(dd_run, profile_graph):
    for name, fmt in FORMATS.items():
        made = export_run(dd_run, name)
        assert made.filename == f"dd-{dd_run.run_id[:8]}{fmt.suffix}"
        if fmt.suffix.endswith(".json"):
            json.loads(made.body)
        assert export_graph(profile_graph, name, "dd-traces").filename == f"dd-traces{fmt.suffix}"
    with pytest.raises(ExportError, match="unknown export format 'svg'"):
        check_format("svg")


# --- trapscope export ---------------------------------------------------------------------------------------


def test_export_writes_each_format_for_a_command_line(tmp_path, capsys):
    for name in FORMATS:
        path = tmp_path / f"getpid.{name}"
        assert main(["export", "--format", name, "-o", str(path), "-c", "getpid 3"]) == 0
        assert f"to {path}" in capsys.readouterr().err
        text = path.read_text()
        if name == "folded":
            assert check_folded(text)[("getpid", "user")] > 0
        elif name == "speedscope":
            check_speedscope(json.loads(text))
        else:
            check_chrome(json.loads(text))


def test_export_of_a_d_programs_stack_aggregation_folds_its_samples(capsys):
    script = 'profile-4999 /execname == "getpid"/ { @[stack()] = count(); }'
    assert main(["export", "--format", "folded", "-o", "-", "-n", script, "-c", "getpid 2000"]) == 0
    stacks = check_folded(capsys.readouterr().out)
    assert stacks and all(frame.startswith("kernel`") or frame == "user" for s in stacks for frame in s)


def test_export_errors_are_clear_and_exit_non_zero(tmp_path, capsys):
    assert (
        main(["export", "--format", "folded", "-o", "-", "-n", "syscall:::entry { @ = count(); }", "-c", "getpid"]) == 1
    )
    assert "no aggregation keyed by stack()" in capsys.readouterr().err
    assert (
        main(["export", "--format", "folded", "-o", "-", "-n", "syscall:::entry {\n @ = count( }", "-c", "getpid"]) == 1
    )
    assert "line 2" in capsys.readouterr().err
    assert main(["export", "--format", "folded", "-o", str(tmp_path / "no" / "such" / "dir"), "-c", "getpid"]) == 1
    assert "cannot write" in capsys.readouterr().err
    assert main(["export", "--format", "folded", "-o", "-", "--aggregation", "x", "-c", "getpid"]) == 1
    assert "--aggregation" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["export", "--format", "svg", "-o", "-", "-c", "getpid"])
    assert exited.value.code == 2
    assert "invalid choice: 'svg'" in capsys.readouterr().err
    assert main(["export", "--format", "folded", "-o", "-", "-c", "nosuchprogram"]) == 2
    assert "no such program" in capsys.readouterr().err
