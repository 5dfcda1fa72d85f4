"""WCAG 2.2 AA on every page (issue 15.6), checked by axe-core in Chromium.

axe-core is an npm devDependency pinned in package-lock.json; the app never serves it: the test reads
node_modules/axe-core/axe.min.js and evaluates it in the page (Playwright's evaluate runs outside the page's
Content-Security-Policy). Each page is checked as a reader finds it, and again in the states a step or a key
brings (projector mode, the help dialog open, a phone's width; the flame graph's views, its icicle and a zoom; the
differential flame graph in each palette; an exercise answered).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from app.routes_trace import JUNK_FALSE, JUNK_TRUE
from app.trace_examples import LECTURE_PROFILE
from tests.browser.test_trace import DD, SLOW

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


FLAME_STATES = {  # what a key on the graph brings: each view, the icicle, a zoom, the sandwich's function table
    "left heavy": "h",
    "time order": "t",
    "sandwich": "s",
    "icicle": "i",
    "a zoom": "Enter",
}


def drawn(page: Page, host: str) -> None:
    expect(page.locator(f"{host}[data-ready=true]")).to_have_count(1, timeout=SLOW)
    page.wait_for_timeout(300)  # a view fetched (time order) or laid out again


@pytest.mark.parametrize(
    "viewport", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}], ids=["laptop", "phone"]
)
def test_the_flame_graphs_and_the_exercises_have_no_axe_violations(new_context, viewport):
    page = new_context(viewport=viewport).new_page()
    found = {}
    for url in (
        "/trace?" + urlencode({"command": DD}),
        "/trace?" + urlencode({"command": DD, "script": LECTURE_PROFILE, "mode": "projector"}),  # @traces, projector
    ):
        page.goto(url)
        drawn(page, "#flame")
        found[url] = violations(page)
    page.locator("#flame").focus()
    page.keyboard.press("ArrowUp")  # a frame chosen (announced), for the zoom below
    for state, key in FLAME_STATES.items():
        page.keyboard.press(key)
        drawn(page, "#flame")
        found[f"the flame graph's {state}"] = violations(page)
    page.goto("/trace?" + urlencode({"command": JUNK_TRUE, "baseline": JUNK_FALSE}))
    drawn(page, "#diff-flame")
    found["the differential flame graph"] = violations(page)
    page.locator("#diff-flame-palette").select_option("orangepurple")
    found["the differential flame graph, colour-blind safe"] = violations(page)
    for url in ("/exercises", "/exercises/pagewalk?seed=1"):
        page.goto(url)
        page.wait_for_load_state("load")
        found[url] = violations(page)
    page.locator("#answer-input").fill("fault")
    page.locator("#answer-input").press("Enter")
    expect(page.locator("#verdict")).to_be_visible()
    found["an exercise checked"] = violations(page)
    assert not any(found.values()), json.dumps({k: v for k, v in found.items() if v}, indent=1)
