"""Recording is only bookkeeping: a run recorded in full, not at all, or up to a budget takes the same simulated
time, counts the same system calls, faults and events, prints the same output and leaves the same page tables.

The fast-forward paths that run once recording stops (replayed demand-zero faults in user mode and in copyout,
memset over whole pages in one loop, walks without per-level events) must be invisible in everything but the
recorded steps; so must the event log's own shortcuts (frame events made inline by @kfunc).
"""

from __future__ import annotations

import inspect

import pytest

from sim.core.kfunc import gate, is_kfunc, kfunc
from sim.core.pcpu import pcpu
from sim.narrative import detail as event_detail
from sim.run import DEFAULT_RECORD_BUDGET, RunSpec, record
from tests.sim.vm_fixture import VmBench

COMMANDS = [
    "getpid 200",
    "dd if=/dev/zero of=/dev/null bs=4m count=2",  # junk-filled by malloc: user-mode faults in memset
    "MALLOC_CONF=junk:false dd if=/dev/zero of=/dev/null bs=4m count=1",  # the faults move into read()'s copyout
    "ipc-static -i pipe -b 65536 -t 524288 2proc",  # two processes, fork, pipes, the scheduler
    "ipc-static -i local -b 4096 -t 131072 2thread",  # threads and sockets
]


def _what_time_and_counters_show(command: str, record_budget: int) -> tuple:
    run = record(RunSpec(command), record_budget=record_budget)
    summary = run.summary()
    del summary["events_recorded"]
    tables = {pid: (pt.cr3, pt.tables) for pid, pt in run.page_tables.items()}
    return summary, run.output, run.user_ns, run.sys_ns, run.wall_ns, run.exit_status, run.threads, tables


@pytest.mark.parametrize("command", COMMANDS)
def test_recorded_unrecorded_and_partly_recorded_runs_agree_on_time_counters_and_exit_status(command):
    whole = _what_time_and_counters_show(command, 10**8)
    assert whole[5] == 0, "the run succeeds"
    assert _what_time_and_counters_show(command, 0) == whole
    # Recording stops part-way: the rest of the run is fast-forwarded from wherever that happens to be.
    for budget in (3_000, 25_000):
        assert _what_time_and_counters_show(command, budget) == whole, budget


def test_a_fast_forwarded_memset_leaves_the_machine_as_the_recorded_one_does():
    """Whole pages of a big memset go through one loop when nothing records them: same TLB, memory, VM state."""

    def workload(record_budget: int) -> VmBench:
        bench = VmBench(record=record_budget)
        va = bench.mmap_anon(6 << 20, optimal=True)
        from sim.user import umem

        umem.memset(va + 100, 0xA5, (5 << 20) - 200)  # ragged ends: the first and last pages take the general path
        umem.memset(va + (5 << 20), 1, 16 * 4096)  # fresh pages in a region that is not promoted ...
        umem.memset(va + (5 << 20), 2, 16 * 4096)  # ... and again: TLB hits
        umem.memset(va, 0, 6 << 20)  # present pages (superpages, walks of evicted ones) and fresh ones
        return bench

    slow, fast = workload(10**7), workload(0)
    assert slow.events and not fast.events
    assert fast.machine.log.total == slow.machine.log.total
    for name in ("now", "user_ns", "sys_ns"):
        assert getattr(fast.machine, name) == getattr(slow.machine, name), name
    assert fast.vm.cnt.summary() == slow.vm.cnt.summary()
    assert fast.machine.physmem.frames == slow.machine.physmem.frames
    mmu_fast, mmu_slow = fast.machine.mmu, slow.machine.mmu
    assert (mmu_fast.hits, mmu_fast.misses, mmu_fast.walks) == (mmu_slow.hits, mmu_slow.misses, mmu_slow.walks)
    assert list(mmu_fast.tlb.items()) == list(mmu_slow.tlb.items())
    assert fast.td.td_frame.regs == slow.td.td_frame.regs
    assert fast.cpu.regs == slow.cpu.regs
    pages = {pfn: (m.object is not None, m.pindex, m.queue, m.dirty) for pfn, m in fast.vm.page_array.items()}
    assert pages == {pfn: (m.object is not None, m.pindex, m.queue, m.dirty) for pfn, m in slow.vm.page_array.items()}
    assert _caches_state(fast.machine) == _caches_state(slow.machine)
    assert (fast.machine.host.ns, fast.machine.host.backed) == (slow.machine.host.ns, slow.machine.host.backed)


def _caches_state(machine) -> list:
    """What each cache of the memory hierarchy holds, least recently used first, with the bytes of each block."""
    return [(cache[0].name, list(cache[1].items()), cache[2]) for cache in machine.caches._lru]


def test_the_default_record_budget_keeps_every_step_of_the_lectures_dd():
    run = record(RunSpec("dd if=/dev/zero of=/dev/null bs=10m count=1"))
    assert run.unrecorded == 0 and len(run.events) < DEFAULT_RECORD_BUDGET
    assert run.events[-1].kind == "end"


# -- @kfunc ---------------------------------------------------------------------------------------------------


@kfunc
def _modelled(name, fn, log=3, *, str="s", type=None):  # noqa: A002 - names the wrapper itself must not shadow
    pcpu.machine.charge(5)
    return (name, fn, log, str == "s", type)


@kfunc
def _counts(*values, **named):
    return len(values) + len(named)


def test_a_modelled_function_keeps_its_signature_and_records_a_frame_pair_named_after_it():
    bench = VmBench()
    before = len(bench.events)
    assert _modelled(1, 2) == (1, 2, 3, True, None)
    assert _modelled(fn=2, name=1, log=4, str="t", type=5) == (1, 2, 4, False, 5)
    assert _counts(1, 2, x=3) == 3
    frames = [(e.kind, e.name, event_detail(e)) for e in bench.events[before:]]
    assert frames[:2] == [("enter", "_modelled", ""), ("exit", "_modelled", "(1, 2, 3, True, None)")]
    assert frames[-2:] == [("enter", "_counts", ""), ("exit", "_counts", "3")]
    assert [e.depth for e in bench.events[before : before + 2]] == [1, 1]
    assert str(inspect.signature(_modelled)) == "(name, fn, log=3, *, str='s', type=None)"
    assert is_kfunc(_modelled) and is_kfunc(_counts) and not is_kfunc(gate) and not is_kfunc(None)


@kfunc
def _worded():
    return "text"


def test_a_modelled_function_returning_what_the_log_has_no_facts_for_is_refused():
    VmBench()
    with pytest.raises(TypeError, match=r"_worded\(\) returned a str"):
        _worded()


def test_frame_events_past_the_budget_are_counted_not_recorded():
    booted = len(VmBench().events)  # what setting the machine up records
    log = VmBench(record=booted + 3).machine.log
    for _ in range(5):
        _counts()
    assert [(e.kind, e.name) for e in log.events[booted:]] == [("enter", "_counts"), ("exit", "_counts")] * 1 + [
        ("enter", "_counts")
    ]
    assert log.unrecorded == 7 and log.total == booted + 10  # ten frame events in all
    assert log.depth == 0
