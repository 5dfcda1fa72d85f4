"""The probe effect: every firing of an enabled probe costs simulated time, so a traced run is slower than the same
run untraced by exactly what its firings cost (sim/kern/dtrace_probe.py), and a run with nothing armed is unchanged."""

from __future__ import annotations

import pytest

from sim.kern.dtrace_probe import arm_probes, firing_ns
from sim.kern.kernel import Kernel, KernelConfig
from sim.machine.machine import Machine
from sim.machine.profiles import PROFILES
from sim.run import RunSpec, record
from sim.trace.dtrace import compile_script, required_config, run_dtrace
from sim.trace.lecture_scripts import LECTURE_TRAPS

DD = "dd if=/dev/zero of=/dev/null bs=10m count=1 status=none"
LECTURE = firing_ns(PROFILES["lecture"])
PERIOD_997 = 1_000_000_000 // 997


@pytest.fixture(scope="module")
def plain():
    return record(RunSpec(DD))


def count(result, *key) -> int:
    """The value of the program's bare aggregation `@` at `key` (0 if it has none)."""
    return result.aggregations["_"].data.get(key, 0)


def frame_time(run, function: str) -> int:
    """The time spent inside `function`'s frames (entry to return, the functions it calls included)."""
    total, opened = 0, []
    for event in run.events:
        t, kind, name = event.t_ns, event.kind, event.name
        if name == function and kind == "enter":
            opened.append(t)
        elif name == function and kind == "exit":
            total += t - opened.pop()
    return total


def test_an_fbt_probe_costs_a_breakpoint_trap_and_dtrace_probe_per_firing(plain):
    result = run_dtrace("fbt::vm_fault:entry { @ = count(); }", DD, quiet=True)
    firings = count(result)
    assert firings > 1000  # one per page fault: dd's 10 MiB buffer alone is 2,560 pages
    assert result.run.probe_firings == {"syscall": 0, "fbt": firings, "profile": 0, "sdt": 0}
    costs = PROFILES["lecture"]
    per_firing = costs.trap_entry_ns + 2 * costs.trapframe_ns + costs.iretq_ns + costs.fbt_probe_ns
    assert LECTURE["fbt"] == per_firing
    assert result.run.sys_ns - plain.sys_ns == firings * per_firing
    assert result.run.user_ns == plain.user_ns
    assert result.run.wall_ns - plain.wall_ns == firings * per_firing


def test_the_firing_is_billed_to_the_probed_function_itself(plain):
    result = run_dtrace("fbt::vm_fault:entry, fbt::vm_fault:return { @[probename] = count(); }", DD, quiet=True)
    entries, returns = count(result, "entry"), count(result, "return")
    assert entries == returns > 0
    grown = frame_time(result.run, "vm_fault") - frame_time(plain, "vm_fault")
    assert grown == (entries + returns) * LECTURE["fbt"]  # the int3s sit at vm_fault's first instruction and ret
    assert frame_time(result.run, "pmap_zero_page") == frame_time(plain, "pmap_zero_page")  # not probed


def test_a_predicate_does_not_spare_the_cost(plain):
    unpredicated = run_dtrace("fbt::vm_fault:entry { }", DD, quiet=True).run
    predicated = run_dtrace('fbt::vm_fault:entry /execname == "nothing"/ { @ = count(); }', DD, quiet=True)
    assert not predicated.aggregations["_"].data  # the predicate never held
    assert predicated.run.sys_ns == unpredicated.sys_ns > plain.sys_ns  # every firing was paid all the same


def test_profile_ticks_cost_an_interrupt_each_and_agree_with_the_d_samples(plain):
    result = run_dtrace("profile-997 { @[execname] = count(); }", DD, quiet=True)
    run = result.run
    ticks = run.probe_firings["profile"]
    samples = sum(result.aggregations["_"].data.values())
    end_ns = run.events[-1].t_ns
    # one firing per period boundary in the traced run's time: the kernel's charges and the D provider's samples
    assert ticks == samples == end_ns // PERIOD_997
    assert end_ns - plain.events[-1].t_ns == ticks * LECTURE["profile"]
    # a tick is paid by whatever runs when it is taken: dd's system time grows by the ticks dd was sampled in
    assert run.sys_ns - plain.sys_ns == count(result, "dd") * LECTURE["profile"]
    assert run.user_ns == plain.user_ns


def test_each_cyclic_fires_on_its_own_period():
    both = run_dtrace("profile-997 { @[probename] = count(); } tick-100 { @[probename] = count(); }", DD, quiet=True)
    end_ns = both.run.events[-1].t_ns
    assert count(both, "profile-997") == end_ns // PERIOD_997
    assert count(both, "tick-100") == end_ns // 10_000_000
    assert both.run.probe_firings["profile"] == count(both, "profile-997") + count(both, "tick-100")


def test_syscall_probes_keep_their_probe_effect_and_are_counted(plain):
    result = run_dtrace("syscall:::entry { @ = count(); }", DD, quiet=True)
    run = result.run
    systrace = sum(1 for e in run.events if e.kind == "enter" and e.name == "systrace_probe_func")
    assert run.probe_firings == {"syscall": systrace, "fbt": 0, "profile": 0, "sdt": 0}
    assert systrace == count(result)  # only the entry probes are enabled, so only they fire and cost
    assert run.sys_ns - plain.sys_ns == systrace * PROFILES["lecture"].systrace_probe_ns
    assert not run.spec.config.dtrace_fbt_entry and not run.spec.config.dtrace_profile_ns  # nothing else armed
    assert "read" in run.spec.config.dtrace_syscall_entry and not run.spec.config.dtrace_syscall_return


def test_a_syscall_probe_costs_only_for_the_calls_it_names(plain):
    result = run_dtrace("syscall::read:entry { @ = count(); }", DD, quiet=True)
    reads = plain.syscalls_by_name["read"]
    assert result.run.probe_firings["syscall"] == reads == count(result)  # FreeBSD tests sy_entry per call
    assert result.run.sys_ns - plain.sys_ns == reads * PROFILES["lecture"].systrace_probe_ns
    skipped = [e for e in result.run.events if e.kind == "skip" and e.name == "systrace_probe_func"]
    assert skipped and {e.data.probe for e in skipped} == {"entry", "return"}  # every other call tests its flag


def test_a_run_with_nothing_armed_is_the_untraced_run(plain):
    result = run_dtrace("dtrace:::BEGIN { x = 1; } dtrace:::END { @ = count(); }", DD, quiet=True)
    assert result.run.spec.config == KernelConfig()
    assert result.run.run_id == plain.run_id
    assert result.run.events == plain.events
    assert result.run.probe_firings == {} and "probe_firings" not in plain.summary()
    assert "dtrace_fbt" not in RunSpec(DD).canonical()  # the new fields leave ordinary runs' ids as they were


def test_nothing_armed_leaves_the_probe_hook_unset():
    machine = Machine(PROFILES["lecture"], 10, 100)
    assert arm_probes(machine, Kernel(KernelConfig()), KernelConfig()) is None
    assert machine.log.probe_hook is None


def test_armed_probes_name_the_run():
    config = KernelConfig(dtrace_fbt_entry=("vm_fault",))
    assert RunSpec(DD, config=config).run_id != RunSpec(DD).run_id
    assert '"dtrace_fbt_entry": ["vm_fault"]' in RunSpec(DD, config=config).canonical()
    hash(config)  # a config is a cache key


def test_required_config_arms_what_the_program_enables():
    compiled = compile_script(
        "fbt::vm_fault*:entry, fbt::trap:return, profile-997, tick-1ms { } syscall::read:entry { }"
    )
    config = required_config(compiled, KernelConfig())
    assert config.dtrace_syscall_entry == ("read",) and config.dtrace_syscall_return == ()  # sy_entry of read only
    assert "vm_fault" in config.dtrace_fbt_entry and list(config.dtrace_fbt_entry) == sorted(config.dtrace_fbt_entry)
    assert all(name.startswith("vm_fault") for name in config.dtrace_fbt_entry)
    assert config.dtrace_fbt_return == ("trap",)
    assert config.dtrace_profile_ns == (1_000_000, PERIOD_997)
    assert required_config(compile_script("BEGIN { exit(0); }"), KernelConfig()) == KernelConfig()


def test_past_the_record_budget_every_fault_still_pays_its_probes():
    # With recording off, fast-forward replays demand-zero faults without calling the kernel's functions; with
    # fbt probes armed it must not, or the probes on those functions would not fire.
    config = KernelConfig(dtrace_fbt_entry=("vm_fault",))
    recorded = record(RunSpec(DD, config=config))
    fast = record(RunSpec(DD, config=config), record_budget=1_000)
    assert fast.unrecorded > 0
    assert fast.probe_firings == recorded.probe_firings
    assert (fast.sys_ns, fast.user_ns, fast.wall_ns) == (recorded.sys_ns, recorded.user_ns, recorded.wall_ns)


def test_the_modern_profile_pays_its_own_costs():
    plain = record(RunSpec(DD, profile="modern"))
    result = run_dtrace("fbt::vm_fault:entry { @ = count(); }", DD, profile="modern", quiet=True)
    assert result.run.sys_ns - plain.sys_ns == count(result) * firing_ns(PROFILES["modern"])["fbt"]


def test_the_lectures_trap_script_pays_for_its_fbt_and_syscall_probes(plain):
    result = run_dtrace(LECTURE_TRAPS, DD, quiet=True)
    firings = result.run.probe_firings
    traps = result.aggregations["traps"].data[()]
    assert firings["fbt"] == 2 * result.run.vm["vmmeter"]["v_trap"]
    charged = firings["fbt"] * LECTURE["fbt"] + firings["syscall"] * LECTURE["syscall"]
    assert result.run.sys_ns - plain.sys_ns == charged
    # trap() runs longer by its two firings; the script's trap time, measured between the clock reads of its entry
    # and return firings, holds one firing's cost per trap: the end of the entry's and the start of the return's
    assert frame_time(result.run, "trap") == frame_time(plain, "trap") + firings["fbt"] * LECTURE["fbt"]
    assert traps == result.run.vm["vmmeter"]["v_trap"]  # this dd takes no trap inside a system call
    assert result.aggregations["trap_time"].data[()] == frame_time(plain, "trap") + traps * LECTURE["fbt"]


def test_vtimestamp_leaves_out_what_the_fbt_firings_cost():
    script = (
        "fbt::vm_fault:entry { self->t = timestamp; self->v = vtimestamp; }"
        " fbt::vm_fault:return /self->t/ { @wall = sum(timestamp - self->t); @virtual = sum(vtimestamp - self->v);"
        " @calls = count(); self->t = 0; }"
    )
    result = run_dtrace(script, DD, quiet=True)
    wall, virtual, calls = (result.aggregations[name].data[()] for name in ("wall", "virtual", "calls"))
    assert calls > 1000
    # dtrace_probe reads the clock partway through a firing: each interval holds the end of its entry firing and
    # the start of its return firing, one firing's cost in all, which vtimestamp leaves out
    assert wall - virtual == calls * LECTURE["fbt"]


def test_sdt_probes_cost_a_firing_at_their_kernel_sites(plain):
    zfod = run_dtrace("vminfo:::zfod { @ = count(); }", DD, quiet=True)
    fills = plain.vm["faults"]["zero_fill"]
    assert count(zfod) == fills and zfod.run.probe_firings["sdt"] == fills  # the D side and the kernel agree
    assert zfod.run.sys_ns - plain.sys_ns == fills * PROFILES["lecture"].systrace_probe_ns  # a direct call each
    assert zfod.run.spec.config.dtrace_sdt == ("vminfo:zfod",)
    forks = run_dtrace("proc:::create, proc:::exit { @[probename] = count(); }", "fork", quiet=True)
    assert count(forks, "create") == 1 and count(forks, "exit") == 2  # one fork; the child and the parent exit
    assert forks.run.probe_firings["sdt"] == 3
