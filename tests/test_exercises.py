"""Exercises: the same kind and seed give the same question, seeds give variants, the answer is read from the run
and checked in the page (right and wrong), and the explanation's link opens the step that shows it."""

from __future__ import annotations

import html
import re
from functools import cache

import pytest

from app.exercises import GENERATORS, check, dd_buffer_faults
from sim.core.events import FaultResolved
from sim.run import RunSpec, record
from tests.aio import run as run_coroutine

SEEDS = range(1, 7)


@cache
def run_of(spec: RunSpec):
    return record(spec)


async def get_run(spec: RunSpec):
    return run_of(spec)


def exercise(kind: str, seed: int):
    return run_coroutine(GENERATORS[kind][1](seed, get_run))  # a thread of its own: see tests/aio.py


@pytest.mark.parametrize("kind", GENERATORS)
def test_the_same_seed_gives_the_same_question_and_seeds_give_variants(kind):
    assert exercise(kind, 3) == exercise(kind, 3)
    assert len({(e.prompt, e.answer) for e in (exercise(kind, seed) for seed in SEEDS)}) >= 3


@pytest.mark.parametrize("kind", GENERATORS)
@pytest.mark.parametrize("seed", SEEDS)
def test_the_right_answer_is_right_and_a_wrong_one_is_wrong(kind, seed):
    ex = exercise(kind, seed)
    assert check(ex, list(ex.answer)).right
    if ex.answer_kind == "text":
        wrong = ["fault"] if ex.answer[0] != "fault" else ["0x1000"]
    elif ex.answer_kind == "choice":
        wrong = [next(c for c in ex.choices if c not in ex.answer)]
    else:
        wrong = list(ex.answer[1:])  # one hook left out
    assert not check(ex, wrong).right


def test_a_pagewalk_answer_is_the_runs_translation_and_its_evidence_is_the_fault_that_mapped_it():
    mapped = [e for e in (exercise("pagewalk", seed) for seed in range(1, 20)) if e.answer[0] != "fault"]
    assert mapped, "some variants ask for an address"
    for ex in mapped[:3]:
        step = int(ex.evidence_url.rsplit("step=", 1)[1])
        data = run_of(RunSpec(command=ex.command)).events[step].data
        assert isinstance(data, FaultResolved) and data.pa == int(ex.answer[0], 16) & ~0xFFF
    shouted = mapped[0].answer[0].upper().replace("0X", "0x")
    assert check(mapped[0], [shouted]).right, "hex in either case"


def test_a_faults_answer_counts_the_buffers_faults_in_the_run():
    ex = exercise("faults", 2)
    user, kernel, _ = dd_buffer_faults(run_of(RunSpec(command=ex.command)))
    assert ex.answer == (f"{user:,} in user mode, {kernel:,} in kernel mode",)
    assert ex.answer[0] in ex.choices


def test_the_page_checks_an_answer_and_links_to_the_step(client):
    ex = exercise("hooks", 1)
    page = client.get("/exercises/hooks", params=[("seed", "1")] + [("answer", a) for a in ex.answer]).text
    assert 'class="verdict right"' in page
    evidence = html.unescape(re.search(r'<a id="evidence" href="([^"]*)"', page).group(1))
    assert client.get(evidence).status_code == 200
    wrong = client.get("/exercises/hooks", params={"seed": "1", "answer": "nonsense"}).text
    assert 'class="verdict wrong"' in wrong


def test_without_an_answer_the_page_only_asks(client):
    page = client.get("/exercises/pagewalk?seed=5").text
    assert 'id="prompt"' in page and 'id="verdict"' not in page


@pytest.mark.parametrize(
    ("url", "status"),
    [("/exercises/pagewalk?seed=-1", 422), ("/exercises/pagewalk?seed=x", 422), ("/exercises/nope?seed=1", 404)],
)
def test_bad_input_is_a_clear_4xx(client, url, status):
    response = client.get(url)
    assert response.status_code == status
    assert "seed" in response.text or "exercises:" in html.unescape(response.text)


def test_the_exercises_index_lists_every_kind(client):
    page = client.get("/exercises").text
    for kind in GENERATORS:
        assert f'href="/exercises/{kind}?seed=1"' in page
