"""`trapscope`: serve the web app, or run the simulator from the command line (see sim/cli.py)."""

from __future__ import annotations

import argparse
import os
import re
import sys

from sim import cli as sim_cli

REDIS_URL = "TRAPSCOPE_REDIS_URL"


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.server_limits import ServerLimits
    from app.serving import uvicorn_options

    if args.workers > 1 and not os.environ.get(REDIS_URL, "").strip():
        # Without Redis a room lives in one worker's memory: a student's request landing on another would not
        # find it. Refused before anything starts, rather than a lecture failing later.
        print(
            f"trapscope serve: --workers {args.workers} needs {REDIS_URL} (e.g. redis://127.0.0.1:6379/0), where "
            "the workers' live rooms meet; without it, serve with --workers 1",
            file=sys.stderr,
        )
        return sim_cli.EXIT_USAGE
    options = uvicorn_options(args.workers)  # access log, metrics directory, graceful shutdown
    limits = ServerLimits.from_env().uvicorn_kwargs()  # request sizes and timeouts (app/server_limits.py)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_level="info",
        workers=args.workers,
        **options,
        **limits,
    )
    return 0


def _workers(raw: str) -> int:
    if not re.fullmatch(r"[0-9]{1,2}", raw) or not 1 <= int(raw) <= 64:
        raise argparse.ArgumentTypeError(f"a number of processes from 1 to 64, not {raw[:20]!r}")
    return int(raw)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trapscope", description="Step through FreeBSD's traps and VM.")
    commands = parser.add_subparsers(dest="command_name", required=True)
    serve = commands.add_parser("serve", help="serve the web app")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    serve.add_argument(
        "--workers", type=_workers, default=1, help=f"worker processes (1); more than one needs {REDIS_URL}"
    )
    serve.set_defaults(handler=_serve)
    sim_cli.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    return sim_cli.run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
