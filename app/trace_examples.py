"""Example D scripts for the trace page: the lecture's three, verbatim, and a few that draw each kind of chart.

The lecture's scripts are kept exactly as its slides print them (tests compare them with shared/lecture/);
each example says what to look for in its output.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sim.trace.lecture_scripts import LECTURE_PROFILE, LECTURE_SYSCALL_TIMES, LECTURE_TRAPS
from sim.user.shell import CommandLineError, parse_command_line


@dataclass(frozen=True)
class Example:
    slug: str
    title: str
    script: str
    look_for: str  # what the output shows over dd, in a sentence
    look_for_any: str  # what it shows over any other program


EXAMPLES: tuple[Example, ...] = (
    Example(
        "syscall-times",
        "Lecture: system calls in practice (1)",
        LECTURE_SYSCALL_TIMES,
        "time in each system call, summed: read() dominates, yet all of them together are a small part of dd's "
        "system time",
        "time in each system call the program makes, summed, against its whole system time",
    ),
    Example(
        "traps",
        "Lecture: traps in practice (1)",
        LECTURE_TRAPS,
        "55 system calls against thousands of traps: time in traps outside system calls far outweighs syscall time",
        "the program's system calls against the traps it takes outside them (page faults, mostly)",
    ),
    Example(
        "profile",
        "Lecture: traps in practice (3)",
        LECTURE_PROFILE,
        "kernel stacks sampled 997 times a second: pagezero under pmap_zero_page and vm_fault dominates",
        "kernel stacks sampled 997 times a second while the program runs",
    ),
    Example(
        "profile-top",
        "Profile: the five hottest kernel stacks",
        'profile-997 /execname == "dd"/ { @traces[stack()] = count(); }\n\nEND { trunc(@traces, 5); }\n',
        "the same samples cut to the five most frequent stacks (the flame graph keeps them all)",
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
        "a power-of-two histogram of how long each system call took, in ns",
    ),
    Example(
        "freebsd-faults",
        "FreeBSD's route to page faults (fbt, not Solaris's vminfo)",
        'fbt::vm_fault:entry /execname == "dd"/ { @faults = count(); }\n\n'
        'fbt::pmap_zero_page:entry /execname == "dd"/ { @zero_filled = count(); }\n',
        "every vm_fault() call, and the pages zeroed for them: compare the vm.stats.vm counters below the output",
        "every vm_fault() call, and the pages zeroed for them: compare the vm.stats.vm counters below the output",
    ),
    Example(
        "kernel-calls",
        "Kernel functions dd calls most (fbt)",
        'fbt:::entry /execname == "dd"/ { @calls[probefunc] = count(); }\n\nEND { trunc(@calls, 15); }\n',
        "entries into each modelled kernel function: the fault path runs once per page dd touches",
        "entries into each modelled kernel function the program's system calls and traps reach",
    ),
)

EXAMPLES_BY_SLUG = {example.slug: example for example in EXAMPLES}


def examples_for(program: str) -> tuple[Example, ...]:
    """The examples for a run of `program`: as they are for dd (the lecture's own), else the same D with each
    predicate naming the program, and words that claim nothing about dd."""
    if program in ("dd", ""):  # "": a command line that does not parse, which the page reports on its own
        return EXAMPLES
    return tuple(
        replace(
            e,
            title=e.title.replace("dd", program)
            + (f', with execname "{program}"' if e.title.startswith("Lecture") else ""),
            script=e.script.replace('execname == "dd"', f'execname == "{program}"'),
            look_for=e.look_for_any,
        )
        for e in EXAMPLES
    )


def program_of(command: str) -> str:
    """The program a command line runs (what execname is), or "" for one that does not parse."""
    try:
        return parse_command_line(command).program
    except CommandLineError:
        return ""
