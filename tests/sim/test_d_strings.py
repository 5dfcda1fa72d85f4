"""D's path and search subroutines as the kernel's DIF_SUBR_* cases compute them, and a string that is NULL."""

from __future__ import annotations

import pytest

from sim.trace.dtrace import run_dtrace


def printed(body: str) -> str:
    result = run_dtrace(f"BEGIN {{ {body} exit(0); }}", "getpid 1", quiet=True)
    assert "error" not in result.stderr, result.stderr
    return result.output.rstrip("\n")


@pytest.mark.parametrize(
    ("path", "base", "directory"),
    [("/foo/bar///baz/", "baz", "/foo/bar"), ("/////", "/", "/"), ("", ".", "."), ("f/", "f", "."), ("/.", ".", "/")],
)
def test_basename_and_dirname_walk_the_path_as_the_kernel_does(path, base, directory):
    assert printed(f'printf("%s|%s", basename("{path}"), dirname("{path}"));') == f"{base}|{directory}"


def test_a_search_that_finds_nothing_is_null_and_prints_empty():
    body = (
        's = "foobarbaz"; printf("%s|%s|%s|", strstr(s, "bar"), strchr(s, \'b\'), strrchr(s, \'b\')); '
        'printf("%d %d %d|%s|", strstr(s, "qux") == NULL, strstr(s, "baz") != NULL, strchr(s, \'q\') != NULL, '
        'strstr(s, "qux"));'
    )
    assert printed(body) == "barbaz|barbaz|baz|1 1 0||"
