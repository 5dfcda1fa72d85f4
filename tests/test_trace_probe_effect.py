"""The trace page's probe-effect panel: the traced run against the same command untraced (system, user and elapsed
time, and the difference), and what fired, by kind, with what each firing cost on the run's machine profile."""

from __future__ import annotations

import html
import re

from sim.kern.dtrace_probe import firing_ns
from sim.machine.profiles import PROFILES
from sim.run import RunSpec, record
from sim.trace.dtrace import run_dtrace
from sim.trace.lecture_scripts import LECTURE_PROFILE, LECTURE_TRAPS

DD = "dd if=/dev/zero of=/dev/null bs=10m count=1"
VM_FAULT = "fbt::vm_fault:entry { @ = count(); }"


def cell(page: str, element_id: str) -> str:
    found = re.search(rf'<td id="{element_id}">([^<]*)</td>', page)
    assert found, f"no cell {element_id}"
    return html.unescape(found.group(1))


def row(page: str, kind: str) -> list[str]:
    found = re.search(rf'<tr id="probe-firings-{kind}">(.*?)</tr>', page, re.S)
    assert found, f"no row for {kind} probes"
    return [html.unescape(c) for c in re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", found.group(1))]


def test_an_fbt_probe_shows_its_firings_and_what_each_cost(client):
    page = client.get("/trace", params={"command": DD, "script": VM_FAULT}).text
    traced = run_dtrace(VM_FAULT, DD, quiet=True).run
    plain = record(RunSpec(DD))
    firings = traced.probe_firings["fbt"]
    each = firing_ns(PROFILES["lecture"])["fbt"]
    assert row(page, "fbt") == ["fbt", f"{firings:,}", f"{each:,} ns", f"{firings * each:,} ns"]
    assert cell(page, "probe-sys-delta").startswith(f"{traced.sys_ns - plain.sys_ns:+,} ns")
    assert traced.sys_ns - plain.sys_ns == firings * each
    assert cell(page, "probe-user-delta") == "+0 ns"
    assert cell(page, "probe-wall-delta").startswith(f"{traced.wall_ns - plain.wall_ns:+,} ns")
    assert "probe-firings-syscall" not in page and "probe-firings-profile" not in page  # only what fired
    assert "All of it is the process" in page


def test_the_lectures_trap_script_lists_both_kinds_it_pays_for(client):
    page = client.get("/trace", params={"command": DD, "script": LECTURE_TRAPS}).text
    traced = run_dtrace(LECTURE_TRAPS, DD, quiet=True).run
    costs = firing_ns(PROFILES["lecture"])
    assert row(page, "syscall")[1] == f"{traced.probe_firings['syscall']:,}"
    assert row(page, "fbt")[1] == f"{traced.probe_firings['fbt']:,}"
    charged = sum(traced.probe_firings[kind] * costs[kind] for kind in ("syscall", "fbt"))
    assert cell(page, "probe-charged") == f"{charged:,} ns"
    assert "<code>int3</code>" in page and "<code>fbt_invop</code>" in page


def test_profile_ticks_show_what_the_process_paid_and_what_the_idle_thread_did(client):
    page = client.get("/trace", params={"command": DD, "script": LECTURE_PROFILE}).text
    traced = run_dtrace(LECTURE_PROFILE, DD, quiet=True).run
    plain = record(RunSpec(DD))
    ticks = traced.probe_firings["profile"]
    each = firing_ns(PROFILES["lecture"])["profile"]
    assert row(page, "profile")[1:] == [f"{ticks:,}", f"{each:,} ns", f"{ticks * each:,} ns"]
    delta = traced.sys_ns - plain.sys_ns
    # dd never leaves the CPU (rtld's files are cached, as on a booted system): every tick is charged to it
    assert delta == ticks * each
    assert "All of it is the process's system time." in html.unescape(" ".join(page.split()))


def test_the_modern_profile_shows_its_own_costs(client):
    page = client.get("/trace", params={"command": DD, "script": VM_FAULT, "profile": "modern"}).text
    assert row(page, "fbt")[2] == f"{firing_ns(PROFILES['modern'])['fbt']:,} ns"


def test_a_program_with_no_costly_probe_says_so(client):
    page = client.get("/trace", params={"command": DD, "script": "BEGIN { @ = count(); }"}).text
    assert 'id="probe-effect"' in page and "probe-firings" not in page
    assert "None of this program's probes fired with a cost here" in page
    assert cell(page, "probe-sys-delta").startswith("+0 ns")


def test_sdt_probes_are_shown_with_their_firings(client):
    page = client.get("/trace", params={"command": DD, "script": "vminfo:::zfod { @ = count(); }"}).text
    assert 'id="probe-firings-sdt"' in page and "sched / proc / io / vminfo" in page
    assert not cell(page, "probe-sys-delta").startswith("+0 ns")


def test_a_tampered_url_gets_a_4xx_naming_what_is_wrong(client):
    unknown = client.get("/trace", params={"command": DD, "script": "fbt::no_such_function:entry { }"})
    assert unknown.status_code == 400
    assert "probe description fbt::no_such_function:entry does not match any probes" in html.unescape(unknown.text)
    too_fast = client.get("/trace", params={"command": DD, "script": "profile-1ns { }"})
    assert too_fast.status_code == 400 and "profile-1ns" in html.unescape(too_fast.text)
    profile = client.get("/trace", params={"command": DD, "script": VM_FAULT, "profile": "fast"})
    assert profile.status_code == 422 and "'profile' must be one of" in html.unescape(profile.text)
    many = client.get("/trace", params={"command": DD, "script": VM_FAULT, "profile": ["lecture", "modern"]})
    assert many.status_code == 422 and "given 2 times" in html.unescape(many.text)
