"""D strings that are paths, and the string that is not there (dtrace.c's DIF_SUBR_BASENAME, _DIRNAME, _STRSTR).

A D string is a pointer to characters: strstr() and strchr() that find nothing give NULL, which prints as an empty
string and compares equal to NULL (0); NullString is that value. basename() and dirname() walk the path from its
end as the kernel does: trailing slashes are not part of either, "" is ".", and a path of slashes only is "/".
"""

from __future__ import annotations


class NullString(str):
    """A string value that is the NULL pointer: "" when printed, 0 when compared with an integer."""

    __slots__ = ()


NULL_STRING = NullString()


def strstr(haystack: str, needle: str) -> str:
    at = haystack.find(needle)
    return haystack[at:] if at >= 0 else NULL_STRING


def strchr(s: str, c: int) -> str:
    at = s.find(chr(c & 0xFF))
    return s[at:] if at >= 0 else NULL_STRING


def strrchr(s: str, c: int) -> str:
    at = s.rfind(chr(c & 0xFF))
    return s[at:] if at >= 0 else NULL_STRING


def as_pointer(value: str) -> int:
    """A string compared with an integer (`s != NULL`) is compared as its pointer: 0 only for NULL."""
    return 0 if isinstance(value, NullString) else 1


def _path_parts(path: str) -> tuple[str, int, int, int]:
    """(the path walked, lastbase, firstbase, lastdir), as DIF_SUBR_BASENAME/DIRNAME find them."""
    if not path:
        path = "."
    i = len(path) - 1
    while i >= 0 and path[i] == "/":
        i -= 1
    lastbase = i
    while i >= 0 and path[i] != "/":
        i -= 1
    firstbase = i + 1 if i >= 0 else -1
    while i >= 0 and path[i] == "/":
        i -= 1
    lastdir = i
    if lastbase == -1:  # nothing but slashes: both are "/"
        firstbase = lastbase = lastdir = 0
    return path, lastbase, firstbase, lastdir


def basename(path: str) -> str:
    path, lastbase, firstbase, _ = _path_parts(path)
    return path[max(firstbase, 0) : lastbase + 1]


def dirname(path: str) -> str:
    path, _, firstbase, lastdir = _path_parts(path)
    if firstbase == -1:  # a basename only
        return "."
    return path[: max(lastdir, 0) + 1]
