"""The amd64 CPU as a student needs it: privilege level, registers, flags and control registers.

Every write goes through `set`, which records a ("reg", name, old, new) delta, so the stepper can show what an
instruction changed and rebuild the register file at any step.
"""

from __future__ import annotations

from collections.abc import Callable

from sim.core.log import Event, EventLog

# rflags bits (sys/x86/include/psl.h)
PSL_C = 0x00000001  # carry: the system-call error flag on FreeBSD
PSL_T = 0x00000100  # trap (single step)
PSL_I = 0x00000200  # interrupt enable
PSL_D = 0x00000400  # direction
PSL_NT = 0x00004000  # nested task
PSL_AC = 0x00040000  # alignment check; with CR4.SMAP set it is the "user access allowed" flag (stac/clac)
PSL_USER = 0x00000202  # reserved bit 1 plus interrupts on: a fresh user thread's rflags

# IA32_FMASK as FreeBSD programs it (amd64/machdep.c): SYSCALL clears these in rflags on entry. PSL_AC came with
# SMAP support (FreeBSD 12); FreeBSD 11's mask has no PSL_AC (SF_MASK_11).
SF_MASK = PSL_NT | PSL_T | PSL_I | PSL_C | PSL_D | PSL_AC
SF_MASK_11 = SF_MASK & ~PSL_AC

# CR4 bits (x86/include/specialreg.h)
CR4_PGE = 0x00000080
CR4_SMEP = 0x00100000
CR4_SMAP = 0x00200000

GENERAL_REGISTERS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11")
REGISTERS = ("cpl", "rip", *GENERAL_REGISTERS, "rflags", "cr2", "cr3", "cr4", "gsbase")

KERNEL_CPL = 0
USER_CPL = 3


# Register blocks written on every system call (the libc stub, SYSCALL, the trapframe, SYSRETQ) go through a
# function written out for their names: the same deltas as set_many/set, in the same order, without a loop, a
# zip or a call per register (on the getpid loop these blocks were a sixth of the simulator's own work). A
# register_step also makes the instruction's event, as EventLog.emit would (one call instead of two a step).
def register_setter(*names: str) -> Callable[..., None]:
    """f(cpu, v1, v2, ...): cpu.set_many(names, values), except that "cpl" may be among names (as cpu.set)."""
    return _compile("reg", names, step=None)


def field_setter(kind: str, *names: str) -> Callable[..., None]:
    """f(fields, log, v1, v2, ...): set_many of a register set kept as a dict (a trapframe's `regs`), recording
    (kind, name, old, new) deltas in `log`: what Trapframe.set_many does."""
    return _compile(kind, names, step=None)


def register_step(kind: str, *names: str) -> Callable[..., None]:
    """f(machine, ns, name, data, v1, v2, ...): register_setter(*names)(machine.cpu, v1, ...), then
    `machine.log.now += ns` and machine.emit(kind, name, data): an instruction, with what it wrote and cost."""
    return _compile("reg", names, step=kind)


def _compile(kind: str, names: tuple[str, ...], step: str | None) -> Callable[..., None]:
    values = [f"v{i}" for i in range(len(names))]
    if step is not None:
        lines = [f"def setter(machine, ns, name, data, {', '.join(values)}):", "    cpu = machine.cpu",
                 "    regs = cpu.regs", "    log = machine.log"]  # fmt: skip
    elif kind == "reg":
        lines = [f"def setter(cpu, {', '.join(values)}):", "    regs = cpu.regs", "    log = cpu._log"]
    else:
        lines = [f"def setter(regs, log, {', '.join(values)}):"]

    def writes(indent: str, record: str | None) -> list[str]:
        """Each register's write, in order; `record` (with DELTA in it) records a change, if anything records."""
        code = []
        for name, value in zip(names, values, strict=True):
            if record is None and name != "cpl":
                code.append(f"{indent}regs[{name!r}] = {value}")  # set_many writes all when nothing records
                continue
            code += [f"{indent}old = regs[{name!r}]", f"{indent}if old != {value}:"]
            if name == "cpl":  # Cpu.set: the machine bills the time to the ring being left; only a change is written
                code.append(f"{indent}    cpu._cpl_changed(old)")
            code.append(f"{indent}    regs[{name!r}] = {value}")
            if record is not None:
                code.append(indent + "    " + record.replace("DELTA", f"({kind!r}, {name!r}, old, {value})"))
        return code

    if step is None:
        recorded = ["    if log.recording:", "        pending = log._pending"]
        recorded += writes("        ", "pending.append(DELTA)")
    else:  # and the event, as EventLog.emit makes it (the deltas queued before the instruction come first)
        recorded = ["    if log.recording:", "        pending = log._pending", "        if pending:",
                    *writes("            ", "pending.append(DELTA)"),
                    "            deltas = tuple(pending)", "            pending.clear()",
                    "        else:", "            deltas = ()",  # no list to fill and empty: most instructions
                    *writes("            ", "deltas += (DELTA,)"),
                    "        now = log.now = log.now + ns",
                    f"        log.events.append(Event(now, {step!r}, name, data, deltas, log.depth))",
                    "        log.recording -= 1"]  # fmt: skip
    unrecorded = ["    else:", *writes("        ", None)]
    if step is not None:
        unrecorded += ["        log.now += ns", f"        log.emit({step!r}, name, data)"]
    namespace: dict = {"Event": Event}
    source = "\n".join(lines + recorded + unrecorded)
    where = f"<{'step' if step else 'setter'} of {', '.join(names)}>"  # what a traceback or profile names it
    exec(compile(source, where, "exec"), namespace)  # noqa: S102 - our own template
    return namespace["setter"]


class Cpu:
    def __init__(self, log: EventLog, cpl_changed: Callable[[int], None]) -> None:
        self._log = log
        self._cpl_changed = cpl_changed  # the machine bills time to the ring being left
        self.regs: dict[str, int] = dict.fromkeys(REGISTERS, 0)
        self.regs["cpl"] = USER_CPL
        self.regs["rflags"] = PSL_USER

    def __getitem__(self, name: str) -> int:
        return self.regs[name]

    def set(self, name: str, value: int) -> None:
        regs = self.regs
        old = regs[name]
        if old != value:
            if name == "cpl":
                self._cpl_changed(old)
            regs[name] = value
            log = self._log
            if log.recording:  # EventLog.delta, inlined: no delta is built when nothing records it
                log._pending.append(("reg", name, old, value))

    def set_many(self, names: tuple[str, ...], values) -> None:
        """`set` for each of names (never "cpl") with the matching value, in order: the same deltas, in one call."""
        # zip() without strict=: with a keyword argument zip takes CPython's slow constructor path (~130 ns a call).
        regs = self.regs
        if self._log.recording:
            pending = self._log._pending
            for name, value in zip(names, values):  # noqa: B905 - names and values match by construction
                old = regs[name]
                if old != value:
                    regs[name] = value
                    pending.append(("reg", name, old, value))
        else:
            for name, value in zip(names, values):  # noqa: B905 - (a plain loop is faster than dict.update(zip))
                regs[name] = value

    @property
    def cpl(self) -> int:
        return self.regs["cpl"]

    @property
    def carry(self) -> bool:
        return bool(self.regs["rflags"] & PSL_C)
