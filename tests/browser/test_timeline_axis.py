"""The ring timeline's time axis in real Chromium: SI units chosen by the range shown, labels that are neither cut
nor overlapping on a 1280x720 projector or a 390x844 phone, and no zoom jump from one step to the next (getpid's
sysretq used to jump from 0-905 ns to 0-74,716 ns). Screenshots go to tests/artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from sim.run import record
from sim.scenarios.registry import lookup

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
SIZES = {"projector": {"width": 1280, "height": 720}, "phone": {"width": 390, "height": 844}}

# Every piece of text the timeline draws: axis ticks, its title, lane names, the events' labels.
TEXTS = """() => {
  const host = document.getElementById('timeline');
  const svg = host.querySelector('.main-svg').getBoundingClientRect();
  const pick = (selector, kind) => [...host.querySelectorAll(selector)]
    .filter((el) => el.textContent.trim())
    .map((el) => { const b = el.getBoundingClientRect();
      return { kind, text: el.textContent, left: b.left, right: b.right, top: b.top, bottom: b.bottom }; })
    .filter((b) => b.right > b.left);
  return { svg: { left: svg.left, right: svg.right, top: svg.top, bottom: svg.bottom },
    texts: [...pick('.xtick text', 'tick'), ...pick('.ytick text', 'lane'), ...pick('.xtitle', 'title'),
            ...pick('.annotation-text', 'name'), ...pick('.textpoint text', 'event')] };
}"""


def open_timeline(page: Page, slug: str, step: int) -> None:
    page.goto(f"/scenarios/{slug}?step={step}&views=timeline")
    expect(page.locator("#timeline .main-svg").first).to_be_visible()
    page.wait_for_function("() => document.getElementById('timeline').data !== undefined")
    page.locator("#timeline").scroll_into_view_if_needed()


def check_texts(page: Page, where: str) -> list[dict]:
    found = page.evaluate(TEXTS)
    svg, texts = found["svg"], found["texts"]
    for text in texts:  # nothing cut off at the figure's edges
        assert svg["left"] - 0.5 <= text["left"] and text["right"] <= svg["right"] + 0.5, (where, text)
    for i, one in enumerate(texts):  # and nothing drawn over anything else
        for other in texts[i + 1 :]:
            overlap_x = min(one["right"], other["right"]) - max(one["left"], other["left"])
            overlap_y = min(one["bottom"], other["bottom"]) - max(one["top"], other["top"])
            assert overlap_x <= 1 or overlap_y <= 1, (where, one, other)
    return texts


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    ("slug", "step", "unit"),
    [("getpid", 51, "ns"), ("write-file", 150, "µs"), ("dd-system-time", 20_000, "µs"), ("write-file", 1700, "s")],
)
def test_the_axis_speaks_si_units_and_no_label_is_cut_or_overlaps(
    page: Page, slug: str, step: int, unit: str, size: str
):
    page.set_viewport_size(SIZES[size])
    open_timeline(page, slug, step)
    texts = check_texts(page, f"{slug} step {step} at {size}")
    drawn = page.evaluate("() => document.getElementById('timeline').layout.height")
    assert page.locator("#timeline").bounding_box()["height"] >= drawn  # its box holds it: nothing drawn over below
    title = next(t["text"] for t in texts if t["kind"] == "title")
    assert f"({unit})" in title
    ticks = [t["text"] for t in texts if t["kind"] == "tick"]
    assert len(ticks) >= 3 and all(len(tick) <= 8 for tick in ticks), ticks  # short: no raw nanoseconds
    page.locator("#timeline").screenshot(path=ARTIFACTS / f"timeline-{slug}-{step}-{size}.png")


def test_stepping_past_sysretq_keeps_the_zoom(page: Page):
    run = record(lookup("getpid").spec())
    sysretq = next(i for i, e in enumerate(run.events) if e.kind == "insn" and e.name == "sysretq")
    open_timeline(page, "getpid", sysretq - 3)
    ranges = []
    for step in range(sysretq - 3, sysretq + 4):
        expect(page.locator("#step-panel")).to_have_attribute("data-step", str(step))
        page.wait_for_function(
            f"() => document.getElementById('timeline').dataset.cursorNs === '{run.events[step].t_ns}'"
        )
        start, end = (float(x) for x in page.locator("#timeline").get_attribute("data-range").split())
        ranges.append(end - start)
        page.keyboard.press("ArrowRight")
    assert len(set(ranges)) == 1, ranges  # the same width all the way: the cursor moves, the view does not jump
    check_texts(page, "getpid after sysretq")


def test_a_step_outside_the_range_pans_it_without_changing_its_width(page: Page):
    run = record(lookup("getpid").spec())
    exit_call = [i for i, e in enumerate(run.events) if e.kind == "insn" and e.name == "syscall"][-1]
    open_timeline(page, "getpid", exit_call - 1)
    before = [float(x) for x in page.locator("#timeline").get_attribute("data-range").split()]
    page.locator("#timeline").scroll_into_view_if_needed()
    page.keyboard.press("End")  # the last step, tens of microseconds later
    page.wait_for_function(f"() => document.getElementById('timeline').dataset.cursorNs === '{run.events[-1].t_ns}'")
    after = [float(x) for x in page.locator("#timeline").get_attribute("data-range").split()]
    assert after[1] - after[0] == pytest.approx(before[1] - before[0])
    assert after[0] <= run.events[-1].t_ns <= after[1]
