"""dd's operands as FreeBSD's args.c reads them: sizes, products, and dd's own error messages, before a run."""

import pytest

from sim.run import RunSpec, record
from sim.user.dd import C_BS, C_NOINFO, C_SYNC, UINTMAX, get_num, parse
from sim.user.programs import validate
from sim.user.shell import CommandLineError


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("512", 512),
        ("10m", 10 << 20),
        ("10M", 10 << 20),
        ("1k", 1024),
        ("2b", 1024),  # b is a 512-byte block
        ("3w", 12),  # w is sizeof(int)
        ("1g", 1 << 30),
        ("2x512", 1024),  # products, as dd's get_num() accepts them
        ("2x2x1k", 4096),
        ("1kx2", 2048),
        ("0x10", 16),  # strtouq with base 0: hex ...
        ("010", 8),  # ... and octal
    ],
)
def test_get_num_reads_sizes_as_dd_does(text, value):
    assert get_num("bs", text) == value


def test_bs_sets_both_block_sizes_and_the_bs_semantics():
    ops = parse(("dd", "if=/dev/zero", "of=/dev/null", "bs=10m", "count=1"))
    assert (ops.ibs, ops.obs, ops.cpy_cnt) == (10 << 20, 10 << 20, 1)
    assert ops.flags & C_BS
    assert (ops.in_name, ops.out_name) == ("/dev/zero", "/dev/null")


def test_defaults_are_512_byte_blocks_and_no_count():
    ops = parse(("dd",))
    assert (ops.ibs, ops.obs, ops.cpy_cnt, ops.in_name, ops.out_name) == (512, 512, 0, None, None)


def test_count_zero_means_copy_nothing_and_status_none_silences_the_summary():
    ops = parse(("dd", "count=0", "status=none", "conv=sync"))
    assert ops.cpy_cnt == UINTMAX
    assert ops.flags & C_NOINFO and ops.flags & C_SYNC


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("dd", "bs=0"), "dd: bs must be between 1 and 9223372036854775807"),
        (("dd", "bs=-1"), "dd: bs must be between 1 and 9223372036854775807"),  # strtouq wraps -1
        (("dd", "ibs=0"), "dd: ibs must be between 1 and 9223372036854775807"),
        (("dd", "bs=99999999999999999999"), "dd: bs: Result too large"),
        (("dd", "bs=17179869184g"), "dd: bs: Result too large"),  # the multiplier overflows
        (("dd", "bs=1q"), "dd: bs: illegal numeric value"),
        (("dd", "bs=m"), "dd: bs: illegal numeric value"),
        (("dd", "count=-1"), "dd: count cannot be negative"),
        (("dd", "frobnicate=1"), "dd: unknown operand frobnicate"),
        (("dd", "if"), "dd: unknown operand if"),
        (("dd", "bs="), "dd: no value specified for bs"),
        (("dd", "bs=1m", "ibs=1k"), "dd: ibs: illegal argument combination or already set"),
        (("dd", "count=1", "count=2"), "dd: count: illegal argument combination or already set"),
        (("dd", "conv=frob"), "dd: unknown conversion frob"),
        (("dd", "status=loud"), "dd: unknown status loud"),
    ],
)
def test_bad_operands_get_dds_own_messages(argv, message):
    with pytest.raises(CommandLineError) as excinfo:
        validate(argv, {})
    assert str(excinfo.value) == message


def test_real_but_unmodelled_operands_say_so():
    with pytest.raises(CommandLineError, match="skip= is a real dd operand that the simulated dd does not model"):
        validate(("dd", "skip=1"), {})
    with pytest.raises(CommandLineError, match="conv=swab is a real dd conversion"):
        validate(("dd", "conv=swab"), {})


def test_a_block_too_big_for_the_simulator_is_refused_clearly():
    with pytest.raises(CommandLineError, match="at most 1g"):
        validate(("dd", "bs=2g"), {})


def test_a_bad_operand_stops_the_run_before_it_starts():
    with pytest.raises(CommandLineError, match="dd: bs must be between"):
        record(RunSpec(command="dd if=/dev/zero of=/dev/null bs=0"))
