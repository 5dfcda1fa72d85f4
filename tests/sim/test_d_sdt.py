"""The sched, proc and io providers: each probe fires where FreeBSD's SDT_PROBE sits, as often as the run's own
events say it happened, with args[] typed as its SDT_PROBE_DEFINE declares them."""

from __future__ import annotations

from sim.core.events import ContextSwitch, DiskRequest, Fork, SignalDiscarded, SignalPosted, Wakeup
from sim.trace.dtrace import run_dtrace

IPC = "ipc-static -q -t 1024 -b 1024 2proc"


def traced(program: str, command: str):
    result = run_dtrace(program, command, quiet=True)
    assert "error" not in result.stderr, result.stderr
    return result


def events_of(result, payload) -> list:
    return [e for e in result.run.events if type(e.data) is payload]


def test_off_cpu_names_the_thread_taking_the_cpu_and_on_cpu_runs_in_it():
    result = traced(
        'sched:::off-cpu { printf("off %d %d %d\\n", tid, args[0]->td_tid, args[1]->p_pid); }\n'
        'sched:::on-cpu { printf("on %d\\n", tid); }',
        IPC,
    )
    switches = events_of(result, ContextSwitch)
    offs = [line.split()[1:] for line in result.output.splitlines() if line.startswith("off")]
    ons = [line.split()[1] for line in result.output.splitlines() if line.startswith("on")]
    voluntary = [e for e in switches if e.name == "cpu_switch"]
    assert len(voluntary) > 2
    assert [(int(old), int(new)) for old, new, _ in offs] == [(e.data.old_tid, e.data.new_tid) for e in voluntary]
    assert [int(tid) for tid in ons] == [e.data.new_tid for e in switches]  # cpu_throw's too


def test_sleep_fires_in_sleepq_switch_and_wakeup_names_the_sleeper():
    result = traced(
        "sched:::sleep { @sleeps[stack(1)] = count(); }\n"
        'sched:::wakeup { printf("wakeup %d %s\\n", args[0]->td_tid, stringof(args[1]->p_comm)); }',
        IPC,
    )
    wakeups = [line.split()[1:] for line in result.output.splitlines() if line.startswith("wakeup")]
    assert [int(tid) for tid, _ in wakeups] == [e.data.tid for e in events_of(result, Wakeup)]
    assert {comm for _, comm in wakeups} == {"ipc-static"}
    assert "kernel`sleepq_switch+0x" in result.output


def test_enqueue_and_dequeue_keep_the_run_queue_balanced_and_never_queue_the_idle_thread():
    result = traced(
        "sched:::enqueue { @q[stringof(args[1]->p_comm)] = sum(1); }\n"
        "sched:::dequeue { @q[stringof(args[1]->p_comm)] = sum(-1); }\n"
        "sched:::enqueue, sched:::dequeue { @n[probename] = count(); }",
        IPC,
    )
    assert "idle" not in result.output
    counts = dict(result.aggregations["n"].data)
    assert counts[("enqueue",)] >= len(events_of(result, Wakeup)) + len(events_of(result, Fork))
    assert abs(counts[("enqueue",)] - counts[("dequeue",)]) <= 1  # at most one thread left queued at the end


def test_proc_create_gives_the_child_the_parent_and_forks_flags():
    result = traced('proc:::create { printf("%d %d %x", args[0]->p_pid, args[1]->p_pid, args[2]); }', "fork")
    (fork,) = events_of(result, Fork)
    rfproc, rffdg = 0x10, 0x4  # sys/unistd.h: fork() is fork1(RFFDG | RFPROC)
    assert result.output.strip() == f"{fork.data.child} {fork.data.parent} {rfproc | rffdg:x}"


def test_exec_fires_before_the_new_program_and_exec_success_after():
    result = traced('proc:::exec, proc:::exec-success { printf("%s %s %s\\n", probename, execname, args[0]); }',
                    "forkexec")  # fmt: skip
    # dtrace -c starts the command with the probes enabled: its own execve's exec-success comes first
    assert result.output.splitlines()[:3] == [
        "exec-success forkexec /bin/forkexec",
        "exec forkexec /bin/getpid",
        "exec-success getpid /bin/getpid",
    ]


def test_signal_send_and_discard_name_the_target_and_the_signal():
    result = traced('proc:::signal-send, proc:::signal-discard { printf("%s %d %d\\n", probename, '
                    "args[1]->p_pid, args[2]); }", "eintr")  # fmt: skip
    sent = [e.data for e in result.run.events if type(e.data) in (SignalPosted, SignalDiscarded)]
    sends = [line for line in result.output.splitlines() if line.startswith("signal-send")]
    assert sends == [f"signal-send {s.pid} {s.sig}" for s in sent]
    discarded = [s for s in sent if type(s) is SignalDiscarded]
    assert [line for line in result.output.splitlines() if line.startswith("signal-discard")] == [
        f"signal-discard {s.pid} {s.sig}" for s in discarded
    ]


def test_io_start_and_done_bracket_each_disk_transfer():
    result = traced('io:::start, io:::done { printf("%s %d %s\\n", probename, args[0]->bio_cmd, '
                    "stringof(args[1]->device_name)); }", "write-file -s")  # fmt: skip
    requests = events_of(result, DiskRequest)
    assert requests
    lines = result.output.strip().splitlines()
    assert lines == [f"{name} {r.data.cmd} ada" for r in requests for name in ("start", "done")]


def test_enabled_sched_probes_cost_their_probe_effect():
    plain = run_dtrace("BEGIN { exit(0); }", IPC, quiet=True).run.wall_ns
    probed = traced("sched:::on-cpu { @ = count(); }", IPC)
    assert probed.run.wall_ns > plain


def test_a_local_socket_write_and_read_run_the_protocols_generic_functions():
    result = traced(
        'fbt::sosend_generic:entry, fbt::soreceive_generic:entry { printf("%s", probefunc); stack(1); }',
        "ipc-static -q -i local -t 65536 -b 8192 2proc",
    )
    text = result.output
    writes = 65536 // 8192  # one sosend (so one sosend_generic) a write
    assert text.count("sosend_generic") == writes and text.count("kernel`sosend+0x") == writes
    assert text.count("soreceive_generic") >= writes and "kernel`soreceive+0x" in text
