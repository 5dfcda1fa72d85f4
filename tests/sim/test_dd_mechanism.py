"""The lecture's dd, by mechanism: who touches dd's buffer first decides where its demand-zero faults happen.

`dd if=/dev/zero of=/dev/null bs=10m count=1` mallocs out.dbsz + in.dbsz - 1 = 20 MiB - 1 bytes. On the
lecture's debug build jemalloc junk-fills all 20 MiB from user mode: ~5,120 user-mode zero-fill faults. With
MALLOC_CONF=junk:false nothing touches the buffer before read(), so read()'s copyout takes the faults, in kernel
mode, for the 10 MiB it writes: 2,560. conv=sync memsets the input block before each read.
"""

import pytest

from sim.run import RunError, RunSpec, record

DD = "dd if=/dev/zero of=/dev/null bs=10m count=1"
PAGES_20M, PAGES_10M = 20 * 256, 10 * 256
SLACK = 200  # the rest of a run's faults: rtld's pools, libc's data, jemalloc's metadata, the stack


def _blocker() -> str | None:
    """Why dd cannot run on this kernel yet (its setup() needs FIODTYPE from devfs), or None."""
    try:
        result = record(RunSpec(command="dd if=/dev/zero of=/dev/null count=0 status=none"), record_budget=0)
    except (RunError, NotImplementedError) as error:
        return str(error)
    return None if result.exit_status == 0 else result.output.strip()


BLOCKER = _blocker()
pytestmark = pytest.mark.skipif(BLOCKER is not None, reason=f"dd cannot run on this kernel yet: {BLOCKER}")


def run(command, profile="lecture"):
    return record(RunSpec(command=command, profile=profile), record_budget=0).summary()


@pytest.fixture(scope="module")
def junk_on():
    return run(f"{DD} status=none")


@pytest.fixture(scope="module")
def junk_off():
    return run(f"MALLOC_CONF=junk:false {DD} status=none")


def test_junk_filling_takes_a_user_mode_fault_per_page_of_the_20_mib_buffer(junk_on):
    assert junk_on["exit_status"] == 0
    assert PAGES_20M <= junk_on["faults_user_mode"] < PAGES_20M + SLACK
    assert junk_on["faults"]["zero_fill"] >= PAGES_20M
    assert junk_on["faults_kernel_mode"] < SLACK  # read() finds every page already there


def test_without_junk_the_faults_move_into_reads_copyout(junk_on, junk_off):
    assert junk_off["faults_user_mode"] < SLACK
    assert PAGES_10M <= junk_off["faults_kernel_mode"] < PAGES_10M + SLACK
    assert junk_off["faults"]["zero_fill"] < junk_on["faults"]["zero_fill"] - PAGES_10M + SLACK
    assert junk_off["sys_ns"] < junk_on["sys_ns"]


def test_the_lecture_puzzle_little_time_in_syscalls_much_in_traps(junk_on):
    assert junk_on["syscalls"] < 100
    assert junk_on["syscalls_by_name"]["read"] >= 1 and junk_on["syscalls_by_name"]["write"] == 1
    assert 0.2e9 < junk_on["sys_ns"] < 0.8e9  # time(1) said 0.396 s on the lecture's machine


def test_conv_sync_touches_the_block_before_read():
    result = run(f"MALLOC_CONF=junk:false {DD} conv=sync status=none")
    assert PAGES_10M <= result["faults_user_mode"] < PAGES_10M + SLACK
    assert result["faults_kernel_mode"] < SLACK


def test_count_2_doubles_reads_and_writes_but_not_faults(junk_on):
    two = run(f"{DD.replace('count=1', 'count=2')} status=none")
    assert two["syscalls_by_name"]["write"] == 2 * junk_on["syscalls_by_name"]["write"]
    assert two["syscalls_by_name"]["read"] == junk_on["syscalls_by_name"]["read"] + 1
    assert abs(two["faults_user_mode"] - junk_on["faults_user_mode"]) < 10
    assert abs(two["faults_kernel_mode"] - junk_on["faults_kernel_mode"]) < 10


def test_a_modern_release_build_does_not_junk_fill():
    result = run(f"{DD} status=none", profile="modern")
    assert result["faults_user_mode"] < SLACK
    assert result["faults_kernel_mode"] >= PAGES_10M


def test_the_summary_on_stderr():
    result = record(RunSpec(command="dd if=/dev/zero of=/dev/null bs=1m count=3"), record_budget=0)
    assert "3+0 records in\n3+0 records out\n3145728 bytes transferred in " in result.output
    assert " bytes/sec)\n" in result.output


def test_ibs_and_obs_differ_so_dd_reblocks():
    result = record(RunSpec(command="dd if=/dev/zero of=/dev/null ibs=8k obs=2k count=2"), record_budget=0)
    assert "2+0 records in\n8+0 records out\n16384 bytes transferred" in result.output


def test_a_missing_input_file_is_dds_runtime_error():
    result = record(RunSpec(command="dd if=/no/such/file of=/dev/null"), record_budget=0)
    assert result.exit_status == 1
    assert "dd: /no/such/file: No such file or directory\n" in result.output
