"""A lecturer's keys in projector mode: PageDown (a clicker) walks a scenario's stops, and `b` opens the breakpoint
field so that what is typed goes into it, not to the step keys."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from sim.run import record
from sim.scenarios.registry import lookup
from sim.scenarios.stops import resolve_stops

pytestmark = pytest.mark.browser_context_args(viewport={"width": 1280, "height": 720})


@pytest.fixture(scope="module")
def getpid_stops():
    return resolve_stops(lookup("getpid").stops, record(lookup("getpid").spec()).events)


def open_projector(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("html[data-ready=true]")).to_have_count(1)


def test_pagedown_walks_the_stops_and_pageup_goes_back(page: Page, getpid_stops):
    open_projector(page, "/scenarios/getpid?mode=projector")
    for stop in getpid_stops:
        page.keyboard.press("PageDown")
        expect(page.locator("#step-number")).to_have_text(str(stop.step))
        expect(page).to_have_url(re.compile(rf"stop={stop.name}&step={stop.step}$"))
        expect(page.locator("#stop-caption")).to_contain_text(stop.caption)
        expect(page.locator(f"#step-panel[data-stop-view={stop.view}]")).to_have_count(1)
    page.keyboard.press("PageUp")
    expect(page.locator("#step-number")).to_have_text(str(getpid_stops[-2].step))


def test_b_focuses_the_breakpoint_field_in_projector_mode(page: Page, getpid_stops):
    step = getpid_stops[0].step
    open_projector(page, f"/scenarios/getpid?mode=projector&step={step}")
    page.keyboard.press("b")
    expect(page.locator("#breakpoint-input")).to_be_focused()
    expect(page.locator("#breakpoint-input")).to_be_visible()
    page.keyboard.type("zero_read")  # e, r and d are step keys: they must go into the field
    expect(page.locator("#breakpoint-input")).to_have_value("zero_read")
    expect(page.locator("#step-number")).to_have_text(str(step))
    page.keyboard.press("Enter")
    expect(page.locator(".breakpoint-list")).to_contain_text("zero_read()")
    expect(page.locator("#step-number")).to_have_text(str(step))


def test_a_stop_url_typed_or_reloaded_shows_the_stop_s_view(page: Page):
    """A lecturer who types `?stop=` (or reloads a stop's page) sees the stop's view, as PageDown would show it:
    mmap-file's first-touch stop is told by the cpu view, which projector mode does not show by default."""
    scenario = lookup("mmap-file")
    stop = next(s for s in resolve_stops(scenario.stops, record(scenario.spec()).events) if s.view == "cpu")
    open_projector(page, f"/scenarios/mmap-file?mode=projector&stop={stop.name}")
    expect(page).to_have_url(re.compile(rf"stop={stop.name}&step={stop.step}$"))
    expect(page.locator("#step-panel[data-stop-view=cpu]")).to_have_count(1)
    expect(page.locator("#registers")).to_be_visible()
    page.reload()
    expect(page.locator("html[data-ready=true]")).to_have_count(1)
    expect(page.locator("#registers")).to_be_visible()
    expect(page.locator("#toggle-cpu")).to_have_attribute("aria-pressed", "true")
