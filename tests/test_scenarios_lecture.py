"""The lecture's system-call scenarios as stepping pages: each opens, and at its key step the narrative (or the CPU
view) shows what the lecture claims: fork's two returns, EINTR and ERESTART, EFAULT from copyout, the syncer's
late disk write, EINPROGRESS, and clock_gettime with no trap."""

from __future__ import annotations

import html
import re

import pytest

from sim.kern.kernel import Kernel
from sim.kern.ksyms import libc_symbol
from sim.narrative import detail as event_detail
from sim.replay import Replay
from sim.scenarios.registry import SCENARIOS, lookup
from tests.steps import scenario_run

PANEL = {"HX-Request": "true", "HX-Target": "section#step-panel"}
LECTURE_SCENARIOS = (
    "eintr",
    "eintr-restart",
    "fork-returns-twice",
    "exit-never-returns",
    "pthread-create",
    "setcontext",
    "write-file",
    "aio-write",
    "clock-gettime-vdso",
    "read-kernel-pointer",
)


def first_step(slug: str, kind: str, name: str, detail: str = "") -> int:
    return next(
        i
        for i, e in enumerate(scenario_run(slug).events)
        if e.kind == kind and e.name == name and detail in event_detail(e)
    )


def narrative(client, slug: str, step: int, views: str = "narrative") -> str:
    response = client.get(f"/scenarios/{slug}?step={step}&views={views}", headers=PANEL)
    assert response.status_code == 200, response.text[:500]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


@pytest.mark.parametrize("slug", LECTURE_SCENARIOS)
def test_each_lecture_scenario_page_opens_with_its_question(client, slug):
    response = client.get(f"/scenarios/{slug}")
    assert response.status_code == 200
    assert SCENARIOS[slug].slide, "the landing page groups scenarios by slide"
    assert lookup(slug).lecture_point in html.unescape(response.text)


def test_the_landing_page_groups_the_scenarios_by_lecture_slide(client):
    page = html.unescape(client.get("/").text)
    headings = re.findall(r'<h2 class="slide-heading">(.*?)</h2>', page)
    assert headings[:3] == ["Slide: System calls", "Slide: System-call synchrony", "Slide: System-call asynchrony"]
    assert page.index("fork() returns ... twice") < page.index("write(): done, but not on the disk yet")


def test_fork_page_shows_the_child_returning_with_0_in_rax(client):
    run, fork_stub = scenario_run("fork-returns-twice"), libc_symbol("fork") + 10
    replay = Replay(run)
    child = next(
        i for i, e in enumerate(run.events)
        if e.name == "iretq" and replay.state_at(i).registers["rip"] == fork_stub
        and replay.state_at(i).tid != Kernel.FIRST_TID
    )  # fmt: skip
    page = client.get(f"/scenarios/fork-returns-twice?step={child}&views=narrative,cpu", headers=PANEL).text
    assert "iretq" in page
    assert re.search(r'data-name="rax">\s*<dt>rax</dt>\s*<dd><code class="value">0x0</code>', page)


def test_eintr_page_shows_errno_4_with_the_carry_set_and_cerror_storing_it(client):
    assert "tf_rax = errno 4, carry set" in narrative(client, "eintr", first_step("eintr", "sysret", "error"))
    assert "errno = 4" in narrative(client, "eintr", first_step("eintr", "user", "cerror"))


def test_eintr_restart_page_shows_the_syscall_backed_up_to_run_again(client):
    step = first_step("eintr-restart", "sysret", "ERESTART")
    assert "the syscall instruction runs again" in narrative(client, "eintr-restart", step)


def test_read_kernel_pointer_page_shows_copyout_refusing_and_errno_14(client):
    step = first_step("read-kernel-pointer", "hook", "copyout_fault")
    assert "0xffffffff80000000 + 16 is above VM_MAXUSER_ADDRESS: return EFAULT" in narrative(
        client, "read-kernel-pointer", step
    )
    assert "errno = 14" in narrative(client, "read-kernel-pointer", first_step("read-kernel-pointer", "user", "cerror"))


def test_write_file_page_shows_the_syncers_disk_write(client):
    step = first_step("write-file", "mem", "g_io_request")
    assert "disk write of /tmp/lecture4" in narrative(client, "write-file", step)


def test_aio_write_page_shows_aio_error_answering_einprogress(client):
    step = first_step("aio-write", "sysret", "success", "tf_rax = 36")
    assert step < first_step("aio-write", "proc", "aio_complete")
    assert "tf_rax = 36" in narrative(client, "aio-write", step)


def test_clock_gettime_page_shows_the_vdso_read_without_a_trap(client):
    step = first_step("clock-gettime-vdso", "user", "__vdso_clock_gettime")
    assert "no trap" in narrative(client, "clock-gettime-vdso", step)
