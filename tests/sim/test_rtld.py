"""The run-time linker's start-up (sim/user/rtld.py) against a scripted kernel: which system calls FreeBSD 11's
rtld-elf and libc make before main(), in what order, and what changes them.

The fake kernel below answers the calls the way FreeBSD would for a stock system (the files exist or not, mmap
places anonymous mappings of 2 MiB or more on a 2 MiB boundary, as pmap_align_superpage does); the counts are
whatever the modelled start-up makes of that.
"""

from collections import Counter

from sim.kern.errno import ENOENT
from sim.machine.profiles import LECTURE
from sim.user import crt, rtld
from sim.user.malloc import Jemalloc

PAGE = 4096
SUPERPAGE = 2 << 20
DIRECTORIES = {"/etc", "/lib", "/usr", "/usr/local", "/usr/local/etc", "/var", "/var/run"}


class ProgramExited(Exception):
    pass


class FakeRuntime(crt.Runtime):
    """crt.Runtime with its two lowest layers, system calls and user memory, scripted."""

    def __init__(self, files=None, env=None, junk=True, misalign=False):
        self.libc = None
        self.profile = LECTURE
        self.progname = "dd"
        self.env = env or {}
        self.atexit_handlers = []
        self.rtld = None
        self.malloc_impl = Jemalloc(self, junk)
        self.scratch_top = self.scratch_next = 0x7FFFFFFFD000
        self.files = dict(rtld.FILES) if files is None else files
        self.files.setdefault("/lib/libc.so.7", b"\x7fELF" + bytes(4092))
        self.calls = []
        self.bytes = {}
        self.memsets = []  # (addr, byte, length) of every memset the C code makes
        self.misalign = misalign  # a kernel that does not put big anonymous mappings on 2 MiB boundaries
        self.next_map = 0x800600000 + (PAGE if misalign else 0)
        self.fds = {}
        self.errno_value = 0

    # the machine
    def step(self, name, detail="", cost_ns=0):
        pass

    def charge_malloc(self):
        pass

    def errno(self):
        return self.errno_value

    def set_errno(self, value):
        self.errno_value = value

    # user memory
    def store(self, addr, length):
        self.memsets.append((addr, None, length))

    def store_bytes(self, addr, data):
        for i, b in enumerate(data):
            self.bytes[addr + i] = b

    def load_bytes(self, addr, length):
        return bytes(self.bytes.get(addr + i, 0) for i in range(length))

    def memset(self, addr, byte, length):
        self.memsets.append((addr, byte, length))

    def memmove(self, dst, src, length):
        self.memsets.append((dst, None, length))

    def exit(self, status):
        raise ProgramExited(status)

    # the kernel
    def _fail(self, error):
        self.errno_value = error
        return -1

    def sys(self, name, *args):
        self.calls.append((name, args))
        if name == "openat":
            path = self.load_bytes(args[1], 200).split(b"\0")[0].decode()
            if path not in self.files:
                return self._fail(ENOENT)
            fd = 3 + len(self.fds)
            self.fds[fd] = [path, 0]
            return fd
        if name == "fstat":
            size = len(self.files[self.fds[args[0]][0]])
            self.store_bytes(args[1] + 72, size.to_bytes(8, "little"))
            return 0
        if name == "read":
            fd, buf, n = args
            path, pos = self.fds[fd]
            data = self.files[path][pos : pos + n]
            self.fds[fd][1] += len(data)
            self.store_bytes(buf, data)
            return len(data)
        if name == "lseek":
            self.fds[args[0]][1] = args[1]
            return args[1]
        if name == "close":
            self.fds.pop(args[0])
            return 0
        if name == "lstat":  # a stock system's directories: /usr/local/etc exists, its libmap.d does not
            path = self.load_bytes(args[0], 200).split(b"\0")[0].decode()
            return 0 if path in self.files or path in DIRECTORIES else self._fail(ENOENT)
        if name in ("access", "readlink"):
            path = self.load_bytes(args[0], 200).split(b"\0")[0].decode()
            return 0 if name == "access" and path in self.files else self._fail(ENOENT)
        if name == "mmap":
            addr, length = args[0], args[1]
            if args[3] & rtld.MAP_FIXED:
                return addr
            if length >= SUPERPAGE and not self.misalign:
                self.next_map = (self.next_map + SUPERPAGE - 1) & ~(SUPERPAGE - 1)
            addr, self.next_map = self.next_map, self.next_map + ((length + PAGE - 1) & ~(PAGE - 1))
            if args[4] in self.fds:  # a file mapping: its bytes, as the pager would bring them in
                self.store_bytes(addr, self.files[self.fds[args[4]][0]][args[5] : args[5] + length])
            return addr
        return 0  # munmap, issetugid, sysarch, sigprocmask, sigaction, ...

    def names(self):
        return [name for name, _ in self.calls]


def start_dd(**kwargs):
    rt = FakeRuntime(**kwargs)
    rtld.rtld_start(rt, "dd")
    return rt


def test_dd_start_up_makes_freebsd_11s_calls_in_order():
    rt = start_dd()
    calls = rt.names()
    # init_rtld's first allocation, then trust = !issetugid()
    assert calls[:2] == ["mmap", "issetugid"]
    # libmap.conf (FreeBSD 11's libmap.c: realpath() lstats each prefix, then the file is mapped), then its
    # includedir (realpath's fourth lstat fails: there is no libmap.d), then the hints, then the library itself
    assert calls[2:8] == ["lstat", "lstat", "openat", "fstat", "mmap", "close"]
    assert calls[8:13] == ["lstat", "lstat", "lstat", "lstat", "munmap"]
    i = calls.index("openat", 8)
    assert calls[i : i + 5] == ["openat", "read", "lseek", "read", "close"]
    j = calls.index("access")
    assert calls[j : j + 3] == ["access", "openat", "fstat"]
    # map_object: header page, the whole range, text, data, the rest of bss; unmap the header; close
    k = j + 3
    assert calls[k : k + 7] == ["mmap", "mmap", "mmap", "mmap", "mmap", "munmap", "close"]
    # TLS before relocation (FreeBSD 11): sysarch sets %fs's base right after the library is mapped
    assert calls[k + 7] == "sysarch"
    # the init functions run with the bind lock dropped: libc's starts jemalloc, dd's main object has none
    assert calls[-9:] == ["sigprocmask", "sigprocmask", "readlink", "issetugid", "mmap",
                          "sigprocmask", "sigprocmask", "sigprocmask", "sigprocmask"]  # fmt: skip


def test_the_paths_rtld_opens():
    rt = start_dd()
    opened = [rt.load_bytes(args[1], 60).split(b"\0")[0].decode() for name, args in rt.calls if name == "openat"]
    assert opened == ["/etc/libmap.conf", "/var/run/ld-elf.so.hints", "/lib/libc.so.7"]


def test_libmaps_realpath_lstats_each_prefix_of_each_path():
    """Slide 16's lstat: FreeBSD 11's libc realpath(), called by rtld's libmap.c for the file and its includedir."""
    rt = start_dd()
    lstats = [rt.load_bytes(args[0], 60).split(b"\0")[0].decode() for name, args in rt.calls if name == "lstat"]
    assert lstats == ["/etc", "/etc/libmap.conf", "/usr", "/usr/local", "/usr/local/etc", "/usr/local/etc/libmap.d"]


def test_an_existing_includedir_is_opened_after_realpath():
    rt = FakeRuntime()
    DIRECTORIES.add("/usr/local/etc/libmap.d")
    try:
        rtld.rtld_start(rt, "dd")
    finally:
        DIRECTORIES.discard("/usr/local/etc/libmap.d")
    opened = [rt.load_bytes(args[1], 60).split(b"\0")[0].decode() for name, args in rt.calls if name == "openat"]
    assert opened[:2] == ["/etc/libmap.conf", "/usr/local/etc/libmap.d"]


def test_libc_init_starts_jemalloc_reading_its_options_and_mapping_a_base_chunk():
    rt = start_dd()
    calls = rt.names()
    r = calls.index("readlink")
    assert calls[r : r + 3] == ["readlink", "issetugid", "mmap"]  # /etc/malloc.conf, secure_getenv, base chunk
    mmap_args = [args for name, args in rt.calls if name == "mmap"]
    assert mmap_args[-1][1] == 2 << 20


def test_each_write_lock_blocks_signals_and_each_release_restores_them():
    rt = start_dd()
    masks = [args[0] for name, args in rt.calls if name == "sigprocmask"]
    # wlock; for libc and for dd: release, init, acquire; release: 6 calls
    assert masks == [rtld.SIG_BLOCK, rtld.SIG_SETMASK, rtld.SIG_BLOCK, rtld.SIG_SETMASK, rtld.SIG_BLOCK,
                     rtld.SIG_SETMASK]  # fmt: skip


def test_start_up_call_counts_follow_from_the_model():
    counts = Counter(start_dd().names())
    assert counts["openat"] == 3 and counts["close"] == 3 and counts["fstat"] == 2 and counts["lstat"] == 6
    assert counts["issetugid"] == 2  # rtld's trust check and jemalloc's secure_getenv
    assert counts["sysarch"] == 1 and counts["access"] == 1 and counts["lseek"] == 1 and counts["readlink"] == 1
    assert counts["mmap"] >= 8 and counts["munmap"] >= 2


def test_a_large_symbol_cache_makes_rtlds_malloc_take_a_new_pool():
    rt = start_dd()
    pool_maps = [args for name, args in rt.calls if name == "mmap" and args[3] == rtld.MAP_ANON | rtld.MAP_PRIVATE]
    # the first 32 KiB pool, and a bigger one for libc's 3,300-entry symbol cache
    assert pool_maps[0][1] == 32 * 1024
    assert any(args[1] > 32 * 1024 for args in pool_maps[1:])


def test_exit_takes_the_lock_again_for_libcs_fini():
    rt = start_dd()
    before = len(rt.calls)
    rtld.rtld_exit(rt)
    assert rt.names()[before:] == ["sigprocmask"] * 4


def test_a_missing_libc_stops_the_program_with_rtlds_message():
    files = dict(rtld.FILES)
    rt = FakeRuntime(files=files)
    del rt.files["/lib/libc.so.7"]
    try:
        rtld.rtld_start(rt, "dd")
    except ProgramExited as e:
        assert e.args == (1,)
    else:
        raise AssertionError("rtld went on without libc")
    written = [rt.load_bytes(args[1], args[2]) for name, args in rt.calls if name == "write"]
    assert b'Shared object "libc.so.7" not found' in b"".join(written)
