"""The L41 lab's IPC benchmark (ipc-static / ipc-dynamic, "Lab 2: kernel implications of IPC"), 2015-era.

    ipc-benchmark [-Bqsv] [-b buffersize] [-i pipe|local] [-t totalsize] mode

It moves totalsize bytes through a pipe or a socketpair(PF_LOCAL, SOCK_STREAM) in buffersize writes and reads,
within one thread (1thread: non-blocking I/O, select() when stuck), between two threads (2thread) or between two
processes (2proc, the child forked after a page is shared with minherit(INHERIT_SHARE) so that it can hand the
parent its start time). The buffers are mmap'd and memset first, "so as to take page zeroing traps now rather
than during the benchmark loop itself". Time is clock_gettime(CLOCK_REALTIME) from just before the first write
to just after the last read; the result is printed as the lab's program does: "%.2F KBytes/sec".

Unless -B (bare), it first syncs the file systems three times and sleeps a second, and the sender sleeps a
second before starting (and, in 2proc, after finishing): the sleeps are wall-clock time, not CPU time.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from sim.kern.errno import EAGAIN
from sim.user import crt
from sim.user.loop_replay import SteadyCycle, SteadyLoop
from sim.user.programs import program
from sim.user.shell import CommandLineError

BUFFERSIZE = 128 * 1024
TOTALSIZE = 16 * 1024 * 1024
MAX_TOTALSIZE = 1 << 30  # the simulator's limit: a GiB through the IPC object is the largest run it is built for
MAX_BUFFERSIZE = 64 * 1024 * 1024
MODES = ("1thread", "2thread", "2proc")
IPC_TYPES = ("pipe", "local")
USAGE = (
    "{prog} [-Bqsv] [-b buffersize] [-i pipe|local] [-t totalsize] mode\n"
    "\n"
    "Modes (pick one - default 1thread):\n"
    "    1thread                IPC within a single thread\n"
    "    2thread                IPC between two threads in one process\n"
    "    2proc                  IPC between two threads in two different processes\n"
    "\n"
    "Optional flags:\n"
    "    -B                     Run in bare mode: no preparatory activities\n"
    "    -i pipe|local          Select pipe or local sockets (default: pipe)\n"
    "    -q                     Just run the benchmark, don't print stuff out\n"
    "    -s                     Set send/receive socket-buffer sizes to buffersize\n"
    "    -v                     Provide a verbose benchmark description\n"
    f"    -b buffersize          Specify a buffer size (default: {BUFFERSIZE})\n"
    f"    -t totalsize           Specify total I/O size (default: {TOTALSIZE})\n"
)

PROT_READ, PROT_WRITE = 0x1, 0x2
MAP_ANON = 0x1000
INHERIT_SHARE = 0
PF_LOCAL, SOCK_STREAM = 1, 1
SOL_SOCKET, SO_SNDBUF, SO_RCVBUF = 0xFFFF, 0x1001, 0x1002
F_GETFL, F_SETFL, O_NONBLOCK = 3, 4, 0x0004
CLOCK_REALTIME = 0
TIMESPEC = struct.Struct("<qq")
FD_SETSIZE_BYTES = 128  # fd_set: FD_SETSIZE (1024) bits


@dataclass
class Options:
    bflag: bool = False
    qflag: bool = False
    sflag: bool = False
    vflag: bool = False
    buffersize: int = BUFFERSIZE
    totalsize: int = TOTALSIZE
    ipc_type: str = "pipe"
    mode: str = ""


def _usage(prog: str, why: str) -> CommandLineError:
    return CommandLineError(f"{prog}: {why}\nusage: {USAGE.format(prog=prog)}")


def _strtol(prog: str, flag: str, value: str, limit: int) -> int:
    """strtol(optarg, &endp, 10) with the program's checks: all digits, positive; then the simulator's limit."""
    text = value.strip(" \t")
    digits = text[1:] if text[:1] in "+-" else text
    if not re.fullmatch(r"[0-9]{1,18}", digits) or int(text) <= 0:
        raise _usage(prog, f"-{flag} needs a positive whole number of bytes, not {value!r}")
    if int(text) > limit:
        raise _usage(prog, f"-{flag} {value}: the simulated machine runs at most {limit:,} bytes here")
    return int(text)


class MissingArgument(Exception):
    """getopt(3): an option that takes an argument came last."""

    def __init__(self, flag: str) -> None:
        super().__init__(flag)
        self.flag = flag


def getopt(args: list[str], takes_argument: str) -> Iterator[tuple[str, str | None]]:
    """getopt(3)'s walk over `args` (consumed as it goes, leaving the operands): each (flag, its argument or None).
    Flags group (-Bq), an argument may be attached (-b4096) or the next word; "--" ends the options."""
    while args and args[0].startswith("-") and args[0] != "-":
        word = args.pop(0)
        if word == "--":
            return
        i = 1
        while i < len(word):
            flag = word[i]
            i += 1
            if flag not in takes_argument:
                yield flag, None
            elif i < len(word):
                yield flag, word[i:]
                break
            elif args:
                yield flag, args.pop(0)
            else:
                raise MissingArgument(flag)


def parse(argv: tuple[str, ...]) -> Options:
    """getopt(argc, argv, "Bb:i:qst:v") and main()'s checks; raises CommandLineError with the usage message."""
    prog = argv[0].rsplit("/", 1)[-1]
    o = Options()
    args = list(argv[1:])
    try:
        for flag, value in getopt(args, "bit"):
            if value is not None:
                if flag == "b":
                    o.buffersize = _strtol(prog, flag, value, MAX_BUFFERSIZE)
                elif flag == "t":
                    o.totalsize = _strtol(prog, flag, value, MAX_TOTALSIZE)
                elif value in IPC_TYPES:
                    o.ipc_type = value
                elif value == "tcp":
                    raise _usage(prog, "-i tcp is a later lab's; the simulated benchmark models pipe and local")
                else:
                    raise _usage(prog, f"-i {value}: the IPC type is pipe or local")
            elif flag in "Bqsv":
                setattr(o, f"{flag.lower()}flag", True)
            else:
                raise _usage(prog, f"illegal option -- {flag}")
    except MissingArgument as missing:
        raise _usage(prog, f"option requires an argument -- {missing.flag}") from None
    if o.sflag and o.ipc_type != "local":
        raise _usage(prog, "-s sets socket-buffer sizes, so it needs -i local")
    if len(args) != 1:
        raise _usage(prog, "name exactly one mode" if not args else f"unexpected operand {args[1]!r}")
    if args[0] not in MODES:
        raise _usage(prog, f"unknown mode {args[0]!r}")
    o.mode = args[0]
    if o.totalsize % o.buffersize:
        raise CommandLineError(
            f"{prog}: FAIL: data size ({o.totalsize}) is not a multiple of buffersize ({o.buffersize})"
        )
    return o


def _float32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def rate_kib_s(totalsize: int, elapsed_ns: int) -> float:
    """KBytes/sec as the lab's programs compute it, in C's float arithmetic for the seconds."""
    sec, nsec = divmod(elapsed_ns, 1_000_000_000)
    secs = _float32(_float32(sec) + _float32(_float32(nsec) / 1e9))
    return totalsize / secs / 1024 if secs else float("inf")


def sleep(rt: crt.Runtime, seconds: int) -> None:
    """sleep(3): nanosleep(2) for the whole seconds."""
    ts = rt.scratch(TIMESPEC.size)
    rt.store_bytes(ts, TIMESPEC.pack(seconds, 0))
    rt.sys("nanosleep", ts, 0)


class Benchmark:
    def __init__(self, rt: crt.Runtime, o: Options) -> None:
        self.rt, self.o = rt, o
        self.cycle: SteadyCycle | None = None  # 2thread and 2proc: replays the two loops once they are steady

    select_when_both_zero = False  # 2017: select() when neither call moved (<= 0); later versions test == 0

    def buffers(self) -> tuple[int, int]:
        """Zero-filled buffers, touched now so their page faults fall before the timed loop."""
        rt, o = self.rt, self.o
        readbuf = rt.mmap(0, o.buffersize, PROT_READ | PROT_WRITE, MAP_ANON, -1, 0)
        if readbuf == 0:
            rt.err(71, "FAIL: mmap")
        rt.memset(readbuf, 0, o.buffersize)
        writebuf = rt.mmap(0, o.buffersize, PROT_READ | PROT_WRITE, MAP_ANON, -1, 0)
        if writebuf == 0:
            rt.err(71, "FAIL: mmap")
        rt.memset(writebuf, 0, o.buffersize)
        return readbuf, writebuf

    def rate_kib_s(self, elapsed_ns: int) -> float:
        return rate_kib_s(self.o.totalsize, elapsed_ns)

    def run(self) -> int:
        rt, o = self.rt, self.o
        readbuf, writebuf = self.buffers()
        readfd, writefd = self.ipc_objects_allocate()
        if not o.bflag:
            for _ in range(3):  # flush the file systems so that they are quiet during the run
                rt.sys("sync")
            self.sleep(1)
        elapsed_ns = getattr(self, f"do_{o.mode}")(readfd, writefd, readbuf, writebuf)
        if not o.qflag:
            sec, nsec = divmod(elapsed_ns, 1_000_000_000)
            if o.vflag:
                for line in ("Benchmark configuration:", f"  buffersize: {o.buffersize}",
                             f"  totalsize: {o.totalsize}", f"  blockcount: {o.totalsize // o.buffersize}",
                             f"  mode: {o.mode}", f"  ipctype: {o.ipc_type}", f"  time: {sec}.{nsec:09d}"):  # fmt: skip
                    rt.write_all(1, line + "\n")
            rt.write_all(1, f"{self.rate_kib_s(elapsed_ns):.2F} KBytes/sec\n")
        rt.sys("close", readfd)
        rt.sys("close", writefd)
        return 0

    def sleep(self, seconds: int) -> None:
        sleep(self.rt, seconds)

    def ipc_objects_allocate(self) -> tuple[int, int]:
        rt, o = self.rt, self.o
        fds = rt.scratch(8)
        if o.ipc_type == "pipe":
            if rt.sys("pipe2", fds, 0) == -1:
                rt.err(71, "FAIL: pipe")
        elif rt.sys("socketpair", PF_LOCAL, SOCK_STREAM, 0, fds) == -1:
            rt.err(71, "FAIL: socketpair")
        readfd, writefd = struct.unpack("<ii", rt.load_bytes(fds, 8))
        if o.sflag:  # default socket-buffer sizes may be too small for one atomic send of the buffer
            val = rt.scratch(4)
            rt.store_bytes(val, o.buffersize.to_bytes(4, "little"))
            if rt.sys("setsockopt", writefd, SOL_SOCKET, SO_SNDBUF, val, 4) == -1:
                rt.err(71, "FAIL: setsockopt SO_SNDBUF")
            if rt.sys("setsockopt", readfd, SOL_SOCKET, SO_RCVBUF, val, 4) == -1:
                rt.err(71, "FAIL: setsockopt SO_RCVBUF")
        return readfd, writefd

    def sender(self, writefd: int, writebuf: int, starttime: int) -> None:
        """Store the start time where the receiver will find it, then write the whole total, blocking."""
        rt, o = self.rt, self.o
        rt.clock_gettime(CLOCK_REALTIME, starttime)
        write_sofar = 0
        while write_sofar < o.totalsize:
            want = min(o.buffersize, o.totalsize - write_sofar)
            n = rt.sys("write", writefd, writebuf, want)
            if n != want:
                if n < 0:
                    rt.err(74, "FAIL: write")
                rt.errx(74, f"blocking write() returned early: {n} != {want}")
            write_sofar += n + (self.cycle.take_credit() if self.cycle else 0)

    def receiver(self, readfd: int, readbuf: int) -> int:
        """Read until the total has arrived (a read returns what the IPC object holds); the finish time."""
        rt, o = self.rt, self.o
        read_sofar = 0
        cycle = self.cycle = SteadyCycle()  # with nothing recorded, both loops' steady iterations are replayed
        while read_sofar < o.totalsize:
            cycle.before()
            offset = read_sofar % o.buffersize
            n = rt.sys("read", readfd, readbuf + offset, min(o.totalsize - read_sofar, o.buffersize - offset))
            if n < 0:
                rt.err(74, "FAIL: read")
            read_sofar += n
            if 0 < n and read_sofar < o.totalsize:
                read_sofar += n * cycle.after((n,), (o.totalsize - read_sofar) // n - 1)
        return rt.clock_gettime(CLOCK_REALTIME)

    def _start_of(self, sa: int) -> int:
        sec, nsec = TIMESPEC.unpack(self.rt.load_bytes(sa, TIMESPEC.size))
        return sec * 1_000_000_000 + nsec

    def do_2thread(self, readfd: int, writefd: int, readbuf: int, writebuf: int) -> int:
        rt, o = self.rt, self.o
        sa = rt.malloc(32)  # the static struct sender_argument; ordinary memory suffices between threads

        def second_thread() -> None:
            if not o.bflag:
                self.sleep(1)
            self.sender(writefd, writebuf, sa)

        thread = rt.libc.pthread_create(second_thread)
        finish = self.receiver(readfd, readbuf)
        rt.libc.pthread_join(thread)
        return finish - self._start_of(sa)

    def do_2proc(self, readfd: int, writefd: int, readbuf: int, writebuf: int) -> int:
        rt, o = self.rt, self.o
        # A page shared across fork(), for the arguments and for the start time the child takes.
        sap = rt.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_ANON, -1, 0)
        if sap == 0:
            rt.err(71, "mmap")
        if rt.sys("minherit", sap, 4096, INHERIT_SHARE) == -1:
            rt.err(71, "minherit")
        rt.store_bytes(sap + 16, struct.pack("<iiqQ", writefd, 0, o.totalsize // o.buffersize, writebuf))

        def child(libc) -> None:
            if not o.bflag:
                self.sleep(1)
            self.sender(writefd, writebuf, sap)
            if not o.bflag:
                self.sleep(1)
            libc._exit(0)

        pid = rt.libc.fork(child)
        if pid == -1:
            rt.err(71, "FAIL: fork")
        finish = self.receiver(readfd, readbuf)
        if rt.sys("wait4", pid, 0, 0, 0) != pid:
            rt.err(71, "FAIL: waitpid")
        return finish - self._start_of(sap)

    def do_1thread(self, readfd: int, writefd: int, readbuf: int, writebuf: int) -> int:
        """Interleave sender and receiver with non-blocking I/O; select() when neither can progress."""
        rt, o = self.rt, self.o
        for fd in (readfd, writefd):
            flags = rt.sys("fcntl", fd, F_GETFL, 0)
            if flags < 0 or rt.sys("fcntl", fd, F_SETFL, flags | O_NONBLOCK) < 0:
                rt.err(71, "FAIL: fcntl")
        fdsets = rt.scratch(2 * FD_SETSIZE_BYTES)
        bits = bytearray(2 * FD_SETSIZE_BYTES)
        bits[readfd // 8] |= 1 << (readfd % 8)
        bits[FD_SETSIZE_BYTES + writefd // 8] |= 1 << (writefd % 8)
        rt.store_bytes(fdsets, bytes(bits))
        start = rt.clock_gettime(CLOCK_REALTIME)
        read_sofar = write_sofar = len_read = len_write = 0
        steady = SteadyLoop()  # with nothing recorded, identical iterations are replayed (sim/user/loop_replay.py)
        while read_sofar < o.totalsize:
            steady.before()
            if o.totalsize - write_sofar > 0:
                offset = write_sofar % o.buffersize
                want = min(o.totalsize - write_sofar, o.buffersize - offset)
                len_write = rt.sys("write", writefd, writebuf + offset, want)
                if len_write < 0 and rt.errno() != EAGAIN:
                    rt.err(74, "FAIL: write")
                if len_write > 0:
                    write_sofar += len_write
            if write_sofar:
                offset = read_sofar % o.buffersize
                want = min(o.totalsize - read_sofar, o.buffersize - offset)
                len_read = rt.sys("read", readfd, readbuf + offset, want)
                if len_read < 0 and rt.errno() != EAGAIN:
                    rt.err(74, "FAIL: read")
                if len_read > 0:
                    read_sofar += len_read
            idle = (
                (len_read == 0 and len_write == 0) if self.select_when_both_zero else (len_read <= 0 and len_write <= 0)
            )
            if read_sofar < o.totalsize and idle:
                # The lab's code passes max(readfd, writefd) as nfds, and reuses the sets select() rewrote.
                if rt.sys("select", max(readfd, writefd), fdsets, fdsets + FD_SETSIZE_BYTES, 0, 0) < 0:
                    rt.err(74, "FAIL: select")
            elif len_write == len_read > 0 and write_sofar == read_sofar:
                skipped = steady.after((len_write, len_read), (o.totalsize - read_sofar) // len_read - 1)
                read_sofar += skipped * len_read
                write_sofar += skipped * len_write
        return rt.clock_gettime(CLOCK_REALTIME) - start


def validate(argv: tuple[str, ...], env: dict[str, str]) -> None:
    parse(argv)


def ipc_main(rt: crt.Runtime, argv: tuple[str, ...], env: dict[str, str]) -> int:
    return Benchmark(rt, parse(argv)).run()


SUMMARY = "the L41 IPC benchmark: [-Bqsv] [-b buffersize] [-i pipe|local] [-t totalsize] 1thread|2thread|2proc"
program("ipc-static", f"{SUMMARY} (statically linked)", validate=validate, image="ipc-static", static=True)(ipc_main)
program("ipc-dynamic", f"{SUMMARY} (dynamically linked)", validate=validate, image="ipc-dynamic")(ipc_main)
