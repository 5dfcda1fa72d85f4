"""`trapscope`: serve the web app, or run the simulator from the command line (see sim/cli.py)."""

from __future__ import annotations

import argparse

from sim import cli as sim_cli


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.server_limits import ServerLimits

    limits = ServerLimits.from_env().uvicorn_kwargs()  # request sizes and timeouts (app/server_limits.py)
    uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port, log_level="info", **limits)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trapscope", description="Step through FreeBSD's traps and VM.")
    commands = parser.add_subparsers(dest="command_name", required=True)
    serve = commands.add_parser("serve", help="serve the web app")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    serve.set_defaults(handler=_serve)
    sim_cli.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    return sim_cli.run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
