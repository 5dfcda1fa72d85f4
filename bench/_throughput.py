"""Back-to-back throughput: how many requests a second a server answers when each of N connections sends its next
request as soon as the last is answered.

wrk (Debian's package, written in C) drives it when installed, so that the client costs little next to the server;
otherwise this package's asyncio client does, and its CPU time says how much of a core it took itself.
"""

from __future__ import annotations

import asyncio
import re
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

from bench._http import Connection, HttpError

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class Throughput:
    tool: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failures: int  # answers other than 2xx/3xx, and connection errors or timeouts
    client_cpu_s: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def line(self) -> str:
        return (
            f"{self.per_second:,.0f} req/s ({self.requests:,} in {self.seconds:.1f} s), p50 {self.p50_ms:.1f} ms, "
            f"p99 {self.p99_ms:.1f} ms, {self.failures} failed; the client ({self.tool}) used "
            f"{self.client_cpu_s:.1f} s CPU ({100 * self.client_cpu_s / self.seconds:.0f}% of a core)"
        )


def measure(
    host: str, port: int, paths: list[str], headers: dict[str, str], seconds: float, connections: int
) -> Throughput:
    if shutil.which("wrk"):
        return _wrk(host, port, paths, headers, seconds, connections)
    return asyncio.run(_asyncio_client(host, port, paths, headers, seconds, connections))


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wrk(
    host: str, port: int, paths: list[str], headers: dict[str, str], seconds: float, connections: int
) -> Throughput:
    script = (
        f"local paths = {{{', '.join(_lua_string(p) for p in paths)}}}\n"
        "local n = 0\n"
        "request = function()\n  n = n % #paths + 1\n  return wrk.format(nil, paths[n])\nend\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "--latency", "-s", lua.name]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        output = subprocess.run([*command, f"http://{host}:{port}"], capture_output=True, text=True, check=True).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    done = re.search(r"([0-9]+) requests in ([0-9.]+)(us|ms|s)", output)
    if done is None:
        raise SystemExit(f"wrk's output was not understood:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: ([0-9]+)", output)
    socket_errors = re.search(
        r"Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)", output
    )
    failures = (int(non_2xx.group(1)) if non_2xx else 0) + (
        sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    )
    return Throughput(
        tool="wrk, 2 threads",
        requests=int(done.group(1)),
        seconds=float(done.group(2)) * UNITS_MS[done.group(3)] / 1000,
        p50_ms=_wrk_percentile(output, "50"),
        p99_ms=_wrk_percentile(output, "99"),
        failures=failures,
        client_cpu_s=cpu,
    )


def _wrk_percentile(output: str, percent: str) -> float:
    found = re.search(rf"^\s+{percent}%\s+([0-9.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    return float(found.group(1)) * UNITS_MS[found.group(2)] if found else float("nan")


async def _asyncio_client(
    host: str, port: int, paths: list[str], headers: dict[str, str], seconds: float, connections: int
) -> Throughput:
    times: list[float] = []
    failures = 0

    async def loop(offset: int, until: float) -> None:
        nonlocal failures
        conn, n = Connection(host, port), offset
        while time.perf_counter() < until:
            start = time.perf_counter()
            try:
                response = await conn.request("GET", paths[n % len(paths)], headers)
                failures += response.status >= 400
            except HttpError:
                failures += 1
            times.append((time.perf_counter() - start) * 1000)
            n += 1
        await conn.close()

    cpu, start = time.process_time(), time.perf_counter()
    await asyncio.gather(*(loop(i, start + seconds) for i in range(connections)))
    elapsed = time.perf_counter() - start
    times.sort()
    return Throughput(
        tool="asyncio client, one process",
        requests=len(times),
        seconds=elapsed,
        p50_ms=times[len(times) // 2] if times else float("nan"),
        p99_ms=times[int(0.99 * (len(times) - 1))] if times else float("nan"),
        failures=failures,
        client_cpu_s=time.process_time() - cpu,
    )
