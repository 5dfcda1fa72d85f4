"""The machine profiles' pages in real Chromium: reached from the landing page and from the stepper's profile
label, a constant a profile keeps from another links to that profile's row (a console error fails the test)."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def test_the_landing_page_leads_to_a_profiles_constants_and_their_sources(page: Page):
    page.goto("/")
    page.get_by_role("link", name="lecture machine profile").first.click()
    page.wait_for_url("**/profiles/lecture")
    expect(page.locator("h1")).to_have_text("The lecture profile")
    expect(page.locator("table.profile-memory tbody tr")).to_have_count(4)
    expect(page.locator("#host_first_touch_ns td").nth(2)).to_contain_text("pagezero")


def test_the_steppers_profile_label_opens_the_runs_profile(page: Page):
    page.goto("/scenarios/getpid")
    page.locator("details.params summary").click()  # the parameters open
    page.locator("details.params .profile-link a").click()
    page.wait_for_url("**/profiles/lecture")


def test_a_kept_figure_links_to_the_row_of_the_profile_it_comes_from(page: Page):
    page.goto("/profiles/beaglebone")
    page.locator("#vop_ns a").click()
    page.wait_for_url("**/profiles/lecture#vop_ns")
    expect(page.locator("#vop_ns")).to_be_in_viewport()
