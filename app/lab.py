"""L41's Lab 2 ("kernel implications of IPC") as a page: the benchmark's six basic modes, each swept over buffer
sizes from 32 bytes to 16 MiB, bandwidth against buffer size, and DTrace on any point.

A point is one run of the lab's benchmark (ipc-static, the 2017 interface) moving the lab's 16 MiB total, with
nothing recorded: the bandwidth is what the program itself prints. The benchmark's identical loop iterations are
replayed once measured (sim/user/loop_replay.py: 1thread's loop, and 2thread's and 2proc's two loops together),
so even 32-byte buffers (a million system calls) take a second or so; every point is bounded by LAB_STEP_BUDGET
steps taken, and a point past it is refused in words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

from app.errors import BadParameter
from app.params import WEB_EVENT_BUDGET
from sim.machine.profiles import PROFILES
from sim.run import RunSpec, RunTooLong, record

IPC_TYPES = ("pipe", "local")
BENCHMARK_MODES = ("1thread", "2thread", "2proc")
MODES = tuple(f"{ipc} {mode}" for ipc in IPC_TYPES for mode in BENCHMARK_MODES)  # the lab's six basic modes
BUFFER_SIZES = tuple(32 << (2 * k) for k in range(10)) + (16 << 20,)  # 32 B ... 8 MiB by fours, then 16 MiB
TOTALSIZE = 16 << 20  # the benchmark's default, as the lab runs it
LAB_STEP_BUDGET = 3_000_000  # steps one point may take (replayed ones aside): a few seconds of host time
TRACE_SCRIPT = (
    'syscall::read:return, syscall::write:return /execname == "ipc-static"/\n'
    "{\n        @bytes[probefunc] = quantize(arg0);\n}\n"
)
_RATE = re.compile(r"^([0-9]+\.[0-9]{2}) KBytes/sec$", re.M)


@dataclass(frozen=True)
class Point:
    ipc: str
    mode: str
    buffersize: int
    profile: str

    @property
    def command(self) -> str:
        return f"ipc-static -i {self.ipc} -b {self.buffersize} {self.mode}"

    def trace_command(self, steps_per_byte: float) -> tuple[str, int]:
        """The command for DTrace on this point, and the total it moves: the lab's own total if its run fits the
        web's step budget (a traced run takes every step: nothing is replayed), else a smaller multiple of the
        buffer size that does."""
        fits = int(WEB_EVENT_BUDGET * 0.8 / steps_per_byte) if steps_per_byte else TOTALSIZE
        total = TOTALSIZE if fits >= TOTALSIZE else max(1, fits // self.buffersize) * self.buffersize
        return (self.command if total == TOTALSIZE else
                f"ipc-static -i {self.ipc} -b {self.buffersize} -t {total} {self.mode}"), total  # fmt: skip


def parse_point(params) -> Point:
    ipc = params.get("ipc", "pipe")
    if ipc not in IPC_TYPES:
        raise BadParameter("ipc", f"must be pipe or local, not {ipc!r}", "pipe or local")
    mode = params.get("mode", "1thread")
    if mode not in BENCHMARK_MODES:
        raise BadParameter(
            "mode", f"must be one of {', '.join(BENCHMARK_MODES)}, not {mode!r}", "1thread, 2thread or 2proc"
        )
    size = params.get("b", "")
    if not size.isascii() or not size.isdigit() or int(size) not in BUFFER_SIZES:
        valid = ", ".join(str(s) for s in BUFFER_SIZES)
        raise BadParameter("b", f"must be one of the lab's buffer sizes ({valid}), not {size!r}", valid)
    profile = params.get("profile", "lecture")
    if profile not in PROFILES:
        raise BadParameter("profile", f"must be one of {', '.join(PROFILES)}, not {profile!r}", ", ".join(PROFILES))
    return Point(ipc, mode, int(size), profile)


def measure(point: Point) -> dict:
    """Run one point (CPU work: call it from a worker thread). What the page plots and tabulates, or why not."""
    spec = RunSpec(point.command, profile=point.profile)
    try:
        run = record(spec, record_budget=0, event_budget=LAB_STEP_BUDGET)
    except RunTooLong:
        return {"command": point.command, "refused": f"more than {LAB_STEP_BUDGET:,} steps taken (replayed loop "
                "iterations aside), so this size is too long to run here"}  # fmt: skip
    found = _RATE.search(run.output)
    events = run.summary()["events"]
    trace_command, trace_total = point.trace_command(events / TOTALSIZE)
    query = urlencode({"command": trace_command, "script": TRACE_SCRIPT,
                       **({"profile": point.profile} if point.profile != "lecture" else {})})  # fmt: skip
    return {
        "command": point.command,
        "bandwidth_kib_s": float(found.group(1)) if found else None,
        "output": run.output,
        "syscalls": run.syscalls,
        "events": events,
        "user_ns": run.user_ns,
        "sys_ns": run.sys_ns,
        "trace_url": f"/trace?{query}",
        "trace_total": trace_total,
    }
