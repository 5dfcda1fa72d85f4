"""The probe effect of armed DTrace probes: each firing of an enabled probe costs the machine time.

What a firing costs on FreeBSD 11/amd64, and how it is charged here (the D side, sim/trace/dtrace.py, decides what
is armed; KernelConfig carries it; this module charges for it):

- fbt (sys/cddl/dev/fbt/x86/fbt_isa.c): enabling fbt::f:entry overwrites f's `pushq %rbp` with int3
  (FBT_PATCHVAL 0xcc), and fbt::f:return each of f's `ret`s. Reaching one raises #BP: the IDT's bpt vector and
  alltraps save a trapframe, and since a kernel-mode T_BPTFLT is DTrace's, alltraps jumps to
  dtrace_invop_jump_addr instead of calltrap (sys/amd64/amd64/exception.S); dtrace_invop_start calls
  dtrace_invop, which asks each handler, fbt_invop, whether the address is its patch point; fbt_invop calls
  dtrace_probe; back in dtrace_invop_start the displaced instruction (the push or the ret) is emulated and IRETQ
  resumes (sys/cddl/dev/dtrace/amd64/dtrace_asm.S, dtrace_subr.c). trap() never runs for it: no fbt::trap probe
  fires and v_trap does not count it. Charged at each @kfunc frame's entry and return (EventLog.probe_hook,
  called where those instructions are: inside the frame, so the cost is the probed function's own time).
- profile (sys/cddl/dev/profile/profile.c): profile-N and tick-N add a cyclic that fires every period from the
  timer interrupt, whatever the CPU is doing; its handler (profile_fire, profile_tick) calls dtrace_probe. Each
  firing costs an interrupt plus that handler, in the kernel: system time.
- SDT (sys/sys/sdt.h): an enabled statically defined probe's site calls dtrace_probe through sdt_probe_func,
  a direct call like systrace's: proc:::create at the end of do_fork, proc:::exec in do_execve, proc:::exit in
  exit1, and the vminfo probes on the fault path. Charged where the kernel records those events (sim/core/sdt.py).
- syscall: systrace_probe_func is a plain call from syscallenter(), for a call whose sy_entry / sy_return is set
  (KernelConfig.dtrace_syscall_entry / _return, or dtrace_syscall for every call), and charged there
  (subr_syscall.py); it is only counted here.

Nothing is armed in an ordinary run: no hook is installed, EventLog.probe_hook stays None, and the run's events and
times are exactly those of a kernel without DTrace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.kern.dtrace_args import ArgumentRecorder
from sim.kern.kernel import KernelConfig

if TYPE_CHECKING:
    from sim.kern.kernel import Kernel
    from sim.machine.machine import Machine
    from sim.machine.profiles import Profile

SYSTRACE = "systrace_probe_func"

# The SDT probes the kernel model's events fire (the D side, sim/trace/providers.py, fires the same ones):
# proc's FreeBSD names for each "proc" event (the vminfo probes of each kind of fault: sim/vm/vm_meter.py).
PROC_PROBE_OF_EVENT = {"fork": "create", "exec": "exec", "exit": "exit"}


NEVER = float("inf")


def breakpoint_trap_ns(costs: Profile) -> int:
    """An exception or interrupt taken and returned from in the kernel: IDT delivery, alltraps' register save and
    restore, IRETQ (the same primitives a page fault's entry and exit pay)."""
    return costs.trap_entry_ns + 2 * costs.trapframe_ns + costs.iretq_ns


def firing_ns(costs: Profile) -> dict[str, int]:
    """What one firing of each kind of probe costs on this machine profile."""
    return {
        "syscall": costs.systrace_probe_ns,  # a direct call: systrace_probe_func -> dtrace_probe
        "fbt": breakpoint_trap_ns(costs) + costs.fbt_probe_ns,  # int3: #BP, dtrace_invop, fbt_invop, dtrace_probe
        "profile": breakpoint_trap_ns(costs) + costs.profile_probe_ns,  # timer interrupt, cyclic, profile_fire
        "sdt": costs.systrace_probe_ns,  # a direct call, as systrace's: sdt_probe_func -> dtrace_probe
    }


def fbt_clock_read_ns(costs: Profile) -> int:
    """How far into an fbt firing dtrace_probe reads the clock (dtrace_gethrtime, early in dtrace_probe): once the
    #BP is delivered and alltraps has saved the registers; the invop dispatch before it, ~100 instructions of
    fbt_probe_ns, is left out as small. Probe timestamps are taken there (sim/trace/providers.py)."""
    return costs.trap_entry_ns + costs.trapframe_ns


def armed(config: KernelConfig) -> bool:
    return bool(
        config.dtrace_syscall
        or config.dtrace_syscall_entry
        or config.dtrace_syscall_return
        or config.dtrace_fbt_entry
        or config.dtrace_fbt_return
        or config.dtrace_profile_ns
        or config.dtrace_sdt
    )


class _NoReplays(dict):
    """A fault-replay table that keeps nothing. Fast-forward replays a demand-zero fault by its measured time and
    event count without calling the kernel's functions (trap_pfault.py), so armed fbt probes and due ticks would
    not see those calls; with probes armed every fault takes the full path."""

    def __setitem__(self, key, value) -> None:
        pass


class ProbeEffect:
    """The hook EventLog.probe_hook calls as hook(function, "entry" | "return") at every @kfunc frame boundary.

    Ticks (profile-N/tick-N): each cyclic keeps its next deadline (the first one period after the run's time 0, as
    profile_online sets cyt_when = gethrtime() + interval, DTrace having been enabled before the command started).
    This approximates the timer interrupt: a tick is taken at the first kernel frame boundary after it is due, so
    ticks due during a long user-mode stretch are paid at the next kernel entry, and the interrupt's cost lands in
    whatever kernel function is running then. The count is exact: every period boundary up to the run's end is one
    firing (finish() pays those after the last frame), the same boundaries at which the D interpreter's profile
    provider samples the recorded run (providers.py).
    """

    def __init__(self, machine: Machine, config: KernelConfig) -> None:
        self.log = machine.log
        costs = firing_ns(machine.profile)
        self.fbt_ns = costs["fbt"]
        self.tick_ns = costs["profile"]
        self.sdt_ns = costs["sdt"]
        self.sdt_armed = frozenset(config.dtrace_sdt)
        self.entry = frozenset(config.dtrace_fbt_entry)
        self.ret = frozenset(config.dtrace_fbt_return)
        self.periods = list(config.dtrace_profile_ns)
        self.deadlines = list(self.periods)  # each cyclic's next expiry
        self.next_tick = min(self.deadlines, default=NEVER)
        self.syscall = self.fbt = self.profile = self.sdt_firings = 0  # firings by kind

    def __call__(self, function: str, site: str) -> None:
        log = self.log
        if log.now >= self.next_tick:
            self._ticks()
        if site == "entry":
            if function in self.entry:
                log.now += self.fbt_ns
                self.fbt += 1
            elif function == SYSTRACE:
                self.syscall += 1  # systrace_probe_func charges its own firing
        elif function in self.ret:
            log.now += self.fbt_ns
            self.fbt += 1

    def sdt(self, provider: str, names: tuple[str, ...]) -> None:
        for name in names:
            if f"{provider}:{name}" in self.sdt_armed:
                self.log.now += self.sdt_ns
                self.sdt_firings += 1

    def _ticks(self) -> None:
        """Take every tick due by now, in time order; each one's cost moves time on, so more may fall due."""
        log, deadlines, periods = self.log, self.deadlines, self.periods
        while True:
            due = min(range(len(deadlines)), key=deadlines.__getitem__)
            if deadlines[due] > log.now:
                break
            deadlines[due] += periods[due]
            log.now += self.tick_ns
            self.profile += 1
        self.next_tick = min(deadlines)

    def finish(self) -> dict[str, int]:
        """The run is over: take the ticks due since the last frame boundary; return the firings by kind."""
        if self.log.now >= self.next_tick:
            self._ticks()
        return self.firings()

    def firings(self) -> dict[str, int]:
        return {"syscall": self.syscall, "fbt": self.fbt, "profile": self.profile, "sdt": self.sdt_firings}


def arm_probes(machine: Machine, kernel: Kernel, config: KernelConfig) -> ProbeEffect | None:
    """Install the probe hook on the machine's event log if `config` arms any probe; None (no hook) if not."""
    if config.dtrace_fbt_arguments:
        machine.log.entry_facts = ArgumentRecorder(frozenset(config.dtrace_fbt_arguments))
    if not armed(config):
        return None
    effect = ProbeEffect(machine, config)
    if effect.entry or effect.ret or effect.periods or any(p.startswith("vminfo:") for p in effect.sdt_armed):
        kernel.vm.fault_replays = _NoReplays()
    machine.log.probe_hook = effect
    return effect
