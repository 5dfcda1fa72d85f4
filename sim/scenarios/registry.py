"""Lecture scenarios: a command line, the machine it runs on, and the point of the lecture it demonstrates.

A scenario is only inputs plus words: what it shows is whatever the recorded run does, so a scenario's claim is
checked by a test that reads the run's log, never by numbers written here.

A scenario's command may name knobs in braces (`bs={bs} count={count}`): `defaults` gives each knob's value, and
a caller (the web app's parameters form) may pass others to `spec()`; `malloc_conf` is the environment variable
MALLOC_CONF put before the command, as a shell would.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from sim.kern.kernel import KernelConfig
from sim.run import RunSpec

# Knobs a scenario's command may use: what each one means, for forms and error messages.
KNOBS = MappingProxyType(
    {
        "bs": "dd's block size: bytes, or a number with k, m or g (dd's own syntax)",
        "count": "how many blocks dd copies, or how many times getpid() is called",
        "malloc_conf": "MALLOC_CONF for jemalloc: junk:true fills each allocation from user mode, junk:false does not",
        "command": "a whole command line, as a shell reads it: NAME=value ... program operand ...",
    }
)


@dataclass(frozen=True)
class Scenario:
    slug: str  # the scenario's name in URLs: /scenarios/<slug>
    title: str
    summary: str  # what a student will watch happen, in a sentence or two
    command: str  # the command line run on the simulated machine, with {knob} placeholders
    lecture_point: str  # the claim of the lecture this scenario demonstrates
    profile: str = "lecture"
    config: KernelConfig = field(default_factory=KernelConfig)
    defaults: Mapping[str, str] = field(default_factory=dict)  # knob -> its value when the caller gives none
    question: str = ""  # the question the scenario puts to the student, if any
    views: tuple[str, ...] = ()  # the views that tell this scenario's story best (projector mode's default)

    @property
    def knobs(self) -> tuple[str, ...]:
        """The knobs this scenario's command takes, in the order a form shows them."""
        return tuple(knob for knob in KNOBS if knob in self.defaults)

    def command_line(self, knobs: Mapping[str, str] | None = None) -> str:
        values = {**self.defaults, **(knobs or {})}
        unknown = set(values) - set(self.defaults)
        if unknown:
            raise ValueError(f"scenario {self.slug!r} has no knob {', '.join(sorted(unknown))}")
        command = self.command.format(**values)
        malloc_conf = values.get("malloc_conf", "")
        return f"MALLOC_CONF={malloc_conf} {command}" if malloc_conf else command

    def spec(
        self, knobs: Mapping[str, str] | None = None, profile: str | None = None, config: KernelConfig | None = None
    ) -> RunSpec:
        return RunSpec(command=self.command_line(knobs), profile=profile or self.profile, config=config or self.config)

    def with_config(self, **changes: object) -> KernelConfig:
        return replace(self.config, **changes)


class UnknownScenario(LookupError):
    """No scenario has this slug; the message lists the ones that exist."""

    def __init__(self, slug: str) -> None:
        super().__init__(f"no scenario named {slug!r} (scenarios: {', '.join(SCENARIOS)})")
        self.slug = slug


SCENARIOS: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    if scenario.slug in SCENARIOS:
        raise ValueError(f"scenario {scenario.slug!r} is registered twice")
    SCENARIOS[scenario.slug] = scenario
    return scenario


def lookup(slug: str) -> Scenario:
    try:
        return SCENARIOS[slug]
    except KeyError:
        raise UnknownScenario(slug) from None


register(
    Scenario(
        slug="getpid",
        title="getpid(): a system call as a trap",
        summary=(
            "A program calls getpid() through libc's stub. The syscall instruction switches the CPU from ring 3 "
            "to ring 0; the kernel saves the user's registers in a trapframe, runs syscallenter, sys_getpid and "
            "syscallret, and sysretq returns to ring 3 with the pid in %rax and the carry flag clear."
        ),
        command="getpid",
        lecture_point=(
            "A system call is a trap: a controlled transfer into the kernel at an address the kernel chose, "
            "with the user's state saved in a trapframe and restored on return."
        ),
        question="Which of syscallenter's hooks ran, and what did the skipped ones cost?",
        views=("narrative", "timeline", "cpu", "source"),
    )
)

register(
    Scenario(
        slug="dd-system-time",
        title="dd: where does system time go?",
        summary=(
            "`time dd if=/dev/zero of=/dev/null bs=10m count=1` reports about 0.4 s of system time, yet DTrace "
            "finds only a few ms inside system calls. Step to the page faults: dd's 20 MiB buffer is touched page "
            "by page, each first touch traps, and vm_fault zeroes a fresh page (pmap_zero_page -> pagezero)."
        ),
        command="dd if=/dev/zero of=/dev/null bs={bs} count={count}",
        defaults={"bs": "10m", "count": "1", "malloc_conf": ""},
        lecture_point=(
            "The process model's isolation costs real time: the kernel zero-fills every page on demand, so a new "
            "buffer costs a trap and a page zeroing per 4 KiB, and that, not the system calls, is the system time."
        ),
        question="time(1) says 0.396 s of system time; DTrace finds 3 ms in system calls. Where is the rest?",
        views=("narrative", "timeline", "walk", "vm", "latency"),
    )
)

register(
    Scenario(
        slug="dd-junk-false",
        title="dd with MALLOC_CONF=junk:false",
        summary=(
            "The same dd, but jemalloc no longer junk-fills the buffer from user mode. The pages are first touched "
            "by the kernel itself, in read()'s copyout from /dev/zero: the demand-zero faults move from user mode "
            "into kernel mode, inside the system call, recovered through the same vm_fault path."
        ),
        command="dd if=/dev/zero of=/dev/null bs={bs} count={count}",
        defaults={"bs": "10m", "count": "1", "malloc_conf": "junk:false"},
        lecture_point=(
            "The kernel demand-fills pages with zeroes only to copyout() zeroes into them from /dev/zero: who "
            "touches a page first decides where its zeroing is billed, but not whether it happens."
        ),
        question="With junk filling off, do the faults go away, or only move? Compare the latency view.",
        views=("narrative", "timeline", "source", "latency"),
    )
)

register(
    Scenario(
        slug="command",
        title="Any command line",
        summary=(
            "Step through any command line the simulated system can run (getpid, dd, ipc-benchmark, ...), with "
            "environment assignments as a shell reads them, e.g. MALLOC_CONF=junk:false dd bs=1m count=2."
        ),
        command="{command}",
        defaults={"command": "dd if=/dev/zero of=/dev/null bs=1m count=1"},
        lecture_point=(
            "Every view is a function of one recorded run: change the command or the kernel's switches and "
            "compare what the log says."
        ),
    )
)
