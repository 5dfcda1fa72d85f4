"""Memory given back: 30 distinct dd runs (bs=1m..30m) through the web app's run cache, and what stays resident.

Issue 10's report: a server that records these 30 runs grew from 65 MB to 3.6 GB resident and never gave it back,
because runs that fell out of the cache stayed alive in reference cycles. Each run here is one request for the
stepping page of `dd-system-time` (the lecture's dd) with its own bs, through the app (Starlette's TestClient, in
this process), so the run cache records it, derives the stepper's index and evicts the oldest as a server would.

Printed: resident set size (RSS, /proc/self/statm) before the first run, after the last (as left, after a full
gc.collect(), and after glibc's malloc_trim(0), which returns the allocator's free memory), and the peak (getrusage
ru_maxrss, the high-water mark of the whole process); the run cache's own account of the bytes it holds. One pass:
the runs are deterministic, and the figures are memory, not time.
The benchmark fails if what stays resident after the runs exceeds the cache's byte bound plus SLACK_BYTES (the
interpreter's own growth: modules imported, arenas kept).

`python -m bench.memory_runs --runs 500 --largest 8` (issue 11: memory stays flat over 500 distinct runs): 500
distinct dd runs whose block sizes are spread over 1-8 MiB in KiB steps (11-72 MiB held each: the cache's byte
bound, not its count of runs, is what evicts), in a shuffled (seeded) order so that every stretch of the series asks
for the same mix; RSS is printed every tenth of the way, to show that it stays flat.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import random
import resource
import time

from fastapi.testclient import TestClient

from app.main import create_app
from app.runs import DEFAULT_MAX_BYTES
from bench._host import host_line

SIZES_MIB = range(1, 31)
SLACK_BYTES = 200 << 20


def block_sizes(runs: int, largest_mib: int) -> list[str]:
    """dd's bs for each run: 1m..30m for the default 30; otherwise distinct KiB sizes from 1 MiB to `largest_mib`
    MiB, shuffled."""
    if runs == len(SIZES_MIB) and largest_mib == SIZES_MIB[-1]:
        return [f"{size}m" for size in SIZES_MIB]
    low, high = SIZES_MIB[0] * 1024, largest_mib * 1024
    sizes = sorted({low + (high - low) * i // max(1, runs - 1) for i in range(runs)})
    if len(sizes) < runs:
        raise SystemExit(f"{runs} runs cannot each have their own block size between {low} and {high} KiB")
    random.Random(11).shuffle(sizes)
    return [f"{size}k" for size in sizes]


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rss_after_trim() -> int | None:
    """RSS once glibc has given its free memory back (None elsewhere): tells live memory from the allocator's."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    libc.malloc_trim(0)
    return rss_bytes()


def descendants_rss() -> tuple[int, int]:
    """(RSS, the largest peak RSS) of this process's descendants: the recording process and the forkserver it is
    forked from (app/recorder_process.py), which are the server's memory too."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue  # it exited meanwhile
    family, grew = {os.getpid()}, True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in family and pid not in family:
                family.add(pid)
                grew = True
    rss = peak = 0
    for pid in family - {os.getpid()}:
        try:
            with open(f"/proc/{pid}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue
        rss += int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
        peak = max(peak, int(fields.get("VmHWM", "0 kB").split()[0]) * 1024)
    return rss, peak


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_runs")
    parser.add_argument("--runs", type=int, default=len(SIZES_MIB), help="distinct dd runs (30)")
    parser.add_argument("--largest", type=int, default=SIZES_MIB[-1], help="the largest bs, in MiB (30)")
    args = parser.parse_args(argv)
    sizes = block_sizes(args.runs, args.largest)
    checkpoints = {len(sizes) * tenth // 10 for tenth in range(1, 11)} if len(sizes) > len(SIZES_MIB) else set()
    print(host_line())
    app = create_app()
    with TestClient(app) as client:
        assert client.get("/scenarios/getpid").status_code == 200  # imports and templates loaded: the baseline
        gc.collect()
        before = rss_bytes()
        start = time.perf_counter()
        children_peak_seen = 0
        for done, size in enumerate(sizes, 1):
            response = client.get(f"/scenarios/dd-system-time?bs={size}")
            assert response.status_code == 200, (size, response.status_code, response.text[:300])
            children_rss, children_peak = descendants_rss()
            children_peak_seen = max(children_peak_seen, children_peak)
            if done in checkpoints:
                print(f"  after {done:>4} runs ({time.perf_counter() - start:,.0f} s): RSS {mib(rss_bytes())}, the "
                      f"cache {len(app.state.runs)} runs, {mib(app.state.runs.bytes_held)}; recording process "
                      f"{mib(children_rss)}", flush=True)  # fmt: skip
        elapsed = time.perf_counter() - start
        after = rss_bytes()
        gc.collect()
        collected = rss_bytes()
        trimmed = rss_after_trim()
        cache = app.state.runs
        held = cache.bytes_held
        children_rss, _ = descendants_rss()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    span = f"bs from 1m to {args.largest}m"
    print(f"{len(sizes)} distinct runs of dd-system-time, {span}, through the app in {elapsed:.1f} s:")
    print(f"  RSS before {mib(before)}, after {mib(after)} ({mib(collected)} after gc.collect()), peak {mib(peak)}")
    if trimmed is not None:
        print(f"  {mib(trimmed)} after malloc_trim(0): the C allocator had kept {mib(collected - trimmed)} free")
    print(f"  the recording process and its forkserver (TRAPSCOPE_RECORDER=process): RSS {mib(children_rss)} at the "
          f"end, the largest peak seen {mib(children_peak_seen)}")  # fmt: skip
    print(f"  the run cache holds {len(cache)} runs, {mib(held)} by its own account (bound {mib(DEFAULT_MAX_BYTES)})")
    grown = collected - before
    met = grown <= DEFAULT_MAX_BYTES + SLACK_BYTES
    print(f"  grown {mib(grown)}: within the cache's bound + {mib(SLACK_BYTES)}: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
