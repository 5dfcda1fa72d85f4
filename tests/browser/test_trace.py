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
