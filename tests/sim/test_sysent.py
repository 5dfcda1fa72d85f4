"""syscalls.master parses into the sysent table, in both the old one-line and today's layout."""

from __future__ import annotations

import pytest

from sim.kern.sysent import SYF_CAPENABLED, SYS, SYSCALLS, SyscallsMasterError, parse_syscalls_master

SLIDE = """
33	AUE_ACCESS	STD	{ int access(char *path, int amode); }
34	AUE_CHFLAGS	STD	{ int chflags(const char *path, u_long flags); }
35	AUE_FCHFLAGS	STD	{ int fchflags(int fd, u_long flags); }
36	AUE_SYNC	STD	{ int sync(void); }
37	AUE_KILL	STD	{ int kill(int pid, int signum); }
38	AUE_STAT	COMPAT	{ int stat(char *path, struct ostat *ub); }
"""


def test_the_lectures_slide_parses():
    table = parse_syscalls_master(SLIDE)
    assert [table[n].name for n in range(33, 39)] == ["access", "chflags", "fchflags", "sync", "kill", "stat"]
    assert table[38].type == "COMPAT"
    assert table[34].params == (("const char *", "path"), ("u_long", "flags"))
    assert table[36].narg == 0


def test_the_shipped_table_has_getpid_as_20_and_exit_as_noreturn():
    assert SYS["getpid"] == 20
    assert SYSCALLS[20].audit_event == "AUE_GETPID"
    assert SYSCALLS[SYS["exit"]].noreturn
    assert SYSCALLS[SYS["exit"]].sy_flags & SYF_CAPENABLED


def test_annotations_are_stripped_from_parameters():
    assert SYSCALLS[SYS["read"]].params == (("int", "fd"), ("void *", "buf"), ("size_t", "nbyte"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x AUE_NULL STD { int f(void); }", "is not a number"),
        ("1 AUE_NULL WRONG { int f(void); }", "unknown type"),
        ("1 AUE_NULL STD {\n int f(void);\n", "unterminated"),
        ("1 AUE_NULL STD { int f(void); }\n1 AUE_NULL STD { int g(void); }", "listed twice"),
    ],
)
def test_a_malformed_line_is_reported_with_its_line_number(text, message):
    with pytest.raises(SyscallsMasterError, match=message) as error:
        parse_syscalls_master(text, "test.master")
    assert "test.master:" in str(error.value)
