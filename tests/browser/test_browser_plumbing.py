"""The browser-test plumbing itself: Debian's Chromium launches, console errors are caught, the app serves."""

from __future__ import annotations

import re

from playwright.sync_api import expect

PAGE = """<!doctype html><html><head><title>plumbing</title></head><body>
<button id="b" onclick="this.textContent = 'clicked ' + (1 + 1)">click me</button>
</body></html>"""


def test_chromium_launches_and_runs_javascript(browser):
    assert "chrom" in browser.browser_type.name
    page = browser.new_page()
    try:
        page.set_content(PAGE)
        page.click("#b")
        expect(page.locator("#b")).to_have_text("clicked 2")
    finally:
        page.close()


def test_console_errors_and_uncaught_exceptions_are_collected(browser, console_errors):
    page = browser.new_page()
    try:
        console_errors.attach(page)
        page.set_content(PAGE)
        page.evaluate("console.log('fine'); console.warn('also fine'); console.error('boom')")
        page.evaluate("setTimeout(() => { throw new Error('kaboom') }, 0)")
        page.wait_for_timeout(100)
        console_errors.flush()
        errors = console_errors.clear()  # provoked on purpose: do not fail this test
    finally:
        page.close()
    assert len(errors) == 2, errors
    assert "boom" in errors[0]
    assert "kaboom" in errors[1]


def test_live_server_home_page_loads_without_console_errors(page, live_server):
    response = page.goto("/")
    assert response is not None and response.ok, response
    assert page.url.startswith(live_server)
    expect(page).to_have_title(re.compile(r"\S"))
