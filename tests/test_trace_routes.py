"""The trace page over HTTP: the D console's output, compile errors at their line and column, the flame graph's
figure, a frame's stepper link, the differential flame graph, the probe effect, and the downloads."""

from __future__ import annotations

import html
import json
import re

import pytest

from app.routes_trace import JUNK_FALSE, JUNK_TRUE, MAX_SCRIPT_BYTES, MAX_SHOWN_OUTPUT, trace_url
from app.trace_examples import EXAMPLES, LECTURE_PROFILE, LECTURE_SYSCALL_TIMES
from sim.machine.profiles import PROFILES
from sim.replay import Replay
from sim.run import RunSpec, record
from sim.trace.dtrace import run_dtrace
from sim.trace.flame import flame_from_run
from tests.pages import text_of
from tests.sim.test_export import check_chrome, check_folded, check_speedscope

DD = "dd if=/dev/zero of=/dev/null bs=10m count=1"
HTMX = {"HX-Request": "true", "HX-Target": "div#trace-results"}
BROKEN = 'syscall:::entry /execname == "dd"/ {\n        @calls[probefunc] = count(;\n}\n'


def figure(page: str, element_id: str) -> dict:
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', page, re.S)
    assert found, f"no figure {element_id}"
    return json.loads(found.group(1))


def test_the_examples_hold_the_lectures_three_scripts_verbatim():
    from tests.sim import test_d_language as lecture  # checked there against the lecture's own text

    scripts = [example.script for example in EXAMPLES]
    for script in (lecture.LECTURE_SYSCALL_TIMES, lecture.LECTURE_TRAPS, lecture.LECTURE_PROFILE):
        assert script in scripts


def test_the_page_opens_with_the_lectures_first_script_in_the_editor_and_every_example(client):
    response = client.get("/trace")
    assert response.status_code == 200
    page = html.unescape(response.text)
    assert LECTURE_SYSCALL_TIMES in page
    assert "Press <strong>Trace</strong>" in page
    for example in EXAMPLES:
        assert example.title in page
    assert 'hx-trigger="load"' in page and "/trace/flame?" in page  # the flame graph loads as its own fragment


def test_the_lectures_script_prints_dtraces_output_byte_for_byte(client):
    response = client.get("/trace", params={"command": DD, "script": LECTURE_SYSCALL_TIMES})
    assert response.status_code == 200
    expected = run_dtrace(LECTURE_SYSCALL_TIMES, DD, script_name="script.d")
    assert text_of(response.text, "d-stdout") == expected.output
    assert text_of(response.text, "d-stderr") == expected.stderr
    assert "  read " in expected.output  # printa's rows
    chart = figure(response.text, "aggregation-syscall_time-figure")
    assert chart["data"][0]["type"] == "bar" and "read" in chart["data"][0]["y"]


def test_the_probe_effect_is_the_traced_runs_system_time_against_the_untraced_runs(client):
    page = client.get("/trace", params={"command": DD, "script": LECTURE_SYSCALL_TIMES}).text
    traced = run_dtrace(LECTURE_SYSCALL_TIMES, DD, quiet=True)
    plain = record(RunSpec(DD))
    delta = traced.run.sys_ns - plain.sys_ns
    assert delta > 0 and delta % PROFILES["lecture"].systrace_probe_ns == 0
    cell = re.search(r'<td id="probe-sys-delta">([^<]*)</td>', page).group(1)
    assert cell.startswith(f"{delta:+,} ns")
    assert f"{traced.run.sys_ns:,} ns" in page and f"{plain.sys_ns:,} ns" in page


def test_the_trace_button_gets_only_the_results_and_clears_the_error_panel(client):
    response = client.get("/trace", params={"command": DD, "script": LECTURE_PROFILE}, headers=HTMX)
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="trace-results"')
    assert 'id="trace-error"' in response.text and 'hx-swap-oob="true"' in response.text
    assert "<html" not in response.text
    assert "HX-Request" in response.headers["vary"]


def test_the_page_is_served_under_the_strict_policy_with_no_inline_script(client):
    response = client.get(trace_url(DD))
    assert "script-src 'self'" in response.headers["content-security-policy"]
    scripts = re.findall(r"<script([^>]*)>", response.text)
    assert scripts and all('src="' in a or 'type="application/json"' in a for a in scripts)
    assert not re.search(r"\son[a-z]+=", response.text), "no inline event handlers"
    assert not re.search(r'(src|href)="(https?:)?//', response.text), "everything is served by the app itself"
    assert not re.search(r"\sstyle=", response.text), "no style attributes"


def test_a_history_restore_gets_the_whole_page(client):
    headers = {**HTMX, "HX-History-Restore-Request": "true", "HX-Request-Type": "full"}
    response = client.get("/trace", params={"command": DD, "script": LECTURE_PROFILE}, headers=headers)
    assert "<html" in response.text


def test_a_compile_error_is_a_400_that_names_its_line_and_column(client):
    response = client.get("/trace", params={"command": DD, "script": BROKEN})
    assert response.status_code == 400
    page = html.unescape(response.text)
    assert "dtrace: failed to compile script script.d: line 2: " in page
    panel = re.search(r'<div id="trace-error"[^>]*>', response.text).group(0)
    assert 'data-line="2"' in panel and re.search(r'data-column="\d+"', panel)
    assert "^ column" in page  # the offending line with a caret under the column
    assert BROKEN in page  # the editor keeps what was typed


def test_a_compile_error_from_htmx_is_retargeted_into_the_error_panel_and_not_pushed(client):
    response = client.get("/trace", params={"command": DD, "script": BROKEN}, headers=HTMX)
    assert response.status_code == 400
    assert response.headers["hx-retarget"] == "#trace-error"
    assert response.headers["hx-reswap"] == "outerHTML"
    assert response.headers["hx-push-url"] == "false"
    assert response.text.lstrip().startswith('<div id="trace-error"')


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"script": "x" * (MAX_SCRIPT_BYTES + 1)}, 422, f"the limit is {MAX_SCRIPT_BYTES:,}"),
        ({"script": "fbt::no_such_function:entry { @ = count(); }"}, 400, "probe description"),
        ({"script": "BEGIN { x = nosuch(1); }"}, 400, "nosuch"),
        ({"profile": "vax"}, 422, "must be one of"),
        ({"command": "frobnicate now", "script": LECTURE_PROFILE}, 400, "frobnicate: no such program"),
        ({"flame": "not a name"}, 422, "query parameter 'flame'"),
    ],
)
def test_bad_input_is_a_4xx_that_says_what_is_wrong(client, params, status, words):
    response = client.get("/trace", params={"command": DD, **params})
    assert response.status_code == status, response.text[:500]
    assert words in html.unescape(response.text)
    assert "Traceback" not in response.text


def test_a_long_output_is_cut_on_the_page_with_a_count_of_what_is_left_out(client):
    script = 'fbt:::entry /execname == "dd"/ { printf("%s\\n", probefunc); }'
    response = client.get("/trace", params={"command": DD, "script": script, "quiet": "1"})
    assert response.status_code == 200
    shown = text_of(response.text, "d-stdout")
    assert len(shown) == MAX_SHOWN_OUTPUT
    left_out = int(re.search(r"([\d,]+) more are not shown", response.text).group(1).replace(",", ""))
    full = run_dtrace(script, DD, quiet=True).output
    assert len(shown) + left_out == len(full) and full.startswith(shown)


# --- the flame graph ----------------------------------------------------------------------------------------


def folded_of(page: str) -> dict[tuple[str, ...], int]:
    """The folded stacks a flame-graph fragment carries for static/flame.js (app/flame_view.py flame_data)."""
    data = figure(page, "flame-data")
    return {tuple(data["names"][i] for i in indices): value for indices, _, value in data["stacks"]}


def test_the_flame_graph_carries_the_runs_folded_stacks_with_each_frames_kind(client):
    response = client.get("/trace/flame", params={"command": DD})
    assert response.status_code == 200
    data = figure(response.text, "flame-data")
    folded = folded_of(response.text)
    graph = flame_from_run(record(RunSpec(DD)))
    assert folded == graph.stacks and data["total"] == graph.total
    run = record(RunSpec(DD))
    assert sum(v for s, v in folded.items() if s[:2] == ("dd", "-")) == run.sys_ns
    assert folded[("dd", "user")] == run.user_ns
    kinds = {tuple(data["names"][i] for i in indices): kind for indices, kind, _ in data["stacks"]}
    assert kinds[("dd", "user")] == "pu"
    assert kinds[("dd", "-", "Xpage", "trap", "trap_pfault", "vm_fault", "pmap_zero_page", "pagezero")] == "pskkkkkk"


def test_the_flame_graph_of_a_stack_aggregation_shows_the_profile_samples(client):
    params = {"command": DD, "script": LECTURE_PROFILE, "flame": "@traces"}
    response = client.get("/trace/flame", params=params)
    assert response.status_code == 200
    folded = folded_of(response.text)
    samples = run_dtrace(LECTURE_PROFILE, DD, quiet=True).aggregations["traces"].data
    assert sum(folded.values()) == sum(samples.values())
    assert any(stack[-1] == "kernel`pagezero" for stack in folded)
    assert 'aria-current="true"' in response.text and "@traces by stack (D aggregation)" in response.text
    assert "/trace/export?" in response.text and "flame=%40traces" in response.text


def test_a_flame_graph_of_an_aggregation_that_is_missing_says_so(client):
    response = client.get("/trace/flame", params={"command": DD, "script": LECTURE_PROFILE, "flame": "@nope"})
    assert response.status_code == 400
    assert 'id="trace-flame"' in response.text and "no aggregation @nope" in response.text
    response = client.get("/trace/flame", params={"command": DD, "flame": "@traces"})
    assert response.status_code == 422 and "no D script" in response.text


def test_a_frame_links_to_the_stepper_at_the_first_step_inside_it(client):
    stack = "dd;-;Xpage;trap;trap_pfault;vm_fault;pmap_zero_page"
    response = client.get("/trace/frame", params={"command": DD, "stack": stack})
    assert response.status_code == 200
    link = re.search(r'href="(/scenarios/dd-system-time\?step=(\d+))"', response.text)
    assert link, response.text
    state = Replay(record(RunSpec(DD))).state_at(int(link.group(2)))
    assert state.stack == tuple(stack.split(";")[2:])
    assert state.event.kind == "enter" and state.event.name == "pmap_zero_page"


def test_a_sampled_frame_links_to_the_step_where_its_named_frames_are_on_the_stack(client):
    stack = "kernel`0xffffffff802f1fa0;kernel`trap;kernel`trap_pfault;kernel`vm_fault;kernel`pmap_zero_page"
    params = {"command": DD, "script": LECTURE_PROFILE, "flame": "@traces", "stack": stack}
    response = client.get("/trace/frame", params=params)
    assert response.status_code == 200
    step = int(re.search(r"step=(\d+)", response.text).group(1))
    state = Replay(record(RunSpec(DD))).state_at(step)
    assert state.stack[-4:] == ("trap", "trap_pfault", "vm_fault", "pmap_zero_page")


def test_a_frame_of_a_command_no_scenario_names_opens_the_any_command_stepper(client):
    response = client.get("/trace/frame", params={"command": "getpid 7", "stack": "getpid;user"})
    assert response.status_code == 200
    link = re.search(r'id="frame-step-link" class="button" href="([^"]+)"', response.text)
    assert link and html.unescape(link.group(1)).startswith("/scenarios/command?command=getpid+7&step=")
    page = client.get(html.unescape(link.group(1)))
    assert page.status_code == 200  # the any-command stepping page runs it at that step
    missing = client.get("/trace/frame", params={"command": DD, "stack": "dd;-;nosuchframe"})
    assert missing.status_code == 422 and "no frame" in missing.text


def test_the_differential_flame_graph_colours_junk_fillings_faults_red_and_reads_blue(client):
    response = client.get("/trace/diff", params={"command": JUNK_TRUE, "baseline": JUNK_FALSE})
    assert response.status_code == 200
    data = figure(response.text, "diff-data")  # static/flame.js lays out and colours these stacks
    after = flame_from_run(record(RunSpec(JUNK_TRUE)))
    before = flame_from_run(record(RunSpec(JUNK_FALSE)))
    names = data["names"]
    stacks = {tuple(names[i] for i in indices): value for indices, _, value in data["stacks"]}
    assert stacks == after.stacks, "the widths are the second run's"
    inclusive = {node.stack: node.inclusive for node in before.nodes()}
    for stack in (("dd", "-", "Xpage"), ("dd", "-", "Xfast_syscall")):
        assert data["before"][";".join(stack)] == inclusive[stack], "each frame's time in the first run"
    change = {node.stack: node.inclusive for node in after.nodes()}
    assert change[("dd", "-", "Xpage")] > inclusive[("dd", "-", "Xpage")]  # more time: red
    assert change[("dd", "-", "Xfast_syscall")] < inclusive[("dd", "-", "Xfast_syscall")]  # less time: blue
    assert data["maxChange"] == max(abs(change.get(s, 0) - inclusive.get(s, 0)) for s in {*change, *inclusive} if s)
    assert 'id="diff-flame"' in response.text and 'data-data="diff-data"' in response.text
    # read()'s copyout no longer faults at all: that frame has no width now, so the table lists it as less
    gone = re.findall(r'<tr class="less"><td><code title="([^"]*)">pagezero</code>', response.text)
    assert any("sys_read" in stack and stack not in data["before"] for stack in gone)
    assert client.get("/trace/diff", params={"command": DD}).status_code == 422


# --- downloads ----------------------------------------------------------------------------------------------


def test_each_export_downloads_in_its_format(client):
    for name in ("folded", "speedscope", "chrome"):
        response = client.get("/trace/export", params={"command": "getpid 3", "format": name})
        assert response.status_code == 200, response.text[:300]
        assert response.headers["content-disposition"].startswith('attachment; filename="getpid-')
        if name == "folded":
            check_folded(response.text)
        elif name == "speedscope":
            check_speedscope(response.json())
        else:
            check_chrome(response.json())


def test_an_aggregation_exports_its_samples(client):
    params = {"command": DD, "script": LECTURE_PROFILE, "flame": "@traces", "format": "folded"}
    response = client.get("/trace/export", params=params)
    assert response.status_code == 200
    assert 'filename="dd-' in response.headers["content-disposition"]
    assert "-traces.folded" in response.headers["content-disposition"]
    stacks = check_folded(response.text)
    assert max(stacks, key=stacks.get)[-1] == "kernel`pagezero"


def test_an_unknown_export_format_is_a_422_listing_the_formats(client):
    response = client.get("/trace/export", params={"command": "getpid", "format": "svg"})
    assert response.status_code == 422
    assert "folded, speedscope, chrome" in html.unescape(response.text)
