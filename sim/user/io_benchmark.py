"""The L41 lab's I/O benchmark (io-static / io-dynamic, "Lab 1: I/O tracing"), 2015-era io.c.

    io-static -c|-r|-w [-Bdqsv] [-b buffersize] [-t totalsize] path

It opens a file and moves totalsize bytes with read() (-r) or write() (-w) calls of buffersize bytes each, from
one calloc'd buffer, timing the loop with clock_gettime(CLOCK_REALTIME) on either side; -c creates (or
truncates) the file and fills it with write() (create mode takes no other flag and prints its configuration).
-d opens the file O_DIRECT, so the file system gives each buffer back as soon as it is used and reads go to the
disk; -s fsync()s the file inside the timed region. Unless -B (bare), it first fsync()s the file twice, syncs
the file systems three times and sleeps a second. The result is printed as "%.2F KBytes/sec" (-q: nothing;
-v: the configuration first). Usage errors print the usage message on stderr and exit EX_USAGE (64); a file that
cannot be opened exits EX_NOINPUT (66), a failed or short read or write EX_IOERR (74).

The lab first made its data file with `io-static -c iofile` and then benchmarked it. A run here starts a fresh
machine, so a read or write run finds the lab bench as that earlier create run left it: `iofile` (16 MiB of
zeros, in the root directory that relative paths start from) on the disk and still in the buffer cache.
"""

from __future__ import annotations

import re

from sim.user import crt
from sim.user.ipc_benchmark import MissingArgument, getopt, rate_kib_s, sleep
from sim.user.programs import check_limits, program

EX_USAGE, EX_NOINPUT, EX_OSERR, EX_IOERR = 64, 66, 71, 74
BLOCKSIZE = 16 * 1024
TOTALSIZE = 16 * 1024 * 1024
LONG_MAX = (1 << 63) - 1
MAX_BUFFERSIZE = 64 << 20  # the simulator's limits, as for ipc-static
MAX_TOTALSIZE = 1 << 30
LAB_DATA_FILE = "/iofile"  # what `io-static -c iofile` made on the lab bench
O_RDONLY, O_RDWR, O_CREAT, O_TRUNC, O_DIRECT = 0x0000, 0x0002, 0x0200, 0x0400, 0x00010000
CLOCK_REALTIME = 0
USAGE = (
    "{prog} -c|-r|-w [-Bdqsv] [-b buffersize] [-t totalsize] path\n"
    "\n"
    "Modes (pick one):\n"
    "    -c              'create mode': create benchmark data file\n"
    "    -r              'read mode': read() benchmark\n"
    "    -w              'write mode': write() benchmark\n"
    "\n"
    "Optional flags:\n"
    "    -B              Run in bare mode: no preparatory activities\n"
    "    -d              Set O_DIRECT flag to bypass buffer cache\n"
    "    -q              Just run the benchmark, don't print stuff out\n"
    "    -s              Call fsync() on the file descriptor when complete\n"
    "    -v              Provide a verbose benchmark description\n"
    f"    -b buffersize    Specify a buffer size (default: {BLOCKSIZE})\n"
    f"    -t totalsize    Specify total I/O size (default: {TOTALSIZE})\n"
)
_STRTOL = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")


class Usage(Exception):
    """usage() was called; `message` is what getopt(3) printed first, if anything."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


def _strtol(value: str) -> int:
    """strtol(optarg, &endp, 10) with the program's check: something, all of it a number, positive."""
    match = _STRTOL.fullmatch(value)
    if match is None:
        raise Usage()
    number = max(-LONG_MAX - 1, min(LONG_MAX, int(match.group(1))))  # strtol saturates at LONG_MIN/LONG_MAX
    if number <= 0:
        raise Usage()
    return number


def parse(argv: tuple[str, ...]) -> dict:
    """getopt(argc, argv, "Bb:cdqrst:vw") and main()'s checks: the flags (a letter each), sizes and the path."""
    prog = argv[0].rsplit("/", 1)[-1]
    o: dict = {"flags": set(), "buffersize": BLOCKSIZE, "totalsize": TOTALSIZE}
    args = list(argv[1:])
    try:
        for flag, value in getopt(args, "bt"):
            if value is not None:
                o["buffersize" if flag == "b" else "totalsize"] = _strtol(value)
            elif flag in "Bcdqrsvw":
                o["flags"].add(flag)
            else:
                raise Usage(f"{prog}: illegal option -- {flag}\n")
    except MissingArgument as missing:
        raise Usage(f"{prog}: option requires an argument -- {missing.flag}\n") from None
    flags = o["flags"]
    if len(flags & set("crw")) != 1:
        raise Usage()  # exactly one of create, read and write mode
    if "c" in flags and flags & set("Bdqrsv"):
        raise Usage()  # create mode takes only the sizes
    if "c" in flags:
        flags |= set("Bvw")  # no preparation, report, and write()
    if len(args) != 1:
        raise Usage()
    o["path"] = args[0]
    return o


def validate(argv: tuple[str, ...], env: dict[str, str]) -> None:
    """Only the simulator's own limits are checked before the run: the program's usage errors are its own."""
    try:
        o = parse(argv)
    except Usage:
        return
    check_limits(argv[0], (("-b", o["buffersize"], MAX_BUFFERSIZE), ("-t", o["totalsize"], MAX_TOTALSIZE)))


def install_lab_data_file() -> None:
    """The lab bench as `io-static -c iofile` left it: the file's blocks written to the disk by the syncer, and
    its buffers still in the buffer cache (simulator set-up, as rtld.install_files is: no system call)."""
    from sim.kern import vfs_subr
    from sim.kern.vfs_bio import B_CACHE, Buf

    names = vfs_subr.vfs().names
    if LAB_DATA_FILE in names:
        return
    bsize = vfs_subr.FS_BSIZE
    zeros = bytes(bsize)
    vp = names[LAB_DATA_FILE] = vfs_subr.new_vnode(vfs_subr.VREG, LAB_DATA_FILE, 0o600, i_size=TOTALSIZE)
    for lbn in range(TOTALSIZE // bsize):
        vp.v_disk[lbn] = zeros
        vp.v_bufobj[lbn] = Buf(vp, lbn, bytearray(bsize), B_CACHE)


def io(rt: crt.Runtime, o: dict) -> None:
    """The benchmark: set up, take a timestamp, do the I/O, take another, print the result."""
    flags, buffersize, totalsize, path = o["flags"], o["buffersize"], o["totalsize"], o["path"]
    if totalsize % buffersize:
        rt.errx(EX_USAGE, f"FAIL: data size ({totalsize}) is not a multiple of buffersize ({buffersize})")
    blockcount = totalsize // buffersize
    buf = rt.calloc(buffersize, 1)
    if buf == 0:
        rt.err(EX_OSERR, "FAIL: calloc")
    if "c" in flags:
        fd = rt.open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
    else:
        fd = rt.open(path, (O_RDWR if "w" in flags else O_RDONLY) | (O_DIRECT if "d" in flags else 0))
    if fd < 0:
        rt.err(EX_NOINPUT, f"FAIL: {path}")
    if "B" not in flags:
        for _ in range(2):
            rt.sys("fsync", fd)  # any I/O left pending on the file from earlier work
        for _ in range(3):
            rt.sys("sync")  # quiesce the file systems
        sleep(rt, 1)
    call = "write" if "w" in flags else "read"
    start = rt.clock_gettime(CLOCK_REALTIME)
    for _ in range(blockcount):
        n = rt.sys(call, fd, buf, buffersize)
        if n < 0:
            rt.err(EX_IOERR, f"FAIL: {call}")
        if n != buffersize:
            rt.errx(EX_IOERR, f"FAIL: partial {call}")
    if "s" in flags:
        rt.sys("fsync", fd)
    elapsed = rt.clock_gettime(CLOCK_REALTIME) - start
    if "q" not in flags:
        if "v" in flags:
            sec, nsec = divmod(elapsed, 1_000_000_000)
            operation = "create" if "c" in flags else ("write" if "w" in flags else "read")
            for line in ("Benchmark configuration:", f"  buffersize: {buffersize}", f"  totalsize: {totalsize}",
                         f"  blockcount: {blockcount}", f"  operation: {operation}", f"  path: {path}",
                         f"  time: {sec}.{nsec:09d}"):  # fmt: skip
                rt.write_all(1, line + "\n")
        rt.write_all(1, f"{rate_kib_s(totalsize, elapsed):.2F} KBytes/sec\n")
    rt.sys("close", fd)


def io_main(rt: crt.Runtime, argv: tuple[str, ...], env: dict[str, str]) -> int:
    try:
        o = parse(argv)
    except Usage as usage:
        if usage.message:
            rt.fprintf_stderr(usage.message)
        rt.fprintf_stderr(USAGE.format(prog=rt.progname))
        rt.exit(EX_USAGE)
    if "c" not in o["flags"]:
        install_lab_data_file()
    io(rt, o)
    return 0


SUMMARY = "the L41 I/O benchmark (Lab 1): -c|-r|-w [-Bdqsv] [-b buffersize] [-t totalsize] path"
program("io-static", f"{SUMMARY} (statically linked)", validate=validate, image="io-static", static=True)(io_main)
program("io-dynamic", f"{SUMMARY} (dynamically linked)", validate=validate, image="io-dynamic")(io_main)
