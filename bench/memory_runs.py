"""Memory given back: 30 distinct dd runs (bs=1m..30m) through the web app's run cache, and what stays resident.

Issue 10's report: a server that records these 30 runs grew from 65 MB to 3.6 GB resident and never gave it back,
because runs that fell out of the cache stayed alive in reference cycles. Each run here is one request for the
stepping page of `dd-system-time` (the lecture's dd) with its own bs, through the app (Starlette's TestClient, in
this process), so the run cache records it, derives the stepper's index and evicts the oldest as a server would.

Printed: resident set size (RSS, /proc/self/statm) before the first run, after the last (as left, then after a
full gc.collect()), and the peak (getrusage ru_maxrss, the high-water mark of the whole process); the run cache's
own account of the bytes it holds. One pass: the runs are deterministic, and the figures are memory, not time.
The benchmark fails if what stays resident after the runs exceeds the cache's byte bound plus SLACK_BYTES (the
interpreter's own growth: modules imported, arenas kept).
"""

from __future__ import annotations

import gc
import os
import resource
import time

from fastapi.testclient import TestClient

from app.main import create_app
from app.runs import DEFAULT_MAX_BYTES
from bench._host import host_line

SIZES_MIB = range(1, 31)
SLACK_BYTES = 200 << 20


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main() -> int:
    print(host_line())
    app = create_app()
    with TestClient(app) as client:
        assert client.get("/scenarios/getpid").status_code == 200  # imports and templates loaded: the baseline
        gc.collect()
        before = rss_bytes()
        start = time.perf_counter()
        for size in SIZES_MIB:
            response = client.get(f"/scenarios/dd-system-time?bs={size}m")
            assert response.status_code == 200, (size, response.status_code, response.text[:300])
        elapsed = time.perf_counter() - start
        after = rss_bytes()
        gc.collect()
        collected = rss_bytes()
        cache = app.state.runs
        held = cache.bytes_held
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"{len(SIZES_MIB)} distinct runs, dd-system-time bs=1m..30m, through the app in {elapsed:.1f} s:")
    print(f"  RSS before {mib(before)}, after {mib(after)} ({mib(collected)} after gc.collect()), peak {mib(peak)}")
    print(f"  the run cache holds {len(cache)} runs, {mib(held)} by its own account (bound {mib(DEFAULT_MAX_BYTES)})")
    grown = collected - before
    met = grown <= DEFAULT_MAX_BYTES + SLACK_BYTES
    print(f"  grown {mib(grown)}: within the cache's bound + {mib(SLACK_BYTES)}: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
