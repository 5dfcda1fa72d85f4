"""A lecture under load (issue 11): 300 followers in a room whose lecturer steps once a second, 50 students exploring
on their own, against `trapscope serve` as it runs in production, on loopback; then back-to-back throughput of a
cached step panel against a trivial FastAPI endpoint, under the same client.

    python -m bench.lecture_load                  # the issue's lecture: 300 followers, 50 explorers, 60 s
    python -m bench.lecture_load --seconds 10     # a quick run
    python -m bench.lecture_load --workers 2      # `trapscope serve --workers 2` (rooms through a redis-server it
                                                  # starts, when the tree's serve has --workers)

The lecturer opens a room on the lecture's dd run, steps it once a second (the step panel's GET, then the drive POST
that broadcasts the step), poses a question, waits until the live tally shows every follower's answer (15 s at
most), reveals the answer and steps on; each follower holds the room's event stream
and answers once; each explorer steps a scenario of their own once a second, and some start a new dd run with
parameters of their own (see bench/_lecture.py). Measured: the explorers' step latency, the broadcast delay (from
the lecturer's drive POST being sent to each follower's event arriving), answers sent and tallied, errors, missed
steps, the server's resident memory and CPU, and the client's own CPU and event-loop lag (the client must not be the
bottleneck). Targets: 0 errors, no missed steps, p99 step latency and p99 broadcast delay under 100 ms, a cached
step panel at least 50% of the trivial endpoint's throughput. Exits 1 when a target is missed.

Everything runs on this machine: the two servers each in their own process, the client in this one (asyncio, raw
HTTP/1.1: bench/_http.py), wrk for the throughput part when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench import _servers
from bench._host import host_line
from bench._lecture import BROWSER, PANEL, Explorer, Follower, Lecture, Lecturer, Record, Ticks
from bench._servers import HOST, Server
from bench._throughput import measure
from sim.scenarios.registry import SCENARIOS

LECTURE_URL = "/scenarios/dd-system-time"
FIRST_STEP = 1000  # the lecturer starts part-way into dd's run, and steps forward from there
QUESTION_KIND = "fault"
REVEAL_AFTER_S = 15  # the longest the lecturer waits for the class's answers
JOINING_AT_ONCE = 20  # followers opening the room's page at the same moment
GRACE_S = 3.0  # after the last step, for events and answers still on their way
TRIVIAL_PATH = "/fragment"
THROUGHPUT_STEPS = 20  # cached step panels of the lecture's run, requested in turn
# Rate limits per client would refuse the load: every simulated student comes from 127.0.0.1.
RATE_LIMITS_OFF = {"TRAPSCOPE_RATE_LIMIT": "off"}
TARGET_MS = 100.0
TARGET_RATIO = 0.5


def percentile(values: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def spread(values: list[float]) -> str:
    if not values:
        return "none"
    return f"p50 {percentile(values, 50):.1f} ms, p99 {percentile(values, 99):.1f} ms, max {max(values):.1f} ms"


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


@dataclass
class LectureResult:
    lecture: Lecture
    followers: list[Follower]
    explorers: list[Explorer]
    join_s: float
    seconds: float
    client_cpu_s: float
    server_cpu_s: float
    loop_lag_ms: list[float]
    question_posed: bool

    @property
    def record(self) -> Record:
        return self.lecture.record

    def broadcast(self) -> tuple[list[float], int]:
        """Each follower's delay for each step driven, in ms; and the (follower, step) pairs never received."""
        delays, missed = [], 0
        for follower in self.followers:
            for step, sent in self.lecture.driven.items():
                received = follower.received.get(step)
                if received is None:
                    missed += 1
                else:
                    delays.append((received - sent) * 1000)
        return delays, missed


async def monitor_loop_lag(lags: list[float], stop: asyncio.Event) -> None:
    """How late this client's event loop wakes up: if it lags, the client and not the server is slow."""
    while not stop.is_set():
        due = time.perf_counter() + 0.05
        await asyncio.sleep(0.05)
        lags.append(max(0.0, time.perf_counter() - due) * 1000)


async def warm_scenarios(lecture: Lecture) -> float:
    """A server that has been up: every built-in scenario recorded once, as earlier visitors left them."""
    conn, start = lecture.connection(), time.perf_counter()
    for slug in SCENARIOS:
        await lecture.record.call("warm-up page", conn, "GET", f"/scenarios/{slug}", BROWSER)
    await conn.close()
    return time.perf_counter() - start


async def run_lecture(args: argparse.Namespace, server: Server) -> LectureResult:
    rng = random.Random(args.seed)
    lecture = Lecture(HOST, server.port, Record())
    lecturer = Lecturer(lecture)
    await lecturer.open_room(f"{LECTURE_URL}?step={FIRST_STEP}")
    print(f"room {lecture.code} open at {lecture.url}")
    if not args.cold:
        print(f"warm-up: the {len(SCENARIOS)} built-in scenarios recorded in {await warm_scenarios(lecture):.1f} s")

    followers = [Follower(lecture, random.Random(rng.random())) for _ in range(args.followers)]
    start = time.perf_counter()
    gate = asyncio.Semaphore(JOINING_AT_ONCE)

    async def join(follower: Follower) -> bool:
        async with gate:
            return await follower.join()

    joined = await asyncio.gather(*(join(f) for f in followers))
    following = [asyncio.create_task(f.follow()) for f, ok in zip(followers, joined, strict=True) if ok]
    lead_stream = asyncio.create_task(lecturer.hold_lead_stream())
    try:
        await asyncio.wait_for(asyncio.gather(*(f.connected.wait() for f in followers)), 60)
    except TimeoutError:
        pass
    join_s = time.perf_counter() - start
    connected = sum(f.connected.is_set() for f in followers)
    print(f"{connected} of {len(followers)} followers joined and connected in {join_s:.1f} s")

    slugs = sorted(SCENARIOS)
    explorers = []
    for i in range(args.explorers):
        new_run = f"bs={[*range(2, 10), *range(11, 33)][i]}m&count=1" if i < args.new_runs else None
        explorers.append(Explorer(lecture, random.Random(rng.random()), rng.choice(slugs), new_run))
    pose_tick = round(args.seconds * 0.3) if args.seconds >= 8 else None

    async def lecture_steps(begin: float, until: float) -> None:
        """Step once a second; at `pose_tick` ask, and wait (no steps) until the live tally shows every follower's
        answer, or REVEAL_AFTER_S at most, then reveal and step on."""
        step, posed_at, revealed = FIRST_STEP, None, False
        last_tick = math.ceil(until - begin) - 1
        async for tick in Ticks(begin, until):
            if pose_tick is not None and posed_at is None and tick >= pose_tick:  # a late tick may skip the exact one
                posed_at = tick
                await lecturer.pose(QUESTION_KIND)
            elif posed_at is not None and not revealed:
                all_in = lecture.live_answers >= connected
                if all_in or tick >= min(posed_at + REVEAL_AFTER_S, last_tick):
                    revealed = True
                    await lecturer.reveal()
            else:
                step += 1
                await lecturer.step(step)

    lags: list[float] = []
    stop = asyncio.Event()
    monitor = asyncio.create_task(monitor_loop_lag(lags, stop))
    server_cpu, client_cpu = server.usage().cpu_s, time.process_time()
    begin = time.perf_counter() + 0.5
    until = begin + args.seconds
    actors = [lecture_steps(begin, until)]
    for explorer in explorers:
        new_run_tick = explorer.rng.randrange(1, max(2, args.seconds // 2))
        actors.append(explorer.explore(begin + explorer.rng.random(), until, new_run_tick))
    window_start = time.time()
    await asyncio.gather(*actors)
    window_end = time.time()
    if args.probe:
        print(f"the lecture's window for the probe: --since {window_start:.3f} --until {window_end:.3f}")
        args.window = (window_start, window_end)
    await asyncio.sleep(GRACE_S)
    stop.set()
    await monitor
    elapsed = time.perf_counter() - begin
    client_cpu, server_cpu = time.process_time() - client_cpu, server.usage().cpu_s - server_cpu
    for task in [*following, lead_stream]:
        task.cancel()
    await asyncio.gather(*following, lead_stream, return_exceptions=True)
    return LectureResult(
        lecture, followers, explorers, join_s, elapsed, client_cpu, server_cpu, lags, pose_tick is not None
    )


def report_lecture(result: LectureResult, args: argparse.Namespace) -> list[tuple[str, bool]]:
    record, lecture = result.record, result.lecture
    print(
        f"\nthe lecture: {args.seconds} s (+{GRACE_S:.0f} s for the last events), measured over {result.seconds:.1f} s"
    )
    steps = record.ms["explorer step"]
    sent = sum(e.steps_sent for e in result.explorers)
    asked = sent + sum(e.steps_skipped for e in result.explorers)
    print(f"  explorers' steps ({args.explorers} explorers, each a step a second once their page is open): "
          f"{asked:,} asked for, {sent:,} sent (a student waits for the last step), {len(steps):,} answered "
          f"({len(steps) / args.seconds:.1f}/s); {spread(steps)}")  # fmt: skip
    for kind in ("explorer page", "new dd run", "lecturer step panel", "drive", "question", "reveal", "answer"):
        if record.ms[kind]:
            statuses = ", ".join(f"{n} x {status}" for status, n in sorted(record.statuses[kind].items()))
            print(f"  {kind}: {statuses}; {spread(record.ms[kind])}")
    delays, missed = result.broadcast()
    deliveries = len(lecture.driven) * len(result.followers)
    print(f"  broadcast delay (drive POST sent -> a follower's event), {len(lecture.driven)} steps x "
          f"{len(result.followers)} followers: {spread(delays)}")  # fmt: skip
    gaps = sum(1 for f in result.followers if any(step not in f.received for step in lecture.driven))
    print(f"  missed steps: {missed:,} of {deliveries:,} deliveries; {gaps} followers missed at least one")
    accepted = record.answered("answer", 200)
    if result.question_posed:
        print(f"  question ({QUESTION_KIND}): {accepted} answers accepted (200) of {len(result.followers)} followers; "
              f"{lecture.tallied} tallied at the reveal; the lecturer's live tally last showed "
              f"{lecture.live_answers}")  # fmt: skip
    events = sum(f.events for f in result.followers)
    sse_bytes = sum(f.bytes for f in result.followers)
    print(f"  followers received {events:,} events, {sse_bytes / 2**20:,.1f} MiB; the lecturer's lead stream "
          f"{lecture.lead_events} events")  # fmt: skip
    errors = sum(record.failed(kind) for kind in set(record.statuses) | set(record.broken))
    print(f"  errors: {errors}")
    for kind in sorted(set(record.statuses) | set(record.broken)):
        bad = {status: n for status, n in record.statuses[kind].items() if status >= 400}
        if bad or record.broken[kind]:
            print(f"    {kind}: statuses {bad or '-'} ({record.refused[kind]} of them 503 + Retry-After, admission "
                  f"control's refusals, not errors), broken connections or streams {record.broken[kind]}")  # fmt: skip
    for sample in record.samples:
        print(f"    e.g. {sample}")
    print(f"  server CPU {result.server_cpu_s:.1f} s ({100 * result.server_cpu_s / result.seconds:.0f}% of one "
          f"core); client CPU {result.client_cpu_s:.1f} s ({100 * result.client_cpu_s / result.seconds:.0f}% of one "
          f"core), its event loop woke late by {spread(result.loop_lag_ms)}")  # fmt: skip
    targets = [
        ("0 errors", errors == 0),
        ("no missed steps", missed == 0 and bool(lecture.driven)),
        (f"p99 step latency < {TARGET_MS:.0f} ms", bool(steps) and percentile(steps, 99) < TARGET_MS),
        (f"p99 broadcast delay < {TARGET_MS:.0f} ms", bool(delays) and percentile(delays, 99) < TARGET_MS),
    ]
    if result.question_posed:
        targets.append(("every answer sent is tallied", lecture.tallied == accepted))
    return targets


def warm(server: Server, paths: list[str]) -> None:
    for path in paths:
        request = urllib.request.Request(server.url(path), headers=PANEL)
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()


def server_command(args: argparse.Namespace, port: int) -> tuple[list[str], str]:
    entry = ["bench._loop_probe", args.probe] if args.probe else ["app.cli"]
    command = [sys.executable, "-m", *entry, "serve", "--host", HOST, "--port", str(port)]
    if args.workers <= 1:
        return command, "1 process"
    if not _servers.serve_supports("--workers"):
        return (
            command,
            f"1 process (asked for --workers {args.workers}: this tree's `trapscope serve` has no --workers)",
        )
    return [*command, "--workers", str(args.workers)], f"--workers {args.workers}"


def start_redis(args: argparse.Namespace, workers: bool) -> tuple[Server | None, str | None]:
    """The rooms' broker: the URL given, a redis-server of our own (`auto`, for several workers), or none (rooms in
    the one process)."""
    if args.redis not in ("auto", ""):
        return None, args.redis
    if args.redis == "" or not workers or shutil.which("redis-server") is None:
        return None, None
    port = _servers.free_port()
    command = ["redis-server", "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no"]
    return _servers.start("redis", command, port, _servers.redis_pong(port)), f"redis://{HOST}:{port}/0"


def server_log_problems(server: Server) -> int:
    """Tracebacks in the server's log: how many, each distinct exception once, and the end of the first."""
    tracebacks = server.log().split("Traceback (most recent call last)")[1:]
    if tracebacks:
        endings = Counter(_exception_line(text) for text in tracebacks)
        print(f"  the server logged {len(tracebacks)} tracebacks:")
        for ending, n in endings.most_common(5):
            print(f"    {n} x {ending[:300]}")
        print("  the end of the first:\n" + "\n".join(tracebacks[0].splitlines()[-24:]))
    return len(tracebacks)


def _exception_line(traceback: str) -> str:
    """The line that names the exception: the first after the frames (which are indented) and their "^^^" marks."""
    lines = traceback.splitlines()[1:]
    for line in lines:
        if line and not line.startswith(" "):
            return line
    return lines[-1] if lines else ""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.lecture_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="how long the lecture lasts (60)")
    parser.add_argument("--followers", type=int, default=300, help="students following the lecturer (300)")
    parser.add_argument("--explorers", type=int, default=50, help="students exploring on their own (50)")
    parser.add_argument("--new-runs", type=int, default=10, help="explorers who start a new dd run (10, at most 30)")
    parser.add_argument("--workers", type=int, default=1, help="trapscope serve --workers N, when the tree has it")
    parser.add_argument(
        "--redis", default="auto", help="the rooms' Redis URL; 'auto' starts a redis-server when --workers > 1"
    )
    parser.add_argument("--port", type=int, default=0, help="trapscope's port, the trivial app's is the next (free)")
    parser.add_argument("--throughput-seconds", type=float, default=10, help="each back-to-back measurement (10)")
    parser.add_argument("--connections", type=int, default=32, help="connections of the back-to-back client (32)")
    parser.add_argument("--cold", action="store_true", help="do not record the built-in scenarios before")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"more environment for trapscope (repeatable); {RATE_LIMITS_OFF} is always set",
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--probe",
        metavar="FILE",
        help="serve through bench/_loop_probe.py (one process): the event loop's lags, "
        "what it ran meanwhile and its collections, written to FILE and summarised for the lecture's 60 s",
    )
    args = parser.parse_args(argv)
    args.new_runs = max(0, min(args.new_runs, args.explorers, 30))
    return args


def start_servers(args: argparse.Namespace, servers: list[Server]) -> tuple[Server, Server]:
    """trapscope and the trivial app (and a redis-server for several workers), appended to `servers` as they start."""
    port = args.port or _servers.free_port()
    command, processes = server_command(args, port)
    redis, redis_url = start_redis(args, "--workers" in command)
    if redis is not None:
        servers.append(redis)
    env = dict(RATE_LIMITS_OFF, **({"TRAPSCOPE_REDIS_URL": redis_url} if redis_url else {}))
    env.update(pair.split("=", 1) for pair in args.server_env if "=" in pair)
    servers.append(_servers.start("trapscope", command, port, _servers.http_ok(f"http://{HOST}:{port}/healthz"), env))
    trivial_port = args.port + 1 if args.port else _servers.free_port()
    trivial_command = [sys.executable, "-m", "uvicorn", "bench._trivial_app:app", "--host", HOST]
    trivial_ready = _servers.http_ok(f"http://{HOST}:{trivial_port}{TRIVIAL_PATH}")
    servers.append(
        _servers.start("trivial", [*trivial_command, "--port", str(trivial_port)], trivial_port, trivial_ready)
    )
    rooms = f"through {redis_url}" if redis_url else "in process"
    print(f"trapscope serve at {servers[-2].url()}: {processes}; rooms {rooms}; server environment {env}")
    return servers[-2], servers[-1]


def measure_throughput(args: argparse.Namespace, trapscope: Server, trivial: Server) -> list[tuple[str, bool]]:
    paths = [f"{LECTURE_URL}?step={FIRST_STEP + i}" for i in range(THROUGHPUT_STEPS)]
    warm(trapscope, paths)
    print(f"\nback to back, {args.connections} connections, {args.throughput_seconds:g} s each:")
    yardstick = measure(HOST, trivial.port, [TRIVIAL_PATH], PANEL, args.throughput_seconds, args.connections)
    print(f"  trivial FastAPI endpoint ({TRIVIAL_PATH}): {yardstick.line()}")
    cached = measure(HOST, trapscope.port, paths, PANEL, args.throughput_seconds, args.connections)
    print(f"  trapscope, {len(paths)} cached step panels of {LECTURE_URL} in turn: {cached.line()}")
    ratio = cached.per_second / yardstick.per_second
    print(f"  ratio: {100 * ratio:.1f}% of the trivial endpoint (target >= {100 * TARGET_RATIO:.0f}%)")
    return [
        ("no failed requests back to back", yardstick.failures == 0 and cached.failures == 0),
        (f"cached step >= {100 * TARGET_RATIO:.0f}% of the trivial endpoint", ratio >= TARGET_RATIO),
    ]


def load_line() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"{host_line()}; {load_line()}")
    servers: list[Server] = []
    try:
        trapscope, trivial = start_servers(args, servers)
        started = trapscope.usage()
        result = asyncio.run(run_lecture(args, trapscope))
        after_lecture = trapscope.usage()
        targets = report_lecture(result, args)
        print(f"  server RSS: {mib(started.rss_bytes)} when started, {mib(after_lecture.rss_bytes)} after the "
              f"lecture ({after_lecture.processes} process{'es' if after_lecture.processes > 1 else ''})")  # fmt: skip
        targets += measure_throughput(args, trapscope, trivial)
        print(f"  server RSS after: {mib(trapscope.usage().rss_bytes)}")
        targets.append(("no tracebacks in the server's log", server_log_problems(trapscope) == 0))
    finally:
        for server in reversed(servers):
            server.stop()
    if args.probe:
        from bench import _loop_probe

        print("\nthe probe, over the lecture (not its grace period nor the throughput part):")
        _loop_probe.report(Path(args.probe), *getattr(args, "window", (None, None)), top=15)
    print(f"\n{load_line()}")
    print("targets: " + "; ".join(f"{name}: {'met' if met else 'MISSED'}" for name, met in targets))
    return 0 if all(met for _, met in targets) else 1


if __name__ == "__main__":
    raise SystemExit(main())
