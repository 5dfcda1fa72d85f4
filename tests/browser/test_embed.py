"""Embeds (issue 15.5): a slide deck opened as a local file frames an embed-mode step, steps it with postMessage
and hears where it is; the stepper's essentials fit the frame; the "Embed code" dialog gives the snippet."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "layout"

DECK = """<!doctype html><meta charset="utf-8"><title>a deck</title>
<iframe id="f" width="{width}" height="{height}" title="trapscope" src="{src}"></iframe>
<script>
  window.heard = [];
  window.addEventListener("message", (event) => window.heard.push(event.data));
</script>"""


def deck_file(tmp_path: Path, src: str, width: int, height: int) -> str:
    path = tmp_path / "deck.html"
    path.write_text(DECK.format(src=src, width=width, height=height))
    return path.as_uri()


@pytest.mark.parametrize("size", [(1024, 576), (640, 360)], ids=["1024x576", "640x360"])
def test_a_deck_opened_as_a_file_frames_and_steps_the_embed(page: Page, live_server, tmp_path, size):
    width, height = size
    page.goto(deck_file(tmp_path, f"{live_server}/scenarios/getpid?embed=1&stop=trapframe", width, height))
    frame = page.frame_locator("#f")
    panel = frame.locator("#step-panel")
    expect(panel).to_have_attribute("data-stop-view", "cpu")
    for selector in ("#ring", "#narrative", "#registers", "#step-forward"):  # the essentials, inside the frame
        box = frame.locator(selector).bounding_box()
        assert box and box["y"] >= 0 and box["y"] + min(box["height"], 40) <= height + 8, (selector, box)
    assert frame.locator("html").evaluate("(e) => e.scrollWidth <= e.clientWidth")
    page.screenshot(path=ARTIFACTS / f"embed-{width}x{height}.png")
    step = int(panel.get_attribute("data-step"))
    page.evaluate("document.getElementById('f').contentWindow.postMessage({trapscope: 'next'}, '*')")
    expect(panel).to_have_attribute("data-step", str(step + 1))
    page.evaluate("document.getElementById('f').contentWindow.postMessage({trapscope: 'step', step: 2}, '*')")
    expect(panel).to_have_attribute("data-step", "2")
    page.wait_for_function("window.heard.some((m) => m.trapscope === 'state' && m.step === 2)")
    state = [m for m in page.evaluate("window.heard") if m.get("step") == 2][-1]
    assert state["lastStep"] > 2 and re.search(r"[?&]step=2\b", state["url"])


def test_the_embed_code_dialog_gives_an_iframe_with_a_title(page: Page, live_server):
    page.goto("/scenarios/getpid?step=8")
    expect(page.locator("html[data-ready=true]")).to_have_count(1)
    page.locator("#embed-code-button").click()
    code = page.locator("#embed-code-text").input_value()
    assert re.fullmatch(
        rf'<iframe src="{re.escape(live_server)}/scenarios/getpid\?embed=1&amp;step=8" '
        r'title="trapscope: getpid\(\): a system call as a trap" width="960" height="540" style="border:0" '
        r'allowfullscreen(="")?></iframe>',
        code,
    ), code
    answer = page.request.get(f"/oembed?url={live_server}/scenarios/getpid%3Fstep%3D8")
    assert answer.ok and json.loads(answer.text())["title"] == "trapscope: getpid(): a system call as a trap"
