"""The run-time linker's start-up in a real run of the lecture's dd: the system calls the lecture's DTrace
output lists, made by the modelled start-up rather than copied from the lecture's table."""

import pytest

from sim.run import RunSpec, record
from tests.sim.test_dd_mechanism import BLOCKER

# The probefunc column of the lecture's `syscall:::entry /execname == "dd"/` aggregation, plus exit, whose
# return never fires.
LECTURE_DD_SYSCALLS = {
    "sysarch", "issetugid", "lseek", "sigaction", "clock_gettime", "ioctl", "write", "readlink", "access",
    "sigprocmask", "fstat", "munmap", "close", "lstat", "openat", "read", "mmap", "exit",
}  # fmt: skip


needs_dd = pytest.mark.skipif(BLOCKER is not None, reason=f"dd cannot run on this kernel yet: {BLOCKER}")


@needs_dd
def test_dds_system_calls_are_the_ones_the_lecture_traced():
    result = record(RunSpec(command="dd if=/dev/zero of=/dev/null bs=10m count=1 status=none"), record_budget=0)
    assert result.exit_status == 0
    names = set(result.syscalls_by_name)
    assert names <= LECTURE_DD_SYSCALLS
    assert {"sysarch", "issetugid", "lseek", "access", "readlink", "sigprocmask", "mmap", "munmap"} <= names
    assert 40 <= result.syscalls <= 80  # the lecture counted 65


@needs_dd
def test_start_up_comes_before_main():
    result = record(RunSpec(command="dd if=/dev/zero of=/dev/null bs=1k count=1 status=none"))
    order = [e.name for e in result.events if e.kind == "syscall"]
    assert order[:2] == ["mmap", "issetugid"]  # rtld's first page pool, then trust = !issetugid()
    assert order.index("sysarch") < order.index("readlink") < order.index("sigaction")  # TLS, malloc, main
    assert order[-1] == "exit"


def test_a_static_program_has_no_run_time_linker():
    result = record(RunSpec(command="ipc-static -B -q -b 65536 -t 65536 1thread"), record_budget=0)
    assert "access" not in result.syscalls_by_name and "sigprocmask" not in result.syscalls_by_name
    assert result.syscalls_by_name["sysarch"] == 1  # _init_tls still sets %fs's base
