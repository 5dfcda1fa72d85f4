"""View models for the stepping page: what a template shows, already formatted, from one StepState.

Templates only lay these out; the words and number formats a student reads are decided here, once, so the HTML
fragment and the JSON API say the same thing about a step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sim.core.log import EVENT_KINDS, Event
from sim.kern.proc import TRAPFRAME_LAYOUT
from sim.machine.cpu import (
    CR4_PGE,
    CR4_SMAP,
    CR4_SMEP,
    GENERAL_REGISTERS,
    KERNEL_CPL,
    PSL_AC,
    PSL_C,
    PSL_D,
    PSL_I,
    PSL_NT,
    PSL_T,
    REGISTERS,
    USER_CPL,
)
from sim.machine.mmu import flags_text
from sim.narrative import detail as event_detail
from sim.narrative import words
from sim.replay import StepState
from sim.scenarios.registry import Scenario

RFLAGS_BITS = (("CF", PSL_C), ("TF", PSL_T), ("IF", PSL_I), ("DF", PSL_D), ("NT", PSL_NT), ("AC", PSL_AC))
CR4_BITS = (("PGE", CR4_PGE), ("SMEP", CR4_SMEP), ("SMAP", CR4_SMAP))
DELTA_SUBJECTS = {"reg": "register", "tf": "trapframe", "td": "thread", "errno": "errno of thread"}
DECIMAL_NOTE_REGISTERS = set(GENERAL_REGISTERS) - {"r11"}  # SYSCALL leaves rflags in r11: flags, not a number
DECIMAL_DELTA_KINDS = {"td", "errno"}
HEX_TD_FIELDS = {"pcb_onfault", "td_flags", "td_pflags", "td_sigmask"}  # an address and bit sets: hex reads better
FAULT_WORDS = {
    "zero_fill": "a demand-zero fill, a fresh page zeroed",
    "cow": "copy-on-write, the page copied for this process",
    "soft": "a soft fault, the page was already resident",
    "hard": "a hard fault, the page read from its pager",
    "protection": "a protection violation",
    "unmapped": "no mapping at that address",
}  # return values, pids and errno values read best in decimal


@dataclass(frozen=True)
class Ring:
    cpl: int

    @property
    def mode(self) -> str:
        return {USER_CPL: "user", KERNEL_CPL: "kernel"}.get(self.cpl, f"ring {self.cpl}")

    @property
    def label(self) -> str:
        """Said in words as well as shown in colour: 'CPL 3 · user mode'."""
        return f"CPL {self.cpl} · {self.mode} mode"


@dataclass(frozen=True)
class ValueRow:
    name: str
    value: str  # formatted, e.g. "0x3e8"
    note: str  # what the value means, e.g. "1000" or "IF"; may be empty
    changed: bool  # written at this step
    was: str | None  # the formatted value before this step, when changed


@dataclass(frozen=True)
class FlagChip:
    """One bit of rflags or CR4, set or clear, with what it means; shown in words as well as colour."""

    register: str
    name: str
    on: bool
    meaning: str
    changed: bool  # this step flipped it


RFLAGS_MEANINGS = {
    "CF": "carry: set by the kernel when a system call fails (libc's jb cerror)",
    "TF": "trap flag: single-step",
    "IF": "interrupts enabled",
    "DF": "direction flag",
    "NT": "nested task",
    "AC": "alignment check: with SMAP, stac sets it to let the kernel touch user pages",
}
CR4_MEANINGS = {
    "PGE": "global pages: kernel TLB entries survive a %cr3 reload",
    "SMEP": "the kernel may not execute user pages",
    "SMAP": "the kernel may not touch user pages unless rflags.AC is set (stac)",
}


def flag_chips(registers: dict[str, int], old: dict[str, int]) -> tuple[FlagChip, ...]:
    chips = []
    for register, bits, meanings in (("rflags", RFLAGS_BITS, RFLAGS_MEANINGS), ("cr4", CR4_BITS, CR4_MEANINGS)):
        value = registers.get(register, 0)
        before = old.get(register, value)
        for name, bit in bits:
            chips.append(FlagChip(register, name, bool(value & bit), meanings[name], bool((value ^ before) & bit)))
    return tuple(chips)


@dataclass(frozen=True)
class StepView:
    scenario: Scenario
    step: int
    last_step: int
    t_ns: int
    ring: Ring
    ring_changed_from: Ring | None  # the ring before this step, when this step changed it
    event: Event
    kind_meaning: str  # sim.core.log.EVENT_KINDS's description of the event's kind
    narrative: str
    registers: tuple[ValueRow, ...]
    trapframe: tuple[ValueRow, ...]
    stack: tuple[str, ...]  # kernel frames, innermost first
    changes: tuple[str, ...]  # every delta of this step, in words
    errno: int
    url_for_step: Callable[[int], str]
    timeline_window: tuple[int, int]  # the time range the timeline shows at this step (figures.focus_window)
    flags: tuple[FlagChip, ...] = ()  # rflags and CR4 bit by bit

    @property
    def previous_step(self) -> int | None:
        return self.step - 1 if self.step > 0 else None

    @property
    def next_step(self) -> int | None:
        return self.step + 1 if self.step < self.last_step else None

    @property
    def is_kernel(self) -> bool:
        return self.ring.cpl == KERNEL_CPL


def hex_value(value: int) -> str:
    return f"{value:#x}" if value >= 0 else f"-{-value:#x}"


def _bits(value: int, bits: tuple[tuple[str, int], ...]) -> str:
    return " ".join(name for name, bit in bits if value & bit) or "none set"


def value_note(name: str, value: int) -> str:
    """What a register or trapframe value means, beside its hex: flag names, a mode, or the decimal."""
    if name == "cpl":
        return Ring(value).mode
    if name in ("rflags", "tf_rflags"):
        flags = [flag for flag, bit in RFLAGS_BITS if value & bit]
        if not value & PSL_I:
            flags.append("IF clear: interrupts off")
        return ", ".join(flags)
    if name == "cr4":
        return _bits(value, CR4_BITS)
    if name == "cr2":
        return "the address of the last page fault" if value else ""
    if name == "cr3":
        return "the page-table root (PML4)" if value else ""
    if name.removeprefix("tf_") in DECIMAL_NOTE_REGISTERS and 10 <= value < 1_000_000:
        return str(value)  # a small number in a general register is a count, a pid or a syscall number
    return ""


def _rows(values: dict[str, int], order: tuple[str, ...], changed_at_step: dict[str, int]) -> tuple[ValueRow, ...]:
    names = [name for name in order if name in values] + [name for name in values if name not in order]
    return tuple(
        ValueRow(
            name=name,
            value=hex_value(values[name]) if name != "cpl" else str(values[name]),
            note=value_note(name, values[name]),
            changed=name in changed_at_step,
            was=(hex_value(changed_at_step[name]) if name != "cpl" else str(changed_at_step[name]))
            if name in changed_at_step
            else None,
        )
        for name in names
    )


def _old_values(event: Event, kind: str) -> dict[str, int]:
    """field -> its value before this step, for each field of `kind` ("reg", "tf") the step wrote (first write)."""
    old: dict[str, int] = {}
    for delta in event.deltas:
        if delta[0] == kind and len(delta) == 4:
            old.setdefault(delta[1], delta[2])
    return old


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def narrate(event: Event) -> str:
    """The event in a sentence, from its kind (sim/log.EVENT_KINDS), name and detail.

    A sentence may begin with a kernel name (`sys_getpid() returns 0.`): code names keep their case.
    """
    kind, name, detail = event.kind, event.name, event_detail(event)
    tail = f": {detail}" if detail else ""
    match kind:
        case "start":
            text = f"The run begins{tail}"
        case "user":
            text = f"User mode runs `{name}`{tail}"
        case "insn":
            text = f"The CPU executes `{name}`{tail}"
        case "enter":
            text = f"The kernel calls {name}()"
        case "exit":
            text = f"{name}() returns" + (f" {detail}" if detail else "")
        case "hook" if name.endswith("_fault") or name == "fusu":
            text = f"{name}: the copy routine's error path (pcb_onfault's label){tail}"
        case "hook" if name == "IN_CAPABILITY_MODE":
            text = f"The capability-mode check refuses the call{tail}"
        case "hook":
            text = f"{name} runs{tail}"
        case "skip":
            text = f"{name} is skipped, costing only its flag test" + (f" ({detail})" if detail else "")
        case "syscall":
            text = f"System call {name} is dispatched: syscallenter calls its handler through the sysent table" + (
                f" ({detail})" if detail else ""
            )
        case "sysret":
            text = f"The system call's result is set in the trapframe ({name}){tail}"
        case "trap":
            text = f"The CPU takes a trap, {name}" + (f": {detail}" if detail else "")
        case "fault":
            how = FAULT_WORDS.get(name, name)
            text = f"vm_fault resolves the page fault: {how} ({name})" + (f"; {detail}" if detail else "")
        case "walk":
            text = f"The MMU reads the {name} of the walk: {detail}" if detail else f"The MMU reads a {name}"
        case "tlb" if name == "miss":
            text = f"TLB miss: {detail}" if detail else "TLB miss"
        case "tlb" if name == "fill":
            text = f"TLB fill: the translation {detail}" if detail else "TLB fill"
        case "mem":
            text = f"Memory changes ({name})" + (f": {detail}" if detail else "")
        case "end":
            text = "The run is complete" if detail == "the run is complete" else f"The run ends{tail}"
        case _:
            meaning = EVENT_KINDS.get(kind, f"a {kind} event")
            text = f"{meaning[:1].upper()}{meaning[1:]}: {name}" + (f" ({detail})" if detail else "")
    return _sentence(text)


def describe_delta(delta: tuple) -> str:
    """One recorded state change in words. Machine words (registers, PTEs, addresses) are shown in hex; a
    delta kind this module does not know is shown field by field, so new kinds are readable at once."""
    kind = delta[0]
    subject = DELTA_SUBJECTS.get(kind, kind)
    if kind == "thread" and len(delta) == 3:
        return f"thread on the CPU: {delta[1]} → {delta[2]}"
    if len(delta) == 4 and kind in VM_DELTAS:
        return _describe_vm_delta(*delta)
    as_hex = kind not in DECIMAL_DELTA_KINDS or (kind == "td" and delta[1] in HEX_TD_FIELDS)
    if len(delta) == 4:
        field = delta[1] if isinstance(delta[1], str) else _format(delta[1], as_hex)
        old, new = (_format(value, as_hex and delta[1] != "cpl") for value in delta[2:])
        return f"{subject} {field}: {old} → {new}"
    return f"{subject}: " + ", ".join(_format(part, as_hex) for part in delta[1:])


VM_DELTAS = ("pte", "page", "frame", "map", "object", "ktf")


def _describe_vm_delta(kind: str, key: object, old: object, new: object) -> str:
    """A VM delta in words: which PTE, page, frame, map entry or object, and its old and new state."""
    if kind == "pte" and isinstance(key, int) and isinstance(old, int) and isinstance(new, int):
        return f"page-table entry at {key:#x}: {old:#x} ({flags_text(old)}) → {new:#x} ({flags_text(new)})"
    if kind in ("page", "frame") and isinstance(key, int):
        what = "vm_page of frame" if kind == "page" else "contents of frame"
        return f"{what} {key << 12:#x}: {words(old)} → {words(new)}"
    if kind == "map":
        return f"vm_map entry {words(key)}: {words(old) if old else 'none'} → {words(new) if new else 'removed'}"
    if kind == "object":
        return f"vm_object {key}: {words(old) if old else 'none'} → {words(new)}"
    return f"kernel trapframe {key}: {_format(old, True)} → {_format(new, True)}"


def _format(value: object, as_hex: bool) -> str:
    if value is None:
        return "none"
    if isinstance(value, int) and not isinstance(value, bool) and as_hex and not 0 <= value < 10:
        return hex_value(value)
    return str(value)


def step_view(
    scenario: Scenario,
    state: StepState,
    last_step: int,
    url_for_step: Callable[[int], str],
    timeline_window: tuple[int, int],
) -> StepView:
    event = state.event
    old_registers = _old_values(event, "reg")
    old_registers.pop("rip", None)
    if "rip" in state.changed_registers:  # as the step before showed it (sim/replay.py puts it in the kernel function)
        old_registers["rip"] = state.rip_before
    return StepView(
        scenario=scenario,
        step=state.step,
        last_step=last_step,
        t_ns=state.t_ns,
        ring=Ring(state.cpl),
        ring_changed_from=Ring(old_registers["cpl"]) if "cpl" in old_registers else None,
        event=event,
        kind_meaning=EVENT_KINDS.get(event.kind, event.kind),
        narrative=narrate(event),
        registers=_rows(state.registers, REGISTERS, old_registers),
        trapframe=_rows(state.trapframe, TRAPFRAME_LAYOUT, _old_values(event, "tf")),
        stack=tuple(reversed(state.stack)),
        changes=tuple(describe_delta(delta) for delta in event.deltas),
        errno=state.errno,
        url_for_step=url_for_step,
        timeline_window=timeline_window,
        flags=flag_chips(state.registers, old_registers),
    )
