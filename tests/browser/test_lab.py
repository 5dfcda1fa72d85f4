"""The IPC lab page in real Chromium: a sweep of one mode over three buffer sizes draws a line on a log axis and
lists each point with its DTrace link (a console error, such as a CSP violation, fails the test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
SIZES = ("32", "8192", "16777216")

pytestmark = pytest.mark.browser_context_args(viewport={"width": 1400, "height": 1000})


def test_a_sweep_draws_bandwidth_against_buffer_size_with_dtrace_on_each_point(page: Page):
    page.goto("/lab")
    for box in page.locator("input[name=sizes]").all():
        if box.get_attribute("value") not in SIZES:
            box.uncheck()
    page.click("#lab-run")
    expect(page.locator("#lab-progress")).to_have_text("done: 3 points", timeout=120_000)
    rows = page.locator("#lab-table tbody tr")
    expect(rows).to_have_count(3)
    assert [rows.nth(i).get_attribute("data-size") for i in range(3)] == list(SIZES)
    links = page.locator("#lab-table tbody a")
    expect(links).to_have_count(3)
    assert links.first.get_attribute("href").startswith("/trace?command=ipc-static")
    chart = page.locator("#lab-chart .scatterlayer .trace")
    expect(chart).to_have_count(1)
    expect(page.locator("#lab-chart .xtitle")).to_contain_text("log scale")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "lab-sweep.png", full_page=True)
