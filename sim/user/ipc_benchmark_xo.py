"""The L41 IPC benchmark as the course later had it: `ipc-benchmark` (ipc.c of 2020-2023, Labs 2 and 3, libxo).

    ipc-benchmark [-Bgjqsv] [-b buffersize] [-i pipe|local|tcp] [-n iterations] [-p tcp_port]
        [-P arch|dcache|instr|tlbmem] [-t totalsize] mode

What the 2017 program (ipc-static/ipc-dynamic, sim/user/ipc_benchmark.py) does, plus: `-n` runs the benchmark
several times (a fresh IPC object each, the buffers kept), `-g` brackets each run with getrusage(2) for self and
children and prints the system and user time, messages sent and received and context switches, `-j` prints JSON
(libxo's style: numbers bare, XOF_PRETTY's two-space indent) instead of text, `-v` or the `describe` mode first
prints the hardware, OS, network/IPC and benchmark configuration read with sysctlbyname(3), and the benchmark pins
itself to CPU 0 with cpuset_setaffinity(2) and unmaps its buffers at the end. A usage error prints the usage
message on stderr and exits with EX_USAGE (64), as the program's usage() does; a failed call exits EX_OSERR (71)
or EX_IOERR (74) with err(3)'s "name: message: strerror" line.

Faithful to the program, so on the simulated machine (amd64, one CPU, a kernel without `options INET`, no
hwpmc(4)) some of it fails as it would there: `-v`/`describe` stops at hw.cpufreq.arm_freq (the course's boards
were Arm; amd64 has no such sysctl), `-i tcp` stops at its first sysctl (net.inet.tcp.hostcache.purgenow), and
`-P` stops at pmc_init.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from sim.kern.errno import ENOENT
from sim.user import crt
from sim.user.ipc_benchmark import BUFFERSIZE, TOTALSIZE, Benchmark, MissingArgument, Options, getopt
from sim.user.programs import check_limits, program

EX_USAGE, EX_OSERR, EX_IOERR = 64, 71, 74
TCP_PORT = 10141
ITERATIONS = 1
PMC_TYPES = ("arch", "dcache", "instr", "tlbmem")
MODES = ("1thread", "2thread", "2proc", "describe")
IPC_TYPES = ("pipe", "local", "tcp")
RUSAGE_SELF, RUSAGE_CHILDREN = 0, -1
RUSAGE = struct.Struct("<qqqq14q")
CPU_LEVEL_WHICH, CPU_WHICH_PID = 3, 2
CPUSET_SIZE = 32
MAX_TOTALSIZE = 1 << 30  # the simulator's limit, as for ipc-static
MAX_BUFFERSIZE = 64 << 20
MAX_ITERATIONS = 16

USAGE = (
    "{prog} [-Bgjqsv] [-b buffersize] [-i pipe|local|tcp] [-n iterations]\n"
    "    [-p tcp_port] [-P arch|dcache|instr|tlbmem] [-t totalsize] mode\n"
    "\n"
    "Modes (pick one - default 1thread):\n"
    "    1thread     IPC within a single thread\n"
    "    2thread     IPC between two threads in one process\n"
    "    2proc       IPC between two threads in two different processes\n"
    "    describe    Describe the hardware, OS, and benchmark configurations\n"
    "\n"
    "Optional flags:\n"
    "    -B                     Run in bare mode: no preparatory activities\n"
    "    -g                     Enable getrusage(2) collection\n"
    "    -i pipe|local|tcp      Select pipe, local sockets, or TCP (default: pipe)\n"
    "    -j                     Output as JSON\n"
    f"    -p tcp_port            Set TCP port number (default: {TCP_PORT})\n"
    "    -P arch|dcache|instr|tlbmem  Enable hardware performance counters\n"
    "    -q                     Just run the benchmark, don't print stuff out\n"
    "    -s                     Set send/receive socket-buffer sizes to buffersize\n"
    "    -v                     Provide a verbose benchmark description\n"
    f"    -b buffersize          Specify the buffer size (default: {BUFFERSIZE})\n"
    f"    -n iterations          Specify the number of times to run (default: {ITERATIONS})\n"
    f"    -t totalsize           Specify the total I/O size (default: {TOTALSIZE})\n"
)


class UsageError(Exception):
    """usage() was called: the message goes to stderr and the program exits EX_USAGE."""


@dataclass
class LaterOptions(Options):
    gflag: bool = False
    jflag: bool = False
    iterations: int = ITERATIONS
    tcp_port: int = TCP_PORT
    pmc: str = ""


def _number(value: str, low: int = 1, high: int | None = None) -> int:
    """strtol(optarg, &endp, 10) with the program's check (*optarg and *endp, the range), or usage()."""
    if not re.fullmatch(r"[+-]?[0-9]{1,18}", value) or int(value) < low or (high is not None and int(value) > high):
        raise UsageError()
    return int(value)


def parse(argv: tuple[str, ...]) -> LaterOptions:
    """getopt(argc, argv, "Bb:gi:jn:p:P:qst:v") and main()'s checks; UsageError where the program calls usage()."""
    o = LaterOptions()
    args = list(argv[1:])
    try:
        for flag, value in getopt(args, "bintpP"):
            if value is None:
                if flag not in "Bgjqsv":
                    raise UsageError()
                setattr(o, f"{flag.lower()}flag", True)
            elif flag in "btn":
                setattr(o, {"b": "buffersize", "t": "totalsize", "n": "iterations"}[flag], _number(value))
            elif flag == "p":
                o.tcp_port = _number(value, 1, 65535)
            elif value not in (IPC_TYPES if flag == "i" else PMC_TYPES):
                raise UsageError()
            else:
                setattr(o, "ipc_type" if flag == "i" else "pmc", value)
    except MissingArgument:
        raise UsageError() from None
    if o.sflag and o.ipc_type == "pipe":
        raise UsageError()
    if len(args) != 1 or args[0] not in MODES:
        raise UsageError()
    o.mode = args[0]
    if o.mode == "describe":
        o.vflag = True
    return o


def validate(argv: tuple[str, ...], env: dict[str, str]) -> None:
    """Only the simulator's own limits are checked before the run: the program's usage errors are its own."""
    try:
        o = parse(argv)
    except UsageError:
        return
    check_limits(argv[0], (("-b", o.buffersize, MAX_BUFFERSIZE), ("-t", o.totalsize, MAX_TOTALSIZE),
                           ("-n", o.iterations, MAX_ITERATIONS)))  # fmt: skip


class Xo:
    """libxo's output as the program uses it: text, or JSON (-j, XOF_PRETTY) with its containers and lists."""

    def __init__(self, rt: crt.Runtime, json: bool) -> None:
        self.rt, self.json = rt, json
        self.stack: list[list[bool]] = []  # per open JSON object or list, the outermost first: [has members]

    def _write(self, text: str) -> None:
        if text:
            self.rt.write_all(1, text)

    def _member(self, head: str) -> None:
        if not self.stack:
            self._write("{")
            self.stack.append([False])
        if self.stack[-1][0]:
            self._write(",")
        self.stack[-1][0] = True
        self._write(f"\n{'  ' * len(self.stack)}{head}")

    def open(self, name: str | None, bracket: str) -> None:
        if self.json:
            self._member(f'"{name}": {bracket}' if name else bracket)
            self.stack.append([False])

    def close(self, bracket: str) -> None:
        if self.json:
            self.stack.pop()
            self._write(f"\n{'  ' * len(self.stack)}{bracket}")

    def field(self, name: str, text: str, json_value: str) -> None:
        """One {:name/format} field: `text` in text style, `json_value` (already quoted or bare) in JSON."""
        if self.json:
            self._member(f'"{name}": {json_value}')
        else:
            self._write(text)

    def emit(self, text: str) -> None:
        """Literal text between fields: text style only."""
        if not self.json:
            self._write(text)

    def finish(self) -> None:
        if self.json and self.stack:
            self.stack.clear()
            self._write("\n}\n")


class LaterBenchmark(Benchmark):
    select_when_both_zero = True  # this version's 1thread loop selects only when neither call moved (== 0)

    def __init__(self, rt: crt.Runtime, o: LaterOptions) -> None:
        super().__init__(rt, o)
        self.xo = Xo(rt, o.jflag)

    def main(self) -> int:
        o, rt = self.o, self.rt
        if o.totalsize % o.buffersize:
            rt.errx(EX_USAGE, f"FAIL: data size ({o.totalsize}) is not a multiple of buffersize ({o.buffersize})")
        if not o.qflag and o.vflag:
            self.print_configuration()
        if o.mode != "describe":
            self.ipc()
        return 0

    # -- sysctlbyname(3) and the configuration --------------------------------------------------------------

    def sysctlbyname(self, name: str, size: int) -> bytes:
        """sysctlnametomib ({0, 3} with the name), then the value; err(3) and EX_OSERR if either fails."""
        rt = self.rt
        oid, oidlen, value, lenp = rt.scratch(96), rt.scratch(8), rt.scratch(size), rt.scratch(8)
        rt.store_bytes(oidlen, struct.pack("<Q", 96))
        qoid = rt.scratch(8)
        rt.store_bytes(qoid, struct.pack("<ii", 0, 3))
        text = rt.cstring(name)
        if rt.sys("__sysctl", qoid, 2, oid, oidlen, text, len(name)) == -1:
            rt.err(EX_OSERR, f"sysctlbyname: {name}")
        namelen = struct.unpack("<Q", rt.load_bytes(oidlen, 8))[0] // 4
        rt.store_bytes(lenp, struct.pack("<Q", size))
        if rt.sys("__sysctl", oid, namelen, value, lenp, 0, 0) == -1:
            rt.err(EX_OSERR, f"sysctlbyname: {name}")
        length = struct.unpack("<Q", rt.load_bytes(lenp, 8))[0]
        return rt.load_bytes(value, length)

    def _string(self, name: str) -> str:
        return self.sysctlbyname(name, 80).split(b"\0", 1)[0].decode()

    def _int(self, name: str, fmt: str) -> int:
        return struct.unpack(fmt, self.sysctlbyname(name, struct.calcsize(fmt)))[0]

    def _setting(self, name: str, value: object) -> None:
        json_value = f'"{value}"' if isinstance(value, str) else str(value)
        self.xo.field(name, f"  {name}: {value}\n", json_value)

    def print_configuration(self) -> None:
        xo, o = self.xo, self.o
        xo.open("hardware_configuration", "{")
        xo.emit("Hardware configuration:\n")
        self._setting("hw.machine", self._string("hw.machine"))
        self._setting("hw.model", self._string("hw.model"))
        self._setting("hw.ncpu", self._int("hw.ncpu", "<i"))
        self._setting("hw.physmem", self._int("hw.physmem", "<Q"))
        sizes = [s for s in struct.unpack("<3Q", self.sysctlbyname("hw.pagesizes", 24))]
        xo.open("hw.pagesizes", "[")
        for i, size in enumerate(sizes):
            xo.open(None, "{")
            xo.field("pagesize", f"  hw.pagesizes: {size}" if i == 0 else f", {size}", str(size))
            xo.close("}")
        xo.emit("\n")
        xo.close("]")
        self._setting("hw.cpufreq.arm_freq", self._int("hw.cpufreq.arm_freq", "<i"))
        xo.close("}")
        xo.open("os_configuration", "{")
        xo.emit("OS configuration:\n")
        for name in ("kern.ostype", "kern.osrelease", "kern.ident", "kern.hostname"):
            self._setting(name, self._string(name))
        xo.close("}")
        xo.open("network_ipc_configuration", "{")
        xo.emit("Network and IPC configuration:\n")
        self._setting("kern.ipc.pipe_mindirect", self._int("kern.ipc.pipe_mindirect", "<q"))
        self._setting("kern.ipc.maxsockbuf", self._int("kern.ipc.maxsockbuf", "<Q"))
        self._setting("net.inet.tcp.cc.algorithm", self._string("net.inet.tcp.cc.algorithm"))
        xo.close("}")
        xo.open("benchmark_configuration", "{")
        xo.emit("Benchmark configuration:\n")
        for name, value in (("buffersize", o.buffersize), ("totalsize", o.totalsize),
                            ("msgcount", o.totalsize // o.buffersize), ("mode", o.mode), ("ipctype", o.ipc_type),
                            ("pmctype", o.pmc or "none"), ("iterations", o.iterations)):  # fmt: skip
            self._setting(name, value)
        xo.close("}")

    # -- the benchmark ---------------------------------------------------------------------------------------

    def pmc_init(self) -> None:
        """libpmc's pmc_init() finds no hwpmc(4) module in the simulated kernel (modfind fails, ENOENT)."""
        self.rt.set_errno(ENOENT)
        self.rt.err(EX_OSERR, "FAIL: pmc_init")

    def ipc_objects_allocate(self) -> tuple[int, int]:
        if self.o.ipc_type == "tcp":
            self.sysctlbyname("net.inet.tcp.hostcache.purgenow", 4)  # the kernel has no INET: this fails
        return super().ipc_objects_allocate()

    def rusage(self, who: int) -> tuple[int, ...]:
        rt = self.rt
        buf = rt.scratch(RUSAGE.size)
        if rt.sys("getrusage", who, buf) == -1:
            rt.err(EX_OSERR, "FAIL: getrusage(SELF)" if who == RUSAGE_SELF else "FAIL: getrusage(CHILDREN)")
        return RUSAGE.unpack(rt.load_bytes(buf, RUSAGE.size))

    def ipc(self) -> None:
        rt, o, xo = self.rt, self.o, self.xo
        mask = rt.scratch(CPUSET_SIZE)
        rt.store_bytes(mask, b"\x01" + bytes(CPUSET_SIZE - 1))  # CPU_ZERO; CPU_SET(0)
        if rt.sys("cpuset_setaffinity", CPU_LEVEL_WHICH, CPU_WHICH_PID, (1 << 64) - 1, CPUSET_SIZE, mask) == -1:
            rt.err(EX_OSERR, "FAIL: cpuset_setaffinity")
        if o.pmc:
            self.pmc_init()
        readbuf, writebuf = self.buffers()
        if not o.qflag:
            xo.open("benchmark_samples", "[")
        for _ in range(o.iterations):
            readfd, writefd = self.ipc_objects_allocate()
            if not o.bflag:
                for _ in range(3):
                    rt.sys("sync")
                self.sleep(1)
            before = (self.rusage(RUSAGE_SELF), self.rusage(RUSAGE_CHILDREN)) if o.gflag else None
            elapsed_ns = getattr(self, f"do_{o.mode}")(readfd, writefd, readbuf, writebuf)
            after = (self.rusage(RUSAGE_SELF), self.rusage(RUSAGE_CHILDREN)) if o.gflag else None
            if not o.qflag:
                self.print_datum(elapsed_ns, before, after)
            rt.sys("close", readfd)
            rt.sys("close", writefd)
        if not o.qflag:
            xo.close("]")
            xo.finish()
        for buf in (readbuf, writebuf):
            if rt.sys("munmap", buf, o.buffersize) == -1:
                rt.err(EX_OSERR, "FAIL: munmap")

    def print_datum(self, elapsed_ns: int, before, after) -> None:
        xo = self.xo
        sec, nsec = divmod(elapsed_ns, 1_000_000_000)
        rate = self.rate_kib_s(elapsed_ns)
        xo.open(None, "{")
        xo.emit("datum:\n")
        xo.field("bandwidth", f"  bandwidth: {rate:1.2F} KBytes/sec\n", f"{rate:1.2F}")
        xo.field("time", f"  time: {sec}.{nsec:09d} seconds\n", f"{sec}.{nsec:09d}")
        if before is not None:
            self._print_rusage(before, after)
        xo.close("}")

    def _print_rusage(self, before, after) -> None:
        def delta(index: int) -> int:
            return sum(a[index] - b[index] for a, b in zip(after, before, strict=True))

        def seconds(sec_index: int) -> str:
            usec = delta(sec_index) * 1_000_000 + delta(sec_index + 1)
            return f"{usec // 1_000_000}.{usec % 1_000_000:06d}"

        xo = self.xo
        xo.field("stime", f"  stime: {seconds(2)} seconds\n", seconds(2))
        xo.field("utime", f"  utime: {seconds(0)} seconds\n", seconds(0))
        longs = 4  # the 14 longs follow the two timevals
        for name, index, words in (("msgsnd", 9, "messages"), ("msgrcv", 10, "messages"),
                                   ("nvcsw", 12, "voluntary context switches"),
                                   ("nivcsw", 13, "involuntary context switches")):  # fmt: skip
            value = delta(longs + index)
            xo.field(name, f"  {name}: {value} {words}\n", str(value))


def ipc_benchmark_main(rt: crt.Runtime, argv: tuple[str, ...], env: dict[str, str]) -> int:
    try:
        o = parse(argv)
    except UsageError:
        rt.fprintf_stderr(USAGE.format(prog=rt.progname))
        rt.exit(EX_USAGE)
    return LaterBenchmark(rt, o).main()


program(
    "ipc-benchmark",
    "the course's later IPC benchmark (libxo): [-Bgjqsv] [-b buffersize] [-i pipe|local|tcp] [-n iterations] "
    "[-p tcp_port] [-P arch|dcache|instr|tlbmem] [-t totalsize] 1thread|2thread|2proc|describe",
    validate=validate,
    image="ipc-dynamic",
)(ipc_benchmark_main)
