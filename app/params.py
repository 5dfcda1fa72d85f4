"""The stepping page's query string, parsed and checked: the URL is the whole state of the screen.

    /scenarios/dd-system-time?bs=4m&count=2&profile=modern&smap=0&views=timeline,walk&mode=projector&bp=vm_fault
                              \\___ run inputs (a new run) ___________/ \\__ what is shown, how, where to stop __/

Every value is checked here, once, so a tampered or mistyped URL gets a 4xx that names the parameter and what it
accepts, never a 500. `StepperQuery.url(...)` writes the canonical URL back, keeping everything but what changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from app.errors import BadParameter
from app.rooms import CODE_LENGTH, normalize_code
from sim.core.log import EVENT_KINDS
from sim.kern.kernel import KernelConfig
from sim.machine.profiles import PROFILES
from sim.run import RunSpec
from sim.scenarios.registry import KNOBS, Scenario
from sim.user.dd import get_num
from sim.user.shell import CommandLineError, parse_command_line

# Views of a step, in the order the page lays them out; the names are what `views=` takes.
VIEWS = {
    "narrative": "Narrative",
    "timeline": "Ring timeline",
    "cpu": "CPU",
    "source": "Kernel source",
    "walk": "Page-table walk",
    "vm": "Virtual memory",
    "latency": "Latency",
}

# Kernel switches the parameters form offers: query name -> (KernelConfig field, label).
SWITCHES = {
    "smap": ("smap", "SMAP (CR4.SMAP)"),
    "smep": ("smep", "SMEP (CR4.SMEP)"),
    "jailed": ("jailed", "jailed"),
    "ktrace": ("ktrace", "ktrace"),
    "ptrace": ("ptrace", "ptrace (traced by a debugger)"),
    "dtrace": ("dtrace_syscall", "DTrace syscall probes"),
    "audit": ("audit", "audit"),
}
MALLOC_CONFS = ("", "junk:true", "junk:false")  # "" = the profile's build default

# The web's limits on a run, so that one request cannot hold a worker for long (`trapscope run` has none of these).
MAX_DD_BYTES = 32 << 20  # bs * count
MAX_GETPID_COUNT = 5_000
WEB_EVENT_BUDGET = 1_500_000  # steps a web run may take in all; every one of them is recorded for stepping
MAX_BREAKPOINTS = 12
EVENT_KIND_NAMES = tuple(EVENT_KINDS) + ("tlb", "walk")

_WHOLE = re.compile(r"-?[0-9]{1,18}")
_COUNT = re.compile(r"[0-9]{1,18}")  # ASCII digits only: str.isdigit() takes '²', which int() then refuses
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_TRUE, _FALSE = ("1", "on", "true", "yes"), ("0", "off", "false", "no")
_STOP = re.compile(r"[a-z0-9-]{1,40}")  # a stop's name (sim/scenarios/stops.py) or its number
QUERY_PARAMETERS = (
    "step",
    "stop",
    "at",
    "views",
    "mode",
    "embed",
    "bp",
    "add_bp",
    "room",
    "profile",
    "script",  # the D console's program and its -q (app/routes_console.py checks them)
    "quiet",
    *KNOBS,
    *SWITCHES,
)


@dataclass(frozen=True)
class Breakpoint:
    """Stop at the entry of a kernel function (`vm_fault`) or at any event of a kind (`kind:fault`)."""

    kind: str  # "function" or "kind"
    name: str

    @property
    def token(self) -> str:
        return self.name if self.kind == "function" else f"kind:{self.name}"

    @property
    def label(self) -> str:
        return f"{self.name}()" if self.kind == "function" else f"any {self.name} event"


@dataclass(frozen=True)
class StepperQuery:
    path: str
    scenario: Scenario
    knobs: Mapping[str, str]  # the scenario's knobs that differ from its defaults
    profile: str
    switches: Mapping[str, bool]  # the switches that differ from the scenario's config
    step: int | None  # None: the first step
    at_ns: int | None  # jump to the step running at this simulated time (the timeline's click-to-jump)
    views: tuple[str, ...]
    projector: bool
    embed: bool
    breakpoints: tuple[Breakpoint, ...] = field(default=())
    room: str = ""  # the live room this page belongs to (app/rooms.py): its lecturer drives it, others explore
    stop: str = ""  # the scenario's stop this step is (its name), or the stop asked for when no step is given
    stop_view: str = ""  # the view that carries the stop's point (app/view_stops.py with_stop): shown by default
    views_given: bool = False  # the URL chose the views (views=): a stop adds none of its own

    @property
    def config(self) -> KernelConfig:
        changes = {SWITCHES[name][0]: value for name, value in self.switches.items()}
        return replace(self.scenario.config, **changes)

    @property
    def spec(self) -> RunSpec:
        return self.scenario.spec(self.knobs, self.profile, self.config)

    def knob(self, name: str) -> str:
        return self.knobs.get(name, self.scenario.defaults.get(name, ""))

    def switch(self, name: str) -> bool:
        return self.switches.get(name, machine_switch(self.scenario.config, SWITCHES[name][0], self.profile))

    def run_params(self) -> list[tuple[str, str]]:
        """The run's inputs as query pairs (only those that differ from the scenario's)."""
        pairs = [(name, self.knobs[name]) for name in KNOBS if name in self.knobs]
        if self.profile != self.scenario.profile:
            pairs.append(("profile", self.profile))
        pairs += [(name, "1" if self.switches[name] else "0") for name in SWITCHES if name in self.switches]
        return pairs

    def display_params(self) -> list[tuple[str, str]]:
        """How the screen looks: views (unless the default), mode, embed, breakpoints."""
        pairs = []
        default = default_views(self.scenario, self.projector)
        if self.stop and self.stop_view:
            default = with_view(default, self.stop_view)
        if self.views != default:
            pairs.append(("views", ",".join(self.views)))
        if self.projector:
            pairs.append(("mode", "projector"))
        if self.embed:
            pairs.append(("embed", "1"))
        if self.breakpoints:
            pairs.append(("bp", ",".join(bp.token for bp in self.breakpoints)))
        if self.room:
            pairs.append(("room", self.room))
        if self.stop:
            pairs.append(("stop", self.stop))
        return pairs

    def url(self, step: int | None = None, **changes: object) -> str:
        """This page's URL with `changes` applied (views=, projector=, embed=, breakpoints=, stop=) at `step`. The
        stop is named only at its own step: at another, unless `changes` names one, the URL names no stop."""
        if "stop" not in changes and step != self.step:
            changes["stop"] = ""
        query = replace(self, **changes) if changes else self
        pairs = query.run_params() + query.display_params()
        if step is not None:
            pairs.append(("step", str(step)))
        return f"{self.path}?{urlencode(pairs, safe=',:')}" if pairs else self.path

    def toggled_view(self, view: str) -> tuple[str, ...]:
        chosen = set(self.views) ^ {view}
        return tuple(name for name in VIEWS if name in chosen)

    def with_breakpoint(self, breakpoint: Breakpoint, present: bool) -> tuple[Breakpoint, ...]:
        kept = tuple(bp for bp in self.breakpoints if bp != breakpoint)
        return (*kept, breakpoint) if present else kept


def machine_switch(config: KernelConfig, attribute: str, profile: str) -> bool:
    """A kernel switch as the run will have it: SMAP and SMEP left unset (None) are the profile's machine's."""
    value = getattr(config, attribute)
    return getattr(PROFILES[profile], attribute) if value is None else value


def default_views(scenario: Scenario, projector: bool) -> tuple[str, ...]:
    if projector and scenario.views:
        return tuple(name for name in VIEWS if name in scenario.views)
    return tuple(VIEWS)


def with_view(views: tuple[str, ...], view: str) -> tuple[str, ...]:
    return tuple(name for name in VIEWS if name in views or name == view)


def _bad(parameter: str, message: str, valid: str) -> BadParameter:
    return BadParameter(parameter, f"query parameter {parameter!r} {message}", valid)


def parse_size(text: str) -> int:
    """A size as dd reads it (sim/user/dd.py's get_num: 4096, 64k, 10m, 2x512, ...); ValueError if dd would not."""
    try:
        return get_num("bs", text.strip())
    except CommandLineError:
        raise ValueError(text) from None


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _bad(name, f"must be 1 or 0 (on or off), not {raw!r}", "1 or 0")


def _knobs(scenario: Scenario, params: Mapping[str, str]) -> dict[str, str]:
    knobs: dict[str, str] = {}
    for name in KNOBS:
        if name not in params:
            continue
        if name not in scenario.defaults:
            takes = ", ".join(scenario.knobs) or "none"
            raise _bad(name, f"does not apply to scenario {scenario.slug!r} (its parameters: {takes})", takes)
        knobs[name] = params[name].strip()
    values = {**scenario.defaults, **knobs}
    if "command" in values:
        values.update(_dd_operands(values["command"]))
    if "bs" in values:
        limit = f"1 to {MAX_DD_BYTES >> 20}m"
        try:
            bs = parse_size(values["bs"])
        except ValueError:
            raise _bad("bs", f"must be a size such as 4096, 64k or 10m, not {values['bs']!r}", limit) from None
        if not 1 <= bs <= MAX_DD_BYTES:
            raise _bad("bs", f"must be from 1 byte to {MAX_DD_BYTES >> 20}m on the web, not {values['bs']!r}", limit)
    if "count" in values:
        most = MAX_GETPID_COUNT if "bs" not in values else MAX_DD_BYTES
        if not _COUNT.fullmatch(values["count"]) or not 1 <= int(values["count"]) <= most:
            raise _bad("count", f"must be a whole number from 1 to {most:,}, not {values['count']!r}", f"1 to {most}")
        if "bs" in values and bs * int(values["count"]) > MAX_DD_BYTES:
            raise _bad(
                "count",
                f"times bs is {bs * int(values['count']):,} bytes: the web limit is {MAX_DD_BYTES >> 20} MiB a run "
                "(run bigger copies with `trapscope run`)",
                f"bs * count <= {MAX_DD_BYTES >> 20}m",
            )
    if "malloc_conf" in values and values["malloc_conf"] not in MALLOC_CONFS:
        valid = "junk:true or junk:false (or empty for the build's default)"
        raise _bad("malloc_conf", f"must be {valid}, not {values['malloc_conf']!r}", valid)
    return {name: value for name, value in knobs.items() if value != scenario.defaults[name]}


def check_web_command(command: str) -> None:
    """Refuse, before it is recorded, a command line whose dd copies more than the web allows in one run (the
    stepping page's knobs are checked the same way by parse_query)."""
    sizes = _dd_operands(command)
    if not sizes or not _COUNT.fullmatch(sizes["count"]):
        return  # not dd, or an operand dd itself refuses with its own message
    total = parse_size(sizes["bs"]) * int(sizes["count"])
    if total > MAX_DD_BYTES:
        raise _bad(
            "command",
            f"runs a dd whose bs times count is {total:,} bytes: the web limit is {MAX_DD_BYTES >> 20} MiB a run "
            "(run bigger copies with `trapscope run`)",
            f"bs * count <= {MAX_DD_BYTES >> 20}m",
        )


def _dd_operands(command: str) -> dict[str, str]:
    """A dd command line's bs and count (or ibs/obs), so the web's size limits apply to it too."""
    try:
        argv = parse_command_line(command).argv
    except CommandLineError:
        return {}  # the run itself reports the error, naming the command
    if argv[0] != "dd":
        return {}
    operands = dict(word.split("=", 1) for word in argv[1:] if "=" in word)
    sizes = [operands[name] for name in ("bs", "ibs", "obs") if name in operands]
    try:
        largest = max(sizes, key=parse_size, default="512")  # the buffer dd mallocs grows with the larger one
    except ValueError:
        return {}  # dd itself refuses the operand, with its own message, before any run
    return {"bs": largest, "count": operands.get("count", "1")}


def _breakpoints(raw: str) -> tuple[Breakpoint, ...]:
    found: list[Breakpoint] = []
    for token in filter(None, (part.strip() for part in raw.split(","))):
        kind, _, name = token.rpartition(":")
        if kind == "kind":
            if name not in EVENT_KIND_NAMES:
                valid = ", ".join(EVENT_KIND_NAMES)
                raise _bad("bp", f"names an unknown event kind {name!r} (kinds: {valid})", valid)
            found.append(Breakpoint("kind", name))
        elif not kind and _NAME.fullmatch(name):
            found.append(Breakpoint("function", name))
        else:
            valid = "kernel function names (vm_fault) or kind:KIND (kind:fault), separated by commas"
            raise _bad("bp", f"has a malformed breakpoint {token!r}", valid)
    if len(found) > MAX_BREAKPOINTS:
        raise _bad("bp", f"sets {len(found)} breakpoints; at most {MAX_BREAKPOINTS}", f"at most {MAX_BREAKPOINTS}")
    return tuple(dict.fromkeys(found))


def _views(raw: str) -> tuple[str, ...]:
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in VIEWS]
    if unknown:
        valid = ", ".join(VIEWS)
        raise _bad("views", f"names unknown view(s) {', '.join(map(repr, unknown))} (views: {valid})", valid)
    return tuple(name for name in VIEWS if name in names)


def _whole(name: str, raw: str, valid: str) -> int:
    if not _WHOLE.fullmatch(raw.strip()):
        raise _bad(name, f"must be {valid}, not {raw!r}", valid)
    return int(raw)


class MalformedStep(ValueError):
    """The step parameter is not a whole number; the route names the run's range when it reports it."""

    def __init__(self, raw: str) -> None:
        super().__init__(raw)
        self.raw = raw


def parse_step(raw: str) -> int:
    if not _WHOLE.fullmatch(raw.strip()):
        raise MalformedStep(raw)
    return int(raw)


def step_problem(error: MalformedStep, last_step: int) -> BadParameter:
    valid = f"a whole number from 0 to {last_step}"
    return _bad("step", f"must be {valid}, not {error.raw!r}", valid)


def parse_query(path: str, scenario: Scenario, params: Mapping[str, str], multi: Mapping[str, int]) -> StepperQuery:
    """Check the stepping page's query (`multi`: how many times each name occurs; each may occur once)."""
    for name, times in multi.items():
        if name not in QUERY_PARAMETERS:
            valid = ", ".join(QUERY_PARAMETERS)
            raise _bad(name, f"is not one this page takes (it takes: {valid})", valid)
        if times > 1:
            raise _bad(name, f"is given {times} times; give it once", "one value")
    profile = params.get("profile", scenario.profile).strip()
    if profile not in PROFILES:
        valid = ", ".join(PROFILES)
        raise _bad("profile", f"must be one of {valid}, not {profile!r}", valid)
    switches = {}
    for name, (attribute, _) in SWITCHES.items():
        if name in params:
            value = _flag(name, params[name])
            if value != machine_switch(scenario.config, attribute, profile):
                switches[name] = value
    mode = params.get("mode", "").strip()
    if mode not in ("", "projector", "normal"):
        raise _bad("mode", f"must be projector or normal, not {mode!r}", "projector or normal")
    embed = _flag("embed", params["embed"]) if "embed" in params else False
    projector = mode == "projector"
    views = _views(params["views"]) if "views" in params else default_views(scenario, projector)
    step = parse_step(params["step"]) if "step" in params else None
    at_ns = _whole("at", params["at"], "a time in ns, 0 or more") if "at" in params else None
    stop = params.get("stop", "").strip().lower()
    if stop and not _STOP.fullmatch(stop):
        valid = "a stop's name (such as first-fault) or its number, from 1"
        raise _bad("stop", f"must be {valid}, not {params['stop']!r}", valid)
    room = normalize_code(params["room"]) if "room" in params else ""
    if room is None:  # not quoted back: a room code is short, and anything else is not worth showing
        valid = f"{CODE_LENGTH} letters and digits, such as K7QXM"
        raise _bad("room", f"must be a room code ({valid})", valid)
    if at_ns is not None and at_ns < 0:
        raise _bad("at", f"must be a time in ns, 0 or more, not {at_ns}", "0 or more")
    return StepperQuery(
        path=path,
        scenario=scenario,
        knobs=_knobs(scenario, params),
        profile=profile,
        switches=switches,
        step=step,
        at_ns=at_ns,
        views=views,
        projector=projector,
        embed=embed,
        breakpoints=_breakpoints(",".join(filter(None, (params.get("bp", ""), params.get("add_bp", ""))))),
        room=room,
        stop=stop,
        views_given="views" in params,
    )
