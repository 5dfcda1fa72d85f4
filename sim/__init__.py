"""trapscope's simulator: a deterministic, recorded model of FreeBSD/amd64's system-call, trap and VM paths."""

VERSION = "0.1.0"  # part of every run's identity: a new simulator may record a different log
