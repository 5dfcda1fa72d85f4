"""strerror(3) has FreeBSD 11's text for every errno the kernel defines (lib/libc/gen/errlst.c)."""

from sim.kern import errno as E
from sim.user.errlst import ELAST, strerror


def test_every_errno_the_kernel_defines_has_its_text():
    values = {value for name, value in vars(E).items() if name.startswith("E") and isinstance(value, int)}
    for value in sorted(v for v in values if v > 0):
        assert not strerror(value).startswith("Unknown error"), value


def test_the_texts_are_freebsds_own():
    assert strerror(55) == "No buffer space available"  # ENOBUFS: "Unknown error: 55" no more
    assert strerror(E.ECAPMODE) == "Not permitted in capability mode"
    assert (ELAST, strerror(ELAST)) == (96, "Previous owner died")
    assert strerror(0) == "No error: 0"
    assert strerror(97) == "Unknown error: 97" and strerror(-1) == "Unknown error: -1"
