"""The full stepper over HTTP: where each control leads (answered from the log's index), what each view shows at
the lecture's moments, the parameters form, the modes, and bad input as 4xx."""

from __future__ import annotations

import gzip
import html
import re

import pytest

from app import main as app_main
from app.navigate import LogIndex
from app.params import MAX_DD_BYTES, VIEWS
from sim.core.events import ObjectState
from sim.replay import Replay
from sim.run import record
from sim.scenarios.registry import SCENARIOS, lookup

PANEL = {"HX-Request": "true", "HX-Target": "section#step-panel"}
STEPPER = {"HX-Request": "true", "HX-Target": "div#stepper"}
WIRE_LIMIT = 20_000  # bytes a step may transfer, compressed as the browser receives it


def frames_after(event) -> int:
    """Kernel frames open after an event: an enter opens one, an exit closes one (independent of app code)."""
    return event.depth - (event.kind == "exit")


def href(page: str, element_id: str) -> str | None:
    found = re.search(rf'<a id="{element_id}"[^>]*\bhref="([^"]*)"', page)
    return html.unescape(found.group(1)) if found else None


def target_step(page: str, element_id: str) -> int | None:
    url = href(page, element_id)
    return int(re.search(r"[?&]step=(\d+)", url).group(1)) if url else None


def first(run, kind, name=None, after=-1):
    return next(
        i for i, e in enumerate(run.events) if i > after and e.kind == kind and (name is None or e.name == name)
    )


def panel(client, url: str) -> str:
    response = client.get(url, headers=PANEL)
    assert response.status_code == 200, response.text[:500]
    return response.text


# ---------------------------------------------------------------- step over, step out


@pytest.mark.parametrize(
    "where", [("insn", "syscall"), ("enter", "syscallenter"), ("skip", "ktrsyscall"), ("enter", "amd64_syscall")]
)
def test_step_over_skips_exactly_the_frames_nested_below_this_step(client, getpid_run, where):
    step = first(getpid_run, *where)
    landing = target_step(panel(client, f"/scenarios/getpid?step={step}"), "step-over")
    here = frames_after(getpid_run.events[step])
    skipped = getpid_run.events[step + 1 : landing]
    assert all(frames_after(e) > here for e in skipped), "only deeper frames are skipped"
    assert frames_after(getpid_run.events[landing]) <= here, "and it stops at the first step back at this depth"


def test_step_over_a_syscall_instruction_skips_the_whole_kernel_visit(client, getpid_run):
    step = first(getpid_run, "insn", "syscall")
    landing = target_step(panel(client, f"/scenarios/getpid?step={step}"), "step-over")
    skipped = {e.name for e in getpid_run.events[step + 1 : landing] if e.kind == "enter"}
    assert {"syscallenter", "sys_getpid", "syscallret"} <= skipped


def test_step_out_lands_where_the_current_function_returns(client, getpid_run):
    inside = first(getpid_run, "skip", "ktrsyscall")  # a step of syscallenter's own body
    landing = target_step(panel(client, f"/scenarios/getpid?step={inside}"), "step-out")
    event = getpid_run.events[landing]
    assert (event.kind, event.name) == ("exit", "syscallenter")
    entered = first(getpid_run, "enter", "sys_getpid")
    landing = target_step(panel(client, f"/scenarios/getpid?step={entered}"), "step-out")
    assert (getpid_run.events[landing].kind, getpid_run.events[landing].name) == ("exit", "sys_getpid")


def test_step_out_is_disabled_in_user_mode(client):
    page = panel(client, "/scenarios/getpid?step=1")
    assert re.search(r'<span id="step-out" class="button" aria-disabled="true"', page)


# ---------------------------------------------------------------- run to


def test_run_to_the_next_fault_lands_on_the_fault(client, dd_run):
    page = panel(client, "/scenarios/dd-system-time?step=0")
    assert target_step(page, "run-fault") == first(dd_run, "fault")
    assert target_step(page, "run-trap") == first(dd_run, "trap")
    assert target_step(page, "run-syscall") == first(dd_run, "insn", "syscall")
    ring = next(i for i, e in enumerate(dd_run.events) if any(d[:2] == ("reg", "cpl") for d in e.deltas))
    assert target_step(page, "run-ring") == ring
    assert target_step(page, "run-end") == len(dd_run.events) - 1


def test_a_breakpoint_on_a_function_stops_run_to_end_at_its_first_entry(client, dd_run):
    page = panel(client, "/scenarios/dd-system-time?step=0&bp=vm_fault")
    stop = target_step(page, "run-end")
    assert stop == first(dd_run, "enter", "vm_fault")
    landed = panel(client, f"/scenarios/dd-system-time?step={stop}&bp=vm_fault")
    assert "Stopped at breakpoint: vm_fault()" in landed
    assert target_step(landed, "run-end") == first(dd_run, "enter", "vm_fault", after=stop), "the next hit"


def test_a_breakpoint_on_an_event_kind_stops_before_a_later_goal(client, dd_run):
    page = panel(client, "/scenarios/dd-system-time?step=0&bp=kind:walk")
    assert target_step(page, "run-fault") == first(dd_run, "walk"), "the walk comes before the fault"


def test_adding_a_breakpoint_keeps_the_step_and_pushes_the_canonical_url(client):
    response = client.get("/scenarios/getpid?step=5&add_bp=sys_getpid", headers=PANEL)
    assert response.headers["hx-push-url"] == "/scenarios/getpid?bp=sys_getpid&step=5"
    assert "sys_getpid()" in response.text and "1 hit in this run" in response.text


def test_clicking_the_timeline_at_a_time_jumps_to_the_step_running_then(client, getpid_run):
    syscall = first(getpid_run, "insn", "syscall")
    t = getpid_run.events[syscall].t_ns
    response = client.get(f"/scenarios/getpid?at={t}", follow_redirects=False)
    assert response.status_code == 303
    step = int(response.headers["location"].rsplit("step=", 1)[1])
    assert getpid_run.events[step].t_ns >= t > getpid_run.events[step - 1].t_ns
    htmx = client.get(f"/scenarios/getpid?at={t}", headers=PANEL)
    assert htmx.headers["hx-push-url"] == f"/scenarios/getpid?step={step}"


# ---------------------------------------------------------------- the views at the first demand-zero fault


@pytest.fixture(scope="module")
def first_zero_fill(dd_run) -> int:
    return first(dd_run, "fault", "zero_fill")


def test_the_walk_view_shows_the_failed_walk_level_by_level(client, dd_run, first_zero_fill):
    page = panel(client, f"/scenarios/dd-system-time?step={first_zero_fill}")
    walk = re.search(r'<section id="walk".*?</section>', page, re.S).group(0)
    assert [m for m in re.findall(r'level-chip level-\d">(\w+)<', walk)] == ["PML4", "PDPT", "PD", "PT"]
    assert "page fault (#PF" in walk and "not present" in walk
    trap = dd_run.events[first(dd_run, "trap")]
    va = trap.data.addr
    assert f"{va:#018x}" in walk, "the faulting address, split into its indexes"
    index = (va >> 12) & 0x1FF
    assert f"bits 20–12 = {index}" in walk


def test_the_vm_view_shows_the_new_page_of_the_new_object(client, dd_run, first_zero_fill):
    page = panel(client, f"/scenarios/dd-system-time?step={first_zero_fill}")
    vm = re.search(r'<section id="vm".*?</section>', page, re.S).group(0)
    objects = [d for e in dd_run.events[: first_zero_fill + 1] for d in e.deltas if d[0] == "object" and d[2] is None]
    newest = objects[-1][1]
    assert re.search(rf"object {newest} <span class=\"muted\">OBJT_DEFAULT</span>\s*· 1 resident", vm)
    assert re.search(r"<th scope=\"row\">zero_fill</th><td>1</td><td>0</td>", vm), "one user-mode zero-fill so far"
    assert 'id="frame-grid"' in vm and "in use: a page of an object" in vm


def test_the_source_view_marks_the_line_of_the_fault_in_vm_fault(client, first_zero_fill):
    page = panel(client, f"/scenarios/dd-system-time?step={first_zero_fill}")
    source = re.search(r'<section id="source".*?</section>', page, re.S).group(0)
    assert "<code>vm_fault</code>" in source
    current = re.search(r'<li class="src current[^"]*".*?</li>', source, re.S).group(0)
    assert "vm_page_activate" in current
    assert re.search(r"pmap_zero_page\(m\);.*?called", source, re.S), "the zeroing this fault did"
    stack = re.findall(r"<code>(\w+)\(\)</code>", re.search(r'<ol id="kernel-stack".*?</ol>', source, re.S).group(0))
    assert stack[:3] == ["vm_fault", "trap_pfault", "trap"]


def test_skipped_hooks_are_shown_as_skipped_and_a_hook_turned_on_as_run(client, getpid_run):
    skip = first(getpid_run, "skip", "ktrsyscall")
    page = panel(client, f"/scenarios/getpid?step={skip}")
    current = re.search(r'<li class="src current[^"]*".*?</li>', page, re.S).group(0)
    assert "ktrsyscall" in current and "skipped" in current
    assert re.search(r"thread_cow_update\(td\);.*?skipped", page, re.S)
    traced = record(lookup("getpid").spec(config=lookup("getpid").with_config(ktrace=True)))
    later = first(traced, "skip", "ptracestop")  # syscallenter goes on after ktrsyscall ran
    page = panel(client, f"/scenarios/getpid?ktrace=1&step={later}")
    assert re.search(r'<li class="src st-ran"[^>]*>\s*<span class="src-mark"[^>]*></span><code>\s*if \(KTRPOINT', page)


def test_the_cpu_view_names_smap_and_the_carry_flag_in_words(client):
    """FreeBSD 11 (the lecture profile) leaves CR4.SMAP clear and sets SMEP; the modern machine sets both."""
    page = panel(client, "/scenarios/getpid?step=0")
    assert re.search(r'data-flag="SMAP">SMAP <span class="flag-state">clear', page)
    assert re.search(r'data-flag="SMEP">SMEP <span class="flag-state">set', page)
    assert re.search(r'data-flag="CF">CF <span class="flag-state">clear', page)
    on = panel(client, "/scenarios/getpid?step=0&smap=1")
    assert re.search(r'data-flag="SMAP">SMAP <span class="flag-state">set', on)
    modern = panel(client, "/scenarios/getpid?step=0&profile=modern&smep=0")
    assert re.search(r'data-flag="SMAP">SMAP <span class="flag-state">set', modern)
    assert re.search(r'data-flag="SMEP">SMEP <span class="flag-state">clear', modern)


def test_the_latency_view_answers_where_system_time_goes(client, dd_run):
    last = len(dd_run.events) - 1
    page = panel(client, f"/scenarios/dd-system-time?step={last}&views=latency")
    answer = html.unescape(re.search(r'<p class="latency-answer"[^>]*>(.*?)</p>', page, re.S).group(1))
    syscalls = sum(dd_run.syscalls_by_name.values())
    traps = dd_run.vm["faults_user_mode"] + dd_run.vm["faults_kernel_mode"]
    assert f"inside {syscalls:,} system calls" in answer and f"in {traps:,} traps outside them" in answer
    share = int(re.search(r"\((\d+)% of system time\)", answer).group(1))
    assert share > 90, "dd's system time is the page faults, not the system calls"


# ---------------------------------------------------------------- the run's parameters, views and modes


def test_the_parameters_form_starts_a_new_run_whose_stepper_replaces_the_old(client):
    response = client.get("/scenarios/dd-system-time?bs=64k&count=2&malloc_conf=junk:false", headers=STEPPER)
    assert response.status_code == 200
    assert 'id="stepper"' in response.text and 'id="timeline-figure"' in response.text
    assert "MALLOC_CONF=junk:false dd if=/dev/zero of=/dev/null bs=64k count=2" in html.unescape(response.text)
    assert response.headers["hx-push-url"] == "/scenarios/dd-system-time?bs=64k&count=2&malloc_conf=junk:false&step=0"
    default = client.get("/scenarios/dd-system-time", headers=STEPPER).text
    run_id = re.compile(r'id="stepper"[^>]*data-run-id="(\w+)"', re.S)
    assert run_id.search(response.text).group(1) != run_id.search(default).group(1)


def test_values_equal_to_the_scenarios_defaults_leave_the_url(client):
    response = client.get("/scenarios/dd-system-time?bs=10m&count=1&profile=lecture&smap=0&step=3", headers=PANEL)
    assert response.headers["hx-push-url"] == "/scenarios/dd-system-time?step=3"


def test_views_choose_what_a_step_shows(client):
    page = panel(client, "/scenarios/getpid?step=3&views=walk")
    assert 'id="walk"' in page and 'id="registers"' not in page and 'id="source"' not in page
    full = client.get("/scenarios/getpid?step=3").text
    for view in ("registers", "source", "walk", "vm", "latency", "narrative"):
        assert f'id="{view}"' in full


def test_projector_mode_shows_the_scenarios_views_in_large_type(client):
    page = client.get("/scenarios/dd-system-time?mode=projector").text
    assert re.search(r'<div id="stepper" class="stepper projector"', page)
    shown = re.findall(r'id="toggle-(\w+)" class="toggle on"', page)
    assert tuple(shown) == tuple(v for v in VIEWS if v in lookup("dd-system-time").views)


def test_embed_mode_may_be_framed_and_has_no_site_chrome(client):
    normal = client.get("/scenarios/getpid")
    assert "frame-ancestors 'self'" in normal.headers["content-security-policy"]
    embedded = client.get("/scenarios/getpid?embed=1")
    assert "frame-ancestors *" in embedded.headers["content-security-policy"]
    assert 'class="site-header"' not in embedded.text and 'id="params-form"' not in embedded.text
    assert "Open in trapscope" in embedded.text


def test_every_scenario_opens_and_names_its_lecture_point(client):
    for scenario in SCENARIOS.values():
        page = client.get(f"/scenarios/{scenario.slug}").text
        assert scenario.lecture_point in html.unescape(page)


def test_junk_false_moves_the_demand_zero_faults_into_the_kernel(client):
    run = record(lookup("dd-junk-false").spec())
    last = len(run.events) - 1
    page = panel(client, f"/scenarios/dd-junk-false?step={last}&views=vm")
    found = re.search(r'"row">zero_fill</th><td>([\d,]+)</td><td>([\d,]+)</td>', page)
    user, kernel = (int(n.replace(",", "")) for n in found.groups())
    assert kernel > 1000 and kernel > user, "read()'s copyout touches the buffer first"


# ---------------------------------------------------------------- size and speed of a step


def test_a_step_of_dd_with_every_view_transfers_under_20_kb(client, first_zero_fill):
    response = client.get(f"/scenarios/dd-system-time?step={first_zero_fill}", headers=PANEL)
    assert response.headers["content-encoding"] == "gzip", "the app compresses fragments"
    assert len(gzip.compress(response.content, compresslevel=6)) < WIRE_LIMIT


def test_the_index_answers_step_over_without_replaying(dd_run):
    index = LogIndex(dd_run.events)
    for step in (0, 1000, 50_000, len(dd_run.events) - 2):
        landing = index.step_over(step)
        assert landing is None or frames_after(dd_run.events[landing]) <= frames_after(dd_run.events[step])


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("query", "parameter", "says"),
    [
        ("views=cpu,registers", "views", "registers"),
        ("bs=1t", "bs", "a size such as"),
        (f"bs={(MAX_DD_BYTES >> 20) + 1}m", "bs", f"{MAX_DD_BYTES >> 20}m on the web"),
        ("bs=16m&count=3", "count", "web limit"),
        ("count=0", "count", "from 1"),
        ("malloc_conf=junk:maybe", "malloc_conf", "junk:true or junk:false"),
        ("smap=maybe", "smap", "1 or 0"),
        ("profile=laptop", "profile", "lecture, modern"),
        ("bp=vm_fault;rm", "bp", "malformed breakpoint"),
        ("bp=kind:nonsense", "bp", "unknown event kind"),
        ("mode=cinema", "mode", "projector or normal"),
        ("at=-5", "at", "0 or more"),
        ("colour=red", "colour", "not one this page takes"),
        ("step=1&step=2", "step", "given 2 times"),
        ("step=ten", "step", "from 0 to"),
    ],
)
def test_bad_input_is_a_4xx_that_names_the_parameter(client, query, parameter, says):
    response = client.get(f"/scenarios/dd-system-time?{query}")
    assert 400 <= response.status_code < 500, response.status_code
    text = html.unescape(response.text)
    assert parameter in text and says in text


def test_a_knob_the_scenario_lacks_is_refused(client):
    response = client.get("/scenarios/getpid?bs=4k")
    assert response.status_code == 422 and "does not apply to scenario 'getpid'" in html.unescape(response.text)


def test_a_run_over_the_web_budget_is_refused_with_the_limit(client, monkeypatch):
    monkeypatch.setattr(app_main, "WEB_EVENT_BUDGET", 100)
    # a run no scenario makes (hooks-ptrace is getpid?ptrace=1), so no earlier test has it cached
    response = client.get("/scenarios/getpid?ptrace=1&audit=1")
    assert response.status_code == 400
    assert "more than 100 steps, the web's limit" in html.unescape(response.text)


# ---------------------------------------------------------------- any command line


def test_any_command_line_can_be_stepped_within_the_same_limits(client):
    ok = client.get("/scenarios/command", params={"command": "MALLOC_CONF=junk:false dd bs=64k count=2"})
    assert ok.status_code == 200
    assert "MALLOC_CONF=junk:false dd bs=64k count=2" in html.unescape(ok.text)
    too_big = client.get("/scenarios/command", params={"command": "dd if=/dev/zero of=/dev/null bs=1g"})
    assert too_big.status_code == 422 and "32m on the web" in html.unescape(too_big.text)
    unknown = client.get("/scenarios/command", params={"command": "rm -rf /"})
    assert unknown.status_code == 400 and "no such program" in html.unescape(unknown.text)


def test_a_shadow_chain_after_fork_is_drawn_object_by_object(client):
    command = "ipc-benchmark -i pipe -b 4096 -t 65536 2proc"
    run = record(lookup("command").spec({"command": command}))
    objects: dict[int, ObjectState] = {}
    for step, event in enumerate(run.events):
        for delta in event.deltas:
            if delta[0] == "object":
                objects[delta[1]] = delta[3]
        shadows = {k: v for k, v in objects.items() if v.backing is not None}
        if shadows and step % 50 == 0:
            break
    else:
        pytest.skip("this run makes no shadow object")
    front, state = next(iter(shadows.items()))
    behind = state.backing
    page = panel(client, f"/scenarios/command?command={command}&step={step}&views=vm")
    assert re.search(rf"object {front} <span.*?shadow-arrow.*?object {behind} <span", page, re.S)


def test_a_breakpoint_on_a_function_the_run_never_enters_says_so(client):
    page = html.unescape(client.get("/scenarios/getpid", params={"bp": "nosuchfunction", "step": "3"}).text)
    assert "nosuchfunction()" in page and "never reached in this run: not a kernel function it enters" in page


def test_the_ring_badge_names_the_thread_on_the_cpu(client):
    run = record(lookup("fork-returns-twice").spec())
    replay = Replay(run)
    fork = next(i for i, e in enumerate(run.events) if e.kind == "proc" and e.name == "fork")
    parent_tid = replay.state_at(fork).tid
    child_step = next(i for i in range(fork, len(run.events)) if replay.state_at(i).tid != parent_tid)
    for step in (fork, child_step):
        tid = replay.state_at(step).tid
        pid, comm = run.threads[tid]
        page = html.unescape(client.get(f"/scenarios/fork-returns-twice?step={step}").text)
        assert re.search(rf'id="on-cpu"[^>]*>pid {pid} {comm}, tid {tid}<', page), step
    assert {run.threads[parent_tid][0], run.threads[replay.state_at(child_step).tid][0]} == {1000, 1001}
