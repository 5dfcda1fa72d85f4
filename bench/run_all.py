"""Run every benchmark module in bench/, each in its own Python process.

A benchmark is any ``bench/NAME.py`` other than this runner, ``__init__`` and ``__main__`` and names
starting with ``_``. Each runs as ``python -m bench.NAME`` from the repository root, prints its own
results, and exits non-zero on failure. ``python -m bench [NAME ...]`` runs only the named ones.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
NOT_BENCHMARKS = {"__init__", "__main__", "run_all"}


def discover() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if p.stem not in NOT_BENCHMARKS and not p.stem.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    available = discover()
    unknown = [name for name in argv if name not in available]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available) or 'none'}")
        return 2
    names = argv or available
    if not names:
        print("no benchmarks yet (bench/*.py); see bench/README.md")
        return 0
    failed = []
    for name in names:
        print(f"== bench.{name}", flush=True)
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=ROOT)
        print(f"== bench.{name}: exit {rc} in {time.perf_counter() - start:.1f} s", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
