"""Two runs in one process share nothing: recorded at the same time in two OS threads, each gives exactly the log
and summary it gives alone (the machine, kernel and current thread belong to the run, not to a module)."""

from __future__ import annotations

import threading

from sim.kern.kernel import KernelConfig
from sim.run import RunSpec, record

# Different programs, so a run that read the other's machine, kernel or thread would record something else: fork
# and threads switch greenlets, eintr takes a signal, dd faults pages in; each is long enough (many thread-switch
# intervals of 5 ms) for the two threads' runs to interleave.
SPECS = {
    "left": [RunSpec("fork"), RunSpec("eintr"), RunSpec("dd if=/dev/zero of=/dev/null bs=1m count=2")],
    "right": [RunSpec("thread"), RunSpec("getpid 300", config=KernelConfig(audit=True)), RunSpec("setcontext")],
}


def _recorded(specs: list[RunSpec]) -> list[tuple[list, dict, dict]]:
    return [(run.events, run.summary(), run.threads) for run in map(record, specs)]


def test_runs_recorded_at_once_in_two_threads_equal_runs_recorded_one_after_the_other():
    alone = {side: _recorded(specs) for side, specs in SPECS.items()}

    together: dict[str, list] = {}
    start = threading.Barrier(len(SPECS))
    running = threading.Event()  # set once both sides are recording at the same time

    def side(name: str) -> None:
        start.wait()
        running.set()
        together[name] = _recorded(SPECS[name])

    threads = [threading.Thread(target=side, args=(name,)) for name in SPECS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert running.is_set() and together.keys() == alone.keys()
    for name in SPECS:
        for spec, got, expected in zip(SPECS[name], together[name], alone[name], strict=True):
            assert got[1] == expected[1], spec.command  # the summary: times, counts, exit status
            assert got[2] == expected[2], spec.command
            assert got[0] == expected[0], spec.command  # every event, with its time, data and deltas


def test_a_run_leaves_no_machine_on_its_os_thread():
    from sim.core.pcpu import curmachine, pcpu

    record(RunSpec("getpid 1"))
    assert (pcpu.machine, pcpu.kernel, pcpu.curthread, curmachine()) == (None, None, None, None)
