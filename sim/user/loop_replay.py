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
from sim.kern.sched import sched
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
        now_state = self._state()
        steady = now_state == state and not now_state[-1]
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
    def _threads() -> list:
        """The threads whose counters an iteration adds to and whose state it must leave as it was."""
        return [pcpu.curthread]

    def _counters(self) -> tuple[dict[str, int], Counter]:
        machine, kernel = pcpu.machine, pcpu.kernel
        log, mmu, cnt = machine.log, machine.mmu, kernel.vm.cnt
        values = {
            "now": log.now,
            "unrecorded": log.unrecorded,
            "ring_since": machine._ring_since,
            "user_closed": machine._closed_ns[USER_CPL],
            "kernel_closed": machine._closed_ns[KERNEL_CPL],
            "tlb_hits": mmu.hits,
            "tlb_misses": mmu.misses,
            "walks": mmu.walks,
            "flushes": mmu.flushes,
        }
        procs = []
        for i, td in enumerate(self._threads()):
            values[f"td{i}.syscalls"] = td.td_syscalls
            values[f"td{i}.rux_user"], values[f"td{i}.rux_sys"] = td.td_rux_base  # moves as the thread switches
            if td.td_proc not in procs:
                procs.append(td.td_proc)
        for i, p in enumerate(procs):
            for name, value in p.p_ru.items():  # rusage counters (system calls on sockets count messages)
                values[f"p{i}.ru.{name}"] = value
            for j, value in enumerate((*p.p_rux, *p.p_crux)):  # user and system time, its own and its children's
                values[f"p{i}.rux{j}"] = value
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

    def _state(self) -> tuple | None:
        machine, kernel = pcpu.machine, pcpu.kernel
        mmu = machine.mmu
        threads = self._threads()
        files, procs = [], []
        for td in threads:
            if td.td_proc in procs:
                continue
            procs.append(td.td_proc)
            for fp in td.td_proc.p_fd.fd_ofiles if td.td_proc.p_fd else ():  # kernel processes have none
                if fp is not None:
                    data = fp.f_vnode if fp.f_type == DTYPE_VNODE else _ipc_state(fp.f_data)
                    files.append((fp.f_flag, fp.f_offset, data))
        scheduler = sched(kernel)
        return (
            tuple(machine.cpu.regs.items()),
            tuple(_thread_state(td) for td in threads),
            tuple(mmu.tlb.items()),
            tuple(mmu.tlb_large.items()),
            tuple(mmu.pde_cache.items()),
            tuple(files),
            tuple(sorted(kernel.vm.cnt.faults_user.items())),
            tuple(sorted(kernel.vm.cnt.faults_kernel.items())),
            len(kernel.console),
            len(kernel.procs),
            tuple(sorted((priority, td.td_tid) for priority, _, td in scheduler.runq)),
            bool(scheduler.callouts),  # a pending callout: time cannot be skipped past it (checked in after())
        )

    def _replay(self, added: tuple, times: int) -> None:
        machine, kernel = pcpu.machine, pcpu.kernel
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
        mmu.hits += delta["tlb_hits"] * times
        mmu.misses += delta["tlb_misses"] * times
        mmu.walks += delta["walks"] * times
        mmu.flushes += delta["flushes"] * times
        procs = []
        for i, td in enumerate(self._threads()):
            td.td_syscalls += delta[f"td{i}.syscalls"] * times
            user, sys = td.td_rux_base
            td.td_rux_base = (user + delta[f"td{i}.rux_user"] * times, sys + delta[f"td{i}.rux_sys"] * times)
            if td.td_proc not in procs:
                procs.append(td.td_proc)
        for i, p in enumerate(procs):
            for j in range(4):
                rux = p.p_rux if j < 2 else p.p_crux
                rux[j % 2] += delta[f"p{i}.rux{j}"] * times
        for name, value in delta.items():
            if name.startswith("vm."):
                attribute = name.removeprefix("vm.")
                setattr(cnt, attribute, getattr(cnt, attribute) + value * times)
            elif name.startswith("p") and ".ru." in name:
                index, _, field_name = name.partition(".ru.")
                procs[int(index[1:])].p_ru[field_name] += value * times
        for name, n in calls:
            kernel.syscall_counts[name] += n * times


def _thread_state(td) -> tuple:
    """What a loop iteration must leave as it was in a thread: where it is and how it waits, its registers."""
    md_regs = tuple(td.td_md_regs.items()) if td.td_md_regs else None
    return (td.td_tid, td.td_state, td.td_priority, td.td_user_pri, td.td_flags, td.td_pflags, id(td.td_wchan),
            td.td_wmesg, td.td_kdepth, td.td_errno_user, tuple(td.td_frame.regs.items()), md_regs)  # fmt: skip


class SteadyCycle(SteadyLoop):
    """The same for a benchmark whose loop runs in two threads (2thread) or two processes (2proc): the receiving
    loop measures each of its iterations, in which the sender's loop takes one of its own, and once two in a row
    have added the same to every thread's counters and left every thread as it was, the rest are replayed for
    both. The sender learns how much its replayed iterations moved from take_credit()."""

    def __init__(self) -> None:
        super().__init__()
        self.credit = 0

    @staticmethod
    def _threads() -> list:
        return [td for p in pcpu.kernel.procs for td in p.p_threads]

    def after(self, progress: tuple[int, ...], remaining: int) -> int:
        replayed = super().after(progress, remaining)
        self.credit += replayed * progress[0]
        return replayed

    def take_credit(self) -> int:
        """The bytes the sender's replayed iterations moved, once."""
        credit, self.credit = self.credit, 0
        return credit
