"""The simulator's command line: `trapscope run`, and the commands later issues add beside it.

sim/ is usable without the web app; app/cli.py adds `serve` and hands everything else to `main` here.
"""

from __future__ import annotations

import argparse
import json
import sys

from sim.kern.kernel import KernelConfig
from sim.machine.profiles import DEFAULT_PROFILE, PROFILES
from sim.run import Run, RunError, RunSpec, record
from sim.scenarios import listing
from sim.trace import dtrace, export
from sim.user.shell import CommandLineError
from sim.vm.pagewalk import PagewalkError, format_pagewalk, pagewalk

EXIT_USAGE = 2
# Every profile runs the same FreeBSD 11 code: a profile is a machine's costs (and its SMAP/SMEP), not a release.
PROFILE_HELP = "the machine's costs (default lecture); each runs FreeBSD 11's code, modern with today's costs"


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="run a command line on the simulated machine and time it")
    run.add_argument("--profile", choices=sorted(PROFILES), default=DEFAULT_PROFILE, help=PROFILE_HELP)
    run.add_argument("--json", action="store_true", help="print one JSON object of counters instead")
    run.add_argument("-c", dest="command", required=True, metavar="'COMMAND LINE'", help="what to run")
    run.set_defaults(handler=_run)
    dtrace.add_parser(subparsers, _scenario_spec)
    walk = subparsers.add_parser("pagewalk", help="run a command line, then walk an address in its page tables")
    walk.add_argument("--profile", choices=sorted(PROFILES), default=DEFAULT_PROFILE, help=PROFILE_HELP)
    walk.add_argument("--json", action="store_true", help="print the walk as one JSON object")
    walk.add_argument("--va", required=True, type=_address, metavar="ADDRESS", help="address (0x... or decimal)")
    walk.add_argument("--pid", type=int, help="whose page tables (default: the first process)")
    walk.add_argument("-c", dest="command", required=True, metavar="'COMMAND LINE'", help="what to run first")
    walk.set_defaults(handler=_pagewalk)
    export.add_parser(subparsers)
    listing.add_parser(subparsers)


def _scenario_spec(slug: str) -> RunSpec:
    """A scenario's run, with its default knobs (`trapscope dtrace --scenario NAME`)."""
    from sim.scenarios.registry import lookup

    return lookup(slug).spec()


def _run(args: argparse.Namespace) -> int:
    # Only totals are printed, and the machine keeps those with recording off: recording every step would cost
    # time and memory for nothing (dd bs=1g: ~4 s instead of ~6.5 s). "events" still counts every event.
    spec = RunSpec(command=args.command, profile=args.profile, config=KernelConfig())
    result = record(spec, record_budget=0)
    if args.json:
        print(json.dumps(result.summary(), indent=2))
    else:
        sys.stdout.write(result.output)
        print(csh_time_line(result))
    return 0 if result.exit_status in (0, None) else 1


def _address(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an address (write it as 0x... or in decimal)") from None
    if not 0 <= value < 1 << 64:
        raise argparse.ArgumentTypeError(f"{text} is not a 64-bit address")
    return value


def _pagewalk(args: argparse.Namespace) -> int:
    result = pagewalk(record(RunSpec(command=args.command, profile=args.profile)), args.va, args.pid)
    if args.json:
        levels = [{key: level[key] for key in ("level", "index", "entry", "flags")} for level in result["levels"]]
        report = {"va": result["va"], "levels": levels}
        report.update({"pa": result["pa"]} if "pa" in result else {"fault": result["fault"]})
        print(json.dumps(report, indent=2))
    else:
        print(format_pagewalk(result))
    return 0 if "pa" in result else 1


def csh_time_line(run: Run) -> str:
    """csh's `time` output: %Uu %Ss %E %P%; the memory and I/O fields follow as the run models them."""
    user, system, wall = run.user_ns / 1e9, run.sys_ns / 1e9, run.wall_ns / 1e9
    minutes, seconds = divmod(wall, 60)
    percent = 100.0 * (user + system) / wall if wall else 0.0
    summary = run.summary()
    major_faults = summary.get("faults", {}).get("hard", 0)
    return f"{user:.3f}u {system:.3f}s {int(minutes)}:{seconds:05.2f} {percent:.1f}% 0+0k 0+0io {major_faults}pf+0w"


def run_command(args: argparse.Namespace) -> int:
    try:
        return args.handler(args)
    except (CommandLineError, RunError, PagewalkError) as error:
        print(f"trapscope: {error}", file=sys.stderr)
        return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trapscope", description=__doc__.splitlines()[0])
    add_commands(parser.add_subparsers(dest="command_name", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv))
