"""Each new scenario's lecture claim, tested over its own recorded log (sim/scenarios/lecture_slides.py), and the
junk:false scenario's words against its run. A claim is read from events (who did what, in which order, in which
mode), never from figures of the cost model."""

from __future__ import annotations

import pytest

from sim.kern.errno import ECAPMODE, ENOSYS, EPERM
from sim.kern.kern_sig import SIGSYS
from sim.kern.kernel import KernelConfig
from sim.kern.sysent import load_sysent
from sim.kern.vfs_bio import BIO_READ
from sim.kern.vfs_subr import FS_BSIZE
from sim.machine.physmem import PAGE_SIZE
from sim.run import record
from sim.scenarios.registry import lookup
from sim.user.lecture_mapped import MMAP_PATH
from tests.steps import scenario_run

PS = 0x80  # PG_PS: the page-directory entry maps 2 MiB


def steps(run, kind, name=None, where=None, start=0, end=None):
    events = run.events
    return [
        i
        for i in range(start, len(events) if end is None else end)
        if events[i].kind == kind
        and (name is None or events[i].name == name)
        and (where is None or where(events[i].data))
    ]


def first(run, kind, name=None, where=None, start=0, end=None):
    found = steps(run, kind, name, where, start, end)
    assert found, f"no {kind} {name} event"
    return found[0]


def tids(run):
    """The thread on the CPU at each step, from the log's ("thread", old, new) deltas."""
    current, out = None, []
    for event in run.events:
        for delta in event.deltas:
            if delta[0] == "thread":
                current = delta[2]
        out.append(current)
    return out


def cpl_at(run, step):
    cpl = run.initial_registers["cpl"]
    for event in run.events[: step + 1]:
        for delta in event.deltas:
            if delta[:2] == ("reg", "cpl"):
                cpl = delta[3]
    return cpl


# ---------------------------------------------------------------- system calls


def test_the_five_steps_of_read_happen_in_order_inside_one_trap():
    run = scenario_run("syscall-five-steps")
    read = first(run, "syscall", "read")
    buf, nbyte = run.events[read].data.values[1:]
    trap = steps(run, "insn", "syscall", end=read)[-1]
    fetch = first(run, "hook", "sv_fetch_syscall_args", start=trap)
    copy = first(run, "mem", "copyout", start=read)
    back = first(run, "insn", "sysretq", start=read)
    assert trap < fetch < read < copy < back
    assert run.events[fetch].data.name == "read" and run.events[fetch].data.narg == 3
    assert run.events[copy].data.va == buf and run.events[copy].data.n == nbyte
    assert cpl_at(run, trap - 1) == 3 and cpl_at(run, copy) == 0 and cpl_at(run, back) == 3


def test_read_returns_only_after_the_data_is_in_the_buffer():
    run = scenario_run("read-synchronous")
    read = first(run, "syscall", "read")
    copy = first(run, "mem", "copyout", start=read)
    result = first(run, "sysret", start=read)
    assert copy < result < first(run, "insn", "sysretq", start=read)
    assert run.events[result].data.retval == run.events[copy].data.n


def test_mmap_reads_nothing_and_each_first_touch_is_a_hard_fault_reading_the_disk():
    run = scenario_run("mmap-file")
    mmap = first(run, "syscall", "mmap")
    back = first(run, "insn", "sysretq", start=mmap)
    assert not steps(run, "proc", "sleep", start=mmap, end=back), "mmap() itself waits for no disk"
    hard = steps(run, "fault", "hard")
    assert len(hard) == 3
    for fault in hard:
        reads = steps(run, "proc", "sleep", where=lambda w: getattr(w, "path", None) == MMAP_PATH, end=fault)
        assert reads and reads[-1] > steps(run, "trap", end=fault)[-1], "the disk read is inside this fault"
    assert "b'ABC'" in run.output


def test_read_and_mmap_share_the_file_s_pages_and_a_write_shows_through_the_mapping():
    """The merged VM/buffer cache: the pages read()'s buffer is built on are the vnode's vm_object's, so the load's
    fault finds one resident (soft, no disk I/O) and maps read()'s own pages; a write() lands in the mapped page."""
    run = scenario_run("merged-buffer-cache")
    mmap, read = first(run, "syscall", "mmap"), first(run, "syscall", "read")
    read_back = first(run, "insn", "sysretq", start=read)
    vnode_object = run.events[first(run, "exit", "vnode_create_vobject", start=read)].data.id
    grabbed = [run.events[i].data.phys_addr for i in steps(run, "exit", "vm_page_grab", start=read, end=read_back)]
    assert len(grabbed) == FS_BSIZE // PAGE_SIZE, "getblk built the 32 KiB buffer on the file's own pages"
    disk_reads = steps(run, "mem", "g_io_request", where=lambda r: r.cmd == BIO_READ and r.path == MMAP_PATH)
    assert disk_reads and all(read < i < read_back for i in disk_reads), "only read() reads the disk"
    assert not steps(run, "proc", "sleep", where=lambda w: getattr(w, "path", None)), "no pager I/O at all"
    faults = [run.events[i].data for i in steps(run, "fault", start=read_back)]
    on_file = [f for f in faults if f.object == vnode_object]
    assert [f.how for f in on_file] == ["soft"], "one soft fault; vm_fault_prefault maps the other pages"
    assert on_file[0].pa == grabbed[0]
    loads = [run.events[i].data for i in steps(run, "user", "load", start=read_back)]
    assert {load.frame for load in loads} <= set(grabbed), "every load through the mapping reads read()'s pages"
    write = first(run, "syscall", "write", where=lambda call: call.values[2] == 1)
    after = steps(run, "user", "load", start=write)
    assert after and not steps(run, "trap", start=write, end=after[0]), "no fault: the page is mapped already"
    assert run.events[after[0]].data.frame == grabbed[1]
    assert mmap < read and "b'ABC'" in run.output and "mapped page 1 now: b'b'" in run.output


def test_reusing_an_aio_buffer_too_early_changes_what_is_written():
    run = scenario_run("aio-reuse-too-early")
    returned = first(run, "insn", "sysretq", start=first(run, "syscall", "aio_write"))
    overwrite = first(run, "user", "memset", where=lambda a: a.byte == ord("B"))
    collected = first(run, "syscall", "aio_return")
    copies = steps(run, "mem", "copyin", where=lambda c: c.n == PAGE_SIZE, start=returned - 200, end=collected)
    assert returned < overwrite < collected
    assert any(c < overwrite for c in copies) and any(c > overwrite for c in copies), "one block each side"
    who = tids(run)
    assert {who[c] for c in copies} != {who[overwrite]}, "the AIO daemon copies, not the program"
    assert "32768 bytes 'A', 32768 bytes 'B'" in run.output


def test_the_libc_stub_loads_the_number_traps_and_tests_the_carry():
    run = scenario_run("libc-stub")
    call = first(run, "user", "call getpid")
    names = [run.events[i].name for i in range(call, first(run, "user", "ret", start=call) + 1)]
    stub = [name for name in names if not name.startswith(("enter", "exit"))]
    assert names[:3] == ["call getpid", "mov $SYS_getpid,%eax", "movq %rcx,%r10"]
    assert names[3] == "syscall" and stub[-2:] == ["jb cerror", "ret"]
    number = run.events[call + 1].data.code
    assert load_sysent()[number].name == "getpid"
    assert not run.events[first(run, "user", "jb cerror")].data.taken


def test_a_syscall_enters_through_lstar_and_a_page_fault_through_the_idt():
    run = scenario_run("trap-vector")
    syscall = first(run, "insn", "syscall")
    assert (run.events[syscall + 1].kind, run.events[syscall + 1].name) == ("enter", "Xfast_syscall")
    fault = first(run, "trap", where=lambda t: t.trapno == 12)
    assert (run.events[fault + 1].kind, run.events[fault + 1].name) == ("enter", "Xpage")
    assert first(run, "enter", "amd64_syscall") < fault < first(run, "enter", "trap", start=fault)


def test_the_stub_number_is_syscalls_master_and_an_empty_number_reaches_nosys():
    run = scenario_run("syscalls-master")
    table = load_sysent()
    fetched = [run.events[i].data for i in steps(run, "hook", "sv_fetch_syscall_args")]
    known = [f for f in fetched if f.name != "nosys"]
    assert known and all(table[f.code].name == f.name for f in known)
    unknown = [f for f in fetched if f.name == "nosys"]
    assert [f.code for f in unknown] == [999] and 999 not in table
    assert steps(run, "signal", "SIGSYS")
    assert run.events[first(run, "user", "cerror")].data.errno == ENOSYS


def test_an_unknown_syscall_with_sigsys_at_its_default_kills_the_process():
    run = scenario_run("nosys-sigsys")
    assert run.events[first(run, "proc", "exit")].data.signal == SIGSYS
    assert not steps(run, "user", "cerror"), "the stub never sees ENOSYS"


@pytest.mark.parametrize(
    ("slug", "functions"),
    [
        ("hooks-ktrace", ("ktrsyscall", "ktrsysret", "ktruserret")),
        ("hooks-ptrace", ("ptracestop",)),
        ("hooks-dtrace", ("systrace_probe_func",)),
        ("hooks-audit", ("audit_syscall_enter", "audit_syscall_exit")),
    ],
)
def test_a_switched_on_hook_runs_where_it_was_a_skipped_test_and_costs_time(slug, functions):
    on, off = scenario_run(slug), scenario_run("getpid")

    def getpid_ns(run):
        dispatched = first(run, "syscall", "getpid")
        return (
            run.events[first(run, "insn", "sysretq", start=dispatched)].t_ns
            - run.events[steps(run, "insn", "syscall", end=dispatched)[-1]].t_ns
        )

    for function in functions:
        assert steps(on, "enter", function) and not steps(off, "enter", function)
    assert getpid_ns(on) > getpid_ns(off)


def test_capability_mode_refuses_a_lookup_from_at_fdcwd_and_the_thread_sees_it_at_its_next_call():
    run = scenario_run("capability-mode")
    entered = first(run, "proc", "cap_enter")
    next_call = first(run, "insn", "syscall", start=entered)
    assert first(run, "enter", "thread_cow_update") > next_call  # FreeBSD 11's name for cred_update_thread
    assert run.events[first(run, "skip", "IN_CAPABILITY_MODE", start=next_call)].data.in_capability_mode
    assert run.events[first(run, "exit", "sys_openat")].data == ECAPMODE
    assert run.events[first(run, "user", "cerror")].data.errno == ECAPMODE
    assert "getpid() returned 1000" in run.output


def test_cred_update_thread_runs_once_after_the_credential_changes():
    """FreeBSD 11 calls it thread_cow_update (10.x and the lecture's slide: cred_update_thread)."""
    run = scenario_run("cred-update-thread")
    entered = first(run, "proc", "cap_enter")
    updates = steps(run, "enter", "thread_cow_update")
    assert len(updates) == 1 and updates[0] > entered
    assert steps(run, "skip", "thread_cow_update", end=entered) and steps(
        run, "skip", "thread_cow_update", start=updates[0]
    )


def test_the_aio_daemon_writes_under_the_credential_cached_with_the_job():
    run = scenario_run("cached-credential")
    who = tids(run)
    queued = first(run, "proc", "aio_queue")
    taken = first(run, "hook", "td_ucred = job->cred")
    restored = first(run, "hook", "td_ucred = td_savedcred")
    writes = steps(run, "enter", "dofilewrite", start=taken, end=restored)
    assert queued < taken < restored and writes
    assert who[taken] != who[queued] and run.threads[who[taken]][0] != run.threads[who[queued]][0], "a kernel process"
    assert who[taken] == who[writes[0]] == who[restored]


def test_a_fresh_page_is_zeroed_before_a_pte_makes_it_visible():
    run = scenario_run("zero-before-reuse")
    resolved = first(run, "fault", "zero_fill")
    pa = run.events[resolved].data.pa
    zeroed = first(run, "mem", "page zeroed", where=lambda z: z.pa == pa)
    mapped = first(run, "mem", "PTE", where=lambda s: s.pa == pa)
    assert zeroed < mapped <= resolved


@pytest.mark.parametrize(
    ("slug", "error", "privilege_checked", "copied_out"),
    [
        ("getauid", 0, True, True),
        ("getauid-jailed", ENOSYS, False, False),
        ("getauid-unprivileged", EPERM, True, False),
    ],
)
def test_getauid_answers_by_jail_then_privilege_then_copyout(slug, error, privilege_checked, copied_out):
    run = scenario_run(slug)
    call = first(run, "syscall", "getauid")
    result = run.events[first(run, "sysret", start=call)].data
    assert result.error == error
    assert bool(steps(run, "hook", "priv_check", start=call, end=call + 40)) == privilege_checked
    assert bool(steps(run, "enter", "copyout", start=call, end=call + 40)) == copied_out


# ---------------------------------------------------------------- dd


def buffer_faults(run):
    """dd's first read's buffer, and the zero-fill faults in its first and second halves by mode."""
    read = first(run, "syscall", "read", start=first(run, "user", "main"))
    buf, nbyte = run.events[read].data.values[1:]
    halves = {"first": {"user": 0, "kernel": 0}, "second": {"user": 0, "kernel": 0}}
    mode = None
    for event in run.events:
        if event.kind == "trap":
            mode = "user" if event.data.user else "kernel"
        elif event.kind == "fault" and event.name == "zero_fill":
            offset = event.data.va - buf
            if 0 <= offset < 2 * nbyte:
                halves["first" if offset < nbyte else "second"][mode] += 1
    return nbyte // PAGE_SIZE, halves


def test_junk_false_faults_half_the_buffer_in_kernel_mode_and_never_touches_the_other_half():
    pages, halves = buffer_faults(scenario_run("dd-junk-false"))
    assert halves["first"] == {"user": 0, "kernel": pages}, "read()'s copyout is the first touch"
    assert halves["second"] == {"user": 0, "kernel": 0}, "nobody touches the output half: never zeroed"
    junk_pages, junk = buffer_faults(scenario_run("dd-system-time"))
    assert junk["first"]["user"] + junk["second"]["user"] >= 2 * junk_pages - 1, "junk filling touches both"


def test_dd_takes_a_trap_outside_system_calls_for_each_page_of_its_buffer():
    run = scenario_run("dd-traps")
    pages, halves = buffer_faults(run)
    outside, in_syscall = 0, False
    for event in run.events:
        if event.kind == "syscall":
            in_syscall = True
        elif event.kind == "insn" and event.name == "sysretq":
            in_syscall = False
        elif event.kind == "enter" and event.name == "trap" and not in_syscall:
            outside += 1
    assert outside >= 2 * pages, "junk filling's faults, one trap() each"
    assert outside > 5 * run.syscalls, "traps outnumber system calls"  # 556 to dd's 61 (jemalloc's trim path)


def test_a_smaller_block_means_proportionally_fewer_faults():
    small_pages, small = buffer_faults(scenario_run("dd-smaller-bs"))
    big_pages, big = buffer_faults(scenario_run("dd-system-time"))
    assert small_pages * 10 == big_pages
    assert sum(small["first"].values()) * 10 == sum(big["first"].values())


def test_count_3_reads_three_times_but_faults_the_buffer_in_once():
    three, one = scenario_run("dd-count-3"), scenario_run("dd-smaller-bs")  # bs=1m, count 3 and 1
    main = first(three, "user", "main")
    assert len(steps(three, "syscall", "read", start=main)) == 3 * len(steps(one, "syscall", "read", start=main))
    assert buffer_faults(three)[1] == buffer_faults(one)[1]


def test_conv_sync_brings_the_faults_back_to_user_mode_without_junk():
    pages, halves = buffer_faults(scenario_run("dd-conv-sync"))
    assert halves["first"] == {"user": pages, "kernel": 0}, "dd memsets the block before read()"


# ---------------------------------------------------------------- virtual memory


def test_copy_on_write_copies_only_the_written_pages_each_for_its_writer():
    run = scenario_run("cow-after-fork")
    mmap = first(run, "syscall", "mmap")
    buf = run.events[first(run, "sysret", start=mmap)].data.retval
    originals = {f.data.pindex: f.data.pa for f in (run.events[i] for i in steps(run, "fault", "zero_fill"))}
    who = tids(run)
    copies = [i for i in steps(run, "fault", "cow") if buf <= run.events[i].data.va < buf + 4 * PAGE_SIZE]
    pids = [run.threads[who[i]][0] for i in copies]
    pages = [(run.events[i].data.va - buf) // PAGE_SIZE for i in copies]
    fork = run.events[first(run, "proc", "fork")].data
    assert list(zip(pages, pids, strict=True)) == [(1, fork.parent), (0, fork.child)]
    assert all(run.events[i].data.pa not in originals.values() for i in copies), "a new frame for the writer"
    assert "child: page 0 holds b'C', page 1 b'b'" in run.output
    assert "parent: page 0 holds b'a', page 1 b'P'" in run.output


def test_a_full_reservation_is_promoted_and_then_one_walk_level_and_tlb_entry_cover_2_mib():
    run = scenario_run("superpages")
    promotion = first(run, "mem", "promotion")
    region = run.events[promotion].data.va
    inside = [i for i in steps(run, "fault", "zero_fill") if region <= run.events[i].data.va < region + (2 << 20)]
    assert len(inside) == 512
    assert inside[-2] < promotion < inside[-1], "the last page's fault completes the reservation"
    walk = first(run, "walk", "PDE", start=promotion)
    assert run.events[walk].data.entry & PS
    assert run.events[walk + 1].kind == "tlb" and run.events[walk + 1].data.page_size == 2 << 20


def test_idle_zeroing_moves_pagezero_off_the_fault_path():
    on = scenario_run("prezeroed-pages")
    off = record(lookup("prezeroed-pages").spec(config=KernelConfig()))

    def fault_zeroing(run):
        """Zero-fill faults on the pages mapped after the sleep, and how many of them called pagezero."""
        after = first(run, "syscall", "mmap", start=first(run, "syscall", "nanosleep"))
        faults = steps(run, "fault", "zero_fill", start=after)
        zeroing = [f for f in faults if steps(run, "enter", "pagezero", start=steps(run, "trap", end=f)[-1], end=f)]
        return len(faults), len(zeroing)

    assert fault_zeroing(off) == (8, 8)
    assert fault_zeroing(on) == (8, 0), "each fault got a page zeroed while the CPU was idle"
    idle = first(on, "enter", "vm_page_zero_idle")
    assert first(on, "syscall", "nanosleep") < idle < first(on, "fault", "zero_fill", start=idle)
    assert on.summary()["vmmeter"]["v_ozfod"] == 8 and off.summary()["vmmeter"]["v_ozfod"] == 0


def test_under_memory_pressure_a_fault_waits_for_the_page_daemon_which_swaps_pages_out():
    run = scenario_run("pagedaemon")
    wait = first(run, "proc", "vmwait")
    passes = steps(run, "mem", "pagedaemon")
    swap_outs = steps(run, "proc", "sleep", where=lambda w: getattr(w, "write", False))
    assert passes and passes[0] > wait and any(run.events[i].data.freed for i in passes)
    assert swap_outs and all(run.events[i].data.path is None for i in swap_outs), "anonymous pages go to swap"
    assert wait < swap_outs[0] < passes[-1]
    swapped = {(run.events[i].data.object, run.events[i].data.pindex) for i in swap_outs}
    for hard in steps(run, "fault", "hard"):
        data = run.events[hard].data
        if (data.object, data.pindex) in swapped:
            read = steps(run, "proc", "sleep", where=lambda w: getattr(w, "write", None) is False, end=hard)[-1]
            assert (run.events[read].data.object, run.events[read].data.pindex) == (data.object, data.pindex)
            break
    else:
        pytest.fail("no swapped-out page came back")
    assert run.exit_status == 0


def test_fork_copies_map_entries_shadows_on_write_and_collapses_at_exit():
    run = scenario_run("fork-vm-map")
    fork = first(run, "syscall", "fork")
    assert steps(run, "mem", "vm_map_entry_link", start=fork, end=first(run, "proc", "fork"))
    shadow = first(run, "mem", "vm_object_shadow")
    assert first(run, "fault", "cow") > shadow > fork
    assert first(run, "mem", "vm_object_collapse") > first(run, "syscall", "exit"), "exit frees the child's map"


def test_execve_replaces_the_forked_map_but_keeps_the_process():
    run = scenario_run("fork-execve")
    child = run.events[first(run, "proc", "fork")].data.child
    execve = first(run, "syscall", "execve")
    exec_done = first(run, "proc", "exec")
    deleted = steps(run, "mem", "vm_map_entry_delete", start=execve, end=exec_done)
    inserted = steps(run, "mem", "vm_map_insert", start=execve, end=exec_done)
    assert deleted and inserted and max(deleted) < min(inserted), "the old map goes, then the image is mapped"
    assert run.events[exec_done].data.pid == child and run.events[exec_done].data.path == "/bin/getpid"
    getpid = first(run, "syscall", "getpid", start=exec_done)
    assert run.events[first(run, "sysret", start=getpid)].data.retval == child
    assert "exited with 0" in run.output


def test_a_16k_pipe_write_goes_direct_and_a_4k_one_does_not():
    run = scenario_run("pipe-direct-write")
    writes = steps(run, "syscall", "write", where=lambda a: a.values[2] == 16384)
    assert len(steps(run, "enter", "pipe_direct_write")) == len(writes) == 4
    assert steps(run, "proc", "sleep", where=lambda s: getattr(s, "wmesg", "") == "pipdwt")
    small = record(lookup("pipe-direct-write").spec({"bs": "4096"}))
    assert not steps(small, "enter", "pipe_direct_write") and steps(small, "enter", "pipe_write")


def test_the_ipc_lab_moves_its_total_through_the_pipe_and_reports_bandwidth():
    run = scenario_run("ipc-lab")
    written = sum(run.events[i].data.values[2] for i in steps(run, "syscall", "write", where=lambda a: a.values[0] > 2))
    assert written == 65536
    assert "KBytes/sec" in run.output
