"""The event log is data: events carry typed facts, and only the narrative turns them into words.

Issue #10's guard: a view, provider or exporter that parsed an event's words would change its results whenever
a sentence was reworded, so no event carries text, and only the modules that show words to people import the
narrative. (tests/sim/test_event_payloads.py and test_vm_payloads.py check which payload each layer's events
carry; this checks every event of every run.)
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

from sim.core import events as schema
from sim.core.kfunc import result_facts
from sim.core.log import Event
from sim.kern.vfs_bio import Buf
from sim.kern.vfs_subr import VREG, Vnode
from sim.narrative import detail
from sim.run import Run, RunSpec, record
from sim.scenarios.registry import SCENARIOS
from sim.vm.vm_map import VmMapEntry, Vmspace
from sim.vm.vm_object import OBJT_DEFAULT, VmObject
from sim.vm.vm_page import VmPage
from sim.vm.vm_pager import MemoryVnode
from sim.vm.vm_param import MAP_ENTRY_COW, MAP_ENTRY_NEEDS_COPY, VM_PROT_READ, VM_PROT_WRITE
from tests.steps import scenario_run

ROOT = Path(__file__).resolve().parents[1]
# The modules outside sim/narrative that make words for people from events, and why each does.
NARRATIVE_READERS = {
    "app/views.py": "the stepper's sentence for each event",
    "app/routes_api.py": "the JSON API's `detail` and `narrative` of an event",
    "app/view_source.py": "the source view's list of the events that led to the current line",
    "app/view_vm.py": "the VM view's table cells: an entry's protection, inheritance and flags in words",
    "app/view_walk.py": "the page-walk view's line saying where a walk leads",
}
# The programs README.md lists, in small runs (the built-in scenarios run some of them with other arguments).
COMMANDS = (
    "getpid 3",
    "dd if=/dev/zero of=/dev/null bs=64k count=2 status=none",
    "ipc-static -t 65536 -b 8192 2proc",
    "ipc-dynamic -i local -t 65536 -b 8192 2thread",
    "fork 3",
    "exit 2",
    "thread",
    "setcontext",
    "eintr",
    "eintr -r",
    "write-file -s",
    "aio-write",
    "read-kernel-pointer",
    "clock-gettime",
)
PAYLOAD_TYPES = tuple(
    value
    for value in vars(schema).values()
    if isinstance(value, type) and issubclass(value, schema.Payload) and value is not schema.Payload
)


def test_an_event_has_no_text_field() -> None:
    assert Event.__struct_fields__ == ("t_ns", "kind", "name", "data", "deltas", "depth")


def is_fact(value: object) -> bool:
    """A typed payload, a number, a flag, nothing, or a plain tuple of those (a kernel function's results)."""
    if value is None or isinstance(value, (int, *PAYLOAD_TYPES)):
        return True
    return type(value) is tuple and all(is_fact(item) for item in value)


@cache
def command_run(command: str) -> Run:
    return record(RunSpec(command))


def assert_facts_only(run: Run) -> None:
    wordy = {(e.kind, e.name, repr(e.data)[:80]) for e in run.events if not is_fact(e.data)}
    assert not wordy, f"events with text (or live objects) as data: {sorted(wordy)[:10]}"
    wordy_deltas = {d[0] for e in run.events for d in e.deltas if any(isinstance(v, str) for v in d[2:])}
    assert not wordy_deltas, f"deltas with text values: {sorted(wordy_deltas)}"
    for event in run.events:
        assert isinstance(detail(event), str)  # the narrative has words for every event's facts (else TypeError)


@pytest.mark.parametrize("slug", sorted(SCENARIOS))
def test_every_event_of_a_scenario_carries_facts_not_words(slug: str) -> None:
    assert_facts_only(scenario_run(slug))


@pytest.mark.parametrize("command", COMMANDS)
def test_every_event_of_each_program_carries_facts_not_words(command: str) -> None:
    assert_facts_only(command_run(command))


VNODE = Vnode(VREG, "/tmp/lecture4")
ENTRY = VmMapEntry(0x7FFFFFFFF000, 0x800000000000, VmObject(5, OBJT_DEFAULT, 1), 0x2000, VM_PROT_READ,
                   VM_PROT_READ | VM_PROT_WRITE)  # fmt: skip
ENTRY.eflags = MAP_ENTRY_COW | MAP_ENTRY_NEEDS_COPY
ENTRY_WORDS = "<entry 0x7ffffffff000-0x800000000000 r--/rw- inherit=copy object 5+0x2000 COW|NEEDS_COPY>"
# What kernel functions return, and the words their exit events carried when they held str(result).
RESULTS_AND_WORDS = [
    (None, ""),
    (0, "0"),
    (-14, "-14"),
    (True, "True"),
    (False, "False"),
    ((0, 1001), "(0, 1001)"),
    ((0,), "(0,)"),
    ((), "()"),
    ((0, (3, 4)), "(0, (3, 4))"),
    ((0, None), "(0, None)"),
    (VmPage(0x49FF000), "page 0x49ff000"),
    (VmObject(14, OBJT_DEFAULT, 3), "object 14"),
    (Vmspace(None, None, 2), "vmspace 2"),  # type: ignore[arg-type]
    ((0, VNODE), "(0, vnode /tmp/lecture4)"),
    ((0, MemoryVnode("/dev/null", 0, lambda pindex: 0)), "(0, vnode /dev/null)"),
    (Buf(VNODE, 3, bytearray()), "buf /tmp/lecture4 block 3"),
    ((0, ENTRY, ENTRY.object, 0, 5, False), f"(0, {ENTRY_WORDS}, object 5, 0, 5, False)"),
    (VmMapEntry(0x1000, 0x3000, None, 0, 3, 7), "<entry 0x1000-0x3000 rw-/rwx inherit=copy anonymous (no object yet)>"),
]


@pytest.mark.parametrize(("result", "words"), RESULTS_AND_WORDS, ids=[w for _, w in RESULTS_AND_WORDS])
def test_a_kernel_function_s_result_is_recorded_as_facts_and_worded_as_before(result: object, words: str) -> None:
    facts = result_facts(result, "vm_map_lookup")
    assert is_fact(facts)
    assert detail(Event(0, "exit", "vm_map_lookup", facts, (), 1)) == words


@pytest.mark.parametrize("result", ["0", 1.5, [0, 1], (0, "vnode /dev/null"), object()], ids=repr)
def test_a_result_with_no_facts_declared_is_refused_naming_its_type_and_function(result: object) -> None:
    with pytest.raises(TypeError, match=r"namei\(\) returned a (str|float|list|object)"):
        result_facts(result, "namei")


def narrative_imports(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.startswith("sim.narrative") or (
                module == "sim" and any(a.name == "narrative" for a in node.names)
            ):
                return True
        if isinstance(node, ast.Import) and any(alias.name.startswith("sim.narrative") for alias in node.names):
            return True
    return False


def test_only_the_narrative_readers_make_words_from_events() -> None:
    modules = [p for folder in ("sim", "app") for p in (ROOT / folder).rglob("*.py")]
    assert all((ROOT / reader).is_file() for reader in NARRATIVE_READERS)
    readers = {
        p.relative_to(ROOT).as_posix()
        for p in modules
        if not p.is_relative_to(ROOT / "sim" / "narrative") and narrative_imports(p)
    }
    assert readers <= NARRATIVE_READERS.keys(), (
        f"modules reading event words: {sorted(readers - NARRATIVE_READERS.keys())}"
    )
