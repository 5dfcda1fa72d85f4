"""Throughput of a step panel beside a trivial FastAPI app, the same client (wrk) on both, in the same run.

Each server runs as `uvicorn ... --log-level info` (as `trapscope serve` does, access log included) on a free
loopback port. wrk (Debian's package: `apt-get install wrk`) keeps 20 connections busy for DURATION_S seconds,
once per server in turn, twice over; a step panel is the lecture's dd run, every view, as htmx asks for it with
gzip. Two trapscope loads: one step again and again (a lecture's followers), and 200 steps in turn (students
exploring; each rendered once during the warm-up). `--before TREE` also measures another source tree (e.g. a
`git worktree` of an older commit) in the same rounds, for a before/after.

    python -m bench.step_throughput [--before TREE] [--duration 10]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench._host import host_line

ROOT = Path(__file__).resolve().parent.parent
STEP = "/scenarios/dd-system-time?step={step}"
PANEL = {"HX-Request": "true", "HX-Target": "section#step-panel", "Accept-Encoding": "gzip"}
STEPS = [1000 + 37 * i for i in range(200)]
CONNECTIONS = 20
TRIVIAL_APP = """
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

app = FastAPI()


@app.get("/", response_class=HTMLResponse)
async def hello() -> str:
    return "<p>hello</p>"
"""
ROTATE_LUA = """
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", string.format("/scenarios/dd-system-time?step=%d", 1000 + 37 * (i % 200)))
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(name: str, cwd: Path, target: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", *target, "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    with log.open("wb") as out:
        process = subprocess.Popen(command + ["--log-level", "info"], cwd=cwd, env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit(f"{name} did not start; see {log}")


def _wrk(url: str, seconds: int, headers: dict[str, str], script: Path | None = None) -> tuple[float, str, int]:
    """(requests/s, p99 latency, non-2xx responses) of one wrk run."""
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    errors = re.search(r"Non-2xx or 3xx responses: ([0-9]+)", out)
    return rate, p99, int(errors.group(1)) if errors else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="another source tree to measure beside this one")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (10)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    print(host_line())
    work = Path(tempfile.mkdtemp(prefix="step-throughput-"))
    (work / "trivial_app.py").write_text(TRIVIAL_APP)
    rotate = work / "rotate.lua"
    rotate.write_text(ROTATE_LUA)
    trees = {"trapscope": ROOT, **({"before": args.before.resolve()} if args.before else {})}
    servers = {"trivial": _start("trivial", work, ["trivial_app:app"], work / "trivial.log")}
    for name, tree in trees.items():
        servers[name] = _start(name, tree, ["app.main:create_app", "--factory"], work / f"{name}.log")
    try:
        for name in trees:
            base = servers[name][1]
            with httpx.Client(base_url=base, headers=PANEL, timeout=120) as client:
                for step in [STEPS[0], *STEPS]:  # records the run, then renders each step once
                    client.get(STEP.format(step=step)).raise_for_status()
        results: dict[str, list[tuple[float, str, int]]] = {}
        for _ in range(2):
            results.setdefault("trivial", []).append(_wrk(servers["trivial"][1] + "/", args.duration, {}))
            for name in trees:
                base = servers[name][1]
                one = _wrk(base + STEP.format(step=STEPS[0]), args.duration, PANEL)
                results.setdefault(f"{name}: one step", []).append(one)
                rotating = _wrk(base + "/", args.duration, PANEL, rotate)
                results.setdefault(f"{name}: 200 steps in turn", []).append(rotating)
        trivial = max(rate for rate, _, _ in results["trivial"])
        print(f"wrk, 1 thread, {CONNECTIONS} connections, {args.duration} s a run, best of 2 rounds:")
        for name, runs in results.items():
            rate, p99, errors = max(runs)
            print(f"  {name:28} {rate:8,.0f} req/s  p99 {p99:>8}  non-2xx {errors}  ({rate / trivial:6.1%} of trivial)")
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
