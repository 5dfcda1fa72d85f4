"""The landing page and the stepping page as HTML: the URL is the state, a step is a small fragment."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from app.views import describe_delta, narrate
from sim.core.events import CopyFault, Invlpg, MapEntry, MapKey, PageState
from sim.core.log import Event
from sim.machine.cpu import KERNEL_CPL, USER_CPL
from sim.scenarios.registry import SCENARIOS
from sim.vm.vm_page import PAGE_FREE, PQ_NONE
from sim.vm.vm_param import VM_INHERIT_COPY, VM_PROT_ALL, VM_PROT_EXECUTE, VM_PROT_READ
from tests.steps import step_of

HTMX = {"HX-Request": "true", "HX-Target": "section#step-panel"}
STEP_WIRE_LIMIT = 20_000  # bytes a step transfers (compressed, as sent): a step must stay small
STEP_FRAGMENT_LIMIT = 40_000  # bytes before compression, every view shown


def attribute(html: str, element_id: str, name: str) -> str:
    tag = re.search(rf'<[a-z]+ id="{element_id}"[^>]*>', html, re.S).group(0)
    return re.search(rf'{name}="([^"]*)"', tag).group(1)


def test_the_landing_page_lists_every_scenario_with_a_link(client):
    page = client.get("/").text
    for scenario in SCENARIOS.values():
        assert f'href="/scenarios/{scenario.slug}"' in page
        assert scenario.title in page.replace("&#39;", "'")


def test_the_stepping_page_opens_at_step_0_in_user_mode(client):
    page = client.get("/scenarios/getpid").text
    assert attribute(page, "step-panel", "data-step") == "0"
    assert f"CPL {USER_CPL}" in page and "user mode" in page
    assert re.search(r'<span id="step-back" class="button" aria-disabled="true"', page), "no Back at the first step"
    assert attribute(page, "step-forward", "hx-get") == "/scenarios/getpid?step=1"


def test_the_page_carries_the_timeline_figure_once_as_json(client, getpid_run):
    page = client.get("/scenarios/getpid?step=3").text
    figure = json.loads(
        re.search(r'<script type="application/json" id="timeline-figure">(.*?)</script>', page, re.S).group(1)
    )
    lane = figure["data"]["lanes"][0]
    assert lane["name"] == "getpid · pid 1000" and lane["c"][:2] == "uk"
    first_change = lane["t"][1]  # delta-encoded from the first stretch's start, 0
    assert first_change == getpid_run.events[step_of(getpid_run, "insn", "syscall")].t_ns
    assert figure["layout"]["shapes"][0]["type"] == "line", "the cursor"


def test_a_step_is_a_small_fragment_that_carries_only_the_cursor_time(client, getpid_run):
    syscall = step_of(getpid_run, "insn", "syscall")
    response = client.get(f"/scenarios/getpid?step={syscall}", headers=HTMX)
    fragment = response.text
    assert response.status_code == 200
    assert "<html" not in fragment and "timeline-figure" not in fragment
    assert len(response.content) < STEP_FRAGMENT_LIMIT
    assert response.headers["content-encoding"] == "gzip"
    assert len(gzip.compress(response.content)) < STEP_WIRE_LIMIT
    assert fragment.lstrip().startswith('<section id="step-panel"')
    assert attribute(fragment, "step-panel", "data-t-ns") == str(getpid_run.events[syscall].t_ns)
    box = re.search(r'<figure id="timeline-box-\w+"[^>]*>\s*</figure>', fragment)
    assert box and "hx-morph-skip" in box[0], "the page morphs the panel in and keeps the timeline drawn"
    assert "hx-preserve" not in box[0], "which hx-preserve would take out of the page and put back at each step"
    assert "<title>" in fragment, "the fragment retitles the page for its history entry"
    assert "HX-Request" in response.headers["vary"], "caches must keep the page and its fragment apart"


def test_the_syscall_step_shows_the_ring_change_and_marks_changed_registers(client, getpid_run):
    fragment = client.get(f"/scenarios/getpid?step={step_of(getpid_run, 'insn', 'syscall')}", headers=HTMX).text
    assert f"CPL {KERNEL_CPL}" in fragment and "kernel mode" in fragment
    assert f"ring {USER_CPL} → {KERNEL_CPL} at this step" in fragment
    assert '<div class="value-row changed" data-name="cpl">' in fragment
    assert '<div class="value-row" data-name="rbx">' in fragment, "an unchanged register is not marked"
    assert "(changed at this step)" in fragment, "the mark is in words too, not only colour"
    assert "<code>syscall</code>" in fragment


def test_inside_sys_getpid_the_kernel_stack_shows_the_path(client, getpid_run):
    fragment = client.get(f"/scenarios/getpid?step={step_of(getpid_run, 'enter', 'sys_getpid')}", headers=HTMX).text
    stack = re.search(r'<ol id="kernel-stack".*?</ol>', fragment, re.S).group(0)
    frames = re.findall(r"<code>(\w+)\(\)</code>", stack)
    assert frames[0] == "sys_getpid", "innermost first"
    assert frames.index("syscallenter") < frames.index("amd64_syscall")
    assert "tf_rax" in fragment, "the trapframe was built before"


def test_the_last_step_has_no_step_forward(client, getpid_run):
    last = len(getpid_run.events) - 1
    fragment = client.get(f"/scenarios/getpid?step={last}", headers=HTMX).text
    assert re.search(r'<span id="step-forward" class="button primary" aria-disabled="true"', fragment)
    assert attribute(fragment, "step-back", "href") == f"/scenarios/getpid?step={last - 1}"
    assert attribute(fragment, "step-reset", "href") == "/scenarios/getpid?step=0"


def test_step_links_keep_the_other_query_parameters(client):
    fragment = client.get("/scenarios/getpid?step=2&views=cpu,source&smap=1", headers=HTMX).text
    assert attribute(fragment, "step-forward", "hx-get") == "/scenarios/getpid?smap=1&amp;views=cpu,source&amp;step=3"


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("step", ["abc", "1.5", "", "0x10", "9" * 40])
def test_a_malformed_step_is_a_422_page_naming_step_and_its_range(client, getpid_run, step):
    response = client.get("/scenarios/getpid", params={"step": step})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    text = response.text.replace("&#39;", "'")
    assert "query parameter 'step'" in text
    assert f"from 0 to {len(getpid_run.events) - 1}" in text


@pytest.mark.parametrize("step", ["-1"])  # past the end is the last step (issue 15.7)
def test_a_step_out_of_range_is_a_404_page_naming_the_range(client, getpid_run, step):
    response = client.get(f"/scenarios/getpid?step={step}")
    assert response.status_code == 404
    assert f"steps 0 to {len(getpid_run.events) - 1}" in response.text


def test_an_unknown_scenario_is_a_404_page_listing_the_scenarios(client):
    response = client.get("/scenarios/fork-bomb")
    assert response.status_code == 404
    assert "fork-bomb" in response.text.replace("&#39;", "'") and "getpid" in response.text
    assert 'href="/"' in response.text


def test_an_htmx_request_for_a_bad_step_gets_a_fragment_that_stands_in_for_its_target(client):
    response = client.get("/scenarios/getpid?step=two", headers=HTMX)
    assert response.status_code == 422
    assert "<html" not in response.text
    assert '<div id="step-panel" class="error-message" role="alert">' in response.text


def test_an_unknown_page_is_a_404_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


# ---------------------------------------------------------------- the words a student reads


def test_every_event_of_the_getpid_run_is_narrated_as_a_sentence(getpid_run):
    for event in getpid_run.events:
        text = narrate(event)
        assert text[0].isupper() or text.startswith(event.name), "code names keep their case: " + text
        assert text.endswith("."), text
        assert event.name in text or event.kind in ("start", "end"), text


def test_an_event_kind_the_views_do_not_know_is_still_narrated():
    text = narrate(Event(5, "tlb", "invlpg", Invlpg(0x1000), (), 1))
    assert "invlpg" in text and "0x1000" in text


def test_deltas_are_described_in_words():
    assert describe_delta(("reg", "cpl", 3, 0)) == "register cpl: 3 → 0"
    assert describe_delta(("reg", "rax", 20, 1000)) == "register rax: 0x14 → 0x3e8"
    assert describe_delta(("thread", 0, 100000)) == "thread on the CPU: 0 → 100000"
    assert describe_delta(("td", "td_retval[0]", 0, 1000)) == "thread td_retval[0]: 0 → 1000"
    assert describe_delta(("td", "pcb_onfault", 0, 0xFFFFFFFF80B24A60)) == (
        "thread pcb_onfault: 0 → 0xffffffff80b24a60"  # a code address: hex, as the CPU view shows %rip
    )
    assert describe_delta(("pte", 0x4006000, 0x4001425, 0)) == (
        "page-table entry at 0x4006000: 0x4001425 (P US A PG_MANAGED) → 0x0 (-)"
    )
    entry = MapEntry(0x200000, 0x202000, VM_PROT_READ | VM_PROT_EXECUTE, VM_PROT_ALL, VM_INHERIT_COPY, 7, 0, 0)
    assert describe_delta(("map", MapKey("pid 1000", 0x200000), entry, None)).endswith("→ removed")
    assert describe_delta(("page", 0x4034, PAGE_FREE, PageState(7, 0, PQ_NONE, False, False))) == (
        "vm_page of frame 0x4034000: free → object 7 pindex 0, none"
    )
    assert describe_delta(("page", "zeroed")) == "page: zeroed"


def test_a_copy_routines_error_path_is_not_narrated_as_a_flagged_hook():
    refused = CopyFault("copyout", 0xFFFFFFFF80000000, 16, write=True, in_range=False)
    text = narrate(Event(9, "hook", "copyout_fault", refused, (), 3))
    assert "error path" in text and "flag" not in text
    assert "VM_MAXUSER_ADDRESS" in text


def test_a_step_past_the_end_is_the_last_step(client):
    """Issue 15.7: a link made for a longer run, or a typo, opens the last step, and the URL names it."""
    page = client.get("/scenarios/getpid?step=100000", follow_redirects=False)
    assert page.status_code == 303
    last = int(client.get(page.headers["location"]).text.split('data-last-step="', 1)[1].split('"', 1)[0])
    assert page.headers["location"] == f"/scenarios/getpid?step={last}"
    panel = client.get("/scenarios/getpid?step=100000", headers=HTMX)
    assert panel.status_code == 200 and f'data-step="{last}"' in panel.text
    assert panel.headers["HX-Push-Url"] == f"/scenarios/getpid?step={last}"


def test_a_bad_command_keeps_the_usage_lines_and_the_form(client):
    """Issue 15.7: the usage is shown line by line (the page keeps the message's newlines) under a form to retry."""
    response = client.get("/scenarios/command?command=ipc-static+-z")
    assert response.status_code == 400
    assert "illegal option -- z\nusage: ipc-static" in response.text
    assert '<input id="retry-command" name="command" value="ipc-static -z"' in response.text


def test_oembed_answers_the_iframe_snippet_of_a_stepping_url(client):
    """Issue 15.5: the same snippet as the page's "Embed code" dialog, sized to the consumer's bounds."""
    answer = client.get("/oembed", params={"url": "http://h/scenarios/getpid?step=4&views=cpu,source", "maxwidth": 480})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["type"], body["version"], body["width"], body["height"]) == ("rich", "1.0", 480, 270)
    assert body["html"].startswith(
        '<iframe src="http://testserver/scenarios/getpid?step=4&amp;views=cpu,source&amp;embed=1"'
    )
    assert 'title="trapscope: getpid(): a system call as a trap"' in body["html"]
    assert client.get("/oembed", params={"url": "/api/scenarios"}).status_code == 422
    assert client.get("/oembed", params={"url": "http://["}).status_code == 422
    assert client.get("/oembed", params={"url": "/scenarios/nope"}).status_code == 404
    assert client.get("/oembed", params={"url": "/scenarios/getpid", "format": "xml"}).status_code == 501
