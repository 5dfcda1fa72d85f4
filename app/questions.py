"""Predict, then reveal: the questions a lecturer can pose at a step, and their answers read from the run's log.

The lecturer never types an answer in: each kind of question says which later part of the recorded run settles
it (the next page fault before the program's next instruction, the next trap's ring, the next walk's outcome, the
next system call's errno), and the truth is computed from the log when the question is posed. Students choose
among fixed choices, so an answer is one of a few short words and never text a student typed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.navigate import LogIndex
from app.view_walk import walk_view
from sim.core.log import Event
from sim.kern.errno import NAMES as ERRNO_NAMES
from sim.run import Run


@dataclass(frozen=True)
class Truth:
    choice: str  # one of the question's choices
    step: int | None  # the step that settles it (None: the run ends first)
    detail: str  # what happened there, in a sentence


@dataclass(frozen=True)
class QuestionKind:
    slug: str
    label: str  # what the lecturer's menu calls it
    prompt: str  # what students read
    choices: tuple[str, ...]
    settle: Callable[[LogIndex, Run, int], Truth]


def _next_program_step(index: LogIndex, run: Run, step: int) -> int | None:
    """The program's next instruction after `step`: a user-mode step, or an instruction (syscall) run in ring 3."""
    user = LogIndex.next_after(index.positions("user"), step)
    insns = index.positions("insn")
    for at in insns[LogIndex.count_until(insns, step) :]:
        if user is not None and at > user:
            break
        if _cpl_before(index, at, run.initial_registers["cpl"]) == 3:
            return at
    return user


def _cpl_before(index: LogIndex, step: int, initial_cpl: int) -> int:
    """The CPL in effect just before `step` ran: the last ring change before it, or the run's first CPL."""
    i = LogIndex.count_until(index.ring_changes, step - 1)
    return index.ring_cpl[i - 1] if i else initial_cpl


def settle_fault(index: LogIndex, run: Run, step: int) -> Truth:
    fault = LogIndex.next_after(index.positions("trap", "#PF"), step)
    until = _next_program_step(index, run, step)
    if fault is not None and (until is None or fault < until):
        return Truth("yes", fault, f"step {fault}: a page fault (#PF) is taken before the program's next instruction")
    if until is None:
        return Truth("no", None, "the run ends without another page fault or instruction of the program")
    name = run.events[until].name
    return Truth("no", until, f"the program's next instruction, {name}, runs at step {until} without a page fault")


RING_CHOICES = ("ring 3 (user mode)", "ring 0 (kernel mode)", "no trap follows")


def settle_ring(index: LogIndex, run: Run, step: int) -> Truth:
    trap = LogIndex.next_after(index.positions("trap"), step)
    if trap is None:
        return Truth(RING_CHOICES[2], None, "no trap is taken in the rest of the run")
    cpl = _cpl_before(index, trap, run.initial_registers["cpl"])
    choice = RING_CHOICES[0] if cpl == 3 else RING_CHOICES[1]
    return Truth(choice, trap, f"step {trap}: {run.events[trap].name} is taken in {choice}")


WALK_CHOICES = (
    "PML4: entry not present",
    "PDPT: entry not present",
    "PD: entry not present",
    "PT: entry not present",
    "all present, but the access is not allowed",
    "none: the walk finds the page",
    "no walk follows",
)


def settle_walk(index: LogIndex, run: Run, step: int) -> Truth:
    events = run.events
    miss = LogIndex.next_after(index.positions("tlb", "miss"), step)
    if miss is None:
        return Truth(WALK_CHOICES[-1], None, "no page-table walk in the rest of the run")
    end = min(miss + 6, len(events) - 1)  # a walk is its miss, at most four levels and a fill or a trap
    walk = walk_view(index, events, end)
    missing = next((level for level in walk.levels if not level.present), None)
    va = f"{walk.va:#x}" if walk.va is not None else "the address"
    if missing is not None:
        choice = next(c for c in WALK_CHOICES if c.startswith(f"{missing.table_label}:"))
        return Truth(choice, miss, f"step {miss}: the walk for {va} stops at its {missing.label}: not present")
    if walk.outcome == "fault":
        return Truth(WALK_CHOICES[4], miss, f"step {miss}: every entry for {va} is present, but one forbids it")
    return Truth(WALK_CHOICES[5], miss, f"step {miss}: the walk for {va} reaches its page")


ERRNO_CHOICES = ("success", "EFAULT", "EINTR", "EBADF", "EINVAL", "ENOSYS", "ERESTART (restarted)", "another")
NO_SYSCALL = "no system call follows"


def _errno_of(event: Event) -> int:
    """A failed call's errno: the typed payload's, else the value cpu_set_syscall_retval put in tf_rax."""
    error = getattr(event.data, "error", None)
    if isinstance(error, int):
        return error
    for delta in event.deltas:
        if delta[0] == "tf" and delta[1] == "tf_rax":
            return delta[3]
    return 0


def settle_errno(index: LogIndex, run: Run, step: int) -> Truth:
    events = run.events
    ret = LogIndex.next_after(index.positions("sysret"), step)
    if ret is None:
        return Truth(NO_SYSCALL, None, "no system call returns in the rest of the run")
    call = LogIndex.previous_before(index.positions("syscall"), ret)
    name = events[call].name if call is not None else "the system call"
    outcome = events[ret].name
    if outcome == "success":
        return Truth("success", ret, f"step {ret}: {name} succeeds")
    if outcome == "ERESTART":
        return Truth("ERESTART (restarted)", ret, f"step {ret}: {name} is restarted (ERESTART)")
    errno = _errno_of(events[ret]) if outcome == "error" else 0
    errno_name = ERRNO_NAMES.get(errno, outcome)
    choice = errno_name if errno_name in ERRNO_CHOICES else "another"
    return Truth(choice, ret, f"step {ret}: {name} returns {errno_name}" + (f" ({errno})" if errno else ""))


KINDS: dict[str, QuestionKind] = {
    kind.slug: kind
    for kind in (
        QuestionKind(
            "fault",
            "Page fault next?",
            "Will a page fault happen before the program's next instruction runs?",
            ("yes", "no"),
            settle_fault,
        ),
        QuestionKind(
            "ring",
            "Ring of the next trap?",
            "In which ring is the CPU when the next trap (an exception such as a page fault) is taken?",
            RING_CHOICES,
            settle_ring,
        ),
        QuestionKind(
            "walk",
            "Where does the next walk stop?",
            "Which page-table level stops the next page-table walk?",
            WALK_CHOICES,
            settle_walk,
        ),
        QuestionKind(
            "errno",
            "errno of the next system call?",
            "What will the next system call return?",
            (*ERRNO_CHOICES, NO_SYSCALL),
            settle_errno,
        ),
    )
}
