"""The garbage collector's pauses in a serving process that unpacks runs from the recording process (issue 11).

    python -m bench.collector_pauses                 # as `trapscope serve` sets the collector up (app/collector.py)
    python -m bench.collector_pauses --as-recorder   # with the recorder's thresholds (sim/run.py), for comparison

Three dd runs (bs 1m, 4m, 10m) are recorded, derived for the stepper and packed as the recording process packs them;
then 36 are unpacked in turn and the last 12 kept, as the run cache keeps them, each stepped once. Every collection
is timed in CPU time (time.thread_time: the machines' cores are shared, and CPU time is what a pause costs the
event loop on a quiet one), by generation, and one full collection over the 12 kept runs last. A collection holds the
GIL from start to end: the server's event loop waits for the whole of it. Fails if one took more than TARGET_MS.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from collections import defaultdict, deque

from bench._host import host_line

RUNS, KEPT = 36, 12
BLOCK_SIZES = ("1m", "4m", "10m")
TARGET_MS = 100.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.collector_pauses", description=__doc__.split("\n\n")[0])
    parser.add_argument("--as-recorder", action="store_true", help="keep sim/run.py's thresholds, freeze nothing")
    args = parser.parse_args(argv)
    os.environ["TRAPSCOPE_RECORDER"] = "thread"  # the runs are packed here, as the recording process packs them
    from app.collector import settle_for_serving
    from app.main import web_record
    from app.recorder_process import pack, unpack
    from app.runs import CachedRun
    from app.stepper import PrepareStepper
    from sim.run import RunSpec

    print(host_line())
    packed = []
    for bs in BLOCK_SIZES:
        cached = CachedRun(web_record(RunSpec(f"dd if=/dev/zero of=/dev/null bs={bs} count=1")))
        PrepareStepper("dd-system-time")(cached)
        packed.append(pack(cached))
        del cached
    if args.as_recorder:
        gc.collect()
    else:
        settle_for_serving()
    print(f"collector thresholds {gc.get_threshold()}, {gc.get_freeze_count():,} objects frozen")
    pauses: list[tuple[int, float]] = []
    started: list[float] = []

    def timed(phase: str, info: dict) -> None:
        if phase == "start":
            started.append(time.thread_time())
        else:
            pauses.append((info["generation"], (time.thread_time() - started.pop()) * 1000))

    gc.callbacks.append(timed)
    try:
        kept: deque = deque(maxlen=KEPT)
        begin = time.process_time()
        for number in range(RUNS):
            kept.append(unpack(packed[number % len(packed)]))
            kept[-1].state_at(kept[-1].last_step // 3)
        cpu_ms = (time.process_time() - begin) * 1000
        during = list(pauses)
        gc.collect()
        full_ms = pauses[-1][1]
    finally:
        gc.callbacks.remove(timed)
    by_generation: dict[int, list[float]] = defaultdict(list)
    for generation, ms in during:
        by_generation[generation].append(ms)
    print(f"{RUNS} dd runs (bs {', '.join(BLOCK_SIZES)} in turn) unpacked, the last {KEPT} kept: {cpu_ms:,.0f} ms CPU")
    for generation, times in sorted(by_generation.items()):
        print(f"  generation {generation}: {len(times)} collections, {sum(times):,.0f} ms CPU in all, the longest "
              f"{max(times):.1f} ms")  # fmt: skip
    print(f"  one full collection over the {KEPT} kept runs: {full_ms:.1f} ms CPU")
    longest = max([full_ms, *(ms for _, ms in during)])
    met = longest <= TARGET_MS
    print(f"the longest collection: {longest:.1f} ms CPU (target <= {TARGET_MS:.0f} ms): {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
