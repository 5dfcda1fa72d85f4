"""WCAG 2.2 AA on every page (issue 15.6), checked by axe-core in Chromium.

axe-core is an npm devDependency pinned in package-lock.json; the app never serves it: the test reads
node_modules/axe-core/axe.min.js and evaluates it in the page (Playwright's evaluate runs outside the page's
Content-Security-Policy). Each page is checked as a reader finds it, and again in the states a step or a key
brings (projector mode, the help dialog open, a phone's width).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
PAGES = [
    "/",
    "/scenarios/getpid?step=8",
    "/scenarios/getpid?step=8&mode=projector",
    "/scenarios/dd-system-time?step=6266",
    "/scenarios/command?command=ipc-static+-z",  # an error page with its form
    "/outline",
    "/trace",
]


def violations(page: Page) -> list[str]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate(
        "(tags) => axe.run(document, { runOnly: { type: 'tag', values: tags } })"
        ".then((r) => JSON.stringify(r.violations))",
        WCAG_AA,
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:4]]}" for v in json.loads(result)
    ]


def settle(page: Page) -> None:
    page.wait_for_load_state("load")
    if page.locator("#step-panel").count():
        expect(page.locator("html[data-ready=true]")).to_have_count(1)
        page.wait_for_timeout(300)  # Plotly's figures drawn


@pytest.mark.parametrize(
    "viewport", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}], ids=["laptop", "phone"]
)
def test_every_page_has_no_axe_violations(new_context, viewport, console_errors):
    assert AXE.exists(), "run `npm ci`: axe-core is a devDependency"
    page = new_context(viewport=viewport).new_page()
    found = {}
    for url in PAGES:
        page.goto(url)
        settle(page)
        found[url] = violations(page)
    page.goto("/scenarios/getpid?step=8")
    settle(page)
    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()
    found["the help dialog"] = violations(page)
    console_errors.flush()  # Chromium logs the error page's 400, provoked on purpose; any other error stays
    console_errors.errors = [e for e in console_errors.clear() if "status of 400" not in e]
    assert not any(found.values()), json.dumps({k: v for k, v in found.items() if v}, indent=1)
