"""The trace page's flame graph in real Chromium (static/flame.js): a zoom that keeps children in proportion, the
views, the keys, search, projector mode, and speedscope served by the app itself. Screenshots go to
tests/artifacts/; every test also fails on a console error (tests/browser/conftest.py)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from app.trace_examples import LECTURE_PROFILE
from sim.run import RunSpec, record
from sim.trace.flame import flame_from_run
from tests.browser.test_trace import ARTIFACTS, DD, PROJECTOR, SLOW, open_trace

pytestmark = pytest.mark.browser_context_args(viewport=PROJECTOR)

VM_FAULT = "dd;-;Xpage;trap;trap_pfault;vm_fault"


def shown(page: Page) -> list[dict]:
    """The frames the graph draws, in the order of its bars, with each bar's width on screen."""
    return page.evaluate(
        """() => {
          const host = document.getElementById('flame');
          const bars = [...host.querySelectorAll('g.trace.bars g.point path')];
          return host.flameGraph.shown.map((f, i) => ({
            id: f.node.id, name: f.node.name, row: f.row, x0: f.x0, x1: f.x1, merged: Boolean(f.merged),
            px: bars[i] ? bars[i].getBoundingClientRect().width : null }));
        }"""
    )


def frame_centre(page: Page, frame_id: str) -> tuple[float, float]:
    return page.evaluate(
        """(id) => {
          const host = document.getElementById('flame');
          const i = host.flameGraph.shown.findIndex((f) => f.node.id === id);
          const box = host.querySelectorAll('g.trace.bars g.point path')[i].getBoundingClientRect();
          return [box.left + box.width / 2, box.top + box.height / 2];
        }""",
        frame_id,
    )


def plot_width(page: Page) -> float:
    return page.evaluate("document.querySelector('#flame .nsewdrag').getBoundingClientRect().width")


def test_the_flame_graph_is_in_view_beside_the_console_with_readable_labels(page: Page):
    open_trace(page)
    box = page.locator("#flame").bounding_box()
    assert box and box["y"] + 100 < PROJECTOR["height"]  # not ~1800 px down
    size = page.evaluate("getComputedStyle(document.querySelector('#flame .bartext')).fontSize")
    assert float(size.rstrip("px")) >= 14
    page.screenshot(path=ARTIFACTS / "flame-page.png")


def test_clicking_a_frame_zooms_in_with_its_children_in_proportion_and_links_to_the_stepper(page: Page):
    open_trace(page)
    graph = flame_from_run(record(RunSpec(DD)))
    page.mouse.click(*frame_centre(page, VM_FAULT))
    expect(page).to_have_url(re.compile(r"focus=dd%3B-%3BXpage%3Btrap%3Btrap_pfault%3Bvm_fault"))
    frames = {f["id"]: f for f in shown(page)}
    width = plot_width(page)
    assert frames[VM_FAULT]["px"] == pytest.approx(width, abs=2)  # the frame is the whole width now
    parent = graph.value_of(tuple(VM_FAULT.split(";")))
    children = [f for f in frames.values() if f["id"].startswith(VM_FAULT + ";") and f["id"].count(";") == 6]
    assert len(children) >= 3
    for child in children:  # each child as wide as its share of the frame: flamegraph.pl's zoom, not a flat block
        share = graph.value_of(tuple(child["id"].split(";"))) / parent
        assert child["px"] == pytest.approx(share * width, abs=1.5), child["id"]
    assert frames["dd;-;Xpage"]["px"] == pytest.approx(width, abs=2)  # its ancestors stay beneath it, full width
    link = page.locator("#frame-step-link")
    expect(link).to_be_visible(timeout=SLOW)
    expect(page.locator("#frame-info")).to_contain_text("vm_fault")
    page.locator("#trace-flame").screenshot(path=ARTIFACTS / "flame-zoom.png")
    page.mouse.click(*frame_centre(page, "dd"))  # a frame below the zoomed one zooms out to it
    assert shown(page)[0]["px"] == pytest.approx(width, abs=2)
    expect(page).to_have_url(re.compile(r"focus=dd(&|$)"))
    href = link.get_attribute("href")
    assert href and href.startswith("/scenarios/dd-system-time?") and "step=" in href


def test_keys_choose_zoom_reset_and_search(page: Page):
    open_trace(page)
    flame = page.locator("#flame")
    flame.focus()
    for _ in range(4):
        flame.press("ArrowUp")  # all, dd, -, Xpage, then trap (the widest child each time)
    expect(page.locator("#flame-selected")).to_contain_text("trap · kernel (ring 0)")
    flame.press("Enter")
    expect(page).to_have_url(re.compile(r"focus=dd%3B-%3BXpage%3Btrap(&|$)"))
    flame.press("ArrowDown")
    expect(page.locator("#flame-selected")).to_contain_text("Xpage")
    flame.press("Escape")
    expect(page).not_to_have_url(re.compile(r"focus="))
    flame.press("/")
    expect(page.locator("#flame-search")).to_be_focused()
    page.keyboard.type("zero")
    expect(page.locator("#flame-matched")).to_contain_text("Matched: ")
    page.keyboard.press("Escape")  # back to the graph
    expect(flame).to_be_focused()
    flame.press("n")
    expect(page.locator("#flame-selected")).to_contain_text(re.compile(r"^\S*zero\S* · kernel"))
    first = page.locator("#flame-selected").text_content()
    flame.press("n")
    expect(page.locator("#flame-selected")).not_to_have_text(first or "")
    flame.press("i")
    assert page.evaluate("document.getElementById('flame').layout.yaxis.range[0] > 0")  # icicle: root at the top
    expect(page).to_have_url(re.compile(r"orient=icicle"))
    page.locator("#trace-flame").screenshot(path=ARTIFACTS / "flame-keys-icicle.png")


def test_search_highlights_matching_frames_with_the_matched_share(page: Page):
    open_trace(page)
    page.locator("#flame-search").fill("zero")
    graph = flame_from_run(record(RunSpec(DD)))
    # flamegraph.pl's readout: matching frames, not counting those inside another match, as a share of all
    matched = sum(
        node.inclusive
        for node in graph.nodes()
        if "zero" in node.name and not any("zero" in frame for frame in node.stack[:-1])
    )
    readout = page.locator("#flame-matched")
    expect(readout).to_contain_text("Matched: ")
    percent = float(re.search(r"Matched: ([\d.]+)%", readout.text_content() or "").group(1))
    assert percent == pytest.approx(100 * matched / graph.total, abs=0.1)
    assert percent > 50  # page zeroing is most of dd's time
    expect(page).to_have_url(re.compile(r"search=zero"))
    colours = page.evaluate("document.getElementById('flame').data[0].marker.color")
    names = [f["name"] for f in shown(page)]
    assert {n for n, c in zip(names, colours, strict=True) if c == "#e600e6"} >= {"pagezero", "pmap_zero_page"}
    page.locator("#flame-search").fill("([")  # not a regular expression: searched as text, and the readout says so
    expect(readout).to_contain_text("not a regular expression, so matched as plain text")


def test_a_reloaded_link_keeps_the_view_zoom_and_search(page: Page):
    open_trace(page, focus="dd;-;Xpage;trap", search="vm_", view="heavy", orient="icicle")
    expect(page.locator("#flame-search")).to_have_value("vm_")
    expect(page.locator("#flame-matched")).to_contain_text("Matched: ")
    expect(page.locator("button[data-view='heavy']")).to_have_attribute("aria-pressed", "true")
    trap = next(f for f in shown(page) if f["id"] == "dd;-;Xpage;trap")
    assert trap["px"] == pytest.approx(plot_width(page), abs=2)


def test_the_views_lay_the_same_stacks_out_differently(page: Page):
    open_trace(page)
    first_child = lambda: next(  # noqa: E731 - the leftmost child of vm_fault in the current view
        f["name"] for f in sorted(shown(page), key=lambda f: f["x0"]) if f["id"].startswith(VM_FAULT + ";")
    )
    assert first_child() == "pmap_enter"  # flamegraph.pl: siblings by name
    page.locator("button[data-view='heavy']").click()
    expect(page).to_have_url(re.compile(r"view=heavy"))
    assert first_child() == "pmap_zero_page"  # left heavy: the heaviest first
    page.locator("button[data-view='time']").click()
    expect(page).to_have_url(re.compile(r"view=time"))
    page.wait_for_function("() => document.getElementById('flame').flameGraph.chart !== null")
    frames = shown(page)
    assert any(f["merged"] for f in frames)  # thousands of page faults, each too narrow, merged into blocks
    page.locator("#trace-flame").screenshot(path=ARTIFACTS / "flame-time-order.png")
    page.locator("button[data-view='sandwich']").click()
    expect(page.locator("#flame-functions")).to_be_visible()
    page.locator("#flame-functions [data-fn='trap_pfault']").click()
    expect(page).to_have_url(re.compile(r"view=sandwich&fn=trap_pfault|fn=trap_pfault"))
    rows = {f["name"]: f["row"] for f in shown(page)}
    assert rows["trap_pfault"] == 0 and rows["trap"] > 0 and rows["vm_fault"] < 0  # callers above, callees below
    page.locator("#trace-flame").screenshot(path=ARTIFACTS / "flame-sandwich.png")
    page.locator("#flame-palette").select_option("hot")
    expect(page).to_have_url(re.compile(r"palette=hot"))


def test_a_script_s_stack_aggregation_shows_at_once_and_in_projector_mode(page: Page):
    page.goto("/trace?" + urlencode({"command": DD, "script": LECTURE_PROFILE, "mode": "projector"}))
    expect(page.locator("#flame .main-svg").first).to_be_visible(timeout=SLOW)
    expect(page.locator(".flame-sources a.current")).to_contain_text("@traces")
    expect(page.locator("button[data-view='time']")).to_be_disabled()  # samples keep no order
    flame = page.locator("#flame").bounding_box()
    console = page.locator(".trace-console").bounding_box()
    assert flame and console and flame["y"] < console["y"]  # the graph first
    size = page.evaluate("getComputedStyle(document.querySelector('#flame .bartext')).fontSize")
    assert float(size.rstrip("px")) >= 20
    page.screenshot(path=ARTIFACTS / "flame-projector.png")


def test_open_in_speedscope_loads_the_same_profile_from_the_app_alone(page: Page, base_url: str):
    open_trace(page, script=LECTURE_PROFILE)
    link = page.locator("#open-speedscope")
    page.locator("button[data-view='sandwich']").click()
    href = link.get_attribute("href") or ""
    assert href.startswith("/speedscope/#profileURL=") and href.endswith("&view=sandwich")
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(href.replace("&view=sandwich", "&view=left-heavy"))
    expect(page.get_by_text("@traces: count() by stack")).to_be_visible(timeout=SLOW)
    page.wait_for_timeout(500)
    assert requests and all(url.startswith(base_url) or url.startswith("data:") for url in requests), requests
    assert any("/trace/export?" in url and "format=speedscope" in url for url in requests)
    page.screenshot(path=ARTIFACTS / "flame-speedscope.png")
