"""The trace page in real Chromium: the lecture's script traced over dd, a compile error marked in the editor, the
differential flame graph, an aggregation chart, a download (the flame graph's own tests: test_flame.py).

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
from sim.trace.dtrace import run_dtrace
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


DIFF_FRAMES = """() => {
  const host = document.getElementById('diff-flame');
  const bars = [...host.querySelectorAll('g.trace.bars g.point path')];
  const trace = host.data[0];
  return host.flameGraph.shown.map((f, i) => ({
    id: f.node.id, change: f.node.change, colour: trace.marker.color[i], text: trace.text[i],
    px: bars[i] ? bars[i].getBoundingClientRect().width : null }));
}"""
FAULTS = "dd;-;Xpage;trap;trap_pfault"


def test_the_differential_flame_graph_of_junk_filling_is_a_flame_graph_that_zooms(page: Page):
    page.goto("/trace?" + urlencode({"command": JUNK_TRUE, "baseline": JUNK_FALSE}))
    host = page.locator("#diff-flame")
    expect(host).to_have_attribute("data-ready", "true", timeout=SLOW)
    expect(page.locator(".diff-changes tr.more").first).to_be_visible()
    expect(page.locator(".diff-changes tr.less").first).to_be_visible()
    frames = {f["id"]: f for f in page.evaluate(DIFF_FRAMES)}
    more, less = frames["dd;-;Xpage"], frames["dd;-;Xfast_syscall"]
    assert more["change"] > 0 and more["colour"].startswith("rgb(255,"), more  # red: more time
    assert less["change"] < 0 and re.fullmatch(r"rgb\((\d+),\1,255\)", less["colour"]), less  # blue: less
    assert more["text"].startswith("▲ Xpage"), "the change is not in colour alone"
    less_label = page.evaluate(
        "(() => { const g = document.getElementById('diff-flame').flameGraph;"
        " return g.label(g.shown.find((f) => f.node.id === 'dd;-;Xfast_syscall').node); })()"
    )
    assert less_label == "▼ Xfast_syscall", less_label  # (too narrow here to show its text)
    page.locator("#trace-diff").scroll_into_view_if_needed()
    page.locator("#trace-diff").screenshot(path=ARTIFACTS / "trace-diff.png")

    # a click zooms into the frame: it takes the whole width, its children keep their shares of it
    host.scroll_into_view_if_needed()
    centre = page.evaluate(
        """(id) => {
          const host = document.getElementById('diff-flame');
          const i = host.flameGraph.shown.findIndex((f) => f.node.id === id);
          const box = host.querySelectorAll('g.trace.bars g.point path')[i].getBoundingClientRect();
          return [box.left + box.width / 2, box.top + box.height / 2];
        }""",
        FAULTS,
    )
    page.mouse.click(*centre)
    width = page.evaluate("document.querySelector('#diff-flame .nsewdrag').getBoundingClientRect().width")
    zoomed = {f["id"]: f for f in page.evaluate(DIFF_FRAMES)}
    assert zoomed[FAULTS]["px"] == pytest.approx(width, abs=2)
    values = page.evaluate(
        """() => { const out = {}; const walk = (n) => { out[n.id] = n.value; n.children.forEach(walk); };
                   walk(document.getElementById('diff-flame').flameGraph.root); return out; }"""
    )
    children = [i for i in zoomed if i.startswith(FAULTS + ";") and i.count(";") == FAULTS.count(";") + 1]
    assert children
    for child in children:
        assert zoomed[child]["px"] == pytest.approx(values[child] / values[FAULTS] * width, abs=1.5), child
    expect(page.locator("#diff-flame-selected")).to_contain_text("more")  # the change, in words
    page.locator("#trace-diff").screenshot(path=ARTIFACTS / "trace-diff-zoom.png")

    # the keys: Escape resets the zoom; then the colour-blind-safe palette
    host.focus()
    page.keyboard.press("Escape")
    expect(host).to_have_attribute("data-range", re.compile(r"^0 "))
    page.locator("#diff-flame-palette").select_option("orangepurple")
    colours = {f["id"]: f["colour"] for f in page.evaluate(DIFF_FRAMES)}
    assert colours["dd;-;Xpage"].startswith("hsl(30") and colours["dd;-;Xfast_syscall"].startswith("hsl(265")
    assert "focus=" not in page.url and "palette=" not in page.url, "the diff's state stays out of the URL"


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
