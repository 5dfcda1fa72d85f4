"""Replay keeps a kernel stack and a trapframe per thread, so a context switch shows the right ones."""

from __future__ import annotations

from sim.replay import Replay
from sim.run import RunSpec, record


def test_each_thread_gets_back_its_own_kernel_stack_after_a_switch():
    run = record(RunSpec("ipc-static -i pipe -b 65536 -t 262144 2proc"))
    replay = Replay(run)
    switches = [
        step for step, event in enumerate(run.events) if step and (event.kind, event.name) == ("proc", "cpu_switch")
    ]
    assert len(switches) >= 4, "a two-process pipe transfer switches threads"
    left_with: dict[int, tuple[str, ...]] = {}  # tid -> its kernel stack when it last left the CPU
    for step in switches:
        outgoing, incoming = replay.state_at(step - 1), replay.state_at(step)
        assert incoming.tid != outgoing.tid
        left_with[outgoing.tid] = outgoing.stack
        if incoming.tid in left_with:
            assert incoming.stack == left_with[incoming.tid]
    assert len(left_with) >= 2


def test_stacks_rebuilt_from_checkpoints_match_stepping_through_switches(monkeypatch):
    import sim.replay as replay_module

    run = record(RunSpec("ipc-static -i pipe -b 65536 -t 262144 2proc"))
    walked = Replay(run)
    monkeypatch.setattr(replay_module, "CHECKPOINT_EVERY", 97)
    jumped = Replay(run)
    for step in range(0, walked.last_step + 1, 331):
        a, b = walked.state_at(step), jumped.state_at(step)
        assert (a.tid, a.stack, a.trapframe) == (b.tid, b.stack, b.trapframe)
