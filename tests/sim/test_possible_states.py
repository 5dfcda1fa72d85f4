"""No step of any run shows the CPU in a state it cannot be in: a property over every step of many runs.

- In user mode %rip is a user address; in kernel mode, inside a kernel function, %rip is in that function (but at
  a step that moves it itself: a trap to its vector, iretq, a context switch's load).
- In kernel mode below the entry point (a kernel function called from another) %rsp is on a kernel stack: the
  syscall path switches to it first thing, a trap from user mode through the TSS, and a thread the scheduler
  starts (the idle thread, a kernel process, a new thread) starts on its own.
- %cr2 holds an address only once a page fault has put it there.
- What a step says %rip was is what the step before showed, and %rip is marked changed exactly when it moved.
"""

from __future__ import annotations

import pytest

from sim.kern.kernel import KernelConfig
from sim.kern.ksyms import kernel_symbol
from sim.replay import KERNEL_FUNCTION_SPAN, Replay
from sim.run import RunSpec, record
from sim.scenarios.registry import SCENARIOS
from sim.vm.vm_param import VM_MAXUSER_ADDRESS

# Every scenario at its defaults but dd's (its 10 MiB buffer is the same steps 2,560 times: a smaller one here),
# and runs that exercise other paths: threads, signals, both profiles, SMAP, the kernel's own bug.
SMALL_DD = "dd if=/dev/zero of=/dev/null bs=256k count=2"
EXTRA = [
    RunSpec(SMALL_DD),
    RunSpec(f"MALLOC_CONF=junk:false {SMALL_DD}", profile="modern"),
    RunSpec("ipc-static -B -b 8192 -t 65536 2proc"),
    RunSpec("ipc-static -B -b 4096 -t 65536 -i local 2thread"),
    RunSpec("getpid 3", config=KernelConfig(smap=True, ktrace=True, audit=True)),
    RunSpec("kernel-bug user", config=KernelConfig(smap=True)),
]
SPECS = [s.spec() for s in SCENARIOS.values() if not s.command.startswith("dd ")] + EXTRA


def violations(spec: RunSpec) -> list[str]:
    run = record(spec)
    found = []
    faulted = False
    shown_rip = None
    for state in Replay(run).states():
        regs, stack, event = state.registers, state.stack, state.event
        where = f"{spec.command!r} step {state.step} ({event.kind} {event.name})"
        faulted = faulted or (event.kind == "trap" and event.name == "#PF")
        if regs["cpl"] == 3 and regs["rip"] >= VM_MAXUSER_ADDRESS:
            found.append(f"{where}: CPL 3 with a kernel %rip {regs['rip']:#x}")
        jumped = any(d[0] == "reg" and d[1] == "rip" for d in event.deltas)  # a trap, iretq, cpu_switch's load
        if regs["cpl"] == 0 and stack:
            start = kernel_symbol(stack[-1])
            if not jumped and not start <= regs["rip"] < start + KERNEL_FUNCTION_SPAN:
                found.append(f"{where}: %rip {regs['rip']:#x} is not in {stack[-1]}()")
            if len(stack) > 1 and regs["rsp"] < VM_MAXUSER_ADDRESS:
                found.append(f"{where}: {stack[-1]}() runs on a user stack, %rsp {regs['rsp']:#x}")
        if regs["cr2"] and not faulted:
            found.append(f"{where}: %cr2 is {regs['cr2']:#x} but no page fault has happened")
        if shown_rip is not None and state.rip_before != shown_rip:  # what "was" says is what the last step showed
            found.append(f"{where}: %rip was {shown_rip:#x}, the step says it was {state.rip_before:#x}")
        if ("rip" in state.changed_registers) != (regs["rip"] != shown_rip) and shown_rip is not None:
            found.append(f"{where}: %rip moved without being marked changed, or the other way round")
        shown_rip = regs["rip"]
    return found


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.command} [{s.profile}]")
def test_no_step_shows_an_impossible_cpu_state(spec):
    found = violations(spec)
    assert not found, f"{len(found)} impossible states, the first: " + "; ".join(found[:5])
