"""dd(1) as FreeBSD 11's bin/dd has it: args.c (operands and get_num), dd.c (setup, dd_in, dd_out, dd_close)
and misc.c (summary).

The lecture's puzzle is this program: `dd if=/dev/zero of=/dev/null bs=10m count=1` spends ~0.4 s of system
time, though its system calls take a few ms. Nothing here encodes that: setup() mallocs one buffer of
out.dbsz + in.dbsz - 1 bytes (20 MiB - 1 for bs=10m), jemalloc junk-fills it from user mode when the build asks
for that (sim/user/malloc.py), and read() copies /dev/zero into it; the page faults follow from who touches
each page first.

The operands are parsed before the run starts (`parse`), so a bad command line gets dd's own message and no run.
Modelled operands: if, of, bs, ibs, obs, count, conv=sync|noerror|notrunc, status=none|noxfer. dd's other
real operands and conversions are refused with a message saying so.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.kern.errno import EINTR, ESPIPE
from sim.user import crt
from sim.user.programs import program
from sim.user.shell import CommandLineError

# ddflags (bin/dd/dd.h)
C_ASCII = 0x00001
C_BLOCK = 0x00002
C_BS = 0x00004
C_CBS = 0x00008
C_COUNT = 0x00010
C_EBCDIC = 0x00020
C_FILES = 0x00040
C_IBS = 0x00080
C_IF = 0x00100
C_LCASE = 0x00200
C_NOERROR = 0x00400
C_NOTRUNC = 0x00800
C_OBS = 0x01000
C_OF = 0x02000
C_OSYNC = 0x04000
C_PAREVEN = 0x08000
C_SEEK = 0x10000
C_SKIP = 0x20000
C_SPARSE = 0x40000
C_SWAB = 0x80000
C_PARNONE = 0x100000
C_PARODD = 0x200000
C_PARSET = 0x400000
C_SYNC = 0x1000000
C_UCASE = 0x2000000
C_UNBLOCK = 0x4000000
C_FILL = 0x8000000
C_STATUS = 0x10000000
C_NOXFER = 0x20000000
C_NOINFO = 0x40000000

SSIZE_MAX = (1 << 63) - 1
UINTMAX = (1 << 64) - 1
# The simulator's own limit: dd bs=1g (a 2 GiB - 1 buffer) is the largest run it is built for.
MAX_BLOCK = 1 << 30

# args.c's operand table: name -> (ddflags it sets, ddflags that may not already be set)
ARGS = {
    "bs": (C_BS, C_BS | C_IBS | C_OBS | C_OSYNC),
    "cbs": (C_CBS, C_CBS),
    "conv": (0, 0),
    "count": (C_COUNT, C_COUNT),
    "files": (C_FILES, C_FILES),
    "fillchar": (C_FILL, C_FILL),
    "ibs": (C_IBS, C_BS | C_IBS),
    "if": (C_IF, C_IF),
    "iseek": (C_SKIP, C_SKIP),
    "obs": (C_OBS, C_BS | C_OBS),
    "of": (C_OF, C_OF),
    "oseek": (C_SEEK, C_SEEK),
    "seek": (C_SEEK, C_SEEK),
    "skip": (C_SKIP, C_SKIP),
    "status": (C_STATUS, C_STATUS),
}
MODELLED_OPERANDS = ("bs", "conv", "count", "ibs", "if", "obs", "of", "status")

# args.c's conversion table: name -> (set, noset)
CONVERSIONS = {
    "ascii": (C_ASCII, C_EBCDIC),
    "block": (C_BLOCK, C_UNBLOCK),
    "ebcdic": (C_EBCDIC, C_ASCII),
    "ibm": (C_EBCDIC, C_ASCII),
    "lcase": (C_LCASE, C_UCASE),
    "noerror": (C_NOERROR, 0),
    "notrunc": (C_NOTRUNC, 0),
    "oldascii": (C_ASCII, C_EBCDIC),
    "oldebcdic": (C_EBCDIC, C_ASCII),
    "oldibm": (C_EBCDIC, C_ASCII),
    "osync": (C_OSYNC, C_BS),
    "pareven": (C_PAREVEN, C_PARODD | C_PARSET | C_PARNONE),
    "parnone": (C_PARNONE, C_PARODD | C_PARSET | C_PAREVEN),
    "parodd": (C_PARODD, C_PAREVEN | C_PARSET | C_PARNONE),
    "parset": (C_PARSET, C_PARODD | C_PAREVEN | C_PARNONE),
    "sparse": (C_SPARSE, 0),
    "swab": (C_SWAB, 0),
    "sync": (C_SYNC, 0),
    "ucase": (C_UCASE, C_LCASE),
    "unblock": (C_UNBLOCK, C_BLOCK),
}
MODELLED_CONVERSIONS = ("noerror", "notrunc", "sync")

SIGINT = 2
SIGINFO = 29
CLOCK_MONOTONIC = 4  # sys/time.h: setup() and summary() time the copy with it
FIODTYPE = 0x4004667A  # _IOR('f', 122, int): the device's D_TYPEMASK bits
D_TAPE = 0x0001
D_DISK = 0x0002
D_MEM = 0x0008
S_IFMT, S_IFCHR, S_IFBLK, S_IFREG = 0o170000, 0o020000, 0o060000, 0o100000
O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_TRUNC = 0x0000, 0x0001, 0x0002, 0x0200, 0x0400
DEFFILEMODE = 0o666
SEEK_CUR = 1
# IO flags (dd.h)
ISCHR, ISPIPE, ISTAPE, ISSEEK, NOREAD, ISTRUNC = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


@dataclass
class Operands:
    """What jcl() leaves in its globals: block sizes, the copy count, the file names and ddflags."""

    ibs: int = 512
    obs: int = 512
    cpy_cnt: int = 0  # 0: copy everything; UINTMAX: count=0 was given, copy nothing
    in_name: str | None = None
    out_name: str | None = None
    flags: int = 0


def _error(message: str) -> CommandLineError:
    return CommandLineError(f"dd: {message}")


def strtoumax(text: str) -> tuple[int, str, bool]:
    """strtouq(text, &end, 0): (value, rest, overflowed); C's wrap-around for a leading '-' included."""
    i = 0
    while i < len(text) and text[i] in " \t\n\v\f\r":
        i += 1
    negative = False
    if i < len(text) and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    base, digits = 10, "0123456789"
    if text[i : i + 2].lower() == "0x" and i + 2 < len(text) and text[i + 2] in "0123456789abcdefABCDEF":
        base, digits, i = 16, "0123456789abcdefABCDEF", i + 2
    elif text[i : i + 1] == "0":
        base, digits = 8, "01234567"
    start = i
    while i < len(text) and text[i] in digits:
        i += 1
    if i == start:
        return 0, text, False  # no digits: end points at the whole string
    if len(text[start:i].lstrip("0")) > 22:  # more digits than UINTMAX has in any base: converting would be slow
        return UINTMAX, text[i:], True
    value = int(text[start:i], base)
    if value > UINTMAX:
        return UINTMAX, text[i:], True
    if negative:
        value = (-value) & UINTMAX
    return value, text[i:], False


def get_num(oper: str, val: str) -> int:
    """args.c get_num(): a number with an optional b/k/m/g/w multiplier, or a product of them joined by x."""
    num, expr, overflow = strtoumax(val)
    if overflow:
        raise _error(f"{oper}: Result too large")
    if expr == val:
        raise _error(f"{oper}: illegal numeric value")
    mult = {"b": 512, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "w": 4}.get(expr[:1].lower(), 0)
    if mult:
        num *= mult
        if num > UINTMAX:
            raise _error(f"{oper}: Result too large")
        expr = expr[1:]
    if not expr:
        return num
    if expr[0] in "xX*":
        mult = get_num(oper, expr[1:])
        num *= mult
        if num > UINTMAX:
            raise _error(f"{oper}: Result too large")
        return num
    raise _error(f"{oper}: illegal numeric value")


def _block_size(oper: str, value: str) -> int:
    res = get_num(oper, value)
    if res < 1 or res > SSIZE_MAX:
        raise _error(f"{oper} must be between 1 and {SSIZE_MAX}")
    if res > MAX_BLOCK:
        raise _error(f"{oper}={value} is {res:,} bytes; the simulated machine runs dd with blocks of at most 1g")
    return res


def parse(argv: tuple[str, ...]) -> Operands:
    """args.c jcl(): read the operands, with dd's own error messages; raises CommandLineError."""
    ops = Operands()
    for oper in argv[1:]:
        name, eq, arg = oper.partition("=")
        if not eq:
            raise _error(f"unknown operand {oper}")
        if not arg:
            raise _error(f"no value specified for {name}")
        if name not in ARGS:
            raise _error(f"unknown operand {name}")
        sets, noset = ARGS[name]
        if ops.flags & noset:
            raise _error(f"{name}: illegal argument combination or already set")
        if name not in MODELLED_OPERANDS:
            raise _error(f"{name}= is a real dd operand that the simulated dd does not model "
                         f"(it models {', '.join(MODELLED_OPERANDS)})")  # fmt: skip
        ops.flags |= sets
        if name == "bs":
            ops.ibs = ops.obs = _block_size(name, arg)
        elif name == "ibs":
            ops.ibs = _block_size(name, arg)
        elif name == "obs":
            ops.obs = _block_size(name, arg)
        elif name == "count":
            res = get_num(name, arg)
            if res >> 63:  # (intmax_t)get_num(arg) < 0
                raise _error("count cannot be negative")
            ops.cpy_cnt = UINTMAX if res == 0 else res
        elif name == "if":
            ops.in_name = arg
        elif name == "of":
            ops.out_name = arg
        elif name == "status":
            if arg == "none":
                ops.flags |= C_NOINFO
            elif arg == "noxfer":
                ops.flags |= C_NOXFER
            else:
                raise _error(f"unknown status {arg}")
        elif name == "conv":
            for conv in arg.split(","):
                if conv not in CONVERSIONS:
                    raise _error(f"unknown conversion {conv}")
                cset, cnoset = CONVERSIONS[conv]
                if ops.flags & cnoset:
                    raise _error(f"{conv}: illegal conversion combination")
                if conv not in MODELLED_CONVERSIONS:
                    raise _error(f"conv={conv} is a real dd conversion that the simulated dd does not model "
                                 f"(it models {', '.join(MODELLED_CONVERSIONS)})")  # fmt: skip
                ops.flags |= cset
    return ops


@dataclass
class IO:
    """dd.h's IO: one side of the copy."""

    name: str
    fd: int
    dbsz: int
    flags: int = 0
    db: int = 0  # buffer address
    dbp: int = 0  # current position in the buffer
    dbcnt: int = 0  # bytes in the buffer
    dbrcnt: int = 0  # last read's byte count


@dataclass
class Stats:
    """dd.h's STAT."""

    in_full: int = 0
    in_part: int = 0
    out_full: int = 0
    out_part: int = 0
    bytes: int = 0
    start_ns: int = 0


class Dd:
    """One run of dd: the globals of dd.c, and its functions as methods."""

    def __init__(self, rt: crt.Runtime, ops: Operands) -> None:
        self.rt, self.ops, self.ddflags = rt, ops, ops.flags
        self.inp = IO(ops.in_name or "stdin", 0, ops.ibs)
        self.out = IO(ops.out_name or "stdout", 1, ops.obs)
        self.st = Stats()

    def main(self) -> int:
        rt = self.rt
        rt.step("setlocale")
        self.setup()
        rt.signal(SIGINFO, self.siginfo_handler)
        rt.signal(SIGINT, self.terminate)
        rt.atexit(self.summary)
        self.dd_in()
        self.dd_close()
        # Close the output explicitly so that the summary (an atexit hook) includes the work close() does.
        rt.sys("close", self.out.fd)
        rt.exit(0)
        return 0

    def siginfo_handler(self) -> None:
        """^T: report progress so far."""
        self.summary()

    def terminate(self) -> None:
        """^C: report, then go."""
        self.summary()
        self.rt.libc._exit(1)

    def setup(self) -> None:
        rt, inp, out = self.rt, self.inp, self.out
        if self.ops.in_name is not None:
            inp.fd = rt.open(inp.name, O_RDONLY, 0)
            if inp.fd == -1:
                rt.err(1, inp.name)
        self.getfdtype(inp)
        if self.ops.out_name is not None:
            oflags = O_CREAT | (0 if self.ddflags & C_NOTRUNC else O_TRUNC)
            out.fd = rt.open(out.name, O_RDWR | oflags, DEFFILEMODE)
            if out.fd == -1:  # we may not have read access: try again with write only
                out.fd = rt.open(out.name, O_WRONLY | oflags, DEFFILEMODE)
                out.flags |= NOREAD
            if out.fd == -1:
                rt.err(1, out.name)
        self.getfdtype(out)
        # Not doing record-oriented I/O, so a single buffer serves input and output.
        inp.db = rt.malloc(out.dbsz + inp.dbsz - 1)
        if inp.db == 0:
            rt.err(1, "input buffer")
        out.db = inp.db
        inp.dbp, out.dbp = inp.db, out.db
        self.st.start_ns = rt.clock_gettime(CLOCK_MONOTONIC)

    def getfdtype(self, io: IO) -> None:
        rt = self.rt
        mode = rt.fstat_mode(io.fd)
        if mode is None:
            rt.err(1, io.name)
        if mode & S_IFMT == S_IFREG:
            io.flags |= ISTRUNC
        if mode & S_IFMT in (S_IFCHR, S_IFBLK):
            dtype = rt.ioctl_int(io.fd, FIODTYPE)
            if dtype is None:
                rt.err(1, io.name)
            if dtype & D_TAPE:
                io.flags |= ISTAPE
            elif dtype & (D_DISK | D_MEM):
                io.flags |= ISSEEK
            if mode & S_IFMT == S_IFCHR and not dtype & D_TAPE:
                io.flags |= ISCHR
            return
        rt.set_errno(0)
        if rt.sys("lseek", io.fd, 0, SEEK_CUR) == -1 and rt.errno() == ESPIPE:
            io.flags |= ISPIPE
        else:
            io.flags |= ISSEEK

    def dd_in(self) -> None:
        rt, inp, out, st, ddflags = self.rt, self.inp, self.out, self.st, self.ddflags
        while True:
            if self.ops.cpy_cnt == UINTMAX:  # count=0 was specified
                return
            if self.ops.cpy_cnt and st.in_full + st.in_part >= self.ops.cpy_cnt:
                return
            if ddflags & C_SYNC:
                rt.memset(inp.dbp, 0, inp.dbsz)  # zero the buffer first: a short read is padded with zeros
            n = rt.sys("read", inp.fd, inp.dbp, inp.dbsz)
            if n == 0:
                inp.dbrcnt = 0
                return
            if n == -1:
                if not ddflags & C_NOERROR:
                    rt.err(1, inp.name)
                rt.warn(inp.name)
                self.summary()
                # If it's seekable, seek past the error.
                if inp.flags & ISSEEK and rt.sys("lseek", inp.fd, inp.dbsz, SEEK_CUR):
                    rt.warn(inp.name)
                if not ddflags & C_SYNC:
                    continue
                inp.dbrcnt = inp.dbsz  # read errors count as full blocks
                inp.dbcnt += inp.dbrcnt
                st.in_full += 1
            elif n == inp.dbsz:
                inp.dbrcnt = n
                inp.dbcnt += n
                st.in_full += 1
            else:
                inp.dbrcnt = inp.dbsz if ddflags & C_SYNC else n
                inp.dbcnt += inp.dbrcnt
                st.in_part += 1
            if ddflags & C_BS:
                # POSIX: with bs= and no conversions, each block is written as it was read.
                out.dbcnt = inp.dbcnt
                self.dd_out(True)
                inp.dbcnt = 0
                continue
            inp.dbp += inp.dbrcnt
            self.defconv()

    def defconv(self) -> None:
        """conv.c def(): no conversion; write whenever a full output block is buffered."""
        inp, out = self.inp, self.out
        out.dbp, out.dbcnt = inp.dbp, inp.dbcnt
        if inp.dbcnt >= out.dbsz:
            self.dd_out(False)
            inp.dbp, inp.dbcnt = out.dbp, out.dbcnt

    def dd_close(self) -> None:
        if self.inp.dbcnt and not self.ddflags & C_BS:  # def_close(): everything is in the buffer already
            self.out.dbcnt = self.inp.dbcnt
        if self.out.dbcnt:
            self.dd_out(True)

    def dd_out(self, force: bool) -> None:
        rt, out, st = self.rt, self.out, self.st
        outp = out.db
        n = out.dbcnt if force else out.dbsz
        while True:
            cnt = n
            while True:
                if not cnt:
                    return
                nw = rt.sys("write", out.fd, outp, cnt)
                if nw <= 0:
                    if nw == 0:
                        rt.errx(1, f"{out.name}: end of device")
                    if rt.errno() != EINTR:
                        rt.err(1, out.name)
                    nw = 0
                outp += nw
                st.bytes += nw
                if nw == n:
                    if n != out.dbsz:
                        st.out_part += 1
                    else:
                        st.out_full += 1
                    break
                st.out_part += 1
                if nw == cnt:
                    break
                if out.flags & ISTAPE:
                    rt.errx(1, f"{out.name}: short write on tape device")
                cnt -= nw
            out.dbcnt -= n
            if out.dbcnt < out.dbsz:
                break
            n = out.dbsz
        # Reassemble the output block: move the leftover to the front of the buffer.
        if out.dbcnt:
            rt.memmove(out.db, out.dbp - out.dbcnt, out.dbcnt)
        out.dbp = out.db + out.dbcnt

    def summary(self) -> None:
        """misc.c summary(), FreeBSD 11: records in and out, and the transfer rate, on stderr."""
        rt, st = self.rt, self.st
        if self.ddflags & C_NOINFO:
            return
        end_ns = rt.clock_gettime(CLOCK_MONOTONIC)
        res_ns = rt.clock_getres(CLOCK_MONOTONIC)
        secs = max((end_ns - st.start_ns) * 1e-9, res_ns * 1e-9)
        rt.fprintf_stderr(f"{st.in_full}+{st.in_part} records in\n{st.out_full}+{st.out_part} records out\n")
        if not self.ddflags & C_NOXFER:
            rate = st.bytes / secs if secs else 0.0
            rt.fprintf_stderr(f"{st.bytes} bytes transferred in {secs:.6f} secs ({rate:.0f} bytes/sec)\n")


def validate(argv: tuple[str, ...], env: dict[str, str]) -> None:
    parse(argv)


@program("dd", "copy and convert a file (FreeBSD 11 bin/dd): dd if=/dev/zero of=/dev/null bs=10m count=1",
         validate=validate, image="dd")  # fmt: skip
def dd_main(rt: crt.Runtime, argv: tuple[str, ...], env: dict[str, str]) -> int:
    return Dd(rt, parse(argv)).main()
