"""The run-time linker's start-up of a dynamically linked program: libexec/rtld-elf (rtld.c, map_object.c,
libmap.c, rtld_lock.c, malloc.c) as FreeBSD 11 has it, with libc's initialisers.

The kernel has mapped the program and ld-elf.so.1; _rtld() does the rest, and every system call below is one
that source makes, in its order:

  init_rtld       rtld's malloc takes its first page pool (mmap)
  issetugid       trust = !issetugid(): may LD_* variables be honoured?
  lm_init         /etc/libmap.conf: realpath()'s lstat of /etc and of the file, openat, fstat, mmap, close;
                  its `includedir /usr/local/etc/libmap.d`: realpath()'s lstat of each prefix, the last failing
                  (there is none); munmap; libmap ends up disabled (rtld_libmap.py)
  find_library    the ldconfig hints: openat, read (header), lseek, read (directory list), close;
                  then access() of each candidate until /lib/libc.so.7 is found
  load_object     openat, fstat; map_object: mmap the ELF header page, mmap the whole address range
                  PROT_NONE, mmap each PT_LOAD over it, clear the partial bss page, mmap the rest of the
                  bss, munmap the header page; close
  relocate        symbol caches from rtld's malloc (a big one for libc may need another pool: munmap of the
                  old pool's unused pages, mmap of a new one), COW faults where relocations write
  TLS             allocate_initial_tls, then sysarch(AMD64_SET_FSBASE)
  init            the bind lock is a write lock, taken with all signals blocked: sigprocmask around each
                  object's initialisers; libc's run jemalloc's constructor (readlink /etc/malloc.conf,
                  issetugid, mmap of the first base chunk)

rtld_exit() (called by exit() through atexit) takes the lock again for the fini functions.

FreeBSD 11 specifics (they changed later): libmap.c's realpath() calls (until r324856, 2017), the hints are
read with lseek+read (pread since 12), the ELF header with an mmap of its first page (pread since 13), libc has
no RELRO segment (base binutils 2.17 did not emit PT_GNU_RELRO), so no mprotect. Image sizes below are
approximations of FreeBSD 11/amd64's binaries.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sim.core.events import JumpSlots, ObjectFini, ObjectInit, Relocations, RtldEnvironment, RtldStart, StaticStart
from sim.user import rtld_libmap

if TYPE_CHECKING:
    from sim.user.crt import Runtime

PAGE = 4096
PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC = 0x0, 0x1, 0x2, 0x4
MAP_PRIVATE, MAP_FIXED, MAP_ANON = 0x0002, 0x0010, 0x1000
MAP_NOCORE, MAP_PREFAULT_READ = 0x00020000, 0x00040000
O_RDONLY, O_CLOEXEC, O_VERIFY = 0x0000, 0x00100000, 0x00200000
SEEK_SET = 0
F_OK = 0
SIG_BLOCK, SIG_SETMASK = 1, 3
AMD64_SET_FSBASE = 129  # machine/sysarch.h
PF_X, PF_W, PF_R = 0x1, 0x2, 0x4

NPOOLPAGES = 32 * 1024 // PAGE  # rtld malloc.c: pages taken from the kernel at a time
SIZEOF_OBJ_ENTRY = 768  # struct Struct_Obj_Entry on amd64, FreeBSD 11 (approximate)
SIZEOF_SYMCACHE = 16  # SymCache: a symbol and its object
PATH_MAX = 1024
RTLD_STATIC_TLS_EXTRA = 128
TLS_TCB_SIZE = 3 * 8

ELFHINTS_HDR = struct.Struct("<IIIIII104x")  # magic, version, strtab, strsize, dirlist, dirlistlen, spare
ELFHINTS_MAGIC = 0x746E6845
LIBMAP_CONF = "/etc/libmap.conf"
ELF_HINTS = "/var/run/ld-elf.so.hints"
HINTS_DIRS = "/lib:/usr/lib:/usr/lib/compat:/usr/local/lib"


@dataclass(frozen=True)
class Segment:
    """A PT_LOAD program header."""

    vaddr: int
    offset: int
    filesz: int
    memsz: int
    flags: int


@dataclass(frozen=True)
class ElfImage:
    """What rtld reads from an object's headers and dynamic section."""

    path: str
    segments: tuple[Segment, ...]
    needed: tuple[str, ...] = ()
    dynsymcount: int = 0
    nrela: int = 0  # .rela.dyn entries processed at load time
    npltrela: int = 0  # jump slots (lazy binding: only relocated by relocbase)
    reloc_span: int = 0  # bytes at the start of the data segment that relocations write (.got, .data.rel.ro)
    tls_size: int = 0
    has_init: bool = False
    has_fini: bool = False


# FreeBSD 11/amd64 images (sizes approximate, from `readelf -lS` of 11.x binaries).
LIBC = ElfImage(
    path="/lib/libc.so.7",
    segments=(
        Segment(0x000000, 0x000000, 0x1A2000, 0x1A2000, PF_R | PF_X),
        Segment(0x3A2000, 0x1A2000, 0x02B5F0, 0x058F40, PF_R | PF_W),  # max page size 2 MiB: a gap
    ),
    dynsymcount=3300,
    nrela=1900,
    npltrela=460,
    reloc_span=0x13000,
    tls_size=0x1C0,  # jemalloc's tsd, the locale pointer, __je_tls and friends
    has_init=True,
    has_fini=True,
)
IMAGES = {
    "dd": ElfImage(
        "/bin/dd",
        (Segment(0x400000, 0, 0x5000, 0x5000, PF_R | PF_X), Segment(0x605000, 0x5000, 0x400, 0xE00, PF_R | PF_W)),
        needed=("libc.so.7",),
        dynsymcount=95,
        nrela=12,
        npltrela=60,
        has_init=True,
    ),  # fmt: skip
    "io-dynamic": ElfImage(
        "/usr/bin/io-dynamic",
        (Segment(0x400000, 0, 0x2000, 0x2000, PF_R | PF_X), Segment(0x602000, 0x2000, 0x200, 0x600, PF_R | PF_W)),
        needed=("libc.so.7",),
        dynsymcount=40,
        nrela=6,
        npltrela=25,
        has_init=True,
    ),  # fmt: skip
    "ipc-dynamic": ElfImage(
        "/usr/bin/ipc-dynamic",
        (Segment(0x400000, 0, 0x4000, 0x4000, PF_R | PF_X), Segment(0x604000, 0x4000, 0x300, 0x900, PF_R | PF_W)),
        needed=("libthr.so.3", "libc.so.7"),
        dynsymcount=80,
        nrela=10,
        npltrela=50,
        has_init=True,
    ),  # fmt: skip
}
LIBTHR = ElfImage(
    path="/lib/libthr.so.3",
    segments=(
        Segment(0x00000, 0x00000, 0x17000, 0x17000, PF_R | PF_X),
        Segment(0x217000, 0x17000, 0x1000, 0x2200, PF_R | PF_W),
    ),  # fmt: skip
    dynsymcount=420,
    nrela=160,
    npltrela=110,
    reloc_span=0x1000,
    has_init=True,
    has_fini=True,
)
SHARED_OBJECTS = {"libc.so.7": LIBC, "libthr.so.3": LIBTHR}


def _hints_file() -> bytes:
    dirlist = HINTS_DIRS.encode() + b"\0"
    strtab = ELFHINTS_HDR.size
    return ELFHINTS_HDR.pack(ELFHINTS_MAGIC, 1, strtab, len(dirlist), 0, len(dirlist) - 1) + dirlist


FILES: dict[str, bytes] = {
    LIBMAP_CONF: b"# $FreeBSD$\nincludedir /usr/local/etc/libmap.d\n",  # FreeBSD 11's /etc/libmap.conf
    ELF_HINTS: _hints_file(),
}


def install_files() -> None:
    """Put the run-time linker's files in the simulated namespace (what installworld and ldconfig leave), with
    rtld's own two files in the buffer cache, as on a booted system: rc.d/ldconfig wrote the hints at boot and
    every dynamically linked program since (init's children, the login shell) read both through rtld."""
    from sim.kern import vfs_subr
    from sim.kern.vfs_bio import B_CACHE, Buf

    names = vfs_subr.vfs().names
    for path in ("/lib", "/var/run", "/usr/local", "/usr/local/etc"):  # BSD.local.dist makes /usr/local/etc
        if path not in names:
            names[path] = vfs_subr.new_vnode(vfs_subr.VDIR, path, 0o755)
    files = [(path, data, None) for path, data in FILES.items()]
    files += [(i.path, bytes(max(s.offset + s.filesz for s in i.segments)), i) for i in SHARED_OBJECTS.values()]
    for path, data, image in files:
        if path not in names:
            bsize = vfs_subr.FS_BSIZE
            blocks = {n: data[n * bsize : (n + 1) * bsize] for n in range((len(data) + bsize - 1) // bsize)}
            vp = names[path] = vfs_subr.new_vnode(vfs_subr.VREG, path, 0o444, i_size=len(data), v_disk=blocks,
                                                  v_image=image)  # fmt: skip
            if path in FILES:
                vp.v_bufobj.update({n: Buf(vp, n, bytearray(block), B_CACHE) for n, block in blocks.items()})
                vp.v_cached = True  # VMIO: those buffers' pages are the vnode object's, resident (an mmap: soft)


class RtldMalloc:
    """rtld's own malloc (libexec/rtld-elf/malloc.c): power-of-two buckets carved from page pools."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.pool_start = self.pool_end = 0
        self.free_lists: dict[int, list[int]] = {}

    def morepages(self, n: int) -> bool:
        rt = self.rt
        if self.pool_end - self.pool_start > PAGE:  # give back the old pool's whole unused pages
            addr = (self.pool_start + PAGE - 1) & ~(PAGE - 1)
            rt.munmap(addr, self.pool_end - addr)
        start = rt.mmap(0, n * PAGE, PROT_READ | PROT_WRITE, MAP_ANON | MAP_PRIVATE, -1, 0)
        if start == 0:
            return False
        self.pool_start, self.pool_end = start, start + n * PAGE
        return True

    def malloc(self, nbytes: int) -> int:
        if self.pool_end == 0 and not self.morepages(NPOOLPAGES):
            return 0
        nbytes += 8  # union overhead: the bucket index and magic
        bucket = max(3, (nbytes - 1).bit_length())
        free = self.free_lists.setdefault(bucket, [])
        if not free:
            sz = 1 << bucket
            amt, nblks = (PAGE, PAGE // sz) if sz < PAGE else (sz + PAGE, 1)
            if amt > self.pool_end - self.pool_start and not self.morepages(amt // PAGE + NPOOLPAGES):
                return 0
            op = self.pool_start
            self.pool_start += amt
            free.extend(op + i * sz for i in reversed(range(nblks)))
        op = free.pop()
        self.rt.store(op, 8)  # ov_magic, ov_index
        return op + 8

    def calloc(self, nbytes: int) -> int:
        ret = self.malloc(nbytes)
        if ret:
            self.rt.memset(ret, 0, nbytes)
        return ret

    def free(self, addr: int, nbytes: int) -> None:
        bucket = max(3, (nbytes + 7).bit_length())
        self.free_lists.setdefault(bucket, []).append(addr - 8)


@dataclass
class Obj:
    """Obj_Entry: one loaded object."""

    image: ElfImage
    mapbase: int
    init_done: bool = False
    tls_offset: int = 0
    names: list[str] = field(default_factory=list)


class Rtld:
    """The state _rtld() builds: the object list, the bind lock, rtld's malloc."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.xmalloc = RtldMalloc(rt)
        self.objs: list[Obj] = []
        self.hints: str | None = None
        self.wlocked = False
        self.tls_static_space = 0

    # rtld_lock.c: the default (single-threaded) locks block every signal while a write lock is held.
    def wlock_acquire(self) -> None:
        sigsets = self.rt.scratch(32)
        self.rt.sys("sigprocmask", SIG_BLOCK, sigsets, sigsets + 16)
        self.wlocked = True

    def lock_release(self) -> None:
        sigset = self.rt.scratch(16)
        self.rt.sys("sigprocmask", SIG_SETMASK, sigset, 0)
        self.wlocked = False

    def gethints(self) -> str | None:
        rt = self.rt
        if self.hints is not None:
            return self.hints or None
        self.hints = ""
        fd = rt.open(ELF_HINTS, O_RDONLY | O_CLOEXEC)
        if fd == -1:
            return None
        hdr = rt.scratch(ELFHINTS_HDR.size)
        if rt.sys("read", fd, hdr, ELFHINTS_HDR.size) != ELFHINTS_HDR.size:
            rt.sys("close", fd)
            return None
        magic, version, strtab, _, dirlist, dirlistlen = ELFHINTS_HDR.unpack(rt.load_bytes(hdr, ELFHINTS_HDR.size))
        if magic != ELFHINTS_MAGIC or version != 1:
            rt.sys("close", fd)
            return None
        p = self.xmalloc.malloc(dirlistlen + 1)
        if (
            rt.sys("lseek", fd, strtab + dirlist, SEEK_SET) == -1
            or rt.sys("read", fd, p, dirlistlen + 1) != dirlistlen + 1
        ):
            rt.sys("close", fd)
            return None
        self.hints = rt.load_bytes(p, dirlistlen).decode(errors="replace")
        rt.sys("close", fd)
        return self.hints or None

    def find_library(self, name: str) -> str | None:
        """The search order with no rpath, no LD_LIBRARY_PATH: the hints' directories, then /lib:/usr/lib."""
        rt = self.rt
        buffer = self.xmalloc.malloc(PATH_MAX)
        for path in (self.gethints(), "/lib:/usr/lib"):
            for directory in filter(None, (path or "").split(":")):
                candidate = f"{directory}/{name}"
                if rt.sys("access", rt.cstring(candidate), F_OK) == 0:
                    self.xmalloc.free(buffer, PATH_MAX)
                    self.xmalloc.malloc(len(candidate) + 1)
                    return candidate
        self.xmalloc.free(buffer, PATH_MAX)
        return None

    def load_object(self, name: str) -> Obj | None:
        rt = self.rt
        path = self.find_library(name)
        image = SHARED_OBJECTS.get(name)
        if path is None or image is None:
            rt.fprintf_stderr(f'ld-elf.so.1: Shared object "{name}" not found, required by "{rt.progname}"\n')
            rt.exit(1)
        fd = rt.open(path, O_RDONLY | O_CLOEXEC | O_VERIFY)
        if fd == -1:
            rt.fprintf_stderr(f'ld-elf.so.1: Cannot open "{path}"\n')
            rt.exit(1)
        rt.sys("fstat", fd, rt.scratch(120))
        obj = self.map_object(fd, image)
        rt.sys("close", fd)
        if obj is None:
            rt.fprintf_stderr(f"ld-elf.so.1: {path}: mmap of entire address space failed\n")
            rt.exit(1)
        obj.names.append(name)
        self.xmalloc.malloc(len(name) + 24)  # object_add_name()
        return obj

    def map_object(self, fd: int, image: ElfImage) -> Obj | None:
        """map_object.c: reserve the object's whole range, then overlay each segment on it."""
        rt = self.rt
        hdr = rt.mmap(0, PAGE, PROT_READ, MAP_PRIVATE | MAP_PREFAULT_READ, fd, 0)
        if hdr == 0:
            return None
        segs = image.segments
        base_vaddr = segs[0].vaddr & ~(PAGE - 1)
        mapsize = _round_page(segs[-1].vaddr + segs[-1].memsz) - base_vaddr
        mapbase = rt.mmap(0, mapsize, PROT_NONE, MAP_PRIVATE | MAP_ANON | MAP_NOCORE, -1, 0)
        if mapbase == 0:
            rt.munmap(hdr, PAGE)
            return None
        for seg in segs:
            data_offset = seg.offset & ~(PAGE - 1)
            data_vaddr = seg.vaddr & ~(PAGE - 1)
            data_vlimit = _round_page(seg.vaddr + seg.filesz)
            data_addr = mapbase + data_vaddr - base_vaddr
            prot = _convert_prot(seg.flags)
            flags = MAP_PRIVATE | MAP_FIXED | (0 if seg.flags & PF_W else MAP_NOCORE)
            rt.mmap(data_addr, data_vlimit - data_vaddr, prot, flags | MAP_PREFAULT_READ, fd, data_offset)
            if seg.filesz != seg.memsz:
                clear_vaddr = seg.vaddr + seg.filesz
                nclear = data_vlimit - clear_vaddr
                if nclear:  # the segment is writable: zero the rest of its last file page in place
                    rt.memset(mapbase + clear_vaddr - base_vaddr, 0, nclear)
                bss_vlimit = _round_page(seg.vaddr + seg.memsz)
                if bss_vlimit > data_vlimit:
                    rt.mmap(mapbase + data_vlimit - base_vaddr, bss_vlimit - data_vlimit, prot,
                            flags | MAP_ANON, -1, 0)  # fmt: skip
        self.xmalloc.calloc(SIZEOF_OBJ_ENTRY)  # obj_new()
        rt.munmap(hdr, PAGE)
        return Obj(image, mapbase - base_vaddr)

    def relocate(self, obj: Obj, is_main: bool) -> None:
        """reloc_non_plt() with a symbol cache, then reloc_plt() (lazy: each jump slot += relocbase)."""
        rt = self.rt
        profile = rt.profile
        image = obj.image
        cache = self.xmalloc.calloc(image.dynsymcount * SIZEOF_SYMCACHE)
        rt.step("reloc_non_plt", Relocations(image.path, image.nrela), image.nrela * profile.rtld_reloc_ns)
        if not is_main:
            data = next(s for s in image.segments if s.flags & PF_W)
            for offset in range(0, image.reloc_span, PAGE):  # the writes land on these pages: COW faults
                rt.store(obj.mapbase + data.vaddr + offset, 8)
        self.xmalloc.free(cache, image.dynsymcount * SIZEOF_SYMCACHE)
        rt.step("reloc_plt", JumpSlots(image.path, image.npltrela), image.npltrela * profile.user_insn_ns)

    def allocate_initial_tls(self) -> None:
        rt = self.rt
        self.tls_static_space = _round16(sum(o.image.tls_size for o in self.objs) + RTLD_STATIC_TLS_EXTRA)
        tls = self.xmalloc.malloc(self.tls_static_space + TLS_TCB_SIZE)
        rt.memset(tls, 0, self.tls_static_space + TLS_TCB_SIZE)  # copy each tlsinit image, zero the rest
        self.xmalloc.calloc(8 * (len(self.objs) + 2))  # the dtv
        segbase = tls + self.tls_static_space
        fsbase = rt.scratch(8)
        rt.store_bytes(fsbase, segbase.to_bytes(8, "little"))
        rt.sys("sysarch", AMD64_SET_FSBASE, fsbase)  # amd64_set_fsbase(): %fs now points at the TCB

    def call_init(self, obj: Obj) -> None:
        rt = self.rt
        if obj.image is LIBC:
            # libc's .init_array: jemalloc_constructor() -> malloc_init(); the stack guard needs no syscall
            # (AT_CANARY), nor does the rest.
            rt.malloc_impl.malloc_init()
        else:
            rt.step("init", ObjectInit(obj.image.path))


def rtld_start(rt: Runtime, image_name: str) -> None:
    """_rtld(): everything between the kernel's return to user mode and the program's _start."""
    main_image = IMAGES[image_name]
    ld = rt.rtld = Rtld(rt)
    rt.step("_rtld", RtldStart(main_image.path))
    ld.xmalloc.malloc(len("/libexec/ld-elf.so.1") + 1)  # init_rtld: obj_rtld.path = xstrdup(...)
    trust = rt.issetugid() == 0
    rt.step("getenv", RtldEnvironment(trusted=trust))
    for _ in range(3):
        ld.xmalloc.malloc(64)  # lockdflt_init(): the bind, libc and phdr locks, a cache line each
    main = Obj(main_image, 0)
    ld.xmalloc.calloc(SIZEOF_OBJ_ENTRY)  # digest_phdr(): obj_new() for the main program
    for _ in main_image.needed:
        ld.xmalloc.malloc(24)  # digest_dynamic(): a Needed_Entry each
    ld.objs.append(main)
    rtld_libmap.lm_init(ld, LIBMAP_CONF)
    for name in main_image.needed:
        ld.objs.append(ld.load_object(name))
    for _ in ld.objs:
        ld.xmalloc.malloc(16)  # list_main
    ld.allocate_initial_tls()
    for obj in ld.objs:
        ld.relocate(obj, obj is main)
    ld.wlock_acquire()
    for obj in [*ld.objs[1:][::-1], main]:  # initlist: needed objects before those that need them
        obj.init_done = True
        ld.lock_release()
        ld.call_init(obj)
        ld.wlock_acquire()
    ld.lock_release()


def rtld_exit(rt: Runtime) -> None:
    """rtld_exit(): the fini functions, each called with the bind lock dropped."""
    ld = rt.rtld
    ld.wlock_acquire()
    for obj in ld.objs[1:]:
        if obj.image.has_fini:
            ld.lock_release()
            rt.step("fini", ObjectFini(obj.image.path))
            ld.wlock_acquire()
    ld.lock_release()


def static_init(rt: Runtime, image_name: str) -> None:
    """A static program's crt1: _init_tls() (TLS from malloc, so jemalloc starts here), then libc's init."""
    rt.rtld = None
    rt.step("_init_tls", StaticStart(image_name))
    tls = rt.malloc(_round16(LIBC.tls_size + RTLD_STATIC_TLS_EXTRA) + TLS_TCB_SIZE)
    fsbase = rt.scratch(8)
    rt.store_bytes(fsbase, tls.to_bytes(8, "little"))
    rt.sys("sysarch", AMD64_SET_FSBASE, fsbase)


def _round_page(x: int) -> int:
    return (x + PAGE - 1) & ~(PAGE - 1)


def _round16(x: int) -> int:
    return (x + 15) & ~15


def _convert_prot(flags: int) -> int:
    return (PROT_READ if flags & PF_R else 0) | (PROT_WRITE if flags & PF_W else 0) | (PROT_EXEC if flags & PF_X else 0)
