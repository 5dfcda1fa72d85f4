"""The ring timeline of runs with kernel threads and an idle CPU, in real Chromium: the halted CPU is a hatched
"idle (hlt)" band, kernel threads' ring-0 time is lighter and named, the program's kernel time stays vermillion,
and the system calls' labels never overlap. Screenshots go to tests/artifacts/."""

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


def test_after_write_file_exits_the_idle_cpu_is_hatched_and_the_syncer_named(page: Page):
    run = record(lookup("write-file").spec())
    traces = open_step(page, "write-file", len(run.events) - 1)
    idle = lane(traces, "idle (hlt)")
    assert idle["pattern"] == "/" and idle["spans"], "the halted CPU is drawn, hatched"
    assert sum(b - a for a, b, _ in idle["spans"]) > 30_000_000_000
    program = lane(traces, "kernel · ring 0")
    assert program["fill"] == KERNEL_COLOUR
    assert max((b - a for a, b, _ in program["spans"]), default=0) < 1_000_000, "no 30 s kernel bar any more"
    expect(page.locator("#timeline")).to_contain_text(IDLE_LABEL)
    page.screenshot(path=ARTIFACTS / "write-file-idle.png")

    traces = open_step(page, "write-file", 150)  # the syncer's first run, while write-file waits
    kthreads = lane(traces, "kernel threads")
    assert kthreads["fill"] == KTHREAD_COLOUR
    assert "kernel thread · syncer" in {who for _, _, who in kthreads["spans"]}
    expect(page.locator("#timeline")).to_contain_text("kernel thread · syncer")


def label_boxes(page: Page) -> list[dict]:
    boxes = (text.bounding_box() for text in page.locator("#timeline .textpoint text").all())
    return [box for box in boxes if box and box["width"] > 0]


@pytest.mark.parametrize(("slug", "step"), [("aio-write", 143), ("setcontext", 319)])
def test_system_call_labels_do_not_overlap(page: Page, slug: str, step: int):
    traces = open_step(page, slug, step)
    shown = [name for name in lane(traces, "system call")["text"] if name]
    assert len(shown) >= 2, "labels are still drawn where they fit"
    boxes = sorted(label_boxes(page), key=lambda box: box["x"])
    for left, right in zip(boxes, boxes[1:], strict=False):
        same_row = abs(left["y"] - right["y"]) < left["height"]
        assert not same_row or left["x"] + left["width"] <= right["x"] + 1, f"labels overlap on {slug} step {step}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{slug}-labels.png")


def test_dd_keeps_its_ring_changes_in_the_program_s_colour_and_shows_its_disk_wait(page: Page):
    run = record(lookup("dd-system-time").spec())
    halt = next(i for i, e in enumerate(run.events) if e.kind == "proc" and e.name == "cpu_idle")
    traces = open_step(page, "dd-system-time", halt)  # dd's read of a file waits for the disk: the CPU halts
    halted = run.events[halt].t_ns - run.events[halt - 1].t_ns
    assert [b - a for a, b, _ in lane(traces, "idle (hlt)")["spans"]][:1] == [halted]
    zoomed = open_step(page, "dd-system-time", 20_000)  # among the page faults: a ring change every ~75 us
    assert len(lane(zoomed, "user · ring 3")["spans"]) >= 2 and lane(zoomed, "kernel · ring 0")["spans"]
    assert not lane(zoomed, "kernel threads")["spans"] and not lane(zoomed, "idle (hlt)")["spans"]
