"""The D console on the stepping page, in real Chromium: the lecture's script traced over the page's own dd run
without the step changing, the program put in the URL (kept as the reader steps, traced again on a reload), an
example picked, a compile error marked at its line and column, stepping
while the output stays, a new run marking old output, and the trace page link carrying the program.

Every test also fails on a console error (a CSP violation shows as one: tests/browser/conftest.py). Screenshots
go to tests/artifacts/.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, expect

from app.trace_examples import LECTURE_SYSCALL_TIMES, LECTURE_TRAPS
from sim.trace.dtrace import run_dtrace

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
LAPTOP = {"width": 1400, "height": 900}
DD = "dd if=/dev/zero of=/dev/null bs=10m count=1"
PAGE = "/scenarios/dd-system-time?step=40"
BROKEN = 'syscall:::entry /execname == "dd"/ {\n        @calls[probefunc] = count(;\n}\n'
SLOW = 60_000  # ms: a first trace records dd with its probes (about a second each run) on a busy machine

pytestmark = pytest.mark.browser_context_args(viewport=LAPTOP)


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#console").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / name)


def open_page(page: Page, url: str = PAGE) -> None:
    page.goto(url)
    expect(page.locator("html")).to_have_attribute("data-ready", "true")


def test_the_lectures_script_traced_from_the_stepper_keeps_the_step_and_the_url(page: Page):
    open_page(page)
    expect(page.locator("#d-script")).to_have_value(LECTURE_SYSCALL_TIMES)
    page.locator("#console-run").click()
    stdout = page.locator("#d-stdout")
    expect(stdout).to_be_visible(timeout=SLOW)
    assert stdout.text_content() == run_dtrace(LECTURE_SYSCALL_TIMES, DD, script_name="script.d").output
    expect(page.locator("#console-command-line")).to_have_text(f"dtrace -s script.d -c '{DD}'")
    expect(page.locator("[data-figure='console-aggregation-syscall_time-figure'] .main-svg").first).to_be_visible()
    query = parse_qs(urlparse(page.url).query)
    assert query["step"] == ["40"] and query["script"] == [LECTURE_SYSCALL_TIMES], "the program is in the URL"
    expect(page.locator("#step-number")).to_have_text("40")
    expect(page.locator("#console-stale")).to_be_hidden()
    screenshot(page, "console-lecture-script.png")
    page.reload()
    expect(page.locator("#step-number")).to_have_text("40")


def test_a_traced_program_stays_in_the_url_as_the_reader_steps_and_a_reload_traces_it_again(page: Page):
    open_page(page)
    page.locator("#d-script").fill(LECTURE_TRAPS)
    page.locator("#console-quiet").check()
    page.locator("#console-run").click()
    expect(page.locator("#d-stdout")).to_be_visible(timeout=SLOW)
    traced = page.locator("#d-stdout").text_content()
    page.locator("#step-forward").click()
    expect(page.locator("#step-number")).to_have_text("41")
    query = parse_qs(urlparse(page.url).query)
    assert query["step"] == ["41"] and query["script"] == [LECTURE_TRAPS] and query["quiet"] == ["1"], page.url
    page.reload()  # as a link shared: the program in the editor, traced again over the page's run
    expect(page.locator("#step-number")).to_have_text("41")
    expect(page.locator("#d-script")).to_have_value(LECTURE_TRAPS)
    expect(page.locator("#console-quiet")).to_be_checked()
    expect(page.locator("#d-stdout")).to_have_text(traced, timeout=SLOW)
    screenshot(page, "console-from-url.png")


def test_a_compile_error_is_marked_at_its_line_and_the_output_stays(page: Page, console_errors):
    open_page(page)
    page.locator("#console-run").click()
    expect(page.locator("#d-stdout")).to_be_visible(timeout=SLOW)
    page.locator("#d-script").fill(BROKEN)
    page.locator("#d-script").press("Control+Enter")
    expect(page.locator("#trace-error")).to_contain_text("dtrace: failed to compile script script.d: line 2:")
    marked = page.evaluate(
        """() => ({
          line: document.getElementById("trace-error").dataset.line,
          column: document.getElementById("trace-error").dataset.column,
          gutter: [...document.querySelectorAll("#d-gutter .error-line")].map((n) => n.textContent),
          focused: document.activeElement.id,
          caret: document.getElementById("d-script").selectionStart,
          outputShown: Boolean(document.getElementById("d-stdout")),
          step: document.getElementById("step-number").textContent,
        })"""
    )
    caret = len('syscall:::entry /execname == "dd"/ {\n') + 34  # line 2, column 35: the editor's cursor is there
    # the last good output stays, and so does the step
    assert marked == {
        "line": "2",
        "column": "35",
        "gutter": ["2"],
        "focused": "d-script",
        "caret": caret,
        "outputShown": True,
        "step": "40",
    }
    screenshot(page, "console-compile-error.png")
    console_errors.flush()
    errors = console_errors.clear()  # Chromium logs the 400 it was sent on purpose
    assert len(errors) == 1 and "status of 400" in errors[0], errors


def test_an_example_is_picked_and_traced_and_stepping_goes_on_beside_it(page: Page):
    open_page(page)
    page.get_by_role("link", name="Lecture: traps in practice (1)").click()
    expect(page.locator("#d-script")).to_have_value(LECTURE_TRAPS)
    stdout = page.locator("#d-stdout")
    expect(stdout).to_be_visible(timeout=SLOW)
    assert stdout.text_content() == run_dtrace(LECTURE_TRAPS, DD, script_name="script.d").output
    assert parse_qs(urlparse(page.url).query) == {"step": ["40"], "script": [LECTURE_TRAPS]}
    page.keyboard.press("ArrowRight")  # the stepper's keys still step, and the output stays
    expect(page.locator("#step-number")).to_have_text("41")
    expect(stdout).to_be_visible()
    page.keyboard.press("d")  # d goes to the editor; typed letters are then text, not steps
    page.keyboard.press("End")
    page.keyboard.type("l")
    expect(page.locator("#d-script")).to_have_value(LECTURE_TRAPS + "l")
    expect(page.locator("#step-number")).to_have_text("41")


def test_a_new_run_marks_the_old_output_and_the_next_trace_is_of_the_new_run(page: Page):
    open_page(page, "/scenarios/dd-system-time?bs=64k&count=2")
    page.locator("#console-quiet").check()
    page.locator("#console-run").click()
    expect(page.locator("#d-stdout")).to_be_visible(timeout=SLOW)
    page.locator("#params-form input[name=count]").fill("3")
    page.locator("#params-run").click()
    # the output shown is of the old run: the new run's URL does not carry its program
    expect(page).to_have_url("/scenarios/dd-system-time?bs=64k&count=3&step=0", timeout=SLOW)
    expect(page.locator("#console-stale")).to_be_visible()
    page.locator("#console-run").click()
    command = "dd if=/dev/zero of=/dev/null bs=64k count=3"
    expect(page.locator("#console-command-line")).to_have_text(f"dtrace -q -s script.d -c '{command}'", timeout=SLOW)
    expect(page.locator("#console-stale")).to_be_hidden()
    expected = run_dtrace(LECTURE_SYSCALL_TIMES, command, quiet=True, script_name="script.d").output
    assert page.locator("#d-stdout").text_content() == expected


def test_the_trace_page_link_carries_the_editors_program_and_the_pages_command(page: Page):
    open_page(page, "/scenarios/dd-system-time?bs=64k&count=2&mode=projector")
    page.locator("#d-script").fill(LECTURE_TRAPS)
    link = page.locator("#console-open-trace")
    link.hover()
    query = parse_qs(urlparse(link.get_attribute("href")).query)
    assert query == {"command": ["dd if=/dev/zero of=/dev/null bs=64k count=2"], "script": [LECTURE_TRAPS]}
    link.click()
    page.wait_for_url("**/trace?**")
    expect(page.locator("#trace-form #d-script")).to_have_value(LECTURE_TRAPS, timeout=SLOW)
