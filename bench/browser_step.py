"""A step as a student sees it (issue 15.1): from the key press to the new step painted, in Chromium.

`trapscope serve` runs in its own process on loopback; Debian's Chromium (Playwright, headless) opens a stepping
page with its default views at 1366x768 and presses → many times. Each press is timed in the page from the
keydown event's timestamp to the first frame after the step panel shows the new step (a requestAnimationFrame
callback, then a task: the frame has been produced). Reported: median and 95th percentile per page (target: under
50 ms median, 100 ms p95); what a step costs the page's main thread, from Chromium's own counters (its CPU time,
which other work on the host inflates far less than the wall time, and the wall time in script, style and layout);
the browser-history entries the walk added; and holding → for 3 s (steps painted per second and the longest gap
between two painted steps: a smooth animation has no long gap).

    python -m bench.browser_step [--root TREE] [--steps N]

`--root TREE` serves another source tree (say a checkout of the commit before) with the same measurement. The
host has 2 shared cores: figures move by 2x with other work; the host calibration is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from bench import _servers
from bench._host import host_line

CHROMIUM = os.environ.get("TRAPSCOPE_CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1366, "height": 768}
PAGES = (
    "/scenarios/getpid?step=5",
    "/scenarios/dd-system-time?step=2000",  # in the middle of dd's page faults: every view has something to show
    "/scenarios/getpid?step=5&mode=projector",
)
HOLD_S = 3.0

# Armed before each press: the keydown's timestamp, then a frame after the panel shows another step.
ARM = """() => {
  const panel = () => document.getElementById("step-panel");
  const before = panel().dataset.step;
  window.benchStep = null;
  document.addEventListener("keydown", (event) => {
    const pressed = event.timeStamp;
    const check = () => {
      if (panel() && panel().dataset.step !== before) {
        requestAnimationFrame(() => setTimeout(() => { window.benchStep = performance.now() - pressed; }, 0));
      } else requestAnimationFrame(check);
    };
    check();
  }, { capture: true, once: true });
}"""
AWAIT_STEP = """() => new Promise((resolve) => {
  const poll = () => (window.benchStep !== null ? resolve(window.benchStep) : setTimeout(poll, 2));
  poll();
})"""
# While a key is held: the time of each frame that shows a new step.
WATCH_FRAMES = """() => {
  window.benchPaints = [];
  let shown = document.getElementById("step-panel").dataset.step;
  const frame = (now) => {
    const step = document.getElementById("step-panel").dataset.step;
    if (step !== shown) { shown = step; window.benchPaints.push(now); }
    if (window.benchPaints !== null) requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}"""


def serve(root: Path) -> tuple[subprocess.Popen, str]:
    port = _servers.free_port()
    log = tempfile.TemporaryFile()
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [sys.executable, "-m", "app.cli", "serve", "--host", _servers.HOST, "--port", str(port)]
    process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{_servers.HOST}:{port}"
    ready = _servers.http_ok(url + "/healthz")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if ready():
                return process, url
        except OSError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise SystemExit(f"the server in {root} did not start")


class MainThread:
    """The renderer's cumulative figures (CDP Performance.getMetrics, counted from enable()), in ms: its main
    thread's CPU time (ThreadTime: what a step costs whatever else the host runs) and the wall time it spent in
    script, style and layout."""

    NAMES = {
        "cpu": "ThreadTime",
        "script": "ScriptDuration",
        "style": "RecalcStyleDuration",
        "layout": "LayoutDuration",
    }

    def __init__(self, page: Page) -> None:
        self.session = page.context.new_cdp_session(page)
        self.session.send("Performance.enable")

    def read(self) -> dict[str, float]:
        metrics = {m["name"]: m["value"] for m in self.session.send("Performance.getMetrics")["metrics"]}
        return {key: metrics[name] * 1000 for key, name in self.NAMES.items()}


def press_times(page: Page, steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        page.evaluate(ARM)
        page.keyboard.press("ArrowRight")
        times.append(page.evaluate(AWAIT_STEP))
        page.wait_for_timeout(60)  # a reader's pace: one press, then the next (the page prefetches meanwhile)
    return times


def hold_arrow(page: Page) -> tuple[float, float]:
    """Hold → for HOLD_S seconds (the keyboard's repeat, as Chromium sends it): steps painted per second and the
    longest gap between two painted steps, in ms."""
    page.evaluate(WATCH_FRAMES)
    page.keyboard.down("ArrowRight")
    repeat_s = 1 / 30  # a typical key repeat rate
    end = time.monotonic() + HOLD_S
    while time.monotonic() < end:
        page.keyboard.down("ArrowRight")  # Playwright sends a repeat (event.repeat) for a key already down
        time.sleep(repeat_s)
    page.keyboard.up("ArrowRight")
    paints = page.evaluate("(() => { const p = window.benchPaints; window.benchPaints = null; return p; })()")
    if len(paints) < 2:
        return 0.0, float("inf")
    gaps = [b - a for a, b in zip(paints, paints[1:], strict=False)]
    return (len(paints) - 1) / ((paints[-1] - paints[0]) / 1000), max(gaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=_servers.ROOT, help="the source tree to serve")
    parser.add_argument("--steps", type=int, default=60, help="presses of → per page")
    args = parser.parse_args()
    print(host_line())
    server, url = serve(args.root.resolve())
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM)
            for path in PAGES:
                page = browser.new_page(viewport=VIEWPORT)
                page.set_default_timeout(180_000)  # a new run on a loaded host can take a minute
                page.goto(url + path)
                page.wait_for_selector("html[data-ready]", state="attached")
                page.wait_for_timeout(500)
                press_times(page, 5)  # warm: the run recorded, the figures drawn once
                history_before = page.evaluate("history.length")
                main_thread = MainThread(page)
                before = main_thread.read()
                times = sorted(press_times(page, args.steps))
                after = main_thread.read()
                cost = {key: (after[key] - before[key]) / len(times) for key in after}
                added = page.evaluate("history.length") - history_before
                rate, gap = hold_arrow(page)
                p95 = times[max(0, round(0.95 * len(times)) - 1)]
                median = statistics.median(times)
                print(
                    f"{path}: key press to step painted, {len(times)} presses: median {median:.1f} ms,"
                    f" p95 {p95:.1f} ms, max {times[-1]:.1f} ms; a step's main-thread CPU {cost['cpu']:.1f} ms"
                    f" (script {cost['script']:.1f}, style {cost['style']:.1f}, layout {cost['layout']:.1f} ms wall);"
                    f" history entries added: {added};"
                    f" holding → {HOLD_S:.0f} s: {rate:.1f} steps painted/s, longest gap {gap:.0f} ms"
                )
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(host_line())


if __name__ == "__main__":
    main()
