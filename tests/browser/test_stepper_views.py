"""The full stepper in real Chromium: every control by key and by mouse, breakpoints, the scrubber, the timeline's
click-to-jump, the parameters form, the modes, the views, and screenshots of dd at its first demand-zero fault.

Each test also fails if the page logs a console error (tests/browser/conftest.py), which is how a broken figure
or a Content-Security-Policy violation shows itself. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from sim.run import record
from sim.scenarios.registry import lookup

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
PROJECTOR = {"width": 1280, "height": 720}
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.browser_context_args(viewport=PROJECTOR)


@pytest.fixture(scope="module")
def getpid_run():
    return record(lookup("getpid").spec())


@pytest.fixture(scope="module")
def dd_run():
    return record(lookup("dd-system-time").spec())


@pytest.fixture(scope="module")
def first_zero_fill(dd_run) -> int:
    return next(i for i, e in enumerate(dd_run.events) if e.kind == "fault" and e.name == "zero_fill")


def frames_after(event) -> int:
    return event.depth - (event.kind == "exit")


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("html")).to_have_attribute("data-ready", "true")  # static/trapscope.js has bound the keys
    if page.locator("#timeline").count():
        expect(page.locator("#timeline .main-svg").first).to_be_visible()  # Plotly has drawn


def step_number(page: Page) -> int:
    return int(page.locator("#step-panel").get_attribute("data-step"))


def expect_step(page: Page, step: int) -> None:
    expect(page.locator("#step-panel")).to_have_attribute("data-step", str(step))
    expect(page).to_have_url(re.compile(rf"[?&]step={step}(&|$)"))


def target(page: Page, control: str) -> int:
    href = page.locator(f"#{control}").get_attribute("href")
    return int(re.search(r"[?&]step=(\d+)", href).group(1))


def screenshot(page: Page, name: str, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=path, full_page=full_page)
    return path


# ---------------------------------------------------------------- every control, by key and by button


@pytest.mark.parametrize(
    ("key", "control"),
    [
        ("ArrowRight", "step-forward"),
        ("l", "step-forward"),
        ("ArrowLeft", "step-back"),
        ("n", "step-over"),
        ("u", "step-out"),
        ("s", "run-syscall"),
        ("t", "run-trap"),
        ("f", "run-fault"),
        ("r", "run-ring"),
        ("End", "run-end"),
        ("Home", "step-reset"),
    ],
)
def test_each_control_has_a_key_that_goes_where_its_button_points(page: Page, dd_run, key, control):
    start = next(i for i, e in enumerate(dd_run.events) if e.kind == "skip" and e.name == "ktrsyscall")
    open_page(page, f"/scenarios/dd-system-time?step={start}")
    page.evaluate("window.notReloaded = true")
    destination = target(page, control)
    page.keyboard.press(key)
    expect_step(page, destination)
    assert page.evaluate("window.notReloaded") is True, "an htmx swap, not a page load"


def test_each_control_button_works_with_the_mouse(page: Page, dd_run):
    open_page(page, "/scenarios/dd-system-time?step=0")
    for control in ("run-syscall", "step-forward", "step-over", "step-out", "run-ring", "run-trap", "step-back",
                    "run-fault", "run-end", "step-reset"):  # fmt: skip
        destination = target(page, control)
        page.locator(f"#{control}").click()
        expect_step(page, destination)


def test_step_over_and_out_skip_exactly_the_nested_frames(page: Page, dd_run):
    syscall = next(i for i, e in enumerate(dd_run.events) if e.kind == "insn" and e.name == "syscall")
    open_page(page, f"/scenarios/dd-system-time?step={syscall}")
    page.keyboard.press("n")
    landing = (
        syscall
        + 1
        + next(
            i
            for i, e in enumerate(dd_run.events[syscall + 1 :])
            if frames_after(e) <= frames_after(dd_run.events[syscall])
        )
    )
    expect_step(page, landing)
    enter = next(i for i, e in enumerate(dd_run.events) if e.kind == "enter" and e.name == "syscallenter")
    open_page(page, f"/scenarios/dd-system-time?step={enter + 1}")
    out = next(i for i, e in enumerate(dd_run.events) if e.kind == "exit" and e.name == "syscallenter")
    page.keyboard.press("u")
    expect_step(page, out)
    assert all(frames_after(e) >= frames_after(dd_run.events[enter]) for e in dd_run.events[enter + 1 : out])


def step_number_after(page: Page) -> int:
    expect(page).to_have_url(re.compile(r"step=\d+"))
    page.wait_for_load_state("networkidle")
    return step_number(page)


def test_run_to_fault_lands_on_the_fault_and_the_views_show_it(page: Page, dd_run, first_zero_fill):
    open_page(page, "/scenarios/dd-system-time")
    first_fault = next(i for i, e in enumerate(dd_run.events) if e.kind == "fault")
    page.keyboard.press("f")
    expect_step(page, first_fault)
    expect(page.locator("#event-text .event-kind")).to_have_text("fault")
    expect(page.locator("#walk .walk-summary")).to_contain_text("page fault")
    expect(page.locator("#walk .level-chip")).to_have_count(4)
    expect(page.locator("#vm .fault-counts")).to_contain_text("Page faults so far: 1")
    expect(page.locator("#source-heading code")).to_have_text("vm_fault")


def test_a_breakpoint_typed_in_stops_the_run_at_that_function(page: Page, dd_run):
    open_page(page, "/scenarios/dd-system-time")
    page.keyboard.press("b")
    expect(page.locator("#breakpoint-input")).to_be_focused()
    page.keyboard.type("pmap_zero_page")
    page.keyboard.press("Enter")
    expect(page.locator(".breakpoint-list")).to_contain_text("pmap_zero_page()")
    expect(page).to_have_url(re.compile(r"bp=pmap_zero_page"))
    page.keyboard.press("End")
    hit = next(i for i, e in enumerate(dd_run.events) if e.kind == "enter" and e.name == "pmap_zero_page")
    expect_step(page, hit)
    expect(page.locator("#stopped-by")).to_contain_text("breakpoint: pmap_zero_page()")
    page.locator(".bp-remove").click()
    expect(page.locator(".breakpoint-list")).to_have_count(0)
    expect_step(page, hit)


def test_the_scrubber_moves_through_the_whole_run(page: Page, getpid_run):
    open_page(page, "/scenarios/getpid?step=3")
    page.keyboard.press("g")
    expect(page.locator("#scrubber-range")).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect_step(page, 4)
    expect(page.locator("#scrubber-range")).to_be_focused()
    page.keyboard.press("End")
    expect_step(page, len(getpid_run.events) - 1)
    page.locator("#scrubber-range").evaluate(
        "(r) => { r.value = 7; r.dispatchEvent(new Event('change', {bubbles: true})) }"
    )
    expect_step(page, 7)


def test_clicking_the_timeline_jumps_to_the_step_at_that_time(page: Page, getpid_run):
    open_page(page, "/scenarios/getpid?step=0&views=timeline")
    page.locator("#timeline").scroll_into_view_if_needed()
    box = page.locator("#timeline .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5)
    expect(page.locator("#step-panel")).not_to_have_attribute("data-step", "0")
    step = step_number(page)
    t = int(page.locator("#step-panel").get_attribute("data-t-ns"))
    window = [int(n) for n in page.locator("#step-panel").get_attribute("data-window").split()]
    assert window[0] <= t <= window[1]
    assert re.search(rf"[?&]step={step}$", page.url), "the canonical URL is pushed, not ?at="


def test_the_url_round_trips_through_reload_and_history(page: Page):
    open_page(page, "/scenarios/getpid?step=2&views=cpu,source&bp=sys_getpid")
    page.keyboard.press("ArrowRight")
    expect_step(page, 3)
    assert "views=cpu,source" in page.url and "bp=sys_getpid" in page.url
    page.keyboard.press("3")  # toggles the CPU view off
    expect(page.locator("#registers")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"views=source&"))
    page.reload()
    expect_step(page, 3)
    expect(page.locator("#registers")).to_have_count(0)
    expect(page.locator("#source")).to_be_visible()
    page.go_back()  # to before the view toggle; the single step before it replaced its entry (issue 15.1)
    expect(page.locator("#registers")).to_be_visible()
    expect_step(page, 3)


def test_projector_mode_is_a_toggle_and_a_url_flag(page: Page, first_zero_fill):
    open_page(page, f"/scenarios/dd-system-time?step={first_zero_fill}")
    page.keyboard.press("p")
    expect(page.locator("#stepper")).to_have_class(re.compile(r"\bprojector\b"))
    expect(page).to_have_url(re.compile(r"mode=projector"))
    expect(page.locator("#registers")).to_have_count(0)  # the scenario's own views: narrative, timeline, walk, ...
    expect(page.locator("#walk")).to_be_visible()
    expect(page.locator("#timeline .main-svg").first).to_be_visible()
    font = page.locator("#event-text").evaluate("(e) => parseFloat(getComputedStyle(e).fontSize)")
    assert font >= 26, "large type"
    screenshot(page, "dd-first-zero-fill-projector.png")
    page.keyboard.press("p")
    expect(page.locator("#stepper")).not_to_have_class(re.compile(r"\bprojector\b"))


def test_embed_mode_runs_inside_an_iframe_of_another_page(page: Page, live_server):
    # the lecture's slides, from another origin (localhost, not 127.0.0.1): a page Playwright serves itself
    slides = live_server.replace("127.0.0.1", "localhost") + "/slides/lecture4.html"
    deck = (
        '<!doctype html><title>slides</title><iframe id="f" width="1200" height="650" '
        f'src="{live_server}/scenarios/getpid?embed=1&step=4"></iframe>'
    )
    page.route(slides, lambda route: route.fulfill(body=deck, content_type="text/html"))
    # A page Playwright served counts as public, so Chromium would refuse it the loopback server (Private Network
    # Access); fetch the app's responses through Playwright instead, headers (CSP frame-ancestors) unchanged.
    page.route(f"{live_server}/**", lambda route: route.fulfill(response=route.fetch()))
    page.goto(slides)
    frame = page.frame_locator("#f")
    expect(frame.locator("#step-panel")).to_have_attribute("data-step", "4")
    expect(frame.locator(".site-header")).to_have_count(0)
    frame.locator("#step-forward").click()
    expect(frame.locator("#step-panel")).to_have_attribute("data-step", "5")


def test_a_parameter_change_starts_a_new_run_without_a_page_load(page: Page):
    open_page(page, "/scenarios/dd-system-time")
    page.evaluate("window.notReloaded = true")
    old_run = page.locator("#stepper").get_attribute("data-run-id")
    page.locator(".params summary").click()
    page.locator('#params-form input[name="bs"]').fill("64k")
    page.locator('#params-form select[name="malloc_conf"]').select_option("junk:false")
    page.locator("#params-run").click()
    expect(page).to_have_url(re.compile(r"bs=64k&malloc_conf=junk:false"))
    expect(page.locator("#stepper")).not_to_have_attribute("data-run-id", old_run)
    expect(page.locator(".params .command")).to_contain_text(
        "MALLOC_CONF=junk:false dd if=/dev/zero of=/dev/null bs=64k"
    )
    expect(page.locator("#timeline .main-svg").first).to_be_visible()
    expect_step(page, 0)
    assert page.evaluate("window.notReloaded") is True
    page.keyboard.press("f")
    expect(page.locator("#event-text .event-kind")).to_have_text("fault")


def test_a_bad_parameter_shows_its_message_in_place(page: Page, console_errors):
    open_page(page, "/scenarios/dd-system-time")
    page.locator(".params summary").click()
    page.locator('#params-form input[name="bs"]').fill("64g")
    page.locator("#params-run").click()
    expect(page.locator(".error-message")).to_contain_text("query parameter 'bs'")
    console_errors.flush()
    errors = console_errors.clear()  # Chromium logs the 422 response; it was provoked on purpose
    assert all("status of 422" in error for error in errors), errors


def test_the_help_overlay_lists_the_keys_and_closes_with_escape(page: Page):
    open_page(page, "/scenarios/getpid")
    page.keyboard.press("?")
    help_dialog = page.locator("#help")
    expect(help_dialog).to_be_visible()
    for key in ("← or h", "→ or l", "n", "u", "s", "t", "f", "r", "End or e", "Home or 0", "p", "g", "b", "d", "Ctrl"):
        expect(help_dialog.locator("kbd", has_text=re.compile(rf"^{re.escape(key)}$")).first).to_be_visible()
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()


def test_the_page_is_usable_from_the_keyboard_alone(page: Page):
    open_page(page, "/scenarios/getpid")
    page.keyboard.press("Tab")
    for _ in range(40):
        if page.evaluate("document.activeElement.id") == "step-forward":
            break
        page.keyboard.press("Tab")
    expect(page.locator("#step-forward")).to_be_focused()
    page.keyboard.press("Enter")
    expect_step(page, 1)
    expect(page.locator("#step-forward")).to_be_focused()


def test_the_stepper_fits_a_phone_screen(browser, live_server, first_zero_fill, console_errors):
    context = browser.new_context(viewport=PHONE, base_url=live_server)
    console_errors.watch_context(context)
    page = context.new_page()
    open_page(page, f"/scenarios/dd-system-time?step={first_zero_fill}")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than the phone"
    page.locator("#step-forward").click()
    expect_step(page, first_zero_fill + 1)
    screenshot(page, "dd-first-zero-fill-phone.png")
    context.close()


def test_screenshots_of_dd_at_its_first_demand_zero_fault(page: Page, first_zero_fill):
    open_page(page, f"/scenarios/dd-system-time?step={first_zero_fill}")
    expect(page.locator("#latency-chart .main-svg").first).to_be_visible()
    screenshot(page, "dd-first-zero-fill.png")
    screenshot(page, "dd-first-zero-fill-full.png", full_page=True)
    open_page(page, f"/scenarios/dd-system-time?step={first_zero_fill}&views=narrative,walk,vm&mode=projector")
    screenshot(page, "dd-first-zero-fill-projector-vm.png")
