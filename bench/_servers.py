"""Servers under test, each a real uvicorn in its own process on loopback, and what they cost their host.

The load benchmark measures servers as they run in production (`trapscope serve`), not in the client's process: the
client's own CPU is then its own, and a server's resident memory and CPU time are read from /proc for its whole
process tree (the supervisor and any worker processes).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def serve_supports(option: str) -> bool:
    """Whether this tree's `trapscope serve` takes `option` (say --workers): the benchmark runs on trees without it."""
    usage = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--help"], cwd=ROOT, env=_env({}), capture_output=True, text=True
    )
    return option in usage.stdout


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdecimal():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry))
    return tree


@dataclass
class Usage:
    rss_bytes: int
    cpu_s: float  # user + system, of the processes alive now
    processes: int


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def url(self, path: str = "") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def pids(self) -> list[int]:
        tree, found, todo = _children(), [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(tree.get(pid, []))
        return found

    def usage(self) -> Usage:
        rss = ticks = alive = 0
        for pid in self.pids():
            try:
                resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            rss += resident * PAGE_SIZE
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
            alive += 1
        return Usage(rss, ticks / CLOCK_TICKS, alive)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the server and delete its log (what the benchmark needed from it has been printed)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown, workers included
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_path.unlink(missing_ok=True)


def http_ok(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200

    return probe


def redis_pong(port: int) -> Callable[[], bool]:
    def probe() -> bool:
        with socket.create_connection((HOST, port), timeout=2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")

    return probe


def start(
    name: str, command: list[str], port: int, ready: Callable[[], bool], env: dict[str, str] | None = None
) -> Server:
    """Start `command` in the repository root (this tree's code importable) and wait until `ready()` says so."""
    descriptor, path = tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")
    os.close(descriptor)
    log_path = Path(path)
    with log_path.open("wb") as log:  # a file, not a pipe: a full pipe would stall the server's access log
        process = subprocess.Popen(command, cwd=ROOT, env=_env(env or {}), stdout=log, stderr=subprocess.STDOUT)
    server = Server(name, port, process, log_path)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = server.log()[-2000:]
            server.stop()
            raise SystemExit(f"{name} exited with {process.returncode} before it was ready:\n{log}")
        try:
            if ready():
                return server
        except OSError:
            pass
        time.sleep(0.2)
    log = server.log()[-2000:]
    server.stop()
    raise SystemExit(f"{name} was not ready within 90 s:\n{log}")
