"""Fast-forward of a program's steady loop when nobody is watching: the IPC benchmark's 1thread loop at 32 bytes.

Not part of any program a student reads (that is sim/user/ipc_benchmark.py): with recording off, a loop whose
every iteration goes the same way through the kernel (write 32 bytes into a pipe, read them back: the pipe is
empty again, and pipe_read has put its indices back at the front) is hundreds of thousands of identical
iterations. SteadyLoop takes them the full way while it measures them: what each adds to the machine's counters
(simulated time in each ring, events, system calls, TLB hits, VM counters) and whether it leaves the machine's
state as it found it (the registers, the trapframe, the TLB and paging-structure cache, every open file's IPC
object, the console). Once two iterations in a row have added exactly the same and changed nothing else, the
rest are replayed: their counters added, no event made but each counted in the run's total (as
sim/kern/fastforward.py counts a replayed fault's). The step budget bounds the steps the host takes, and replayed
ones are not taken: the budget grows by as many as are replayed. tests/sim/test_loop_replay.py holds a
fast-forwarded run to the same summary and output as the same run taken in full.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import fields

from sim.core.pcpu import pcpu
from sim.kern.kern_descrip import DTYPE_VNODE
from sim.kern.sys_pipe import Pipe
from sim.kern.uipc_socket import Socket
from sim.machine.cpu import KERNEL_CPL, USER_CPL

GIVE_UP_AFTER = 16  # iterations measured without finding a steady state: the loop is not one; stop measuring


def _sockbuf_state(sb) -> tuple:
    return (sb.sb_hiwat, sb.sb_lowat, sb.sb_mbmax, sb.sb_cc, sb.sb_mbcnt, sb.sb_flags, sb.sb_state,
            tuple((bytes(m[0]), *m[1:]) for m in sb.sb_mb))  # fmt: skip


def _ipc_state(data: object) -> tuple | None:
    """An open file's object as far as a loop iteration may change it; None for one this does not know."""
    if isinstance(data, Pipe):
        buf = data.pipe_buffer
        return ("pipe", buf.size, buf.cnt, buf.in_, buf.out, data.pipe_state, hash(bytes(buf.buffer)),
                data.pipe_map.cnt)  # fmt: skip
    if isinstance(data, Socket):
        return ("socket", data.so_state, _sockbuf_state(data.so_snd), _sockbuf_state(data.so_rcv))
    return None


class SteadyLoop:
    """Measure a loop's iterations (before() and after() around each); replay the rest once they are steady."""

    def __init__(self) -> None:
        machine = pcpu.machine
        self.enabled = not machine.log.recording  # only when nothing is recorded or watched live
        self.attempts = 0
        self._before: tuple | None = None
        self._last: tuple | None = None  # (counters added, progress) of the previous iteration

    def before(self) -> None:
        if self.enabled:
            self._before = (self._counters(), self._state())

    def after(self, progress: tuple[int, ...], remaining: int) -> int:
        """The iteration just taken moved the loop by `progress`, and `remaining` more like it would finish the
        loop. Returns how many iterations were replayed (0: go on the full way)."""
        if not self.enabled or self._before is None:
            return 0
        counters, state = self._before
        added = self._difference(self._counters(), counters)
        steady = self._state() == state
        previous, self._last = self._last, (added, progress)
        if steady and previous == (added, progress) and remaining > 0:
            self._replay(added, remaining)
            self.enabled = False  # the loop is done but for its last iteration, taken the full way
            return remaining
        self.attempts += 1
        if self.attempts >= GIVE_UP_AFTER:
            self.enabled = False
        return 0

    # -- what an iteration adds, and what it must leave as it was --------------------------------------------------

    @staticmethod
    def _counters() -> tuple[dict[str, int], Counter]:
        machine, kernel, td = pcpu.machine, pcpu.kernel, pcpu.curthread
        log, mmu, cnt = machine.log, machine.mmu, kernel.vm.cnt
        values = {
            "now": log.now,
            "unrecorded": log.unrecorded,
            "ring_since": machine._ring_since,
            "user_closed": machine._closed_ns[USER_CPL],
            "kernel_closed": machine._closed_ns[KERNEL_CPL],
            "td_syscalls": td.td_syscalls,
            "tlb_hits": mmu.hits,
            "tlb_misses": mmu.misses,
            "walks": mmu.walks,
            "flushes": mmu.flushes,
        }
        for name, value in td.td_proc.p_ru.items():  # rusage counters (system calls on sockets count messages)
            values[f"ru.{name}"] = value
        for f in fields(cnt):
            value = getattr(cnt, f.name)
            if isinstance(value, int) and not isinstance(value, bool):
                values[f"vm.{f.name}"] = value
        return values, Counter(kernel.syscall_counts)

    @staticmethod
    def _difference(after, before) -> tuple:
        values = tuple((name, after[0][name] - before[0].get(name, 0)) for name in after[0])
        calls = after[1].copy()
        calls.subtract(before[1])
        return values, tuple(sorted((name, n) for name, n in calls.items() if n))

    @staticmethod
    def _state() -> tuple | None:
        machine, kernel, td = pcpu.machine, pcpu.kernel, pcpu.curthread
        mmu = machine.mmu
        files = []
        for fp in td.td_proc.p_fd.fd_ofiles:
            if fp is None:
                continue
            files.append((fp.f_flag, fp.f_offset, fp.f_vnode if fp.f_type == DTYPE_VNODE else _ipc_state(fp.f_data)))
        return (
            tuple(machine.cpu.regs.items()),
            tuple(td.td_frame.regs.items()),
            tuple(mmu.tlb.items()),
            tuple(mmu.tlb_large.items()),
            tuple(mmu.pde_cache.items()),
            tuple(files),
            tuple(sorted(kernel.vm.cnt.faults_user.items())),
            tuple(sorted(kernel.vm.cnt.faults_kernel.items())),
            len(kernel.console),
            len(kernel.procs),
        )

    def _replay(self, added: tuple, times: int) -> None:
        machine, kernel, td = pcpu.machine, pcpu.kernel, pcpu.curthread
        log, mmu, cnt = machine.log, machine.mmu, kernel.vm.cnt
        values, calls = added
        delta = dict(values)
        # The replayed events are counted (the run's total) but not taken: they do not spend the step budget,
        # which bounds the work the host does, so it grows by as many. The run stays bounded by the steps it takes.
        log.event_budget += delta["unrecorded"] * times
        log.unrecorded += delta["unrecorded"] * times
        log.now += delta["now"] * times
        machine._ring_since += delta["ring_since"] * times
        machine._closed_ns[USER_CPL] += delta["user_closed"] * times
        machine._closed_ns[KERNEL_CPL] += delta["kernel_closed"] * times
        td.td_syscalls += delta["td_syscalls"] * times
        mmu.hits += delta["tlb_hits"] * times
        mmu.misses += delta["tlb_misses"] * times
        mmu.walks += delta["walks"] * times
        mmu.flushes += delta["flushes"] * times
        for name, value in delta.items():
            if name.startswith("vm."):
                attribute = name.removeprefix("vm.")
                setattr(cnt, attribute, getattr(cnt, attribute) + value * times)
        for name, value in delta.items():
            if name.startswith("ru."):
                td.td_proc.p_ru[name.removeprefix("ru.")] += value * times
        for name, n in calls:
            kernel.syscall_counts[name] += n * times
