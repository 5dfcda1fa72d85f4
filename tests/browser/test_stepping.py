"""Stepping the getpid scenario in real Chromium: buttons, keys, the ring change, the URL as the state.

Every test here also fails if the page logs a console error, which is how a Content-Security-Policy violation
shows itself (tests/browser/conftest.py). Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from sim.machine.cpu import KERNEL_CPL, USER_CPL
from sim.run import record
from sim.scenarios.registry import lookup

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
PROJECTOR = {"width": 1280, "height": 720}

pytestmark = pytest.mark.browser_context_args(viewport=PROJECTOR)


@pytest.fixture(scope="module")
def getpid_run():
    return record(lookup("getpid").spec())


@pytest.fixture(scope="module")
def syscall_step(getpid_run) -> int:
    return next(i for i, e in enumerate(getpid_run.events) if e.kind == "insn" and e.name == "syscall")


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=path)
    return path


def open_step(page: Page, step: int | None = None) -> None:
    page.goto("/scenarios/getpid" + ("" if step is None else f"?step={step}"))
    expect(page.locator("#timeline .main-svg").first).to_be_visible()  # Plotly has drawn


def expect_step(page: Page, step: int) -> None:
    expect(page.locator("#step-number")).to_have_text(str(step))
    expect(page).to_have_url(re.compile(rf"/scenarios/getpid\?step={step}$"))


def cursor_ns(page: Page) -> float:
    return float(page.evaluate("document.getElementById('timeline').dataset.cursorNs"))


def test_the_landing_page_opens_the_getpid_scenario(page: Page):
    page.goto("/")
    screenshot(page, "landing.png")
    page.get_by_role("link", name=lookup("getpid").title).click()
    expect(page).to_have_url(re.compile(r"/scenarios/getpid$"))
    expect(page.locator("#ring")).to_contain_text(f"CPL {USER_CPL}")
    expect(page.locator("#step-number")).to_have_text("0")


def test_step_with_the_mouse_and_the_arrow_keys_without_reloading(page: Page):
    open_step(page)
    page.evaluate("window.loadedOnce = true")  # survives only if no step reloads the page
    page.locator("#step-forward").click()
    expect_step(page, 1)
    page.keyboard.press("ArrowRight")
    expect_step(page, 2)
    page.keyboard.press("ArrowRight")
    expect_step(page, 3)
    page.keyboard.press("ArrowLeft")
    expect_step(page, 2)
    page.locator("#step-back").click()
    expect_step(page, 1)
    page.keyboard.press("Home")
    expect_step(page, 0)
    assert page.evaluate("window.loadedOnce") is True, "each step was an htmx swap, not a page load"


def test_the_step_button_keeps_keyboard_focus_across_steps(page: Page):
    open_step(page)
    page.locator("#step-forward").focus()
    page.keyboard.press("Enter")
    expect_step(page, 1)
    expect(page.locator("#step-forward")).to_be_focused()
    page.keyboard.press("Enter")
    expect_step(page, 2)


def test_stepping_over_syscall_changes_the_ring_from_3_to_0(page: Page, getpid_run, syscall_step):
    open_step(page, syscall_step - 1)
    ring = page.locator("#ring")
    expect(ring).to_have_attribute("data-cpl", str(USER_CPL))
    expect(ring).to_contain_text("user mode")
    page.keyboard.press("ArrowRight")
    expect_step(page, syscall_step)
    expect(ring).to_have_attribute("data-cpl", str(KERNEL_CPL))
    expect(ring).to_contain_text(f"CPL {KERNEL_CPL}")
    expect(ring).to_contain_text("kernel mode")
    expect(ring).to_contain_text(f"ring {USER_CPL} → {KERNEL_CPL} at this step")
    expect(page.locator("#event-text code")).to_have_text("syscall")
    cpl_row = page.locator('#registers .value-row[data-name="cpl"]')
    expect(cpl_row).to_have_class(re.compile(r"\bchanged\b"))
    expect(cpl_row).to_contain_text("was 3")
    expect(page.locator('#registers .value-row[data-name="rbx"]')).not_to_have_class(re.compile(r"\bchanged\b"))
    page.wait_for_function(
        f"document.getElementById('timeline').dataset.cursorNs === '{getpid_run.events[syscall_step].t_ns}'"
    )
    screenshot(page, "getpid-syscall-step.png")


def test_inside_sys_getpid_the_stack_and_trapframe_show(page: Page, getpid_run):
    step = next(i for i, e in enumerate(getpid_run.events) if e.kind == "enter" and e.name == "sys_getpid")
    open_step(page, step)
    expect(page.locator("#kernel-stack li.current")).to_contain_text("sys_getpid()")
    expect(page.locator("#kernel-stack")).to_contain_text("amd64_syscall()")
    expect(page.locator('#trapframe .value-row[data-name="tf_rax"]')).to_be_visible()
    screenshot(page, "getpid-sys_getpid.png")


def test_hovering_the_timeline_names_the_ring_and_its_time(page: Page, syscall_step):
    open_step(page, syscall_step)  # the window shows user, kernel (getpid), user
    page.locator("#timeline").evaluate("(el) => el.scrollIntoView({block: 'center'})")  # clear of sticky controls
    plot_area = page.locator("#timeline .nsewdrag").first.bounding_box()
    kernel_band = page.evaluate(  # the middle of getpid's ring-0 band, in page pixels
        """() => { const gd = document.getElementById('timeline'); const ya = gd._fullLayout.yaxis;
          const band = gd.data.find((t) => t.name === 'getpid · pid 1000: ring 0').y.filter((v) => v !== null);
          return gd.getBoundingClientRect().top + ya._offset + ya.l2p((Math.min(...band) + Math.max(...band)) / 2); }"""
    )
    page.mouse.move(plot_area["x"] + plot_area["width"] * 0.5, kernel_band)
    hover = page.locator("#timeline .hoverlayer .hovertext")
    expect(hover.first).to_contain_text(" ns (")
    expect(page.locator("#timeline .hoverlayer")).to_contain_text("getpid · pid 1000: ring 0")


def test_reload_back_and_forward_land_on_the_step_in_the_url(page: Page, getpid_run, syscall_step):
    open_step(page)
    entries = page.evaluate("history.length")
    for step in (1, 2):
        page.keyboard.press("ArrowRight")
        expect_step(page, step)
    assert page.evaluate("history.length") == entries, "a single step replaces the history entry (issue 15.1)"
    page.keyboard.press("s")  # a jump: run to the next system call
    expect_step(page, syscall_step)
    assert page.evaluate("history.length") == entries + 1, "a jump adds one"
    page.reload()
    expect_step(page, syscall_step)
    expect(page.locator("#timeline .main-svg").first).to_be_visible()
    page.go_back()
    expect_step(page, 2)
    page.wait_for_function(f"document.getElementById('timeline').dataset.cursorNs === '{getpid_run.events[2].t_ns}'")
    page.go_forward()
    expect_step(page, syscall_step)
    expect(page).to_have_title(re.compile(rf"step {syscall_step}"))


def test_back_after_single_steps_leaves_the_walk(page: Page):
    page.goto("/")
    page.get_by_role("link", name=lookup("getpid").title).click()
    expect(page.locator("#timeline .main-svg").first).to_be_visible()
    page.keyboard.press("ArrowRight")
    expect_step(page, 1)
    page.keyboard.press("ArrowRight")
    expect_step(page, 2)
    page.go_back()  # the steps replaced the page's entry: Back leaves the scenario
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name="Scenarios")).to_be_visible()
    page.go_forward()
    expect_step(page, 2)


def test_a_copied_link_opens_the_same_step(page: Page, getpid_run, syscall_step, context):
    open_step(page)
    for _ in range(syscall_step):
        page.keyboard.press("ArrowRight")
    expect_step(page, syscall_step)
    copied = page.url
    other = context.new_page()
    other.goto(copied)
    expect(other.locator("#step-number")).to_have_text(str(syscall_step))
    expect(other.locator("#ring")).to_have_attribute("data-cpl", str(KERNEL_CPL))
    other.wait_for_function(
        f"document.getElementById('timeline').dataset.cursorNs === '{getpid_run.events[syscall_step].t_ns}'"
    )


def test_the_last_step_disables_step_and_a_key_press_does_nothing(page: Page, getpid_run):
    last = len(getpid_run.events) - 1
    open_step(page, last)
    expect(page.locator("#step-forward")).to_have_attribute("aria-disabled", "true")
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(200)
    expect_step(page, last)


def test_a_bad_step_in_the_url_shows_a_clear_error_page(page: Page, getpid_run, console_errors):
    page.goto("/scenarios/getpid?step=9999")  # past the end: the last step (issue 15.7)
    expect_step(page, len(getpid_run.events) - 1)
    response = page.goto("/scenarios/getpid?step=two")
    assert response is not None and response.status == 422
    expect(page.locator(".error-page")).to_contain_text("query parameter 'step'")
    screenshot(page, "bad-step.png")
    console_errors.flush()
    errors = console_errors.clear()  # Chromium logs each 4xx document load; they were provoked on purpose
    assert all("status of 4" in error for error in errors), errors


def test_bytes_on_the_wire_first_load_and_per_step(page: Page, context):
    """First load of the stepping page, and one step, measured as Chromium received them (compressed)."""
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    received: dict[str, float] = {}
    urls: dict[str, str] = {}
    cdp.on("Network.responseReceived", lambda e: urls.__setitem__(e["requestId"], e["response"]["url"]))
    cdp.on("Network.loadingFinished", lambda e: received.__setitem__(e["requestId"], e["encodedDataLength"]))
    open_step(page)
    page.wait_for_load_state("networkidle")
    page.keyboard.press("ArrowRight")
    expect_step(page, 1)
    page.wait_for_load_state("networkidle")
    sizes = {urls.get(request, request): size for request, size in received.items()}
    # The browser fetches the icon lazily, so it may arrive after the first step: it belongs to the first load.
    step = {url: size for url, size in sizes.items() if url.endswith("/scenarios/getpid?step=1")}
    first_load = {url: size for url, size in sizes.items() if url not in step}
    figures = {
        "first_load_bytes": int(sum(first_load.values())),
        "first_load": {url.split("/", 3)[-1]: int(size) for url, size in first_load.items()},
        "step_bytes": int(sum(step.values())),
        "step": {url.split("/", 3)[-1]: int(size) for url, size in step.items()},
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "transfer.json").write_text(json.dumps(figures, indent=2) + "\n")
    assert len(step) == 1, f"one request per step: {step}"
    assert any("plotly" in url for url in first_load) and any("htmx" in url for url in first_load), first_load
    assert figures["step_bytes"] < 20_000, figures
    assert figures["first_load_bytes"] < 1_500_000, figures
