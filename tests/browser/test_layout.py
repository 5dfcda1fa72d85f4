"""The stepping page's layout on a projector, a laptop and a phone (issue 15.2; issue 12, "Presenting" 3).

- Projector mode at 1280x720: every stop of every scenario, walked with PageDown in one page, shows the ring
  badge, the narrative and the stop's own view inside the viewport, with no console error (the fixture's guard);
  secondary text is at least 20 px.
- Laptop (1366x768): the controls and the ring badge stay in view when the page scrolls (sticky), and no view moves
  when a step changes what is above it.
- Phone (390x844): nothing overflows horizontally; one view at a time, picked with the buttons above the views.
Screenshots go to tests/artifacts/layout/ (every stop's, to look at).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from sim.scenarios.registry import SCENARIOS

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "layout"
PROJECTOR = {"width": 1280, "height": 720}
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
VIEW_ELEMENTS = {
    "narrative": "#narrative",
    "timeline": "#timeline",
    "cpu": "#registers",
    "source": "#source",
    "walk": "#walk",
    "vm": "#vm",
    "latency": "#latency",
}
CARDS = ("#timeline", "#registers", "#source", "#walk", "#vm", "#latency")


# Elements that hold text of their own, are shown, and are set under 20 px (Plotly's SVG text apart).
SMALL_TEXT = """() => [...document.querySelectorAll('#step-panel *')]
  .filter((e) => e.getClientRects().length)
  .filter((e) => [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()))
  .filter((e) => !e.closest('svg, .visually-hidden') && parseFloat(getComputedStyle(e).fontSize) < 20)
  .map((e) => `${e.tagName}.${e.className}: ${getComputedStyle(e).fontSize} ${e.textContent.trim().slice(0, 30)}`)"""


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / name)


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("html[data-ready=true]")).to_have_count(1)


def box_of(page: Page, selector: str) -> dict | None:
    return page.evaluate(
        """(selector) => {
          const element = document.querySelector(selector);
          if (!element || !element.getClientRects().length) return null;
          const r = element.getBoundingClientRect();
          return { top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height };
        }""",
        selector,
    )


def inside_viewport(page: Page, selector: str) -> bool:
    box = box_of(page, selector)
    size = page.viewport_size
    return (
        box is not None
        and box["height"] > 0
        and box["top"] >= 0
        and box["bottom"] <= size["height"]
        and box["left"] >= 0
        and box["right"] <= size["width"]
    )


def horizontal_overflow(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


@pytest.mark.browser_context_args(viewport=PROJECTOR)
def test_every_stop_of_every_scenario_shows_its_view_in_projector_mode(page: Page):
    walked = 0
    for slug, scenario in SCENARIOS.items():
        if not scenario.stops:
            continue
        open_page(page, f"/scenarios/{slug}?mode=projector")  # as a lecturer starts: the first step, then PageDown
        panel = page.locator("#step-panel")
        if panel.get_attribute("data-stop") is None:
            page.keyboard.press("PageDown")
        number = 1
        while True:
            expect(panel).to_have_attribute("data-stop", re.compile(r".+"))
            view = panel.get_attribute("data-stop-view")
            where = f"{slug} stop {number} ({panel.get_attribute('data-stop')}, view {view})"
            assert view in VIEW_ELEMENTS, where
            shot(page, f"{slug}-stop-{number}.png")
            for selector in ("#ring", "#narrative", VIEW_ELEMENTS[view]):
                assert inside_viewport(page, selector), f"{where}: {selector} is not inside the 1280x720 viewport"
            assert horizontal_overflow(page) <= 0, where
            walked += 1
            if page.locator("a#stop-next").count() == 0:
                break
            step = panel.get_attribute("data-step")
            page.keyboard.press("PageDown")
            expect(page.locator("#step-panel")).not_to_have_attribute("data-step", step)
            number += 1
    assert walked >= 20, f"only {walked} stops walked"


@pytest.mark.browser_context_args(viewport=PROJECTOR)
def test_projector_mode_secondary_text_is_at_least_20_px(page: Page):
    open_page(page, "/scenarios/getpid?mode=projector&stop=2")
    for view in ("timeline", "cpu", "source"):
        page.locator(f"[data-focus-view={view}]").click()
        small = page.evaluate(SMALL_TEXT)
        assert small == [], f"text under 20 px with the {view} view: {small[:8]}"


@pytest.mark.browser_context_args(viewport=PROJECTOR)
def test_the_next_view_key_and_buttons_show_one_view_at_a_time(page: Page):
    open_page(page, "/scenarios/getpid?mode=projector&stop=2")
    expect(page.locator("#registers")).to_be_visible()
    expect(page.locator("#source")).to_be_hidden()
    page.keyboard.press("v")
    expect(page.locator("#source")).to_be_visible()
    expect(page.locator("#registers")).to_be_hidden()
    expect(page.locator("[data-focus-view=source]")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("ArrowRight")  # the choice is kept across steps that are not stops
    expect(page.locator("#source")).to_be_visible()
    page.locator("[data-focus-view=timeline]").click()
    expect(page.locator("#timeline .main-svg").first).to_be_visible()
    assert inside_viewport(page, "#timeline")


@pytest.mark.parametrize("viewport", [PROJECTOR, LAPTOP, PHONE], ids=["1280x720", "1366x768", "390x844"])
def test_nothing_overflows_horizontally(new_context, viewport):
    page = new_context(viewport=viewport).new_page()
    for url in (
        "/",
        "/scenarios/getpid?step=8",
        "/scenarios/dd-system-time?step=6266",
        "/scenarios/getpid?mode=projector",
    ):
        page.goto(url)
        page.wait_for_load_state("load")
        assert horizontal_overflow(page) <= 0, f"{url} at {viewport}: {horizontal_overflow(page)} px too wide"
    shot(page, f"dd-{viewport['width']}x{viewport['height']}.png")


@pytest.mark.browser_context_args(viewport=LAPTOP)
def test_the_controls_and_the_ring_badge_stay_in_view_on_a_laptop(page: Page):
    open_page(page, "/scenarios/dd-system-time?step=6266")
    page.mouse.wheel(0, 1500)
    page.wait_for_function("window.scrollY > 1000")
    for selector in ("#ring", "#step-forward", "#scrubber-range"):
        box = box_of(page, selector)
        assert box is not None and 0 <= box["top"] and box["bottom"] <= 200, f"{selector} scrolled away: {box}"
    page.keyboard.press("ArrowRight")
    expect(page.locator("#step-number")).to_have_text("6267")
    shot(page, "laptop-scrolled.png")


@pytest.mark.browser_context_args(viewport=LAPTOP)
def test_no_view_moves_when_a_step_changes_what_is_above_it(page: Page):
    open_page(page, "/scenarios/getpid?step=2")  # the syscall: 0 to 10 changes a step, narratives of 1-2 lines
    tops = {selector: box_of(page, selector)["top"] for selector in CARDS}
    counts = set()
    for step in range(3, 16):
        page.keyboard.press("ArrowRight")
        expect(page.locator("#step-number")).to_have_text(str(step))
        counts.add(page.locator(".changes summary").inner_text())
        moved = {s: (tops[s], box_of(page, s)["top"]) for s in CARDS if abs(box_of(page, s)["top"] - tops[s]) > 0.5}
        assert not moved, f"step {step}: views moved {moved}"
    assert len(counts) > 2, f"the steps walked should change the 'changed' list's length: {counts}"


@pytest.mark.browser_context_args(viewport=PHONE)
def test_a_phone_shows_the_ring_the_narrative_and_one_view(page: Page):
    open_page(page, "/scenarios/getpid?step=9")  # not a stop: the first view shown is proposed
    shown = [s for s in CARDS if box_of(page, s) is not None]
    assert shown == ["#timeline"], f"one view at a time on a phone: {shown}"
    page.locator("[data-focus-view=cpu]").click()
    shown = [s for s in CARDS if box_of(page, s) is not None]
    assert shown == ["#registers"], shown
    ring, narrative, cpu = (box_of(page, s) for s in ("#ring", "#narrative", "#registers"))
    assert ring["bottom"] <= narrative["top"] <= cpu["top"], "ring, then narrative, then the chosen view"
    assert horizontal_overflow(page) <= 0
    shot(page, "phone-cpu.png")


@pytest.mark.browser_context_args(viewport=LAPTOP)
def test_a_step_changes_only_what_changed_and_views_off_screen_wait(page: Page):
    """A step's panel is morphed into the page (issue 15.1): the timeline keeps its drawing (not taken out of the page
    and put back), a view scrolled inside keeps its place, and a view off screen is not rendered until seen."""
    open_page(page, "/scenarios/getpid?step=24")  # in syscallenter for two steps, taller than its box
    page.locator("#source").scroll_into_view_if_needed()
    page.evaluate(
        """() => {
          window.timelineMoves = 0;
          const box = document.querySelector('.timeline-box');
          new MutationObserver((records) => {
            window.timelineMoves += records.filter((r) => [...r.removedNodes].includes(box)).length;
          })
            .observe(box.parentNode, { childList: true });
          window.drawing = document.querySelector('#timeline .main-svg');
          window.forward = document.getElementById('step-forward');
          document.getElementById('source').scrollTop = 60;
        }"""
    )
    assert page.evaluate("document.getElementById('source').scrollTop") > 0, "the source view scrolls inside"
    scrolled = page.evaluate("document.getElementById('source').scrollTop")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#step-number")).to_have_text("25")
    assert page.evaluate("document.querySelector('#timeline .main-svg') === window.drawing"), "the timeline redrawn"
    assert page.evaluate("document.getElementById('step-forward') === window.forward"), "the controls replaced"
    assert page.evaluate("document.getElementById('step-forward').getAttribute('hx-get')").endswith("step=26")
    assert page.evaluate("window.timelineMoves") == 0, "the timeline's box was taken out and put back"
    assert page.evaluate("document.getElementById('source').scrollTop") == scrolled, "the source view jumped"
    page.evaluate("window.scrollTo(0, 0)")
    below = "#latency"
    assert not inside_viewport(page, below)
    assert page.evaluate(f"getComputedStyle(document.querySelector('{below}')).contentVisibility") == "auto"


@pytest.mark.browser_context_args(viewport=PHONE)
def test_a_bad_commands_error_page_fits_a_phone(page: Page, console_errors):
    page.goto("/scenarios/command?command=ipc-static+-z")  # a usage, column-aligned, and the form to run again
    expect(page.locator(".retry-form input")).to_be_visible()
    assert horizontal_overflow(page) <= 0, f"{horizontal_overflow(page)} px too wide"
    shot(page, "phone-error-page.png")
    console_errors.flush()  # Chromium logs the page's 400, provoked on purpose; any other error stays
    console_errors.errors = [e for e in console_errors.clear() if "status of 400" not in e]
