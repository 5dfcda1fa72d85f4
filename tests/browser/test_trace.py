"""The trace page in real Chromium: the lecture's script traced over dd, a compile error marked in the editor, the
flame graph's search, zoom and stepper link, the differential flame graph, an aggregation chart, a download.

Every test also fails on a console error (a CSP violation shows as one: tests/browser/conftest.py). Screenshots
go to tests/artifacts/.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from playwright.sync_api import Page, expect

from app.routes_trace import JUNK_FALSE, JUNK_TRUE
from app.trace_examples import LECTURE_PROFILE, LECTURE_SYSCALL_TIMES
from sim.run import RunSpec, record
from sim.trace.dtrace import run_dtrace
from sim.trace.flame import flame_from_run
from tests.sim.test_export import check_folded

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
PROJECTOR = {"width": 1280, "height": 720}
DD = "dd if=/dev/zero of=/dev/null bs=10m count=1"
SLOW = 60_000  # ms: a first visit records dd (about a second each run) on a busy CI machine

pytestmark = pytest.mark.browser_context_args(viewport=PROJECTOR)


def screenshot(page: Page, name: str, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=path, full_page=full_page)
    return path


def open_trace(page: Page, **params: str) -> None:
    page.goto("/trace?" + urlencode({"command": DD, **params}))
    expect(page.locator("#flame .main-svg").first).to_be_visible(timeout=SLOW)  # the flame graph has drawn


def test_the_lectures_first_script_traced_over_dd_prints_printa_output(page: Page):
    open_trace(page)
    expect(page.locator("#d-script")).to_have_value(LECTURE_SYSCALL_TIMES)
    page.locator("#trace-run").click()
    stdout = page.locator("#d-stdout")
    expect(stdout).to_be_visible(timeout=SLOW)
    expected = run_dtrace(LECTURE_SYSCALL_TIMES, DD, script_name="script.d").output
    assert stdout.text_content() == expected
    assert re.search(r"^  read +\d+$", expected, re.M)  # a printa row: the key left, the sum right
    query = parse_qs(urlparse(page.url).query)
    assert query["script"] == [LECTURE_SYSCALL_TIMES] and "baseline" not in query  # the URL holds the state
    expect(page.locator("[data-figure='aggregation-syscall_time-figure'] .main-svg").first).to_be_visible()
    expect(page.locator("#probe-sys-delta")).to_contain_text("+")
    expect(page.locator("#flame .main-svg").first).to_be_visible(timeout=SLOW)
    screenshot(page, "trace-lecture-script.png", full_page=True)


def test_a_compile_error_is_marked_at_its_line_and_the_results_stay(page: Page, console_errors):
    open_trace(page, script=LECTURE_SYSCALL_TIMES)
    expect(page.locator("#d-stdout")).to_be_visible()
    editor = page.locator("#d-script")
    editor.fill('syscall:::entry /execname == "dd"/ {\n        @calls[probefunc] = count(;\n}\n')
    url_before = page.url
    editor.press("Control+Enter")
    error = page.locator("#trace-error")
    expect(error).to_contain_text("dtrace: failed to compile script script.d: line 2:")
    expect(error).to_have_attribute("data-line", "2")
    expect(page.locator("#d-gutter .error-line")).to_have_text("2")
    expect(page.locator("#d-stdout")).to_be_visible()  # the last good results are still there
    assert page.url == url_before  # a failed program is not pushed into history
    selection = page.evaluate("(() => { const t = document.getElementById('d-script'); return t.selectionStart; })()")
    line_start = len('syscall:::entry /execname == "dd"/ {\n')
    assert line_start <= selection <= line_start + len("        @calls[probefunc] = count(;")
    screenshot(page, "trace-compile-error.png")
    console_errors.flush()
    errors = console_errors.clear()  # Chromium logs the 400 it was sent on purpose
    assert len(errors) == 1 and "status of 400" in errors[0], errors
    editor.fill(LECTURE_SYSCALL_TIMES)
    page.locator("#trace-run").click()
    expect(page.locator("#trace-error")).to_be_hidden()
    expect(page.locator("#d-gutter .error-line")).to_have_count(0)


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
    shown = float(re.search(r"Matched: ([\d.]+)%", readout.text_content()).group(1))
    assert shown == pytest.approx(100 * matched / graph.total, abs=0.1)  # frames too narrow to draw are not searched
    assert shown > 50  # page zeroing is most of dd's time
    expect(page).to_have_url(re.compile(r"search=zero"))
    colours = page.evaluate("document.getElementById('flame').data[0].marker.colors")
    labels = page.evaluate("document.getElementById('flame').data[0].labels")
    assert {label for label, colour in zip(labels, colours, strict=True) if colour == "#e600e6"} >= {
        "pagezero",
        "pmap_zero_page",
    }
    page.locator("#flame").screenshot(path=ARTIFACTS / "trace-flame-search.png")
    page.locator("#flame-search").fill("([")  # not a regular expression: searched as text, and the readout says so
    expect(readout).to_contain_text("not a regular expression, so matched as plain text")


def test_clicking_a_frame_zooms_in_and_links_to_the_stepper_inside_that_function(page: Page):
    open_trace(page)
    page.locator("#flame g.slice").filter(has_text=re.compile(r"^vm_fault$")).first.click()
    link = page.locator("#frame-step-link")
    expect(link).to_be_visible(timeout=SLOW)
    expect(page.locator("#frame-info")).to_contain_text("vm_fault")
    expect(page).to_have_url(re.compile(r"focus=dd%3B-%3BXpage%3Btrap%3Btrap_pfault%3Bvm_fault"))
    level = page.evaluate("document.getElementById('flame')._fullData[0].level")
    assert level == "dd;-;Xpage;trap;trap_pfault;vm_fault"
    page.locator("#trace-flame").screenshot(path=ARTIFACTS / "trace-flame-zoom.png")
    href = link.get_attribute("href")
    assert href.startswith("/scenarios/dd-system-time?") and "step=" in href
    response = page.goto(href)
    assert response is not None and response.ok
    expect(page).to_have_url(re.compile(r"step=\d+"))


def test_a_reloaded_link_keeps_the_zoom_and_the_search(page: Page):
    open_trace(page, focus="dd;-;Xpage;trap", search="vm_")
    expect(page.locator("#flame-search")).to_have_value("vm_")
    expect(page.locator("#flame-matched")).to_contain_text("Matched: ")
    assert page.evaluate("document.getElementById('flame')._fullData[0].level") == "dd;-;Xpage;trap"


def test_the_differential_flame_graph_of_junk_filling_renders(page: Page):
    page.goto("/trace?" + urlencode({"command": JUNK_TRUE, "baseline": JUNK_FALSE}))
    expect(page.locator("#diff-flame .main-svg").first).to_be_visible(timeout=SLOW)
    expect(page.locator(".diff-changes tr.more").first).to_be_visible()
    expect(page.locator(".diff-changes tr.less").first).to_be_visible()
    colours = page.evaluate("document.getElementById('diff-flame').data[0].marker.colors")
    assert any(c.startswith("rgb(255,") and c != "rgb(255,255,255)" for c in colours)  # red: more
    assert any(re.fullmatch(r"rgb\((\d+),\1,255\)", c) for c in colours)  # blue: less
    page.locator("#trace-diff").scroll_into_view_if_needed()
    page.locator("#trace-diff").screenshot(path=ARTIFACTS / "trace-diff.png")


def test_an_example_with_a_histogram_draws_it(page: Page):
    open_trace(page)
    page.get_by_role("link", name="System-call latency histogram (quantize)").click()
    chart = page.locator("[data-figure='aggregation-ns-figure'] .main-svg").first
    expect(chart).to_be_visible(timeout=SLOW)
    expect(page.locator("#d-stdout")).to_contain_text("------------- Distribution -------------")
    expect(page).to_have_url(re.compile(r"script=syscall"))
    page.locator(".aggregations").screenshot(path=ARTIFACTS / "trace-histogram.png")


def test_the_profile_samples_flame_graph_and_its_folded_download(page: Page):
    page.goto("/trace?" + urlencode({"command": DD, "script": LECTURE_PROFILE, "flame": "@traces"}))
    expect(page.locator("#flame .main-svg").first).to_be_visible(timeout=SLOW)
    expect(page.locator(".flame-sources a.current")).to_contain_text("@traces")
    with page.expect_download() as download_info:
        page.locator(".downloads a[data-format='folded']").click()
    download = download_info.value
    assert download.suggested_filename.endswith("-traces.folded")
    stacks = check_folded(Path(download.path()).read_text())
    assert max(stacks, key=stacks.get)[-1] == "kernel`pagezero"
