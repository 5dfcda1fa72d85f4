"""Flame graphs from recorded runs: exact frame times that add up to time(1)'s figures, profile samples folded
as stackcollapse.pl folds dtrace's output, pruning, and differential graphs."""

from __future__ import annotations

import pytest

from app.trace_examples import LECTURE_PROFILE
from sim.replay import Replay
from sim.run import RunSpec, record
from sim.trace.d_output import INT64, STRING, Aggregation
from sim.trace.dtrace import run_dtrace
from sim.trace.flame import (
    KERNEL_SEPARATOR,
    USER_FRAME,
    FlameError,
    FlameGraph,
    collapse_frame,
    differential,
    flame_from_aggregation,
    flame_from_run,
    parse_stack,
    process_times,
    stack_text,
    timeline,
)

DD = "dd if=/dev/zero of=/dev/null bs=10m count=1"
FAULT_PATH = ("dd", KERNEL_SEPARATOR, "Xpage", "trap", "trap_pfault", "vm_fault")


@pytest.fixture(scope="module")
def dd_run():
    return record(RunSpec(DD))


@pytest.fixture(scope="module")
def dd_graph(dd_run):
    return flame_from_run(dd_run)


def children_of(nodes):
    children = {}
    for node in nodes:
        if node.stack:
            children.setdefault(node.stack[:-1], []).append(node)
    return children


def test_a_processs_user_and_kernel_frames_add_up_to_its_user_and_system_time(dd_run, dd_graph):
    assert process_times(dd_graph, "dd") == (dd_run.user_ns, dd_run.sys_ns)


def test_time_is_billed_per_process_for_forked_and_threaded_runs():
    for command in ("ipc-benchmark -i pipe -b 65536 2proc", "ipc-benchmark -i pipe -b 65536 2thread"):
        run = record(RunSpec(command))
        graph = flame_from_run(run)
        assert process_times(graph, "ipc-benchmark") == (run.user_ns, run.sys_ns), command
        # the idle thread's halts are billed to nobody: the graph is on-CPU time, far less than the elapsed time
        assert graph.total < run.wall_ns / 10


def test_every_frame_is_its_self_time_plus_its_childrens(dd_graph):
    nodes = dd_graph.nodes()
    assert nodes[0].stack == () and nodes[0].inclusive == dd_graph.total
    children = children_of(nodes)
    for node in nodes:
        below = children.get(node.stack, [])
        assert node.inclusive == node.self_value + sum(child.inclusive for child in below), node.stack
        assert [c.name for c in below] == sorted(c.name for c in below)  # flamegraph.pl's sibling order


def test_the_lectures_claim_pagezero_under_the_fault_path_dominates_dds_system_time(dd_run, dd_graph):
    pagezero = dd_graph.value_of((*FAULT_PATH, "pmap_zero_page", "pagezero"))
    traps = dd_graph.value_of(("dd", KERNEL_SEPARATOR, "Xpage"))
    syscalls = dd_graph.value_of(("dd", KERNEL_SEPARATOR, "Xfast_syscall"))
    assert pagezero > dd_run.sys_ns / 2
    assert traps > 10 * syscalls  # traps outside system calls far outweigh the system calls


def test_a_stacks_first_step_is_where_the_stepper_shows_that_stack(dd_run, dd_graph):
    replay = Replay(dd_run)
    checked = 0
    for stack, step in dd_graph.first_steps.items():
        if len(stack) > 2 and stack[1] == KERNEL_SEPARATOR and stack[:6] == FAULT_PATH[: len(stack[:6])]:
            state = replay.state_at(step)
            assert state.stack == stack[2:], (stack, step)
            checked += 1
    assert checked >= len(FAULT_PATH) - 2


def test_timeline_slices_are_consecutive_per_cpu_and_cover_the_graph(dd_run, dd_graph):
    pieces = list(timeline(dd_run))
    assert all(p.end_ns > p.start_ns for p in pieces)
    assert all(a.end_ns <= b.start_ns for a, b in zip(pieces, pieces[1:], strict=False))
    assert sum(p.end_ns - p.start_ns for p in pieces) == dd_graph.total
    user = [p for p in pieces if p.stack == ("dd", USER_FRAME)]
    assert sum(p.end_ns - p.start_ns for p in user) == dd_run.user_ns


def test_stacks_round_trip_through_their_text():
    for stack in ((), ("dd",), FAULT_PATH):
        assert parse_stack(stack_text(stack)) == stack


# --- profile samples ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def profile_result():
    return run_dtrace(LECTURE_PROFILE, DD, quiet=True)


def test_dtrace_frames_lose_their_offsets_as_stackcollapse_strips_them():
    assert collapse_frame("              kernel`pagezero+0x10") == "kernel`pagezero"
    assert collapse_frame("kernel`0xffffffff802f1fa0") == "kernel`0xffffffff802f1fa0"
    assert collapse_frame("kernel`trap") == "kernel`trap"


def test_the_lectures_profile_aggregation_folds_root_first_with_every_sample(profile_result):
    aggregation = profile_result.aggregations["traces"]
    graph = flame_from_aggregation(aggregation)
    assert graph.unit == "samples"
    assert graph.total == sum(aggregation.data.values())
    for key, count in aggregation.data.items():
        frames = tuple(collapse_frame(f) for f in reversed(key[0])) or (USER_FRAME,)
        assert graph.stacks[frames] >= count
    hottest = max(graph.stacks, key=graph.stacks.get)
    assert hottest[-2:] == ("kernel`pmap_zero_page", "kernel`pagezero")
    assert hottest[0].startswith("kernel`0x")  # the assembly entry point, a bare address, is the root


def test_other_keys_become_root_frames_and_non_additive_aggregations_are_refused(profile_result):
    stack = next(iter(profile_result.aggregations["traces"].data))[0]
    keyed = Aggregation("k", 1, "count", (STRING, profile_result.aggregations["traces"].key_types[0]), 1)
    keyed.data = {("dd", stack): 3}
    graph = flame_from_aggregation(keyed)
    assert list(graph.stacks) == [("dd", *(collapse_frame(f) for f in reversed(stack)))]
    quantized = Aggregation("q", 2, "quantize", keyed.key_types, 1)
    with pytest.raises(FlameError, match="quantize"):
        flame_from_aggregation(quantized)
    with pytest.raises(FlameError, match="stack"):
        flame_from_aggregation(Aggregation("n", 3, "count", (INT64,), 1))


# --- differential flame graphs ------------------------------------------------------------------------------


def test_junk_filling_moves_dds_page_faults_from_user_mode_into_reads_copyout():
    junk = flame_from_run(record(RunSpec(f"MALLOC_CONF=junk:true {DD}")))
    clean = flame_from_run(record(RunSpec(f"MALLOC_CONF=junk:false {DD}")))
    diff = differential(clean, junk)
    by_stack = {node.stack: node for node in diff.nodes}
    assert by_stack[("dd", KERNEL_SEPARATOR, "Xpage")].delta > 0  # red: user-mode faults from the junk fill
    read_faults = [n for n in diff.nodes if "sys_read" in n.stack and n.name == "trap_pfault"]
    assert read_faults and all(n.delta < 0 for n in read_faults)  # blue: copyout no longer faults
    assert by_stack[()].after == junk.total and by_stack[()].before == clean.total
    normalised = differential(clean, junk, normalise=True)
    assert abs(normalised.nodes[0].before - junk.total) <= 1
    lines = diff.folded().splitlines()
    assert all(len(line.rsplit(" ", 2)) == 3 for line in lines)


def test_a_graph_of_one_stack_is_its_own_diff():
    graph = FlameGraph({("a", "b"): 5}, "nanoseconds", "t")
    assert all(node.delta == 0 for node in differential(graph, graph).nodes)
