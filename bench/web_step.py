"""The stepping page's speed and size, measured through the app (HTTP in process, as a browser's request is served):

- a step answered from a cached run: the median and 95th percentile time of a step fragment of the lecture's
  dd run, every view shown, stepping forward and jumping about (issue target: < 20 ms median);
- opening a new dd bs=10m run: recording it, deriving its index and figures, and rendering the page
  (issue target: < 1 s; the simulator's own recording time is shown apart);
- bytes per step on the wire (gzip, as the app sends it; target < 20 KB);
- the stepping page's first load on the wire, with brotli for the libraries (target < 1.5 MB).
"""

from __future__ import annotations

import random
import statistics
import time

from fastapi.testclient import TestClient

from app.main import create_app, web_record
from sim.scenarios.registry import lookup

SCENARIO = "dd-system-time"
PAGE = f"/scenarios/{SCENARIO}"
PANEL = {"HX-Request": "true", "HX-Target": "section#step-panel", "Accept-Encoding": "gzip"}
BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}
STEPS = 300


def wire_bytes(response) -> int:
    """What went over the wire: the compressed body's length when the app compressed it."""
    return int(response.headers.get("content-length", len(response.content)))


def timed_get(client: TestClient, url: str, headers: dict) -> tuple[float, object]:
    start = time.perf_counter()
    response = client.get(url, headers=headers)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"{url}: {response.status_code} {response.text[:300]}")
    return elapsed, response


def first_load(client: TestClient) -> dict[str, int]:
    page = client.get(PAGE, headers=BROWSER)
    sizes = {PAGE: wire_bytes(page)}
    for asset in sorted(set(_assets(page.text))):
        sizes[asset] = wire_bytes(client.get(asset, headers=BROWSER))
    return sizes


def _assets(html: str) -> list[str]:
    import re

    return re.findall(r'(?:src|href)="(/(?:vendor|static)/[^"]+)"', html)


def main() -> None:
    spec = lookup(SCENARIO).spec()
    start = time.perf_counter()
    run = web_record(spec)
    record_s = time.perf_counter() - start
    print(f"{spec.command}: {len(run.events):,} steps; the simulator records it in {record_s:.2f} s")
    del run

    with TestClient(create_app()) as client:
        client.get("/scenarios/getpid", headers=BROWSER)  # a server already up: templates compiled, files read
        open_s, page = timed_get(client, PAGE, BROWSER)
        print(f"opening a new run (record + index + figures + page): {open_s:.2f} s (target < 1 s)")
        last = int(page.text.split('data-last-step="', 1)[1].split('"', 1)[0])
        first_fault = int(client.get(f"{PAGE}?step=0", headers=PANEL).text.split('id="run-fault"')[1]
                          .split("step=", 1)[1].split('"', 1)[0])  # fmt: skip

        rng = random.Random(4)
        jumps = [rng.randrange(last + 1) for _ in range(STEPS)]
        for step in jumps[:20]:  # warm: checkpoints and keyed tables are built on first use, once per run
            client.get(f"{PAGE}?step={step}", headers=PANEL)
        forward = [first_fault + i for i in range(STEPS)]
        results = {}
        for name, steps in (("stepping forward", forward), ("jumping about", jumps)):
            times, sizes, raw = [], [], []
            for step in steps:
                elapsed, response = timed_get(client, f"{PAGE}?step={step}", PANEL)
                times.append(elapsed * 1000)
                sizes.append(wire_bytes(response))
                raw.append(len(response.content))
            times.sort()
            results[name] = (statistics.median(times), times[int(0.95 * len(times))], max(sizes), max(raw))
        for name, (median, p95, wire, raw) in results.items():
            print(f"a step, {name} ({STEPS} steps, every view): median {median:.1f} ms, p95 {p95:.1f} ms "
                  f"(target < 20 ms median); at most {wire:,} bytes on the wire, {raw:,} before gzip "
                  "(target < 20 KB)")  # fmt: skip

        sizes = first_load(client)
        total = sum(sizes.values())
        print(f"first load of {PAGE} over the wire: {total:,} bytes (target < 1,500,000)")
        for url, size in sorted(sizes.items(), key=lambda item: -item[1]):
            print(f"  {size:>10,}  {url.split('?')[0]}")


if __name__ == "__main__":
    main()
