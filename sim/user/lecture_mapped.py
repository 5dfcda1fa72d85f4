"""The file mmap-file maps (sim/user/lecture_more.py), and the program's two steps through the buffer cache: read()
after mmap(), and a write() that shows through the mapping (the merged VM/buffer cache, sim/kern/vfs_vmio.py)."""

from __future__ import annotations

from sim.machine.physmem import PAGE_SIZE
from sim.user import umem
from sim.user.lecture_programs import anonymous, printf
from sim.user.libc import Libc
from sim.user.libc_proc import stack_locals

MMAP_PATH = "/var/tmp/mapped"
MMAP_PAGES = 3
SEEK_SET = 0


def install_mapped_file() -> str:
    """The file the program maps, as an earlier boot left it: on the disk, in no page of memory. It stands for
    state from before the run began, so it is neither charged nor recorded (compare rtld.install_files)."""
    from sim.kern import vfs_subr

    names = vfs_subr.vfs().names
    if MMAP_PATH not in names:
        data = b"".join(bytes([ord("A") + page]) * PAGE_SIZE for page in range(MMAP_PAGES))
        names[MMAP_PATH] = vfs_subr.new_vnode(vfs_subr.VREG, MMAP_PATH, 0o644, i_size=len(data), v_disk={0: data})
    return MMAP_PATH


def read_after_mmap(libc: Libc, fd: int, size: int) -> None:
    """read() the whole file: after mmap(), which would otherwise have mapped the resident pages at once
    (MAP_PREFAULT_PARTIAL), so that the first touch finds the buffer's pages in the file's vm_object."""
    from sim.user.lecture_more import result  # lecture_more imports this module

    buf = anonymous(libc, size)
    printf(libc, result(libc, f"read(fd, buf, {size})", libc.syscall("read", fd, buf, size)))


def write_through(libc: Libc, fd: int, mapped: int) -> None:
    """write() one byte into page 1 of the file, then load it through the mapping: the buffer's page is the
    mapped page, so the load sees it without a fault."""
    from sim.user.lecture_more import result

    libc.syscall("lseek", fd, PAGE_SIZE, SEEK_SET)
    with stack_locals(libc, 1) as byte:
        umem.store(byte, b"b")
        printf(libc, result(libc, f'write(fd, "b", 1) at offset {PAGE_SIZE}', libc.syscall("write", fd, byte, 1)))
    printf(libc, f"first byte of mapped page 1 now: {umem.load(mapped + PAGE_SIZE, 1)!r}\n")
