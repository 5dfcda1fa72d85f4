"""The machine profiles' pages: every constant a run's costs come from, with what it is and its source, and the
memory hierarchy; linked from the landing page and the stepper's profile label."""

from __future__ import annotations

import html
import re

import pytest

from sim.machine.profile_sources import constants
from sim.machine.profiles import PROFILES


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_constant_of_every_profile_has_its_source_written_next_to_it(name):
    missing = [c.name for c in constants(PROFILES[name]) if not c.source.removeprefix("the default: ")]
    assert not missing


def test_a_constant_without_a_comment_of_its_own_has_none_shown():
    # the lecture's set_retval_ns sits below audit_record_ns, whose source is on its own line only
    lecture = {c.name: c for c in constants(PROFILES["lecture"])}
    assert "audit record" in lecture["audit_record_ns"].source
    assert "audit record" not in lecture["set_retval_ns"].source


def test_the_profile_page_shows_each_constant_its_value_and_source(client):
    page = html.unescape(client.get("/profiles/lecture").text)
    for level in PROFILES["lecture"].memory:
        assert f'<th scope="row">{level.name}</th>' in page
    assert "67,552 ns for the host to back it" in page  # the first touch of a guest frame
    rows = re.findall(r'<tr id="(\w+)">', page)
    assert rows == [c.name for c in constants(PROFILES["lecture"])]
    assert "346 samples" in page  # pagezero's source: the lecture's profile-997 stacks


def test_the_beaglebone_page_says_which_figures_it_keeps_from_the_lecture_profile(client):
    page = client.get("/profiles/beaglebone").text
    assert 'as in <a href="/profiles/lecture#vop_ns">lecture</a>' in page
    assert "random" in page and "KA13544" in page
    assert "Bare metal" in page


def test_an_unknown_profile_is_a_404_naming_the_profiles(client):
    response = client.get("/profiles/sparc")
    assert response.status_code == 404
    assert "lecture, modern, beaglebone" in html.unescape(response.text)


def test_the_landing_page_and_the_stepper_link_a_runs_profile_to_its_page(client):
    assert 'href="/profiles/lecture"' in client.get("/").text
    stepper = client.get("/scenarios/getpid").text
    assert re.search(r'<a href="/profiles/lecture"[^>]*>profile lecture, its costs and their sources</a>', stepper)
    assert '<option value="beaglebone"' in stepper  # every profile may be picked
