"""Where the server's event loop is late, and what it was doing then (issue 11's p99s), measured in `trapscope serve`.

    python -m bench._loop_probe OUT.jsonl serve --host 127.0.0.1 --port 8210    # serve, probed
    python -m bench._loop_probe --report OUT.jsonl [--since T0] [--until T1]     # what it found

The probe is `trapscope serve` (one process) with three observers added to the app's lifespan:
- a task on the event loop that sleeps TICK_S and records how late it woke (the loop's lag);
- a watchdog thread that, while the loop's tick is overdue by more than LATE_S, samples every SAMPLE_S what the
  loop's thread is running (its innermost frames) and what the server's other threads are running;
- gc.callbacks: each collection's generation, duration and thread.
Everything is written as JSON lines with wall-clock times when the server shuts down; `--report` summarises a window
of it (bench.lecture_load --probe prints the lecture's window and the report). The watchdog takes the GIL to sample,
so a probed server is a little slower than an unprobed one: compare probed runs with probed runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import threading
import time
from collections import Counter, defaultdict
from contextlib import asynccontextmanager
from pathlib import Path

TICK_S = 0.010
# The tick overdue by more than this: the loop is busy elsewhere, sample it. LOOP_PROBE_LATE_MS=0 samples always:
# a statistical profile of the loop's thread.
LATE_S = float(os.environ.get("LOOP_PROBE_LATE_MS", "15")) / 1000
SAMPLE_S = 0.002
RECORDED_LAG_MS = 2.0  # lags shorter than this are only counted
STACK_DEPTH = 40
MAX_SAMPLES = 300_000
IDLE_FRAMES = ("threading.py:wait", "queue.py:get", "selectors.py", "thread.py:_worker")  # a thread waiting


def _frames(frame, depth: int = STACK_DEPTH) -> list[str]:
    """Innermost first: "path:function", the path from its package (app/, sim/, starlette/...)."""
    out = []
    while frame is not None and len(out) < depth:
        code = frame.f_code
        path = code.co_filename
        for marker in ("/site-packages/", "/lib/python3.11/", "/wt-load/", "/main/"):
            if marker in path:
                path = path.split(marker, 1)[1]
                break
        out.append(f"{path}:{code.co_name}")
        frame = frame.f_back
    return out


class Probe:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.beat = time.perf_counter()
        self.loop_thread: int | None = None
        self.gc_running: tuple[int, float, int, float] | None = None  # generation, start, thread, its CPU time
        self.records: list[dict] = []
        self.lag_counts: Counter[int] = Counter()  # every tick's lag, by whole ms
        self._stop = threading.Event()
        self._samples = 0

    # -- the collector
    def on_gc(self, phase: str, info: dict) -> None:
        now = time.perf_counter()
        if phase == "start":
            self.gc_running = (info["generation"], now, threading.get_ident(), time.thread_time())
            return
        if self.gc_running is None:
            return
        generation, start, thread, cpu_start = self.gc_running
        self.gc_running = None
        self.records.append({
            "kind": "gc", "t": time.time(), "gen": generation, "ms": (now - start) * 1000,
            "cpu_ms": (time.thread_time() - cpu_start) * 1000,
            "tracked": len(gc.get_objects()) if generation == 2 else None,
            "collected": info.get("collected", 0), "loop_thread": thread == self.loop_thread,
            "thread": threading.current_thread().name,
        })  # fmt: skip

    # -- the loop's lag
    async def tick(self) -> None:
        while not self._stop.is_set():
            due = time.perf_counter() + TICK_S
            await asyncio.sleep(TICK_S)
            now = time.perf_counter()
            self.beat = now
            late_ms = max(0.0, now - due) * 1000
            self.lag_counts[int(late_ms)] += 1
            if late_ms >= RECORDED_LAG_MS:
                self.records.append({"kind": "lag", "t": time.time(), "ms": late_ms})

    def watch(self) -> None:
        names = {}
        while not self._stop.wait(SAMPLE_S):
            overdue = time.perf_counter() - self.beat - TICK_S
            if (LATE_S and overdue < LATE_S) or self._samples >= MAX_SAMPLES:
                continue
            frames = sys._current_frames()
            loop_frame = frames.get(self.loop_thread)
            others = {}
            for ident, frame in frames.items():
                if ident in (self.loop_thread, threading.get_ident()):
                    continue
                if ident not in names:
                    names = {t.ident: t.name for t in threading.enumerate()}
                others[names.get(ident, str(ident))] = _frames(frame, 6)
            self._samples += 1
            gc_now = self.gc_running
            self.records.append({
                "kind": "sample", "t": time.time(), "overdue_ms": overdue * 1000,
                "gc": None if gc_now is None else [gc_now[0], gc_now[2] == self.loop_thread],
                "loop": _frames(loop_frame) if loop_frame is not None else [], "others": others,
            })  # fmt: skip

    def start(self) -> asyncio.Task:
        self.loop_thread = threading.get_ident()
        gc.callbacks.append(self.on_gc)
        threading.Thread(target=self.watch, name="loop-probe", daemon=True).start()
        return asyncio.get_running_loop().create_task(self.tick())

    def write(self) -> None:
        self._stop.set()
        gc.callbacks.remove(self.on_gc)
        with self.out.open("w") as out:
            out.write(json.dumps({"kind": "ticks", "t": time.time(), "lag_ms_counts": self.lag_counts}) + "\n")
            for record in self.records:
                out.write(json.dumps(record) + "\n")


def probed_app_factory(out: Path):
    from app import main

    create_app = main.create_app

    def probed_app():
        app = create_app()
        probe, inner = Probe(out), app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(app_):
            task = probe.start()
            async with inner(app_) as state:
                yield state
            task.cancel()
            probe.write()

        app.router.lifespan_context = lifespan
        return app

    main.create_app = probed_app  # `trapscope serve` runs uvicorn with "app.main:create_app"


# ---------------------------------------------------------------- the report


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * p / 100 + 0.999999) - 1)] if ordered else float("nan")


# What the loop's stack says it was doing, by the first frame (innermost first) that matches.
CATEGORIES = [
    ("gc", lambda stack, s: s["gc"] is not None),
    ("pickle/unpack (run from the recording process)", lambda stack, s: any("recorder_process" in f for f in stack)),
    ("jinja render", lambda stack, s: any("jinja2/" in f or "templates/" in f for f in stack)),
    ("gzip/fragment store", lambda stack, s: any("fragments.py:make_fragment" in f for f in stack)),
    ("sse send (sse_starlette)", lambda stack, s: any("sse_starlette" in f for f in stack)),
    ("broker/queues", lambda stack, s: any("app/broker.py" in f for f in stack)),
    ("app routes", lambda stack, s: any(f.startswith("app/") for f in stack)),
    ("uvicorn/h11 protocol", lambda stack, s: any("uvicorn/" in f or "h11/" in f for f in stack)),
    ("starlette", lambda stack, s: any("starlette/" in f for f in stack)),
    ("asyncio loop itself", lambda stack, s: any("asyncio/" in f for f in stack)),
]


def category(sample: dict) -> str:
    stack = sample["loop"]
    for name, test in CATEGORIES:
        if test(stack, sample):
            return name
    return "other: " + (stack[0] if stack else "?")


def report(path: Path, since: float | None, until: float | None, top: int) -> None:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    ticks = next((r for r in records if r["kind"] == "ticks"), None)
    window = [r for r in records if r["kind"] != "ticks"]
    if since is not None:
        window = [r for r in window if r["t"] >= since]
    if until is not None:
        window = [r for r in window if r["t"] <= until]
    lags = [r["ms"] for r in window if r["kind"] == "lag"]
    print(f"loop lags >= {RECORDED_LAG_MS} ms in the window: {len(lags)}, total {sum(lags):,.0f} ms; "
          f"p50 {_percentile(lags, 50):.1f}, p90 {_percentile(lags, 90):.1f}, p99 {_percentile(lags, 99):.1f}, "
          f"max {max(lags, default=0):.1f} ms")  # fmt: skip
    if ticks:
        counts = {int(k): v for k, v in ticks["lag_ms_counts"].items()}
        total = sum(counts.values())
        on_time = sum(n for ms, n in counts.items() if ms < RECORDED_LAG_MS)
        print(f"  (every tick of the whole run: {total:,}; under {RECORDED_LAG_MS:g} ms late {on_time:,})")
    gcs = [r for r in window if r["kind"] == "gc"]
    by_gen: dict[tuple, list[dict]] = defaultdict(list)
    for r in gcs:
        by_gen[(r["gen"], r["thread"])].append(r)
    for (gen, thread), found in sorted(by_gen.items()):
        ms, cpu = [r["ms"] for r in found], [r.get("cpu_ms", 0) for r in found]
        tracked = [r["tracked"] for r in found if r.get("tracked") is not None]
        print(f"  gc gen {gen} in {thread}: {len(ms)} x, total {sum(ms):,.0f} ms ({sum(cpu):,.0f} ms CPU), max "
              f"{max(ms):.1f} ms ({max(cpu):.1f} ms CPU), p50 {_percentile(ms, 50):.1f} ms"
              + (f"; tracked objects after: {min(tracked):,}-{max(tracked):,}" if tracked else ""))  # fmt: skip
    samples = [r for r in window if r["kind"] == "sample"]
    late = f"while overdue > {LATE_S * 1000:.0f} ms" if LATE_S else "always"
    print(f"samples of the loop {late}: {len(samples)} (every {SAMPLE_S * 1000:.0f} ms)")
    cats = Counter(category(s) for s in samples)
    for name, n in cats.most_common():
        print(f"  {n:6d} {100 * n / max(1, len(samples)):5.1f}%  {name}")
    leaves = Counter()
    for s in samples:
        stack = s["loop"]
        leaves[" < ".join(stack[:4])] += 1
    print("innermost frames of the loop's thread:")
    for name, n in leaves.most_common(top):
        print(f"  {n:6d}  {name}")
    apps = Counter()
    for s in samples:
        first = next((f for f in s["loop"] if f.startswith(("app/", "sim/", "bench/"))), "(no app frame)")
        apps[first] += 1
    print("innermost app/sim frame of the loop's thread:")
    for name, n in apps.most_common(top):
        print(f"  {n:6d}  {name}")
    busy = Counter()
    for s in samples:
        for name, stack in s["others"].items():
            top_frame = stack[0] if stack else "?"
            if not any(idle in top_frame for idle in IDLE_FRAMES):
                busy[f"{name.split('_')[0]}: {' < '.join(stack[:3])}"] += 1
    print("other threads running Python while the loop was overdue:")
    for name, n in busy.most_common(top):
        print(f"  {n:6d}  {name}")


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--report":
        parser = argparse.ArgumentParser(prog="python -m bench._loop_probe --report")
        parser.add_argument("path", type=Path)
        parser.add_argument("--since", type=float)
        parser.add_argument("--until", type=float)
        parser.add_argument("--top", type=int, default=15)
        args = parser.parse_args(argv[1:])
        report(args.path, args.since, args.until, args.top)
        return 0
    probed_app_factory(Path(argv[0]))
    from app import cli

    return cli.main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
