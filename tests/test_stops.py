"""Stops: each scenario's stops are found in its own run, in the story's order, at the events they name; the
stepping page goes to a stop by name or number, names the stop in the URL with its step, and steps stop to stop."""

from __future__ import annotations

import html
import re
from types import SimpleNamespace

import pytest

from app.params import VIEWS
from sim.kern.errno import EINTR
from sim.run import record
from sim.scenarios.registry import SCENARIOS, lookup
from sim.scenarios.stops import Find, Stop, resolve_stops

WITH_STOPS = [slug for slug, scenario in SCENARIOS.items() if scenario.stops]
PANEL = {"HX-Request": "true", "HX-Target": "section#step-panel"}


def event(kind, name="", data=None):
    return SimpleNamespace(kind=kind, name=name, data=data)


EVENTS = [
    event("start"),
    event("fault", "cow"),
    event("trap", data=1),
    event("fault", "zero_fill"),
    event("trap", data=2),
]


@pytest.mark.parametrize(
    ("find", "step"),
    [
        (Find("fault"), 1),
        (Find("fault", "zero_fill"), 3),
        (Find("fault", nth=2), 3),
        (Find("trap", nth=-1), 4),
        (Find("trap", where=lambda data: data == 2), 4),
        (Find("trap", after=Find("fault", "zero_fill")), 4),
        (Find("fault", before=Find("trap", nth=-1)), 3),
        (Find("fault", nth=2, before=Find("trap", nth=-1)), 1),
        (Find("fault", nth=3), None),
        (Find("trap", after=Find("panic")), None),
        (Find("fault", before=Find("trap")), 1),
        (Find("fault", before=Find("start")), None),
    ],
)
def test_a_find_selects_the_event_it_describes(find, step):
    assert find.step_in(EVENTS) == step


def test_stops_are_numbered_in_step_order_and_those_a_run_never_reaches_are_left_out():
    stops = (
        Stop("late", Find("trap", nth=-1), "cpu", "late"),
        Stop("never", Find("panic"), "cpu", "never"),
        Stop("early", Find("fault"), "vm", "early"),
    )
    resolved = resolve_stops(stops, EVENTS)
    assert [(s.number, s.name, s.step) for s in resolved] == [(1, "early", 1), (2, "late", 4)]


def test_a_stop_name_must_be_a_slug():
    with pytest.raises(ValueError, match="slug"):
        Stop("First Fault", Find("fault"), "vm", "x")


@pytest.fixture(scope="module")
def scenario_runs():
    return {slug: record(lookup(slug).spec()) for slug in WITH_STOPS}


@pytest.mark.parametrize("slug", WITH_STOPS)
def test_every_stop_of_a_scenario_is_reached_in_the_order_the_story_tells_it(scenario_runs, slug):
    scenario = lookup(slug)
    run = scenario_runs[slug]
    resolved = resolve_stops(scenario.stops, run.events)
    assert [s.name for s in resolved] == [s.name for s in scenario.stops]
    assert len({s.step for s in resolved}) == len(resolved)
    for stop, at in zip(scenario.stops, resolved, strict=True):
        assert stop.view in VIEWS
        assert stop.caption and "\n" not in stop.caption
        assert stop.find.matches(run.events[at.step])


def test_eintr_has_a_stop_on_the_eintr_return(scenario_runs):
    run = scenario_runs["eintr"]
    stop = next(s for s in resolve_stops(lookup("eintr").stops, run.events) if s.name == "eintr-return")
    returned = run.events[stop.step]
    assert (returned.kind, returned.name, returned.data.errno) == ("user", "cerror", EINTR)
    assert run.events[stop.step + 1].data.value == -1  # read() returns -1 to the program


def test_dd_first_fault_stop_is_a_user_mode_trap_on_the_buffer_jemalloc_junk_fills(scenario_runs):
    run = scenario_runs["dd-system-time"]
    stops = {s.name: s for s in resolve_stops(lookup("dd-system-time").stops, run.events)}
    trap = run.events[stops["first-fault"].step].data
    fill = next(e for e in run.events[stops["first-fault"].step :] if e.kind == "user" and e.name == "memset")
    assert trap.user and trap.addr >> 12 == fill.data.va >> 12 and fill.data.byte == 0xA5


# ---------------------------------------------------------------- the stepping page


def stop_caption(page: str) -> str:
    found = re.search(r'<p id="stop-caption"[^>]*>(.*?)</p>', page, re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).split()) if found else ""


def link(page: str, element_id: str) -> str | None:
    found = re.search(rf'<a id="{element_id}"[^>]*\bhref="([^"]*)"', page)
    return html.unescape(found.group(1)) if found else None


def test_a_stop_by_name_or_number_opens_its_step_and_its_caption(client, scenario_runs):
    resolved = resolve_stops(lookup("eintr").stops, scenario_runs["eintr"].events)
    for asked in ("eintr-return", str(len(resolved))):
        redirect = client.get(f"/scenarios/eintr?stop={asked}", follow_redirects=False)
        assert redirect.status_code == 303
        assert redirect.headers["location"] == f"/scenarios/eintr?stop=eintr-return&step={resolved[-1].step}"
        page = client.get(f"/scenarios/eintr?stop={asked}").text
        assert f'data-step="{resolved[-1].step}"' in page
        assert stop_caption(page) == f"Stop {len(resolved)} of {len(resolved)} {resolved[-1].caption}"
        assert 'data-stop-view="cpu"' in page


def test_next_stop_walks_every_stop_in_order_naming_stop_and_step(client, scenario_runs):
    resolved = resolve_stops(lookup("getpid").stops, scenario_runs["getpid"].events)
    url = "/scenarios/getpid?mode=projector"
    seen = []
    while (url := link(client.get(url, headers=PANEL).text, "stop-next")) is not None:
        seen.append((re.search(r"stop=([a-z0-9-]+)", url).group(1), int(re.search(r"step=(\d+)", url).group(1))))
    assert seen == [(s.name, s.step) for s in resolved]
    back = link(client.get(f"/scenarios/getpid?step={resolved[2].step}").text, "stop-previous")
    assert f"stop={resolved[1].name}" in back and f"step={resolved[1].step}" in back


def test_a_stop_link_turns_on_the_view_that_carries_its_point(client):
    page = client.get("/scenarios/dd-system-time?views=narrative&stop=read").text
    assert "views=narrative,vm&stop=zero-fill" in link(page, "stop-previous")
    assert "views=narrative,latency&stop=end" in link(page, "stop-next")


def test_a_stop_opened_directly_shows_its_view_unless_the_url_chose_the_views(client, scenario_runs):
    """mmap-file's first-touch stop is told by the cpu view, which projector mode does not show by default: a typed
    or reloaded `?stop=` turns it on as a stop link does; views= in the URL is the reader's own choice."""
    stop = next(
        s for s in resolve_stops(lookup("mmap-file").stops, scenario_runs["mmap-file"].events) if s.view == "cpu"
    )
    assert "cpu" not in lookup("mmap-file").views
    redirect = client.get(f"/scenarios/mmap-file?mode=projector&stop={stop.name}", follow_redirects=False)
    canonical = redirect.headers["location"]
    assert "views=" not in canonical and f"stop={stop.name}&step={stop.step}" in canonical
    for url in (canonical, f"/scenarios/mmap-file?mode=projector&stop={stop.number}"):
        assert 'id="registers"' in client.get(url).text, url
    chosen = client.get(f"/scenarios/mmap-file?mode=projector&views=narrative,vm&stop={stop.name}").text
    assert 'id="registers"' not in chosen and 'id="vm"' in chosen
    off = link(client.get(canonical).text, "toggle-cpu")
    assert f"stop={stop.name}" in off and 'id="registers"' not in client.get(off).text, "it can be turned off there"


def test_a_step_that_is_no_stop_names_none_and_says_which_comes_next(client, scenario_runs):
    resolved = resolve_stops(lookup("getpid").stops, scenario_runs["getpid"].events)
    response = client.get(f"/scenarios/getpid?step={resolved[0].step + 1}&stop={resolved[0].name}", headers=PANEL)
    assert "stop=" not in response.headers["HX-Push-Url"]
    assert stop_caption(response.text) == f"Next, stop 2 of {len(resolved)}: {resolved[1].caption}"


def test_a_stop_reached_by_stepping_shows_its_caption_and_its_url_names_only_the_step(client, scenario_runs):
    resolved = resolve_stops(lookup("getpid").stops, scenario_runs["getpid"].events)
    response = client.get(f"/scenarios/getpid?step={resolved[1].step}", headers=PANEL)
    assert response.headers["HX-Push-Url"] == f"/scenarios/getpid?step={resolved[1].step}"
    assert stop_caption(response.text).startswith(f"Stop 2 of {len(resolved)} ")


@pytest.mark.parametrize("asked", ["no-such-stop", "99", "A B"])
def test_a_bad_stop_is_a_4xx_that_names_the_parameter(client, asked):
    response = client.get(f"/scenarios/eintr?stop={asked}")
    assert response.status_code == 422
    assert "stop" in response.text
