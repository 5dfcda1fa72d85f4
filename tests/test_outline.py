"""The lecture outline: every slide in order with its scenarios (each scenario once), fact-only slides saying so;
and `trapscope scenarios [--json]` listing id, title, slide and command for every scenario."""

from __future__ import annotations

import html
import json
import re

from app.cli import main as trapscope
from sim.scenarios.outline import SLIDES, outline
from sim.scenarios.registry import SCENARIOS


def test_slides_are_numbered_in_order_and_every_scenario_has_a_slide():
    assert [slide.number for slide in SLIDES] == list(range(1, len(SLIDES) + 1))
    placed = [s.slug for entry in outline() if entry.slide for s in entry.scenarios]
    assert sorted(placed) == sorted(slug for slug, s in SCENARIOS.items() if s.slide)
    assert len(placed) == len(set(placed))


def test_a_slide_is_either_shown_by_a_scenario_or_says_it_states_a_fact():
    for entry in outline():
        if entry.slide is not None:
            assert entry.scenarios or entry.slide.fact, f"slide {entry.slide.number} has neither"


def test_the_outline_page_lists_the_slides_in_order_with_their_scenarios(client):
    page = html.unescape(client.get("/outline").text)
    titles = re.findall(r'<h2 class="slide-title"><span class="slide-number">(\d+)</span> (.*?)</h2>', page)
    assert titles[: len(SLIDES)] == [(str(slide.number), slide.title) for slide in SLIDES]
    assert page.count("Fact only:") == sum(1 for slide in SLIDES if slide.fact)
    for slug in SCENARIOS:
        if SCENARIOS[slug].slide:
            assert f'href="/scenarios/{slug}?mode=projector"' in page
    eintr = page.index('href="/scenarios/eintr?mode=projector"')
    assert page.index('id="slide-4"') < eintr < page.index('id="slide-5"')
    assert "stop=eintr-return" in page


def test_the_landing_page_leads_to_the_outline_and_to_trace(client):
    page = client.get("/").text
    assert 'href="/outline"' in page and 'href="/trace"' in page


def test_trapscope_scenarios_lists_each_scenario_with_its_slide_and_command(capsys):
    assert trapscope(["scenarios", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["id"] for row in rows} == set(SCENARIOS)
    eintr = next(row for row in rows if row["id"] == "eintr")
    assert (
        eintr["slide"] == "System calls" and eintr["command"] == "eintr" and eintr["title"] == SCENARIOS["eintr"].title
    )
    assert trapscope(["scenarios"]) == 0
    text = capsys.readouterr().out
    assert "dd-junk-false" in text and "$ MALLOC_CONF=junk:false dd if=/dev/zero of=/dev/null bs=10m count=1" in text
