"""Exercises generated from a seed (OSTEP's homework style): the same kind and seed always give the same question,
and every seed gives a variant, so a class can have unlimited ones. Each answer is read from a recorded run, never
written here, and the explanation links to the step of that run that shows it.

  - pagewalk: a virtual address and the page-table entries a walk of it would read: which physical address, or
    a page fault?
  - faults: a dd command line: how many demand-zero faults does dd's buffer take, and in which mode?
  - hooks: getpid() with some of ktrace, ptrace, DTrace and audit switched on: which hook functions run?
"""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from sim.core.events import FaultResolved
from sim.kern.kernel import KernelConfig
from sim.machine.physmem import PAGE_SIZE
from sim.run import Run, RunSpec
from sim.vm.pagewalk import format_pagewalk, pagewalk

GetRun = Callable[[RunSpec], Awaitable[Run]]
MAX_SEED = (1 << 31) - 1
PAGEWALK_PROGRAMS = ("trapvec", "cow", "fork", "setcontext", "thread", "clock-gettime", "eintr")  # each faults
DD_SIZES = ("64k", "128k", "256k", "512k", "1m")
HOOK_SWITCHES = {"ktrace": "ktrace", "ptrace": "ptrace", "dtrace": "dtrace_syscall", "audit": "audit"}
LEVEL_NAMES = ("PML4", "PDPT", "PD", "PT")


@dataclass(frozen=True)
class Exercise:
    kind: str
    seed: int
    prompt: str
    command: str
    answer_kind: str  # "text" (one value), "choice" (one of choices) or "choices" (a subset of choices)
    answer: tuple[str, ...]  # the right answer: one value, or the right subset (sorted)
    explanation: str
    evidence_url: str  # the stepping page at the step that shows the answer
    choices: tuple[str, ...] = ()
    tables: tuple[tuple[str, int, tuple[tuple[int, int], ...]], ...] = field(default=())  # pagewalk's levels


@dataclass(frozen=True)
class Verdict:
    right: bool
    message: str


def _rng(kind: str, seed: int) -> random.Random:
    return random.Random(f"{kind}:{seed}")  # seeded by a string: the same on every Python and platform


def _command_url(command: str, step: int, views: str, config: dict[str, str] | None = None) -> str:
    query = {"command": command, **(config or {}), "views": views, "step": str(step)}
    return "/scenarios/command?" + urlencode(query, safe=",:")


# ---------------------------------------------------------------- page walk


async def pagewalk_exercise(seed: int, get_run: GetRun) -> Exercise:
    rng = _rng("pagewalk", seed)
    command = rng.choice(PAGEWALK_PROGRAMS)
    run = await get_run(RunSpec(command=command))
    pid = min(run.page_tables)
    faults = [(i, e.data) for i, e in enumerate(run.events) if isinstance(e.data, FaultResolved)]
    mapped = sorted({data.va & ~(PAGE_SIZE - 1) for _, data in faults if "pa" in pagewalk(run, data.va, pid)})
    base = rng.choice(mapped)
    holes = [k for k in range(1, 64) if "fault" in pagewalk(run, base + k * PAGE_SIZE, pid)]
    page = base + rng.choice(holes) * PAGE_SIZE if holes and rng.random() < 0.4 else base
    va = page + rng.randrange(PAGE_SIZE)
    walk = pagewalk(run, va, pid)
    snapshot = run.page_tables[pid]
    tables = []
    for level, read in zip(LEVEL_NAMES, walk["levels"], strict=False):
        low = max(0, min(read["index"] - rng.randrange(3), 509))
        entries = tuple((i, snapshot.read_entry(read["table"] + 8 * i)) for i in range(low, low + 3))
        tables.append((level, read["table"], entries))
    if "pa" in walk:
        answer = f"{walk['pa']:#x}"
        step = next(i for i, data in reversed(faults) if data.pa == walk["pa"] & ~(PAGE_SIZE - 1))
        why = f"the page was mapped by this {run.events[step].name} fault"
    else:
        answer = "fault"
        step = len(run.events) - 1
        why = "no fault ever mapped this page: the VM view at the run's end shows the map"
    return Exercise(
        kind="pagewalk",
        seed=seed,
        prompt=(
            f"At the end of `{command}`, pid {pid}'s %cr3 is {snapshot.cr3:#x}. Below are three entries of each "
            f"page-table page a walk of virtual address {va:#x} reads. Which physical address does the MMU "
            "translate it to? Answer with the address in hex, or `fault` if the walk finds no translation."
        ),
        command=command,
        answer_kind="text",
        answer=(answer,),
        explanation=f"{format_pagewalk(walk)}\nThe evidence: {why}.",
        evidence_url=_command_url(command, step, "narrative,walk,vm"),
        tables=tuple(tables),
    )


# ---------------------------------------------------------------- dd's faults


def _fault_choice(user: int, kernel: int) -> str:
    return f"{user:,} in user mode, {kernel:,} in kernel mode"


async def faults_exercise(seed: int, get_run: GetRun) -> Exercise:
    rng = _rng("faults", seed)
    bs, count, junk = rng.choice(DD_SIZES), rng.randint(1, 3), rng.choice(("true", "false"))
    conv_sync = junk == "false" and rng.random() < 0.5
    command = f"MALLOC_CONF=junk:{junk} dd if=/dev/zero of=/dev/null bs={bs} count={count}"
    command += " conv=sync" if conv_sync else ""
    run = await get_run(RunSpec(command=command))
    user, kernel, first_step = dd_buffer_faults(run)
    pages = max(user + kernel, 1)
    half = pages // 2 or 1
    candidates = {
        _fault_choice(user, kernel),
        _fault_choice(2 * half, 0),
        _fault_choice(half, 0),
        _fault_choice(0, half),
        _fault_choice(0, 2 * half),
        _fault_choice(half, half),
        _fault_choice(0, count * half),
    }
    choices = sorted(candidates)
    rng.shuffle(choices)
    return Exercise(
        kind="faults",
        seed=seed,
        prompt=(
            f"`{command}` mallocs one buffer for an input and an output block. How many demand-zero (zero_fill) "
            "faults do the pages of that buffer take, and in which mode?"
        ),
        command=command,
        answer_kind="choice",
        answer=(_fault_choice(user, kernel),),
        explanation=(
            f"The buffer's pages took {user:,} zero-fill faults in user mode and {kernel:,} in kernel mode. "
            + ("jemalloc junk-fills the whole buffer from user mode before dd uses it. " if junk == "true" else "")
            + ("conv=sync: dd memsets the input block before each read(), in user mode. " if conv_sync else "")
            + (
                "Without junk filling, read()'s copyout from /dev/zero is the first touch, in kernel mode; "
                "the output half is never touched. "
                if junk == "false" and not conv_sync
                else ""
            )  # fmt: skip
            + "The faults happen once per page, whatever count is: the buffer is reused."
        ),
        evidence_url=_command_url(command, first_step, "narrative,timeline,vm,latency"),
        choices=tuple(choices),
    )


def dd_buffer_faults(run: Run) -> tuple[int, int, int]:
    """Zero-fill faults on dd's buffer (from its first read's buffer, for twice the bytes read), by mode, and the
    step of the first."""
    events = run.events
    main = next(i for i, e in enumerate(events) if e.kind == "user" and e.name == "main")
    read = next(i for i in range(main, len(events)) if events[i].kind == "syscall" and events[i].name == "read")
    buf, nbyte = events[read].data.values[1:]
    user = kernel = 0
    first_step, in_user = 0, True
    for step, event in enumerate(events):
        if event.kind == "trap":
            in_user = event.data.user
        elif event.kind == "fault" and event.name == "zero_fill" and 0 <= event.data.va - buf < 2 * nbyte:
            first_step = first_step or step
            user, kernel = (user + 1, kernel) if in_user else (user, kernel + 1)
    return user, kernel, first_step


# ---------------------------------------------------------------- hooks


def _getpid_hooks(run: Run) -> tuple[set[str], int]:
    """The functions entered between getpid's syscall instruction and its sysretq, and the step of the first
    after the argument fetch (where the hooks begin)."""
    events = run.events
    dispatched = next(i for i, e in enumerate(events) if e.kind == "syscall" and e.name == "getpid")
    start = max(i for i in range(dispatched) if events[i].kind == "insn" and events[i].name == "syscall")
    end = next(i for i in range(dispatched, len(events)) if events[i].kind == "insn" and events[i].name == "sysretq")
    entered = {events[i].name: i for i in range(end, start, -1) if events[i].kind == "enter"}
    return set(entered), min(entered.values(), default=start)


async def hooks_exercise(seed: int, get_run: GetRun) -> Exercise:
    rng = _rng("hooks", seed)
    switches = sorted(rng.sample(sorted(HOOK_SWITCHES), rng.randint(1, 2)))
    config = KernelConfig(**{HOOK_SWITCHES[name]: True for name in switches})
    run = await get_run(RunSpec(command="getpid", config=config))
    plain = await get_run(RunSpec(command="getpid"))
    every = await get_run(RunSpec(command="getpid", config=KernelConfig(**dict.fromkeys(HOOK_SWITCHES.values(), True))))
    baseline, _ = _getpid_hooks(plain)
    hooks = sorted(_getpid_hooks(every)[0] - baseline)
    entered, _ = _getpid_hooks(run)
    answer = tuple(sorted(entered - baseline))
    first_hook = min(i for i, e in enumerate(run.events) if e.kind == "enter" and e.name in answer)
    on = " and ".join(switches)
    return Exercise(
        kind="hooks",
        seed=seed,
        prompt=(
            f"getpid() runs with {on} switched on (everything else off). Which of these hook functions does the "
            "kernel enter during the call (the others are only a flag test that is skipped)?"
        ),
        command="getpid",
        answer_kind="choices",
        answer=answer,
        explanation=(
            f"With {on} on, syscallenter and syscallret enter {', '.join(answer)}; the other hooks' flag tests "
            "fail and they are skipped. Each hook that runs costs time: compare the call's length on the timeline "
            "with the getpid scenario's."
        ),
        evidence_url=_command_url("getpid", first_hook, "narrative,timeline,source", {name: "1" for name in switches}),
        choices=tuple(hooks),
    )


GENERATORS: dict[str, tuple[str, Callable[[int, GetRun], Awaitable[Exercise]]]] = {
    "pagewalk": ("Page-table walk: which physical address, or which fault?", pagewalk_exercise),
    "faults": ("Fault prediction: how many demand-zero faults, in which mode?", faults_exercise),
    "hooks": ("System-call cost: which hooks run?", hooks_exercise),
}


def check(exercise: Exercise, submitted: list[str]) -> Verdict:
    """Is `submitted` (the form's values) the right answer? The message says what was wrong."""
    if exercise.answer_kind == "text":
        given = _normalise_address(submitted[0] if submitted else "")
        if given is None:
            return Verdict(False, "Answer with a physical address in hex (such as 0x4015a3c) or the word fault.")
        right = given == exercise.answer[0]
        return Verdict(right, "Right." if right else f"Not {given}: the walk gives {exercise.answer[0]}.")
    if exercise.answer_kind == "choice":
        right = submitted == list(exercise.answer)
        return Verdict(right, "Right." if right else f"Not that: {exercise.answer[0]}.")
    chosen = set(submitted)
    missing, extra = set(exercise.answer) - chosen, chosen - set(exercise.answer)
    if not missing and not extra:
        return Verdict(True, "Right.")
    parts = [
        f"also runs: {', '.join(sorted(missing))}" if missing else "",
        f"skipped: {', '.join(sorted(extra))}" if extra else "",
    ]
    return Verdict(False, "Not quite: " + "; ".join(p for p in parts if p) + ".")


def _normalise_address(text: str) -> str | None:
    text = text.strip().lower()
    if text in ("fault", "page fault", "#pf"):
        return "fault"
    if not re.fullmatch(r"(0x)?[0-9a-f]{1,16}", text):
        return None
    return f"{int(text, 16):#x}"
