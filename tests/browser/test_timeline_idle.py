"""The ring timeline of runs with kernel threads and an idle CPU, in real Chromium: a lane per thread, the halted
CPU hatched in the idle thread's, kernel threads' ring-0 time lighter, the program's vermillion, the syncer's lane
starting where the narrative says, and the system calls' labels never overlapping. Screenshots go to
tests/artifacts/. (Time units and steadiness: test_timeline_axis.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from app.figures import IDLE_LABEL, KERNEL_COLOUR, KTHREAD_COLOUR
from sim.run import record
from sim.scenarios.registry import lookup

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"

pytestmark = pytest.mark.browser_context_args(viewport={"width": 1280, "height": 900})

TRACES = """() => document.getElementById('timeline').data.map((t) => ({
    name: t.name, fill: t.fillcolor || null, pattern: t.fillpattern ? t.fillpattern.shape : null,
    spans: (t.customdata || []).filter((c) => Array.isArray(c)).map((c) => [c[0], c[1], c[3]]),
    text: t.mode === 'markers+text' ? t.text : [] }))"""


def open_step(page: Page, slug: str, step: int) -> list[dict]:
    page.goto(f"/scenarios/{slug}?step={step}&views=timeline,latency")
    expect(page.locator("#timeline .main-svg").first).to_be_visible()
    page.wait_for_function("() => document.getElementById('timeline').data !== undefined")
    return page.evaluate(TRACES)


def lane(traces: list[dict], name: str) -> dict:
    return next(trace for trace in traces if trace["name"] == name)


def test_after_write_file_exits_the_idle_cpu_is_hatched_in_the_idle_thread_s_lane(page: Page):
    run = record(lookup("write-file").spec())
    traces = open_step(page, "write-file", len(run.events) - 1)
    idle = lane(traces, f"idle · pid 11: {IDLE_LABEL}")
    assert idle["pattern"] == "/" and idle["spans"], "the halted CPU is drawn, hatched"
    assert sum(b - a for a, b, _ in idle["spans"]) > 30_000_000_000
    program = lane(traces, "write-file · pid 1000: ring 0")
    assert program["fill"] == KERNEL_COLOUR
    assert max((b - a for a, b, _ in program["spans"]), default=0) < 1_000_000, "no 30 s kernel bar"
    expect(page.locator("#timeline")).to_contain_text("idle · pid 11")
    page.screenshot(path=ARTIFACTS / "write-file-idle.png")


def test_the_syncer_has_its_own_lane_starting_where_the_narrative_says(page: Page):
    run = record(lookup("write-file").spec())
    switch = next(i for i, e in enumerate(run.events) if ("thread", 100000, 100002) in e.deltas)
    traces = open_step(page, "write-file", switch)  # the narrative: cpu_switch hands the CPU to the syncer
    syncer = lane(traces, "syncer · pid 12: ring 0")
    assert syncer["fill"] == KTHREAD_COLOUR
    switched_at = run.events[switch].t_ns  # ~16.0 us: the time the stepper and its narrative show at the switch
    assert syncer["spans"][0][0] == switched_at
    expect(page.locator("main")).to_contain_text(f"t = {switched_at:,} ns")
    entered = max(i for i in range(switch) if (run.events[i].kind, run.events[i].name) == ("enter", "cpu_switch"))
    assert run.events[entered].t_ns < switched_at - 1000  # not from cpu_switch's entry, mi_switch's billing point
    expect(page.locator("#timeline")).to_contain_text("syncer · pid 12")
    assert page.locator("#timeline").get_attribute("data-cursor-ns") == str(switched_at)
    page.locator("#timeline").screenshot(path=ARTIFACTS / "write-file-syncer-lane.png")


def label_boxes(page: Page) -> list[dict]:
    boxes = (text.bounding_box() for text in page.locator("#timeline .textpoint text").all())
    return [box for box in boxes if box and box["width"] > 0]


@pytest.mark.parametrize(("slug", "step"), [("aio-write", 143), ("setcontext", 319)])
def test_system_call_labels_do_not_overlap(page: Page, slug: str, step: int):
    open_step(page, slug, step)
    page.evaluate(  # zoomed out to the whole run, as a drag does: every system call on screen at once
        "() => Plotly.relayout(document.getElementById('timeline'), {'xaxis.range': "
        "[0, JSON.parse(document.getElementById('timeline-figure').textContent).data.end]})"
    )
    page.wait_for_function("() => document.getElementById('timeline').dataset.range.startsWith('0 ')")
    traces = page.evaluate(TRACES)
    shown = [name for name in lane(traces, "system call")["text"] if name]
    assert len(shown) >= 2, "labels are still drawn where they fit"
    boxes = sorted(label_boxes(page), key=lambda box: box["x"])
    for left, right in zip(boxes, boxes[1:], strict=False):
        same_row = abs(left["y"] - right["y"]) < left["height"]
        assert not same_row or left["x"] + left["width"] <= right["x"] + 1, f"labels overlap on {slug} step {step}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{slug}-labels.png")


def test_dd_keeps_its_ring_changes_in_its_own_lane(page: Page):
    zoomed = open_step(page, "dd-system-time", 20_000)  # among the page faults: a ring change every ~75 us
    assert len(lane(zoomed, "dd · pid 1000: ring 3")["spans"]) >= 2 and lane(zoomed, "dd · pid 1000: ring 0")["spans"]
    assert lane(zoomed, "dd · pid 1000: ring 0")["fill"] == KERNEL_COLOUR
    assert not lane(zoomed, f"idle · pid 11: {IDLE_LABEL}")["spans"]
