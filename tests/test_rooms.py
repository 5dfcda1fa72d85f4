"""Live rooms over HTTP (app/routes_rooms.py): opening, joining, who may drive, questions and answers, limits, and
hostile input through room codes, titles, URLs and answers (escaped or refused, never reflected as markup).

The live parts (a follower's stream receiving the lecturer's steps, in one process and across two behind Redis)
are in tests/test_rooms_live.py; the flows in a browser in tests/browser/test_rooms.py.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from fastapi.testclient import TestClient

from app import rooms as rooms_module
from app.broker import MemoryBroker
from app.main import create_app
from app.rate_limit import RateLimit
from app.rooms import CODE, RoomLimits, Rooms
from tests.test_api_runs import run_in_fresh_loop

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def app():
    return create_app()


def _client(app) -> TestClient:
    return TestClient(app, follow_redirects=False)


@pytest.fixture
def lecturer(app) -> TestClient:
    return _client(app)


@pytest.fixture
def student(app) -> TestClient:
    return _client(app)


def open_room(lecturer: TestClient, url: str = "/scenarios/getpid?step=3", title: str = "") -> str:
    response = lecturer.post("/rooms", data={"url": url, "title": title})
    assert response.status_code == 303, response.text
    code = re.search(r"[?&]room=([A-Z0-9]+)", response.headers["location"]).group(1)
    assert CODE.fullmatch(code)
    return code


def join(student: TestClient, code: str) -> str:
    page = student.get(f"/rooms/{code}")
    assert page.status_code == 200, page.text
    return page.text


def follow(app, student: TestClient, code: str) -> None:
    """What the room's event stream does when the student's browser opens it (tests/test_rooms_live.py opens real
    streams; a TestClient cannot read an endless one): the student's id may now answer."""
    run_in_fresh_loop(lambda: app.state.rooms.student_seen(code, student.cookies.get("trapscope_student")))


def test_a_lecturer_opens_a_room_and_gets_its_code_link_and_qr_code(lecturer):
    response = lecturer.post("/rooms", data={"url": "/scenarios/getpid?step=3"})
    assert response.status_code == 303
    location = response.headers["location"]
    code = re.search(r"room=([A-Z0-9]+)", location).group(1)
    assert location == f"/scenarios/getpid?room={code}&step=3"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"trapscope_lead_{code}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = lecturer.get(location).text
    assert 'data-role="lead"' in page
    assert f'<strong id="room-code" class="room-code">{code}</strong>' in page
    assert f"/rooms/{code}/qr.svg" in page and f"http://testserver/rooms/{code}" in page
    qr = lecturer.get(f"/rooms/{code}/qr.svg")
    assert qr.headers["content-type"] == "image/svg+xml" and qr.text.startswith("<svg")


def test_the_landing_page_and_the_stepping_page_offer_rooms(lecturer):
    landing = lecturer.get("/").text
    assert 'action="/rooms/join"' in landing and 'action="/rooms"' in landing
    page = lecturer.get("/scenarios/getpid?step=7").text
    assert re.search(r'<form id="room-open"[^>]*action="/rooms"', page)
    assert 'name="url" value="/scenarios/getpid?step=7"' in page


def test_a_student_follows_without_ever_seeing_the_lecturers_key(lecturer, student):
    code = open_room(lecturer)
    key = lecturer.cookies.get(f"trapscope_lead_{code}")
    page = join(student, code)
    assert 'data-role="follow"' in page and f"/rooms/{code}/events?v=1" in page
    assert 'data-step="3"' in page  # the lecturer's step
    assert key not in page
    assert re.fullmatch(r"[0-9a-f]{32}", student.cookies.get("trapscope_student"))
    # the same stepping URL without the key is a student's own exploration, with the way back
    explore = student.get(f"/scenarios/getpid?room={code}&step=3").text
    assert 'data-role="explore"' in explore and f'href="/rooms/{code}" data-key="j"' in explore
    assert "/question" not in explore and "/drive" not in explore


def test_only_the_key_holder_drives(lecturer, student):
    code = open_room(lecturer)
    join(student, code)
    url = {"url": f"/scenarios/getpid?room={code}&step=9"}
    assert student.post(f"/rooms/{code}/drive", data=url).status_code == 403
    assert student.post(f"/rooms/{code}/question", data={"kind": "fault"}).status_code == 403
    assert student.post(f"/rooms/{code}/end").status_code == 403
    assert lecturer.post(f"/rooms/{code}/drive", data=url).status_code == 204
    assert 'data-step="9"' in join(student, code)


def test_the_lecturer_takes_the_room_to_another_scenario(lecturer, student):
    code = open_room(lecturer)
    page = lecturer.get(f"/scenarios/getpid?room={code}&step=3").text
    assert f'href="/scenarios/fork-returns-twice?room={code}"' in page
    assert (
        lecturer.post(f"/rooms/{code}/drive", data={"url": "/scenarios/fork-returns-twice?step=2"}).status_code == 204
    )
    followed = join(student, code)
    assert "fork" in followed and 'data-step="2"' in followed
    assert f"/scenarios/fork-returns-twice?room={code}&amp;step=2" in followed  # its links keep the room


def test_a_capability_link_hands_the_key_to_another_device(lecturer, app):
    code = open_room(lecturer)
    key = lecturer.cookies.get(f"trapscope_lead_{code}")
    assert f"/rooms/{code}/lead?key={key}" in lecturer.get(f"/scenarios/getpid?room={code}").text
    projector = _client(app)
    assert projector.get(f"/rooms/{code}/lead?key={'A' * 32}").status_code == 403
    response = projector.get(f"/rooms/{code}/lead?key={key}")
    assert response.status_code == 303 and response.headers["location"].endswith(f"room={code}&step=3")
    assert projector.post(f"/rooms/{code}/drive", data={"url": f"/scenarios/getpid?room={code}"}).status_code == 204


def test_another_sites_post_is_refused(lecturer):
    code = open_room(lecturer)
    data = {"url": f"/scenarios/getpid?room={code}&step=4"}
    assert lecturer.post(f"/rooms/{code}/drive", data=data, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    headers = {"Origin": "https://evil.example"}
    assert lecturer.post("/rooms", data={"url": "/scenarios/getpid"}, headers=headers).status_code == 403


def test_drive_takes_only_stepping_urls(lecturer):
    code = open_room(lecturer)
    for url, status in [
        ("https://evil.example/scenarios/getpid", 422),
        ("/api/scenarios", 422),
        ("/scenarios/nope", 404),
        ("/scenarios/getpid?step=999999", 404),
        ("/scenarios/getpid?bogus=1", 422),
        ("/scenarios/getpid?" + "x" * 5000, 422),
    ]:
        response = lecturer.post(f"/rooms/{code}/drive", data={"url": url})
        assert response.status_code == status, (url, response.text[:200])


def test_one_answer_per_student_counts_in_the_tally_and_the_truth_waits_for_the_reveal(lecturer, student, app):
    code = open_room(lecturer, "/scenarios/read-kernel-pointer?step=3")
    join(student, code)
    follow(app, student, code)
    posed = lecturer.post(f"/rooms/{code}/question", data={"kind": "errno"})
    assert posed.status_code == 200 and "What will the next system call return?" in posed.text
    assert "Answer:" not in posed.text
    page = join(student, code)
    question = re.search(r'name="question" value="([0-9a-f]+)"', page).group(1)
    assert "Answer:" not in page and "room-tally" not in page  # no truth, and no tally, before the reveal
    answer = {"question": question, "choice": "EFAULT"}
    mine = student.post(f"/rooms/{code}/answer", data=answer)
    assert mine.status_code == 200 and "Your answer: <strong>EFAULT</strong>" in mine.text
    assert student.post(f"/rooms/{code}/answer", data={**answer, "choice": "success"}).status_code == 200
    other = _client(app)
    join(other, code)
    follow(app, other, code)
    assert other.post(f"/rooms/{code}/answer", data=answer).status_code == 200
    lead = lecturer.get(f"/scenarios/read-kernel-pointer?room={code}&step=3").text
    assert "2 answers" in lead  # one per student: the first student's second answer replaced the first
    assert re.search(r'<span class="tally-item">EFAULT 1</span>', lead)
    assert re.search(r'<span class="tally-item">success 1</span>', lead)
    revealed = lecturer.post(f"/rooms/{code}/reveal")
    assert "Answer: success" in revealed.text  # openat's first call succeeds
    assert "tally-item right" in revealed.text
    assert student.post(f"/rooms/{code}/answer", data=answer).status_code == 409
    after = join(student, code)
    assert "Answer: success" in after and "Your answer: <strong>success</strong>" in after


def test_answers_are_checked_and_never_echoed(lecturer, student):
    code = open_room(lecturer)
    join(student, code)
    lecturer.post(f"/rooms/{code}/question", data={"kind": "fault"})
    question = re.search(r'name="question" value="([0-9a-f]+)"', join(student, code)).group(1)
    bad = student.post(f"/rooms/{code}/answer", data={"question": question, "choice": HOSTILE})
    assert bad.status_code == 422 and "<script>" not in bad.text and "onerror" not in bad.text
    stale = student.post(f"/rooms/{code}/answer", data={"question": "0" * 12, "choice": "yes"})
    assert stale.status_code == 409
    long = student.post(f"/rooms/{code}/answer", data={"question": question, "choice": "y" * 100})
    assert long.status_code == 422
    anonymous = TestClient(student.app, follow_redirects=False)
    assert anonymous.post(f"/rooms/{code}/answer", data={"question": question, "choice": "yes"}).status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/rooms/ZZZZZ",
        "/rooms/k7qx",
        "/rooms/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/rooms/" + "A" * 200,
        "/rooms/ZZZZZ/events",
        "/rooms/ZZZZZ/qr.svg",
        "/rooms/join?code=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
    ],
)
def test_a_bad_or_unknown_code_is_a_clear_404_that_reflects_nothing(student, path):
    response = student.get(path)
    assert response.status_code == 404
    assert "no room" in response.text or "no such room" in response.text
    assert "<script>alert" not in response.text and "onerror" not in response.text and "AAAAAAAAAA" not in response.text


def test_a_bad_room_parameter_on_the_stepping_page_is_a_4xx_that_reflects_nothing(student):
    response = student.get("/scenarios/getpid", params={"room": HOSTILE})
    assert response.status_code == 422
    assert "<script>" not in response.text and "onerror" not in response.text
    ended = student.get("/scenarios/getpid?room=ZZZZZ")
    assert ended.status_code == 200 and 'data-role="ended"' in ended.text


def test_a_room_title_is_shown_as_text(lecturer, student):
    code = open_room(lecturer, title=HOSTILE)
    for page in (lecturer.get(f"/scenarios/getpid?room={code}&step=3").text, join(student, code)):
        assert "&lt;script&gt;" in page and '<script>alert("x")' not in page and "<img src=x" not in page


def test_a_form_longer_than_its_limit_is_refused(lecturer):
    assert lecturer.post("/rooms", data={"url": "/scenarios/getpid", "title": "t" * 81}).status_code == 422
    assert lecturer.post("/rooms", content=b"url=" + b"a" * 9000, headers={"content-type": "x"}).status_code == 413


def test_rooms_questions_and_ended_rooms_are_bounded():
    app = create_app(rooms=Rooms(MemoryBroker(), RoomLimits(ttl_s=1, max_rooms=2)))
    lecturer = _client(app)
    codes = [open_room(lecturer), open_room(lecturer)]
    full = lecturer.post("/rooms", data={"url": "/scenarios/getpid"})
    assert full.status_code == 503 and "2 live rooms" in full.text
    time.sleep(1.1)  # idle longer than the rooms' life
    assert _client(app).get(f"/rooms/{codes[0]}").status_code == 404
    open_room(lecturer)  # the expired rooms no longer count


def test_ending_a_room_ends_it_for_everyone(lecturer, student):
    code = open_room(lecturer)
    join(student, code)
    response = lecturer.post(f"/rooms/{code}/end")
    assert response.status_code == 303 and response.headers["location"] == "/scenarios/getpid"
    assert student.get(f"/rooms/{code}").status_code == 404


def test_a_broadcast_is_rendered_once_and_leaves_out_the_timeline_followers_already_draw(app, lecturer):
    code = open_room(lecturer, "/scenarios/getpid?step=3")
    sent: list[dict] = []
    broker = app.state.rooms.broker
    publish = broker.publish

    async def spy(channel: str, message: str) -> None:
        if channel == f"trapscope:room:{code}":
            sent.append(json.loads(message))
        await publish(channel, message)

    broker.publish = spy
    try:
        for url in (
            f"/scenarios/getpid?room={code}&step=4",
            f"/scenarios/getpid?room={code}&step=4&views=timeline,cpu",
            f"/scenarios/fork-returns-twice?room={code}&step=2",
        ):
            assert lecturer.post(f"/rooms/{code}/drive", data={"url": url}).status_code == 204
    finally:
        broker.publish = publish
    step, views, new_run = (message["html"] for message in sent)  # one message per change, for every follower
    assert '<hx-partial hx-target="#step-panel"' in step and 'id="timeline-figure"' not in step
    assert '<hx-partial hx-target="#stepper"' in views and 'id="timeline-figure"' not in views  # the same run's
    assert '<hx-partial hx-target="#stepper"' in new_run and 'id="timeline-figure"' in new_run
    assert [message["v"] for message in sent] == [2, 3, 4]


def test_opening_rooms_is_limited_per_client():
    app = create_app(rooms=Rooms(MemoryBroker(), RoomLimits(open_rate=RateLimit(2, 600))))
    lecturer = _client(app)
    open_room(lecturer)
    open_room(lecturer)
    refused = lecturer.post("/rooms", data={"url": "/scenarios/getpid"})
    assert refused.status_code == 429 and "too many rooms opened from your address" in refused.text
    assert "2 per 600 s" in refused.text and 0 < int(refused.headers["retry-after"]) <= 300
    assert lecturer.post("/rooms", data={"url": "/nope"}).status_code == 422  # a bad form is refused as before


def test_the_rooms_opening_limit_is_set_by_the_environment(monkeypatch):
    monkeypatch.setenv("TRAPSCOPE_ROOM_RATE_LIMIT", "3/60")
    assert RoomLimits.from_env().open_rate == RateLimit(3, 60)
    monkeypatch.setenv("TRAPSCOPE_ROOM_RATE_LIMIT", "off")
    assert RoomLimits.from_env().open_rate is None
    monkeypatch.delenv("TRAPSCOPE_ROOM_RATE_LIMIT")
    assert RoomLimits.from_env().open_rate == RateLimit(5, 600)


def test_a_room_its_lecturers_page_never_kept_alive_ends_sooner():
    app = create_app(rooms=Rooms(MemoryBroker(), RoomLimits(ttl_s=60, idle_ttl_s=1)))
    lecturer = _client(app)
    left, kept = open_room(lecturer), open_room(lecturer)
    # the lecturer's page reports it is still there (its lead stream's heartbeat touches the room the same way)
    assert lecturer.post(f"/rooms/{kept}/drive", data={"url": "/scenarios/getpid?step=3"}).status_code == 204
    time.sleep(1.1)  # longer than a never-driven room's life
    assert _client(app).get(f"/rooms/{left}").status_code == 404
    assert _client(app).get(f"/rooms/{kept}").status_code == 200


def test_only_a_student_who_opened_the_rooms_stream_may_answer(lecturer, app):
    code = open_room(lecturer)
    lecturer.post(f"/rooms/{code}/question", data={"kind": "fault"})
    stuffer = _client(app)
    question = re.search(r'name="question" value="([0-9a-f]+)"', join(stuffer, code)).group(1)
    for _ in range(3):  # a script with fresh cookies, never following
        stuffer.cookies.clear()
        join(stuffer, code)
        refused = stuffer.post(f"/rooms/{code}/answer", data={"question": question, "choice": "yes"})
        assert refused.status_code == 403 and f"open /rooms/{code}" in refused.text
    assert "0 answers" in lecturer.get(f"/scenarios/getpid?room={code}&step=3").text
    follow(app, stuffer, code)
    assert stuffer.post(f"/rooms/{code}/answer", data={"question": question, "choice": "yes"}).status_code == 200
    assert "1 answer</strong>" in lecturer.get(f"/scenarios/getpid?room={code}&step=3").text


def test_no_more_students_may_answer_than_the_room_keeps_ids_of(monkeypatch, lecturer, app):
    monkeypatch.setattr(rooms_module, "MAX_ANSWERS", 2)
    code = open_room(lecturer)
    lecturer.post(f"/rooms/{code}/question", data={"kind": "fault"})
    students = [_client(app) for _ in range(3)]
    statuses = []
    for student in students:
        question = re.search(r'name="question" value="([0-9a-f]+)"', join(student, code)).group(1)
        follow(app, student, code)
        statuses.append(student.post(f"/rooms/{code}/answer", data={"question": question, "choice": "no"}).status_code)
    assert statuses == [200, 200, 403]
    follow(app, students[0], code)  # a known id renews its place however full the room is
    assert "2 answers" in lecturer.get(f"/scenarios/getpid?room={code}&step=3").text


def test_the_lecturer_following_their_own_join_link_is_sent_back_to_their_page(lecturer, student):
    code = open_room(lecturer, "/scenarios/getpid?step=3&mode=projector")
    response = lecturer.get(f"/rooms/{code}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/scenarios/getpid?mode=projector&room={code}&step=3"
    assert 'data-role="follow"' in join(student, code)  # a student still follows


@pytest.mark.parametrize("path", ["/rooms/ZZZZZ", "/rooms/join?code=k7qx", "/rooms/%3Cscript%3E"])
def test_a_mistyped_code_shows_the_join_form_again(student, path):
    response = student.get(path)
    assert response.status_code == 404
    assert '<form id="join-room" method="get" action="/rooms/join">' in response.text
    assert "no room" in response.text or "no such room" in response.text
    assert "<script>" not in response.text
    prefilled = re.search(r'id="join-code"[^>]*value="([^"]*)"', response.text)
    assert (prefilled.group(1) if prefilled else "") == ("ZZZZZ" if path == "/rooms/ZZZZZ" else "")
