"""A live room in real Chromium: a lecturer and two students, each in their own browser context (own cookies).

The students follow the lecturer's steps over server-sent events, answer a question, see the truth after the
reveal while the projector shows the class's tally (Plotly) next to it; one branches off to explore and re-joins
with one key; a reload, a late join and a dropped stream that reconnects each land on the lecturer's current step.
Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
PROJECTOR = {"width": 1280, "height": 800}
PHONE = {"width": 800, "height": 900}


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / name)


def ready(page: Page) -> None:
    expect(page.locator("html[data-ready]")).to_have_count(1)


def following(page: Page) -> None:
    """The student's page is connected to the room's stream."""
    ready(page)
    expect(page.locator("#room-status")).to_have_text("live")


def expect_step(page: Page, step: int) -> None:
    expect(page.locator("#step-panel")).to_have_attribute("data-step", str(step))


def lecturer_step(page: Page) -> int:
    return int(page.locator("#step-panel").get_attribute("data-step"))


def press(page: Page, key: str, to_step: int) -> None:
    page.keyboard.press(key)
    expect_step(page, to_step)


@pytest.fixture
def room(new_context):
    """(lecturer's page, student 1's page, student 2's page, room code), the lecturer at getpid's step 3."""
    lecturer = new_context(viewport=PROJECTOR).new_page()
    lecturer.goto("/scenarios/getpid?step=3")
    ready(lecturer)
    lecturer.click("#room-open-button")
    expect(lecturer.locator("#room-bar")).to_have_attribute("data-role", "lead")
    code = lecturer.locator("#room-code").inner_text()
    students = []
    for _ in range(2):
        student = new_context(viewport=PHONE).new_page()
        student.goto(f"/rooms/{code}")
        following(student)
        students.append(student)
    expect(lecturer.locator("#room-followers")).to_have_text("2 following")
    return lecturer, students[0], students[1], code


def test_students_follow_the_lecturers_steps_and_views(room):
    lecturer, first, second, code = room
    for student in (first, second):
        expect_step(student, 3)
        expect(student.locator("#room-bar")).to_have_attribute("data-role", "follow")
    press(lecturer, "ArrowRight", 4)
    press(lecturer, "ArrowRight", 5)
    expect_step(first, 5)
    expect_step(second, 5)
    expect(first).to_have_title(re.compile(r"step 5"))
    lecturer.keyboard.press("s")  # run to the next system call
    expect(lecturer.locator("#step-panel")).not_to_have_attribute("data-step", "5")
    step = lecturer_step(lecturer)
    expect_step(first, step)
    lecturer.keyboard.press("3")  # hide the CPU view: followers' views follow
    expect(lecturer.locator("#toggle-cpu")).to_have_attribute("aria-pressed", "false")
    expect(first.locator("#toggle-cpu")).to_have_attribute("aria-pressed", "false")
    expect_step(first, step)
    expect(first.locator("#timeline .main-svg").first).to_be_visible()  # the new stepper's timeline is drawn
    expect(first).to_have_url(re.compile(rf"/rooms/{code}$"))  # following does not move the student's URL
    screenshot(lecturer, "room-lecturer.png")
    screenshot(first, "room-student.png")


def test_predict_then_reveal(room):
    lecturer, first, second, _ = room
    lecturer.click("#ask-fault")
    prompt = "Will a page fault happen before the program's next instruction runs?"
    for student in (first, second):
        expect(student.locator("#question-prompt")).to_have_text(prompt)
    expect(first.locator("#room-truth")).to_have_count(0)
    first.get_by_role("button", name="yes", exact=True).click()
    expect(first.locator(".my-answer")).to_have_text("Your answer: yes")
    second.get_by_role("button", name="no", exact=True).click()
    expect(lecturer.locator(".tally-count")).to_have_text("2 answers")  # live, over the lecturer's own stream
    expect(lecturer.locator("#room-tally .tally-chart .main-svg").first).to_be_visible()
    screenshot(lecturer, "room-tally.png")
    lecturer.click("#room-reveal")
    expect(lecturer.locator("#room-truth")).to_contain_text("Answer: no")
    expect(lecturer.locator(".tally-item.right")).to_have_text("no 1")
    for student in (first, second):
        expect(student.locator("#room-truth")).to_contain_text("Answer: no")
        expect(student.locator("#room-tally .tally-chart .main-svg").first).to_be_visible()
    expect(first.locator(".my-answer")).to_have_text("Your answer: yes")  # kept through the reveal
    expect(first.locator("#room-answer")).to_have_count(0)  # answers are closed
    screenshot(lecturer, "room-reveal-projector.png")
    screenshot(second, "room-reveal-student.png")


def test_a_student_branches_off_and_rejoins_with_one_key(room):
    lecturer, first, second, code = room
    press(second, "ArrowRight", 4)  # the student's own step: exploring
    expect(second.locator("#room-bar")).to_have_attribute("data-role", "explore")
    expect(second).to_have_url(re.compile(rf"/scenarios/getpid\?room={code}&step=4$"))
    press(second, "ArrowRight", 5)
    press(lecturer, "ArrowRight", 4)
    press(lecturer, "Home", 0)
    expect_step(first, 0)
    second.wait_for_timeout(300)
    expect_step(second, 5)  # not pulled along while exploring
    screenshot(second, "room-explore.png")
    second.keyboard.press("j")
    expect(second).to_have_url(re.compile(rf"/rooms/{code}$"))
    following(second)
    expect_step(second, 0)
    press(lecturer, "ArrowRight", 1)
    expect_step(second, 1)


def test_reload_late_join_and_a_dropped_connection_land_on_the_current_step(room, new_context, console_errors):
    lecturer, first, second, code = room
    press(lecturer, "ArrowRight", 4)
    first.reload()
    following(first)
    expect_step(first, 4)
    late = new_context(viewport=PHONE).new_page()
    late.goto("/")
    late.fill("#join-code", code.lower())
    late.click("#join-room button")
    expect(late).to_have_url(re.compile(rf"/rooms/{code}$"))
    following(late)
    expect_step(late, 4)
    # The stream drops (the hall's wifi): its reconnections fail for a while, then one gets through.
    events = re.compile(rf"/rooms/{code}/events")
    second.route(events, lambda route: route.abort())
    second.evaluate("document.getElementById('room-follow')._htmx.sse.reader.cancel()")
    expect(second.locator("#room-status")).to_have_text("reconnecting…")
    press(lecturer, "ArrowRight", 5)
    press(lecturer, "ArrowRight", 6)
    second.unroute(events)
    expect(second.locator("#room-status")).to_have_text("live", timeout=15_000)
    console_errors.flush()
    errors = console_errors.clear()
    unexpected = [e for e in errors if f"/rooms/{code}/events" not in e and "htmx:sse:error: Failed to fetch" not in e]
    assert errors and not unexpected  # the refused reconnections, and nothing else, were logged
    expect_step(second, 6)


def test_the_projector_shows_the_code_and_a_qr_code(room):
    lecturer, *_, code = room
    lecturer.keyboard.press("q")
    dialog = lecturer.locator("#room-qr")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".room-qr-code")).to_have_text(code)
    assert lecturer.evaluate("document.querySelector('#room-qr img').naturalWidth") > 100
    screenshot(lecturer, "room-qr.png")
    lecturer.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_ending_the_room_asks_first_then_tells_its_followers(room):
    lecturer, first, second, code = room
    asked: list[str] = []

    def answer(dialog, accept: bool) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    lecturer.once("dialog", lambda dialog: answer(dialog, accept=False))
    lecturer.click("#room-end")
    expect(lecturer.locator("#room-bar")).to_have_attribute("data-role", "lead")  # dismissed: the lecture goes on
    press(lecturer, "ArrowRight", 4)
    expect_step(first, 4)
    lecturer.once("dialog", lambda dialog: answer(dialog, accept=True))
    lecturer.click("#room-end")
    expect(lecturer.locator("#room-bar")).to_have_count(0)
    question = f"End room {code} for everyone? Its followers are told it has ended, and the code stops working."
    assert asked == [question, question]
    for student in (first, second):
        expect(student.locator("#room-bar")).to_have_attribute("data-role", "ended")
        expect(student.locator("#room-bar")).to_contain_text(f"Room {code} has ended")


def test_a_hostile_room_name_is_shown_as_text(page, new_context, console_errors):
    hostile = '<img src=x onerror="document.body.dataset.owned=1">'
    page.goto("/")
    page.fill("#room-title-input", hostile)
    page.click("#open-room button")
    expect(page.locator("#room-title")).to_have_text(hostile)
    code = page.locator("#room-code").inner_text()
    student = new_context().new_page()  # the lecturer's own browser is sent back to their page
    student.goto(f"/rooms/{code}")
    expect(student.locator("#room-title")).to_have_text(hostile)
    for seen in (page, student):
        assert seen.evaluate("document.body.dataset.owned") is None
    assert student.locator("#room-bar img").count() == 0


def test_projector_mode_never_shows_the_lecturers_link_but_copies_it(new_context):
    lecturer = new_context(viewport=PROJECTOR, permissions=["clipboard-read", "clipboard-write"]).new_page()
    lecturer.goto("/scenarios/getpid?step=3")
    ready(lecturer)
    lecturer.click("#room-open-button")
    expect(lecturer.locator("#room-bar")).to_have_attribute("data-role", "lead")
    lecturer.keyboard.press("p")
    expect(lecturer.locator("#stepper.projector")).to_have_count(1)
    lecturer.get_by_text("Drive from another device").click()
    expect(lecturer.locator("#room-lecturer-link")).to_be_hidden()
    expect(lecturer.locator(".room-key-hidden")).to_be_visible()
    screenshot(lecturer, "room-projector-lecturer-link.png")
    assert "/lead?key=" not in lecturer.locator("body").inner_text()  # nothing on the projected page shows the key
    lecturer.click("#room-copy-link")
    expect(lecturer.locator("#room-copy-status")).to_have_text("Copied: paste it on the other device.")
    link = lecturer.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/rooms/[A-Z0-9]{5}/lead\?key=[A-Za-z0-9_-]{32}", link)
    laptop = new_context(viewport=PHONE).new_page()  # the capability link still hands the room over
    laptop.goto(link)
    expect(laptop.locator("#room-bar")).to_have_attribute("data-role", "lead")
    lecturer.keyboard.press("p")  # out of projector mode, on the lecturer's own screen, the link shows
    expect(lecturer.locator("#stepper.projector")).to_have_count(0)
    expect(lecturer.locator("#room-lecturer-link")).to_be_visible()


def test_the_lecturers_join_link_keeps_their_driving_page(room):
    lecturer, first, _, code = room
    lecturer.click("#room-join-link")
    expect(lecturer).to_have_url(re.compile(rf"/scenarios/getpid\?room={code}&step=3$"))
    expect(lecturer.locator("#room-bar")).to_have_attribute("data-role", "lead")
    press(lecturer, "ArrowRight", 4)
    expect_step(first, 4)  # still driving


def test_switching_scenario_keeps_projector_mode(room):
    lecturer, first, *_ = room
    lecturer.keyboard.press("p")
    expect(lecturer.locator("#stepper.projector")).to_have_count(1)
    lecturer.get_by_text("Switch scenario").click()
    lecturer.locator(".room-scenarios a[href^='/scenarios/fork-returns-twice']").click()
    expect(lecturer).to_have_url(re.compile(r"/scenarios/fork-returns-twice\?.*mode=projector"))
    expect(lecturer.locator("#stepper.projector")).to_have_count(1)
    expect(lecturer.locator("#room-bar")).to_have_attribute("data-role", "lead")
    expect(first).to_have_title(re.compile(r"fork", re.IGNORECASE))  # the class went along


def test_a_mistyped_code_can_be_retyped_on_its_page(room, new_context, console_errors):
    *_, code = room
    student = new_context(viewport=PHONE).new_page()
    student.goto("/")
    student.fill("#join-code", "k7qx")
    student.click("#join-room button")
    expect(student.locator(".error-page")).to_contain_text("a room code is 5 letters and digits")
    student.fill("#join-code", code.lower())
    student.click("#join-room button")
    expect(student).to_have_url(re.compile(rf"/rooms/{code}$"))
    following(student)
    console_errors.clear()  # the mistyped code's page was a 404, as it should be
