"""Example D scripts for the trace page: the lecture's three, verbatim, and a few that draw each kind of chart.

The lecture's scripts are kept exactly as its slides print them (tests compare them with shared/lecture/);
each example says what to look for in its output.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.trace.lecture_scripts import LECTURE_PROFILE, LECTURE_SYSCALL_TIMES, LECTURE_TRAPS


@dataclass(frozen=True)
class Example:
    slug: str
    title: str
    script: str
    look_for: str  # what the output shows, in a sentence


EXAMPLES: tuple[Example, ...] = (
    Example(
        "syscall-times",
        "Lecture: system calls in practice (1)",
        LECTURE_SYSCALL_TIMES,
        "time in each system call, summed: read() dominates, yet all of them together are a small part of dd's "
        "system time",
    ),
    Example(
        "traps",
        "Lecture: traps in practice (1)",
        LECTURE_TRAPS,
        "55 system calls against thousands of traps: time in traps outside system calls far outweighs syscall time",
    ),
    Example(
        "profile",
        "Lecture: traps in practice (3)",
        LECTURE_PROFILE,
        "kernel stacks sampled 997 times a second: pagezero under pmap_zero_page and vm_fault dominates",
    ),
    Example(
        "profile-top",
        "Profile: the five hottest kernel stacks",
        'profile-997 /execname == "dd"/ { @traces[stack()] = count(); }\n\nEND { trunc(@traces, 5); }\n',
        "the same samples cut to the five most frequent stacks (the flame graph keeps them all)",
    ),
    Example(
        "syscall-latency",
        "System-call latency histogram (quantize)",
        'syscall:::entry /execname == "dd"/ { self->ts = timestamp; }\n\n'
        "syscall:::return /self->ts/ {\n"
        "        @ns = quantize(timestamp - self->ts);\n"
        "        self->ts = 0;\n"
        "}\n",
        "a power-of-two histogram of how long each system call took, in ns",
    ),
    Example(
        "kernel-calls",
        "Kernel functions dd calls most (fbt)",
        'fbt:::entry /execname == "dd"/ { @calls[probefunc] = count(); }\n\nEND { trunc(@calls, 15); }\n',
        "entries into each modelled kernel function: the fault path runs once per page dd touches",
    ),
)

EXAMPLES_BY_SLUG = {example.slug: example for example in EXAMPLES}
