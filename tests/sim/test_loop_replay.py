"""A benchmark loop fast-forwarded (recording off: sim/user/loop_replay.py) ends exactly as the same run taken in
full (recording on, which never fast-forwards): the same output, times, event count, system calls and VM
counters; and it is what makes the lab's 32-byte buffers affordable."""

from __future__ import annotations

import pytest

from sim.run import RunSpec, record

SEEN = ("output", "exit_status", "user_ns", "sys_ns", "wall_ns", "syscalls_by_name", "traps", "faults", "vmmeter",
        "events")  # fmt: skip


def what_it_shows(run) -> dict:
    summary = run.summary()
    return {name: summary.get(name, getattr(run, name, None)) for name in SEEN}


@pytest.mark.parametrize(
    "command",
    [
        "ipc-static -B -b 32 -t 65536 1thread",
        "ipc-static -B -b 96 -t 98304 1thread",
        "ipc-dynamic -B -i local -b 64 -t 65536 1thread",
        "ipc-static -b 4096 -t 262144 1thread",
        "ipc-static -B -b 32 -t 8192 2thread",
        "ipc-static -B -b 32 -t 65536 2proc",
        "ipc-dynamic -i local -b 64 -t 65536 2thread",
        "ipc-static -B -i local -b 512 -t 262144 2proc",
    ],
)
def test_a_fast_forwarded_loop_ends_as_the_full_run_does(command):
    spec = RunSpec(command)
    full = record(spec)  # every event recorded: nothing is replayed
    assert full.unrecorded == 0
    fast = record(spec, record_budget=0)
    assert what_it_shows(fast) == what_it_shows(full)


@pytest.mark.parametrize("mode", ["1thread", "2thread", "2proc"])
def test_the_replay_takes_the_place_of_most_iterations(monkeypatch, mode):
    """Of the 2,048 iterations of a 64 KiB total in 32-byte buffers, all but the few measured are replayed (the
    lab's 16 MiB total is 524,288 of them: ~67 M steps taken in full, over a run's step budget). In 2thread and
    2proc an iteration of the receiving loop holds one of the sender's: both are replayed."""
    from sim.user import loop_replay

    replayed = []
    replay = loop_replay.SteadyLoop._replay
    monkeypatch.setattr(loop_replay.SteadyLoop, "_replay", lambda self, added, times: (replayed.append(times),
                        replay(self, added, times))[1])  # fmt: skip
    fast = record(RunSpec(f"ipc-static -B -b 32 -t 65536 {mode}"), record_budget=0)
    assert fast.syscalls_by_name["read"] == 2048 and fast.syscalls_by_name["write"] == 2048 + 1  # + the result
    assert len(replayed) == 1 and 2040 <= replayed[0] < 2048
