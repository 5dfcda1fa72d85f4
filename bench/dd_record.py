"""The lecture's dd, recorded: how long a fully recorded `bs=10m` run takes, and what `bs=1g` costs.

Issue 4's targets: `dd if=/dev/zero of=/dev/null bs=10m count=1` (lecture profile) fully recorded in under 0.5 s;
`dd ... bs=1g count=1` in under 10 s and under 1 GiB of memory with the default record budget.

- bs=10m: best of REPEATS_10M runs in this process, wall time (perf_counter) and CPU time (process_time), with
  every event recorded (the default budget covers the whole run; checked).
- bs=1g: each configuration runs in a fresh child process (`python -m bench.dd_record --child BUDGET [CMD]`),
  which reports its wall and CPU time and its peak resident set (getrusage ru_maxrss: the high-water mark of
  the whole process, interpreter included). Best of REPEATS_1G for time; the peak is the highest of them.
  Besides the target (the default budget), recording off, and MALLOC_CONF=junk:false (no junk fill: the faults
  come in read()'s copyout instead) for comparison.

Wall time on a loaded 2-core machine varies; CPU time (process_time) is the steadier figure, and the host
calibration (bench/_host.py) says how fast the interpreter was running.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

from bench._host import host_line
from sim.run import DEFAULT_RECORD_BUDGET, RunSpec, record

DD_10M = "dd if=/dev/zero of=/dev/null bs=10m count=1"
DD_1G = "dd if=/dev/zero of=/dev/null bs=1g count=1"
DD_1G_NO_JUNK = f"MALLOC_CONF=junk:false {DD_1G}"
REPEATS_10M = 5
REPEATS_1G = 2
LIMIT_10M_S = 0.5
LIMIT_1G_S = 10.0
LIMIT_1G_BYTES = 1 << 30


def timed(command: str, record_budget: int) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    run = record(RunSpec(command), record_budget=record_budget)
    return time.perf_counter() - wall, time.process_time() - cpu, run


def child(record_budget: int, command: str = DD_1G) -> None:
    """Run a dd once in this (fresh) process and print one JSON line of figures."""
    wall, cpu, run = timed(command, record_budget)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    figures = {"wall": wall, "cpu": cpu, "peak": peak, "recorded": len(run.events), "events": run.summary()["events"]}
    print(json.dumps(figures))


def in_child(record_budget: int, command: str = DD_1G) -> dict:
    argv = [sys.executable, "-m", "bench.dd_record", "--child", str(record_budget), command]
    out = subprocess.run(argv, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"child run failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ok = True
    print(host_line())
    runs = [timed(DD_10M, DEFAULT_RECORD_BUDGET) for _ in range(REPEATS_10M)]
    wall = min(r[0] for r in runs)
    cpu = min(r[1] for r in runs)
    run = runs[0][2]
    events, unrecorded = len(run.events), run.unrecorded
    del runs, run
    print(f"{DD_10M} (lecture), default record budget {DEFAULT_RECORD_BUDGET:,}, best of {REPEATS_10M}:")
    print(f"  {events:,} events recorded ({unrecorded:,} unrecorded) in {wall:.3f} s wall, {cpu:.3f} s CPU")
    met = wall < LIMIT_10M_S and unrecorded == 0
    verdict = "met" if met else "MISSED"
    print(f"  {events / wall:,.0f} recorded events/s; target < {LIMIT_10M_S} s, all recorded: {verdict}")
    ok &= met

    for label, budget, command in (
        ("default record budget", DEFAULT_RECORD_BUDGET, DD_1G),
        ("recording off", 0, DD_1G),
        ("default record budget", DEFAULT_RECORD_BUDGET, DD_1G_NO_JUNK),
    ):
        figures = [in_child(budget, command) for _ in range(REPEATS_1G)]
        best = min(figures, key=lambda f: f["wall"])
        peak = max(f["peak"] for f in figures)
        print(f"{command} (lecture), {label} ({budget:,}), best of {REPEATS_1G} fresh processes:")
        print(f"  {best['events']:,} events ({best['recorded']:,} recorded) in {best['wall']:.2f} s wall, "
              f"{best['cpu']:.2f} s CPU; peak RSS {peak / 2**20:,.0f} MiB")  # fmt: skip
        if budget == DEFAULT_RECORD_BUDGET and command == DD_1G:
            met = best["wall"] < LIMIT_1G_S and peak < LIMIT_1G_BYTES
            print(f"  target < {LIMIT_1G_S:.0f} s and < 1 GiB: {'met' if met else 'MISSED'}")
            ok &= met
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(int(sys.argv[2]), *sys.argv[3:4])
    else:
        sys.exit(main())
