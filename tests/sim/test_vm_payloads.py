"""The machine's and the VM system's events carry typed payloads and structured deltas, whose words sim/narrative
makes. Checked over the run of every built-in scenario, and field by field on a fault. (That no event or delta of
any layer carries text, and that the narrative words every event, is tests/test_event_log_is_data.py's.)"""

from __future__ import annotations

import pytest

from sim.core import events as ev
from sim.machine.mmu import LEVEL_NAMES, PG_A, PG_V, PGEX_U, PGEX_W
from sim.narrative import detail
from sim.scenarios.registry import SCENARIOS
from sim.vm.vm_object import OBJT_DEFAULT
from sim.vm.vm_page import PQ_ACTIVE
from tests.steps import scenario_run

# The events the machine and the VM system make: whole kinds, and the (kind, name) pairs of other kinds. (A
# trap's "build trapframe" is checked after its trap: the system call's is made by sim/kern/exception.py.)
VM_KINDS = frozenset(("walk", "tlb", "trap", "fault", "panic"))
VM_NAMED = frozenset(
    [("insn", name) for name in ("stac", "clac", "invlpg", "syscall")]
    + [("insn", name) for name in ("movq %cr3,%cr3", "movq %rax,%cr3", "movq (%rax),%rax", "movq %rdx,(%rax)")]
    + [("hook", name) for name in ("pcb_onfault", "copyin_fault", "copyout_fault", "copyinstr_fault", "fusu_fault")]
    + [("mem", name) for name in (*LEVEL_NAMES, "promotion", "demotion", "page zeroed", "page copied")]
    + [("mem", name) for name in ("pagedaemon", "vm_object_shadow", "vm_object_collapse", "copyin", "copyout")]
    + [("user", name) for name in ("touch", "load", "store", "memset", "memmove", "fetch")]
    + [("proc", "vmwait")]
)
VM_DELTAS = {"map": ev.MapEntry, "object": ev.ObjectState, "page": ev.PageState, "frame": ev.FrameContents}


def is_vm_event(kind: str, name: str) -> bool:
    return kind in VM_KINDS or (kind, name) in VM_NAMED or (kind == "mem" and name.startswith("vm_map"))


@pytest.mark.parametrize("slug", sorted(SCENARIOS))
def test_the_vm_system_s_events_and_deltas_carry_their_payload_types(slug):
    run = scenario_run(slug)
    seen = set()
    trap_taken = False
    for event in run.events:
        if is_vm_event(event.kind, event.name):
            seen.add(event.kind)
        if event.kind == "trap":
            assert isinstance(event.data, ev.Trap)
            trap_taken = True
        elif trap_taken and event.name == "build trapframe":
            assert isinstance(event.data, ev.TrapframeBuilt)
            assert detail(event)
            trap_taken = False
        for delta in event.deltas:
            value_type = VM_DELTAS.get(delta[0])
            if value_type is None:
                continue
            old, new = delta[2], delta[3]
            assert isinstance(new, value_type) or (new is None and delta[0] == "map"), delta
            assert isinstance(old, value_type) or (old is None and delta[0] in ("map", "object")), delta
            if delta[0] == "map":
                assert isinstance(delta[1], ev.MapKey), delta
    assert seen, "the scenario makes events of the machine or the VM system"


def test_a_demand_zero_fault_is_recorded_as_facts_from_the_walk_to_the_new_page():
    run = scenario_run("dd-system-time")
    events = run.events
    fault = next(i for i, e in enumerate(events) if e.kind == "fault" and e.name == "zero_fill")
    trap = next(events[i] for i in range(fault, 0, -1) if events[i].kind == "trap")
    missed = next(events[i] for i in range(fault, 0, -1) if events[i].kind == "tlb" and events[i].name == "miss")
    assert trap.data.user and trap.data.err & PGEX_U and trap.data.addr >> 12 == missed.data.va >> 12
    resolved = events[fault].data
    assert resolved.how == "zero_fill" and resolved.va == trap.data.addr & ~0xFFF
    walk = [events[i].data for i in range(fault, 0, -1) if events[i].kind == "walk"][0]
    assert walk.level == 3 and not walk.entry & PG_V and not walk.present  # the PTE that was not there
    assert detail(events[fault]).startswith(f"write at {resolved.va:#x}: no page anywhere")
    page = next(d for e in events[: fault + 1] for d in e.deltas if d[0] == "page" and d[1] == resolved.pa >> 12)
    assert page[3].object == resolved.object and page[3].pindex == resolved.pindex
    objects = {d[1]: d[3] for e in events[: fault + 1] for d in e.deltas if d[0] == "object"}
    assert objects[resolved.object].type == OBJT_DEFAULT and objects[resolved.object].backing is None
    activated = [d[3] for e in events[fault - 40 : fault + 1] for d in e.deltas if d[0] == "page"]
    assert activated[-1].queue == PQ_ACTIVE


def test_a_walk_after_the_fault_reads_the_new_pte_and_fills_the_tlb():
    events = scenario_run("dd-system-time").events
    fault = next(i for i, e in enumerate(events) if e.kind == "fault" and e.name == "zero_fill")
    fill = next(i for i in range(fault, len(events)) if events[i].kind == "tlb" and events[i].name == "fill")
    pte = events[fill - 1].data
    assert isinstance(pte, ev.WalkLevel) and pte.present and pte.entry & PG_A
    filled = events[fill].data
    assert filled.page_size == 4096 and filled.pa == pte.entry & 0x000FFFFFFFFFF000
    assert filled.va == events[fault].data.va and filled.flags & PGEX_W  # RW: the fault was a write


def test_map_entries_are_keyed_by_their_map_and_start_and_hold_their_fields():
    run = scenario_run("dd-system-time")
    entries = {d[1]: d[3] for e in run.events for d in e.deltas if d[0] == "map" and d[3] is not None}
    assert entries and all(key.start == entry.start for key, entry in entries.items())
    assert {key.vmspace for key in entries} == {"pid 1000"}  # dd's map (a kernel thread has none)
    assert all(entry.end > entry.start and entry.protection & ~entry.max_protection == 0 for entry in entries.values())
