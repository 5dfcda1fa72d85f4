"""The lecture outline and the exercises in Chromium: each opens with no console error (the guard in conftest.py
fails the test otherwise), the outline leads to a scenario's stop, and an exercise's answer is checked in the page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser_context_args(viewport={"width": 1280, "height": 720})


def test_the_outline_opens_and_a_stop_link_opens_that_stop(page: Page):
    page.goto("/")
    page.get_by_role("link", name="The lecture, slide by slide").click()
    expect(page.locator("#slide-4 .slide-title")).to_contain_text("System calls")
    page.locator('#slide-4 a.stop-link[href*="stop=eintr-return"]').click()
    expect(page).to_have_url(re.compile(r"/scenarios/eintr\?mode=projector&stop=eintr-return&step=\d+$"))
    expect(page.locator("#stop-caption")).to_contain_text("EINTR")


def test_an_exercise_is_answered_and_checked_in_the_page(page: Page):
    page.goto("/exercises")
    page.get_by_role("link", name=re.compile("which hooks run")).click()
    expect(page.locator("#prompt")).to_be_visible()
    page.locator("input[name=answer]").first.check()
    page.locator("#check").click()
    expect(page.locator("#verdict")).to_be_visible()
    page.locator("#evidence").click()
    expect(page.locator("#step-panel")).to_be_visible()


def test_a_pagewalk_exercise_takes_a_typed_answer(page: Page):
    page.goto("/exercises/pagewalk?seed=1")
    expect(page.locator(".walk-table").first).to_be_visible()
    page.locator("#answer-input").fill("fault")
    page.locator("#answer-input").press("Enter")
    expect(page.locator("#verdict")).to_contain_text(re.compile("Right|Not"))
