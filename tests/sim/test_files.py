"""Descriptors and the objects behind them: /dev/zero's 2 MiB zero region, pipe and local-socket buffers of
FreeBSD's sizes, a file system whose write() returns before the disk has the data, AIO, and the vdso clock."""

from __future__ import annotations

import struct

from sim.core.events import PipeSpace
from sim.kern import errno as E
from sim.kern.kern_sig import SIGPIPE
from sim.kern.sys_pipe import BIG_PIPE_SIZE, PIPE_SIZE
from sim.kern.uipc_socket import SB_MAX_ADJ
from sim.kern.uipc_usrreq import UNPST_SENDSPACE
from sim.kern.vfs_subr import FILEDELAY
from sim.run import Run, RunSpec, record
from sim.user import umem
from sim.user.libc import Libc
from tests.sim.procutil import buffer, events_named, open_path, read_int, run_program

MIB = 1 << 20


def reads_zeros(libc: Libc, argv, env) -> int:
    fd = open_path(libc, "/dev/zero")
    buf = buffer(libc, 5 * MIB)
    n = libc.syscall("read", fd, buf, 5 * MIB)
    return 0 if n == 5 * MIB and umem.load(buf + 5 * MIB - 8, 8) == bytes(8) else 1


def test_dev_zero_reads_in_zero_region_sized_chunks():
    run = run_program(reads_zeros, record_budget=10**7)
    assert run.exit_status == 0
    zero_read = next(i for i, e in enumerate(run.events) if e.kind == "enter" and e.name == "zero_read")
    uiomoves = []
    for e in run.events[zero_read:]:
        if e.kind == "exit" and e.name == "zero_read":
            break
        if e.kind == "enter" and e.name == "uiomove":
            uiomoves.append(e)
    assert len(uiomoves) == 3  # MIN(resid, ZERO_REGION_SIZE): 2 MiB, 2 MiB, 1 MiB


def pipe_capacity(libc: Libc, argv, env) -> int:
    """Fill a pipe with non-blocking writes: how much does it hold?"""
    rfd, wfd = libc.pipe()
    libc.syscall("fcntl", wfd, 4, 0x4)  # F_SETFL, O_NONBLOCK
    buf = buffer(libc, 256 * 1024)
    n = libc.syscall("write", wfd, buf, 256 * 1024)
    again = libc.syscall("write", wfd, buf, 1)
    return (n // 1024) if again == -1 and libc.errno == E.EAGAIN else 0


def test_a_pipe_buffer_starts_at_16k_and_a_big_write_grows_it_to_64k():
    run = run_program(pipe_capacity)
    assert run.exit_status == BIG_PIPE_SIZE // 1024
    grow = events_named(run, "mem", "pipespace")[0]
    assert run.events[grow].data == PipeSpace(old_size=PIPE_SIZE, new_size=BIG_PIPE_SIZE)


def broken_pipe(libc: Libc, argv, env) -> int:
    rfd, wfd = libc.pipe()
    libc.syscall("close", rfd)
    libc.syscall("write", wfd, buffer(libc), 1)
    return 0


def test_writing_to_a_pipe_nobody_can_read_raises_sigpipe():
    assert run_program(broken_pipe).exit_status == 128 + SIGPIPE


def socket_buffers(libc: Libc, argv, env) -> int:
    s1, s2 = libc.socketpair(1, 1)  # PF_LOCAL, SOCK_STREAM
    val, size = buffer(libc), buffer(libc)
    umem.store(size, struct.pack("<i", 4))
    libc.syscall("getsockopt", s1, 0xFFFF, 0x1001, val, size)  # SOL_SOCKET, SO_SNDBUF
    default = read_int(val)
    umem.store(val, struct.pack("<i", 1 * MIB))
    ok = libc.syscall("setsockopt", s1, 0xFFFF, 0x1001, val, 4)
    umem.store(val, struct.pack("<i", 4 * MIB))
    too_big = libc.syscall("setsockopt", s1, 0xFFFF, 0x1001, val, 4)
    return 0 if (default, ok, too_big, libc.errno) == (UNPST_SENDSPACE, 0, -1, E.ENOBUFS) else 1


def test_local_sockets_start_with_8k_buffers_and_so_sndbuf_is_capped_by_maxsockbuf():
    assert run_program(socket_buffers).exit_status == 0
    assert 1 * MIB < SB_MAX_ADJ < 4 * MIB


def socket_transfer(libc: Libc, argv, env) -> int:
    s1, s2 = libc.socketpair(1, 1)
    src, dst = buffer(libc, 64 * 1024), buffer(libc, 64 * 1024)
    umem.store(src + 64 * 1024 - 5, b"hello")

    def child() -> int:
        return 0 if libc.syscall("write", s1, src, 64 * 1024) == 64 * 1024 else 1

    pid = libc.fork(child)
    got = 0
    while got < 64 * 1024:
        n = libc.syscall("read", s2, dst + got, 64 * 1024 - got)
        if n <= 0:
            return 2
        got += n
    status = libc.waitpid(pid)[1]
    return status or (0 if umem.load(dst + 64 * 1024 - 5, 5) == b"hello" else 3)


def test_a_socketpair_moves_data_between_processes_blocking_on_its_send_buffer():
    run = run_program(socket_transfer)
    assert run.exit_status == 0
    sleeps = [run.events[i].data.wmesg for i in events_named(run, "proc", "sleep")]
    assert "sbwait" in sleeps  # the 64 KiB write had to wait for the reader: 8 KiB buffers


def writes_a_file(fsync: bool) -> Run:
    """The lecture's write-file program (sim/user/lecture_files.py): write(), then fsync() with -s."""
    run = record(RunSpec("write-file -s" if fsync else "write-file"))
    assert run.exit_status == 0 and "write(3, buf, 10) returned 10" in run.output
    return run


def test_write_returns_before_the_data_reaches_the_disk_and_the_syncer_writes_it_later():
    run = writes_a_file(False)
    write = next(i for i, e in enumerate(run.events) if e.kind == "syscall" and e.name == "write")
    returned = next(i for i in range(write, len(run.events)) if run.events[i].name == "sysretq")
    on_disk = events_named(run, "mem", "bufdone")
    assert events_named(run, "mem", "bdwrite")[0] < returned  # a delayed write, in the buffer cache
    assert on_disk and on_disk[0] > returned
    assert run.events[on_disk[0]].t_ns - run.events[returned].t_ns >= (FILEDELAY - 1) * 10**9
    syncer_tids = [tid for tid, (_, comm) in run.threads.items() if comm == "syncer"]
    assert syncer_tids  # the syncer kernel process did it
    assert run.wall_ns < 10**9  # time(1) sees the program's time, not the syncer's 30 seconds


def test_fsync_waits_until_the_disk_has_the_data():
    run = writes_a_file(True)
    fsync = next(i for i, e in enumerate(run.events) if e.kind == "syscall" and e.name == "fsync")
    returned = next(i for i in range(fsync, len(run.events)) if run.events[i].name == "sysretq")
    assert any(fsync < i < returned for i in events_named(run, "mem", "bufdone"))


def test_aio_write_queues_the_job_and_aio_return_collects_the_byte_count():
    run = record(RunSpec("aio-write"))  # the lecture's aio-write program (sim/user/lecture_files.py)
    assert run.exit_status == 0 and "aio_return(&cb) returned 10:" in run.output
    queued = events_named(run, "proc", "aio_queue")[0]
    aio_call = max(i for i, e in enumerate(run.events[:queued]) if e.kind == "syscall")
    assert run.events[aio_call].name == "aio_write"
    done = events_named(run, "proc", "aio_complete")[0]
    assert done > queued and any(comm == "aiod1" for _, comm in run.threads.values())


def test_clock_gettime_reads_the_vdso_without_a_system_call_where_the_timecounter_is_the_tsc():
    run = record(RunSpec("clock-gettime", profile="modern"))  # a TSC timecounter: the vdso reads it
    assert run.exit_status == 0
    first, second = (int(line.split()[-2].replace(".", "")) for line in run.output.splitlines()[:2])
    assert second > first > 0
    assert "clock_gettime" not in run.syscalls_by_name
    assert [e.name for e in run.events if e.kind == "user" and e.name == "lfence; rdtsc"]


def big_pipe_write(libc: Libc, argv, env) -> int:
    rfd, wfd = libc.pipe()
    src, dst = buffer(libc, 64 * 1024), buffer(libc, 64 * 1024)
    umem.store(src + 40000, b"direct")

    def child() -> int:
        return 0 if libc.syscall("write", wfd, src, 64 * 1024) == 64 * 1024 else 1

    libc.fork(child)
    got = 0
    while got < 64 * 1024:
        got += libc.syscall("read", rfd, dst + got, 64 * 1024 - got)
    libc.waitpid(-1)
    return 0 if umem.load(dst + 40000, 6) == b"direct" else 1


def test_a_large_blocking_pipe_write_goes_direct_one_copy_instead_of_two():
    run = run_program(big_pipe_write)
    assert run.exit_status == 0
    assert events_named(run, "enter", "pipe_direct_write")
    write = next(i for i, e in enumerate(run.events) if e.kind == "syscall" and e.name == "write")
    copied_in = sum(1 for e in run.events[write:] if e.kind == "enter" and e.name == "copyin")
    assert copied_in == 0  # the writer's bytes are never copied into the kernel: the reader takes them
    sleeps = [run.events[i].data.wmesg for i in events_named(run, "proc", "sleep")]
    assert "pipdwt" in sleeps  # the writer waits while the reader copies from its pages
