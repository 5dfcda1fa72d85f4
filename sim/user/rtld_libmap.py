"""rtld's libmap.conf reader as FreeBSD 11.0 and 11.1 have it (libexec/rtld-elf/libmap.c before r324856).

lm_init() parses /etc/libmap.conf and, for each `includedir`, the directory's *.conf files. Each path is first
made canonical with realpath(3), and FreeBSD 11's libc realpath walks the path a component at a time, calling
lstat(2) on each prefix ("/etc", then "/etc/libmap.conf"): these are the lstat calls in slide 16's table of dd's
system calls, made before main() by the run-time linker. The file is then opened, fstat'd and mmap'd read-only
(closed at once, unmapped after parsing). A missing includedir fails in realpath (lstat: ENOENT), so it is
never opened. r324856 (October 2017, FreeBSD 12; 11.2 after its MFC) dropped the realpath calls ("This gets rid
of a few calls to fstatat(2) at binary startup") and later versions read() the file instead of mapping it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.user.crt import Runtime
    from sim.user.rtld import Rtld

PATH_MAX = 1024
SIZEOF_STAT = 120
ST_SIZE = 72  # offsetof(struct stat, st_size) on amd64 before ino64
SIZEOF_LMC = 24  # struct lmc: the path and the list link
PROT_READ, MAP_PRIVATE = 0x1, 0x0002
O_RDONLY, O_NONBLOCK, O_DIRECTORY, O_CLOEXEC = 0x0000, 0x0004, 0x00020000, 0x00100000


def realpath(ld: Rtld, path: str) -> int:
    """realpath(path, NULL) for an absolute path without symbolic links (the simulated file system has none):
    the resolved path in a buffer from malloc (rtld's own), each prefix of the path lstat'd; 0 (NULL) if any
    lstat fails."""
    rt = ld.rt
    resolved = ld.xmalloc.malloc(PATH_MAX)
    sb = rt.scratch(SIZEOF_STAT)
    prefix = ""
    for component in filter(None, path.split("/")):
        prefix += "/" + component
        if rt.sys("lstat", rt.cstring(prefix), sb) == -1:
            ld.xmalloc.free(resolved, PATH_MAX)
            return 0
    rt.store_bytes(resolved, (prefix or "/").encode() + b"\0")
    return resolved


def lm_init(ld: Rtld, conf: str) -> bool:
    """True (libmap disabled) when the configuration maps nothing."""
    return lmc_parse_file(ld, conf) == 0


def lmc_parse_file(ld: Rtld, path: str) -> int:
    """The number of mappings the file adds (its includedirs' files included)."""
    rt = ld.rt
    rpath = realpath(ld, path)
    if not rpath:
        return 0
    fd = rt.open(path, O_RDONLY | O_CLOEXEC)  # the resolved path, the same string here
    sb = rt.scratch(SIZEOF_STAT)
    lm_map = 0
    if fd != -1 and rt.sys("fstat", fd, sb) != -1:
        size = int.from_bytes(rt.load_bytes(sb + ST_SIZE, 8), "little")
        lm_map = rt.mmap(0, size, PROT_READ, MAP_PRIVATE, fd, 0)
    if fd != -1:
        rt.sys("close", fd)
    if lm_map == 0:
        ld.xmalloc.free(rpath, PATH_MAX)
        return 0
    ld.xmalloc.malloc(SIZEOF_LMC)
    count = lmc_parse(ld, rt.load_bytes(lm_map, size).decode(errors="replace"))
    rt.munmap(lm_map, size)
    return count


def lmc_parse(ld: Rtld, text: str) -> int:
    """Each line is `from to`, `include FILE` or `includedir DIR` (comments after #; [program] selectors,
    which the files here do not have, are not modelled)."""
    count = 0
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) != 2:
            continue
        if words[0] == "includedir":
            lmc_parse_dir(ld, words[1])
        elif words[0] == "include":
            count += lmc_parse_file(ld, words[1])
        else:
            count += 1
    return count


def lmc_parse_dir(ld: Rtld, idir: str) -> None:
    """realpath() first; a directory that exists is then opened (opendir(3)). The simulated file system has no
    getdirentries(2), so an existing directory's *.conf files are not read: none of its directories has any."""
    rt: Runtime = ld.rt
    rpath = realpath(ld, idir)
    if not rpath:
        return
    dfd = rt.open(idir, O_RDONLY | O_NONBLOCK | O_DIRECTORY | O_CLOEXEC)
    if dfd == -1:
        ld.xmalloc.free(rpath, PATH_MAX)
        return
    ld.xmalloc.malloc(SIZEOF_LMC)
    rt.sys("close", dfd)
