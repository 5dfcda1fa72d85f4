"""Lecture scenarios: a command line, the machine it runs on, and the point of the lecture it demonstrates.

A scenario is only inputs plus words: what it shows is whatever the recorded run does, so a scenario's claim is
checked by a test that reads the run's log, never by numbers written here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.kern.kernel import KernelConfig
from sim.run import RunSpec


@dataclass(frozen=True)
class Scenario:
    slug: str  # the scenario's name in URLs: /scenarios/<slug>
    title: str
    summary: str  # what a student will watch happen, in a sentence or two
    command: str  # the command line run on the simulated machine
    lecture_point: str  # the claim of the lecture this scenario demonstrates
    profile: str = "lecture"
    config: KernelConfig = field(default_factory=KernelConfig)

    def spec(self) -> RunSpec:
        return RunSpec(command=self.command, profile=self.profile, config=self.config)


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
    )
)
