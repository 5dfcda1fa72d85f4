"""The serving process's garbage collector: short pauses over a heap of cached runs.

sim/run.py collects the young generation only every 1,000,000 new objects, so that a run being recorded is not
walked again and again while it grows. A server whose runs are recorded in a child process (app/recorder_process.py)
records nothing itself: it unpacks runs, ~240,000 new tracked objects for the lecture's dd run, most of them tuples
the collector stops tracking at its first look. With that threshold, about every fourth run unpacked set off a young
collection over a million objects, which held the GIL for 0.2-0.7 s (measured with bench/_loop_probe.py under the
lecture benchmark's load): every request and broadcast waited. Collected every SERVING_YOUNG new objects, a young
collection takes about a millisecond.

What the app holds when it starts (modules, classes, functions, compiled templates) lives as long as the process:
it is moved to the permanent generation (gc.freeze), so a full collection walks only what requests and runs made.
"""

from __future__ import annotations

import gc

SERVING_YOUNG = 10_000
SERVING_THRESHOLDS = (SERVING_YOUNG, 10, 10)  # the older generations as Python's defaults have them


def settle_for_serving() -> None:
    """For a serving process that records in a child: small young collections, and the app's own objects frozen."""
    gc.set_threshold(*SERVING_THRESHOLDS)
    gc.collect()  # what start-up left as garbage is not frozen with the rest
    gc.freeze()
