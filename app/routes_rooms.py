"""Live rooms over HTTP: open, join, follow (server-sent events), drive, ask, answer, reveal, end.

    POST /rooms                      open a room at a stepping URL; the lecturer's key goes into a cookie
    GET  /rooms/join?code=K7QXM      the landing page's join form -> /rooms/K7QXM
    GET  /rooms/{code}               a student's page: the lecturer's current step, followed live
    GET  /rooms/{code}/events        what a follower hears (text/event-stream)
    GET  /rooms/{code}/bar           the bar of a student who branched off (static/rooms.js swaps it in)
    GET  /rooms/{code}/qr.svg        the join link as a QR code, for the projector
    GET  /rooms/{code}/lead?key=...  the lecturer's capability link: sets the key's cookie on another device
    POST /rooms/{code}/drive         the lecturer's page reports where it is now; followers get the fragment
    GET  /rooms/{code}/lead/events   what the lecturer's page hears: the live tally, followers present
    POST /rooms/{code}/question      pose a question (its truth read from the run); .../question/close closes it
    POST /rooms/{code}/reveal        show the truth next to the tally
    POST /rooms/{code}/answer        a student's answer (one per student and question; changeable until revealed)
    POST /rooms/{code}/end           end the room

Every POST must come from this site (the Origin header, when the browser sends one), and those that drive need
the lecturer's key; a bad or unknown code is a 404 page that says so, never an echo of what was sent.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import parse_qsl

import anyio
import segno
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from app import metrics
from app.broker import LOST
from app.errors import BadParameter, Problem
from app.params import StepperQuery
from app.questions import KINDS
from app.rate_limit import RateLimited
from app.room_views import (
    MAX_URL,
    STUDENT_COOKIE,
    QuestionBox,
    RoomBar,
    join_url,
    lead_cookie,
    parse_stepping_url,
    partial,
    question_box,
    student_of,
    title_of,
)
from app.rooms import (
    LECTURER_KEY,
    MAX_TITLE,
    Question,
    Room,
    RoomError,
    Rooms,
    follow_channel,
    lead_channel,
    new_student_id,
    normalize_code,
)
from app.routes_pages import add_figures, stepper_context
from app.runs import RunCache, get_run_cache
from app.stepper import PrepareStepper, derived_stepper_run
from app.templating import get_templates

router = APIRouter(prefix="/rooms", include_in_schema=False)

Runs = Annotated[RunCache, Depends(get_run_cache)]
Templates = Annotated[Jinja2Templates, Depends(get_templates)]

DEFAULT_SCENARIO_URL = "/scenarios/getpid"
HEARTBEAT_S = 20.0  # a stream checks its room is still there, and says its follower is still present
TALLY_COALESCE_S = 0.25  # answers arriving together redraw the lecturer's tally once
STAGE_CACHE = 32  # whole-stepper fragments kept for followers who reconnect after missing steps


MAX_FORM_BYTES = 8192  # the longest form a room takes is a stepping URL (at most 4096 characters)


async def _form(request: Request, limits: dict[str, int]) -> dict[str, str]:
    """A room form's fields (url-encoded), each at most `limits[name]` characters; other fields are ignored."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, f"the form is longer than {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=16)
    except ValueError:
        raise HTTPException(413, "the form has too many fields") from None
    fields = {name: value for name, value in pairs if name in limits}
    for name, value in fields.items():
        if len(value) > limits[name]:
            raise HTTPException(422, f"form field {name!r} is longer than {limits[name]} characters")
    return fields


def _field(fields: dict[str, str], name: str) -> str:
    if name not in fields:
        raise HTTPException(422, f"form field {name!r} is missing")
    return fields[name]


def get_rooms(request: Request) -> Rooms:
    return request.app.state.rooms


RoomsDep = Annotated[Rooms, Depends(get_rooms)]


def _same_origin(request: Request) -> None:
    """A room's POSTs come from its own pages. Browsers say where a request came from in Sec-Fetch-Site (the pages'
    no-referrer policy makes their Origin "null"); without it, an Origin naming another site is refused."""
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    if site is not None:
        allowed = site in ("same-origin", "none")
    else:
        allowed = origin in (None, "null", str(request.base_url).rstrip("/"))
    if not allowed:
        raise HTTPException(403, "this request came from another site; open trapscope's own page")


def _code(raw: str) -> str:
    code = normalize_code(raw)
    if code is None:
        raise HTTPException(404, "no such room: a room code is 5 letters and digits, such as K7QXM")
    return code


async def _room(rooms: Rooms, raw: str) -> Room:
    code = _code(raw)
    room = await rooms.get(code)
    if room is None:
        raise HTTPException(404, f"no room {code}: it has ended, or the code is mistyped")
    return room


async def _lecturer_room(request: Request, rooms: Rooms, raw: str) -> Room:
    _same_origin(request)
    room = await _room(rooms, raw)
    if not room.is_lecturer(request.cookies.get(lead_cookie(room.code))):
        raise HTTPException(403, f"only the lecturer of room {room.code} can do that")
    return room


def _raise(error: RoomError) -> HTTPException:
    return HTTPException(error.status, str(error))


def _render(templates: Jinja2Templates, name: str, context: dict[str, Any]) -> str:
    return templates.get_template(name).render(context)


# ---------------------------------------------------------------- fragments a room broadcasts


def _page_title(query: StepperQuery, step: int) -> str:
    return f"{query.scenario.title} · step {step} · trapscope"


async def _stage_html(
    request: Request, room: Room, runs: RunCache, templates: Jinja2Templates, keeps_timeline: bool = False
) -> str:
    """The whole stepper of the room's URL (a new run, other views), with the step's explore link.

    `keeps_timeline`: every follower already draws this run's timeline (only the views changed), so the figure's
    data, most of a long run's stepper, stays out: its box is hx-preserve, and htmx keeps the one drawn.
    """
    cache: OrderedDict[tuple[str, int, str], str] = request.app.state.room_stages
    key = (room.code, room.version, room.url)  # a code is reused once its room has ended: the URL tells them apart
    found = None if keeps_timeline else cache.get(key)
    if found is not None:
        return found
    query = parse_stepping_url(room.url)
    context = await stepper_context(query, runs, fragment=False)
    add_figures(context, context["derived"])
    if keeps_timeline:
        del context["timeline"]
    html = (
        title_of(_page_title(query, context["view"].step.step))
        + partial("stepper", _render(templates, "partials/stepper.html", context))
        + partial("room-explore", _render(templates, "partials/room_explore.html", {"url": room.url}))
    )
    if not keeps_timeline:  # what a follower resyncing after a gap gets: it may have no timeline yet
        cache[key] = html
        while len(cache) > STAGE_CACHE:
            cache.popitem(last=False)
    return html


async def _panel_html(room: Room, runs: RunCache, templates: Jinja2Templates) -> str:
    """One step of the run the followers already have: the step panel and the links that keep the step."""
    query = parse_stepping_url(room.url)
    context = await stepper_context(query, runs, fragment=False)  # no OOB parts: each goes in its own partial
    return (
        title_of(_page_title(query, context["view"].step.step))
        + partial("step-panel", _render(templates, "partials/step_panel.html", context))
        + partial("display-links", _render(templates, "partials/display_links.html", context))
        + partial("room-explore", _render(templates, "partials/room_explore.html", {"url": room.url}))
    )


def _question_html(templates: Jinja2Templates, box: QuestionBox) -> str:
    return partial("room-question", _render(templates, "partials/room_question.html", {"box": box}))


async def _broadcast(rooms: Rooms, before: Room, after: Room, html: str) -> None:
    message = {"v": after.version, "prev": before.version, "html": html}
    await rooms.broker.publish(follow_channel(after.code), json.dumps(message))


async def _notify_lead(rooms: Rooms, code: str, what: str) -> None:
    await rooms.broker.publish(lead_channel(code), what)


# ---------------------------------------------------------------- opening and joining


def _lecturer_response(request: Request, response: Response, room: Room, key: str, ttl_s: int) -> Response:
    secure = request.url.scheme == "https"  # behind TLS the key never travels in the clear
    response.set_cookie(
        lead_cookie(room.code), key, max_age=ttl_s, path="/", httponly=True, samesite="strict", secure=secure
    )
    return response


def _charge_opening(request: Request, rooms: Rooms) -> None:
    """One of the client's few rooms (TRAPSCOPE_ROOM_RATE_LIMIT), or 429: a loop of POSTs cannot fill the server."""
    if rooms.open_limiter is None:
        return
    try:
        rooms.open_limiter.take(request.client.host if request.client else "unknown")
    except RateLimited as error:
        limit = rooms.open_limiter.limit
        raise HTTPException(
            429,
            f"too many rooms opened from your address: the limit is {limit.burst} per {limit.period_s:g} s; "
            f"try again in {error.retry_after_s} s, or keep using a room you have open",
            headers={"Retry-After": str(error.retry_after_s)},
        ) from None


@router.post("")
async def open_room(request: Request, rooms: RoomsDep) -> Response:
    _same_origin(request)
    fields = await _form(request, {"url": MAX_URL, "title": MAX_TITLE})
    url, title = fields.get("url") or DEFAULT_SCENARIO_URL, fields.get("title", "")
    query = parse_stepping_url(url)
    _charge_opening(request, rooms)
    try:
        room, key = await rooms.open(lambda code: replace(query, room=code).url(query.step or 0), title.strip())
    except RoomError as error:
        raise _raise(error) from None
    response = RedirectResponse(room.url, status_code=303)
    return _lecturer_response(request, response, room, key, rooms.limits.ttl_s)


def _missing_room(request: Request, templates: Jinja2Templates, error: HTTPException, code: str = "") -> Response:
    """A code that names no room: the message, and the join form to type it again (`code`: a well-formed one)."""
    problem = Problem(error.status_code, str(error.detail))
    context = {"problem": problem, "code": normalize_code(code) or ""}
    return templates.TemplateResponse(request, "room_missing.html", context, error.status_code)


@router.get("/join")
async def join(request: Request, templates: Templates, code: str = "") -> Response:
    try:
        return RedirectResponse(f"/rooms/{_code(code)}", status_code=303)
    except HTTPException as error:
        return _missing_room(request, templates, error)


@router.get("/{code}", response_class=HTMLResponse)
async def follow_page(request: Request, code: str, rooms: RoomsDep, runs: Runs, templates: Templates) -> Response:
    try:
        room = await _room(rooms, code)
    except HTTPException as error:
        return _missing_room(request, templates, error, code)
    if room.is_lecturer(request.cookies.get(lead_cookie(room.code))):
        # the lecturer followed their own join link: back to their driving page, not a follower's
        return RedirectResponse(room.url, status_code=303)
    student = student_of(request) or new_student_id()
    if await rooms.followers(room.code) >= rooms.limits.max_followers:
        raise HTTPException(503, f"room {room.code} is full ({rooms.limits.max_followers} followers); try later")
    query = parse_stepping_url(room.url)
    context = await stepper_context(query, runs, fragment=False)
    add_figures(context, context["derived"])
    box = await question_box(rooms, room, "follow", student)
    context["room_bar"] = RoomBar("follow", room.code, room, join_url(request, room.code), box)
    response = templates.TemplateResponse(request, "room.html", context)
    response.headers["Cache-Control"] = "no-store"  # the room moves on: a cached copy would be the wrong step
    if student_of(request) is None:
        secure = request.url.scheme == "https"
        response.set_cookie(
            STUDENT_COOKIE, student, max_age=30 * 86400, path="/rooms", httponly=True, samesite="lax", secure=secure
        )
    return response


@router.get("/{code}/bar", response_class=HTMLResponse)
async def explore_bar(request: Request, code: str, rooms: RoomsDep, templates: Templates) -> Response:
    room = await _room(rooms, code)
    bar = RoomBar("explore", room.code, room, join_url(request, room.code))
    return templates.TemplateResponse(request, "partials/room_bar.html", {"room_bar": bar})


@router.get("/{code}/qr.svg")
async def qr_code(request: Request, code: str, rooms: RoomsDep) -> Response:
    room = await _room(rooms, code)
    buffer = io.BytesIO()
    segno.make(join_url(request, room.code), error="m").save(buffer, kind="svg", scale=10, border=2, xmldecl=False)
    return Response(buffer.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/{code}/lead")
async def lecturer_link(request: Request, code: str, rooms: RoomsDep, key: str = "") -> Response:
    room = await _room(rooms, code)
    if not LECTURER_KEY.fullmatch(key) or not room.is_lecturer(key):
        raise HTTPException(403, f"that is not the lecturer's link of room {room.code}")
    return _lecturer_response(request, RedirectResponse(room.url, status_code=303), room, key, rooms.limits.ttl_s)


# ---------------------------------------------------------------- driving


@router.post("/{code}/drive", status_code=204)
async def drive(
    request: Request,
    code: str,
    rooms: RoomsDep,
    runs: Runs,
    templates: Templates,
) -> Response:
    room = await _lecturer_room(request, rooms, code)
    query = parse_stepping_url(_field(await _form(request, {"url": MAX_URL}), "url"))
    query = replace(query, room=room.code)
    new_url = query.url(query.step or 0)
    if new_url == room.url:
        await rooms.touch(room.code)  # the lecturer is still here: the room lives on
        return Response(status_code=204)
    try:
        before = parse_stepping_url(room.url)
        same_screen = before.url(None) == query.url(None)
        keeps_timeline = before.spec.run_id == query.spec.run_id and "timeline" in before.views
    except (BadParameter, LookupError):
        same_screen = keeps_timeline = False
    moved = replace(room, url=new_url, version=room.version + 1)
    if same_screen:
        html = await _panel_html(moved, runs, templates)
    else:
        html = await _stage_html(request, moved, runs, templates, keeps_timeline)
    await rooms.save(moved)
    await _broadcast(rooms, room, moved, html)
    return Response(status_code=204)


@router.post("/{code}/question", response_class=HTMLResponse)
async def pose(
    request: Request,
    code: str,
    rooms: RoomsDep,
    runs: Runs,
    templates: Templates,
) -> Response:
    room = await _lecturer_room(request, rooms, code)
    found = KINDS.get(_field(await _form(request, {"kind": 16}), "kind"))
    if found is None:
        raise HTTPException(422, f"a question is one of: {', '.join(KINDS)}")
    query = parse_stepping_url(room.url)
    step = query.step or 0
    cached = await runs.get(query.spec, prepare=PrepareStepper(query.scenario.slug))
    derived = await derived_stepper_run(runs, cached)
    truth = await run_in_threadpool(found.settle, derived.index, cached.run, step)
    question = Question(
        id=secrets.token_hex(6),
        kind=found.slug,
        step=step,
        prompt=found.prompt,
        choices=found.choices,
        truth=truth.choice,
        truth_step=truth.step,
        truth_detail=truth.detail,
    )
    try:
        posed = await rooms.pose(room, question)
    except RoomError as error:
        raise _raise(error) from None
    await _broadcast(rooms, room, posed, _question_html(templates, QuestionBox(posed.code, "follow", question)))
    box = await question_box(rooms, posed, "lead")
    return templates.TemplateResponse(request, "partials/room_question.html", {"box": box})


@router.post("/{code}/reveal", response_class=HTMLResponse)
async def reveal(request: Request, code: str, rooms: RoomsDep, templates: Templates) -> Response:
    room = await _lecturer_room(request, rooms, code)
    if room.question is None:
        raise HTTPException(409, "there is no open question to reveal")
    revealed = replace(room, question=replace(room.question, revealed=True), version=room.version + 1)
    await rooms.save(revealed)
    tally = await rooms.tally(revealed)
    box = QuestionBox(revealed.code, "follow", revealed.question, tally=tally)
    await _broadcast(rooms, room, revealed, _question_html(templates, box))
    lead_box = QuestionBox(revealed.code, "lead", revealed.question, tally=tally)
    return templates.TemplateResponse(request, "partials/room_question.html", {"box": lead_box})


@router.post("/{code}/question/close", response_class=HTMLResponse)
async def close_question(request: Request, code: str, rooms: RoomsDep, templates: Templates) -> Response:
    room = await _lecturer_room(request, rooms, code)
    closed = replace(room, question=None, version=room.version + 1)
    await rooms.save(closed)
    await _broadcast(rooms, room, closed, _question_html(templates, QuestionBox(closed.code, "follow", None)))
    return templates.TemplateResponse(
        request, "partials/room_question.html", {"box": QuestionBox(closed.code, "lead", None)}
    )


@router.post("/{code}/end")
async def end(request: Request, code: str, rooms: RoomsDep, templates: Templates) -> Response:
    room = await _lecturer_room(request, rooms, code)
    await rooms.end(room)
    ended = RoomBar("ended", room.code, None, join_url(request, room.code))
    html = partial("room-bar", _render(templates, "partials/room_bar.html", {"room_bar": ended}))
    await rooms.broker.publish(follow_channel(room.code), json.dumps({"ended": True, "html": html}))
    await _notify_lead(rooms, room.code, "ended")
    response = RedirectResponse(replace(parse_stepping_url(room.url), room="").url(None), status_code=303)
    response.delete_cookie(lead_cookie(room.code), path="/")
    return response


# ---------------------------------------------------------------- answering


@router.post("/{code}/answer", response_class=HTMLResponse)
async def answer(
    request: Request,
    code: str,
    rooms: RoomsDep,
    templates: Templates,
) -> Response:
    _same_origin(request)
    fields = await _form(request, {"question": 32, "choice": 64})
    question, choice = _field(fields, "question"), _field(fields, "choice")
    room = await _room(rooms, code)
    student = student_of(request)
    if student is None:
        raise HTTPException(400, f"open the room's page (/rooms/{room.code}) first: it gives your browser an id")
    try:
        await rooms.answer(room, question, student, choice)
    except RoomError as error:
        raise _raise(error) from None
    await _notify_lead(rooms, room.code, "answers")
    context = {"question_id": room.question.id if room.question else "", "my_answer": choice, "preserve": False}
    return templates.TemplateResponse(request, "partials/room_my_answer.html", context)


# ---------------------------------------------------------------- the streams


def _ended_events(html: str) -> list[ServerSentEvent]:
    """The room's end: its bar, then the event that closes the stream for good (hx-sse:close="ended")."""
    return [ServerSentEvent(data=html), ServerSentEvent(data="ended", event="ended")]


@functools.lru_cache(maxsize=8)
def _decoded(raw: str) -> tuple[dict[str, Any], bytes]:
    """A broadcast parsed, and its step's event encoded, once for all of this process's followers: the broker hands
    the same message to every follower's queue, so a step costs each follower the sending of its bytes only."""
    message = json.loads(raw)
    event = b"" if message.get("ended") else ServerSentEvent(data=message["html"], id=str(message["v"])).encode()
    return message, event


async def _shielded(work: Any) -> None:
    """Clean-up that must run even when the stream is being cancelled (the follower has gone)."""
    with anyio.CancelScope(shield=True):
        await work


@router.get("/{code}/events")
async def follow_events(
    request: Request, code: str, rooms: RoomsDep, runs: Runs, templates: Templates, v: int = 0
) -> EventSourceResponse:
    room = await _room(rooms, code)
    known = request.headers.get("last-event-id", "")
    version = int(known) if known.isdigit() and len(known) < 12 else v
    follower = secrets.token_hex(8)
    student = student_of(request)
    ended_html = partial(
        "room-bar",
        _render(templates, "partials/room_bar.html", {"room_bar": RoomBar("ended", room.code, None, "")}),
    )

    async def resync(current: Room) -> ServerSentEvent:
        box = await question_box(rooms, current, "follow", student)
        html = await _stage_html(request, current, runs, templates) + _question_html(templates, box)
        return ServerSentEvent(data=html, id=str(current.version))

    async def events() -> AsyncIterator[ServerSentEvent]:
        nonlocal version
        async with rooms.broker.listen(follow_channel(room.code)) as queue, metrics.follower_connected():
            await rooms.follower_joined(room.code, follower)
            if student is not None:
                await rooms.student_seen(room.code, student)
            await _notify_lead(rooms, room.code, "followers")
            try:
                current = await rooms.get(room.code)
                if current is None:
                    for event in _ended_events(ended_html):
                        yield event
                    return
                if current.version != version:  # joined late, or missed steps while away: the current step
                    yield await resync(current)
                    version = current.version
                beat = time.monotonic() + HEARTBEAT_S
                while True:
                    if time.monotonic() >= beat:  # however busy the room, the follower still says it is here
                        beat = time.monotonic() + HEARTBEAT_S
                        if await rooms.get(room.code) is None:
                            for event in _ended_events(ended_html):
                                yield event
                            return
                        await rooms.follower_joined(room.code, follower)
                        if student is not None:
                            await rooms.student_seen(room.code, student)
                    try:
                        raw = await asyncio.wait_for(queue.get(), max(0.1, beat - time.monotonic()))
                    except TimeoutError:
                        continue
                    message, encoded = _decoded(raw) if raw != LOST else (None, b"")
                    if message is not None and message.get("ended"):
                        for event in _ended_events(message["html"]):
                            yield event
                        return
                    if message is not None and message["v"] <= version:
                        continue  # sent before this follower's resync, which already showed it
                    if message is None or message["prev"] != version:
                        current = await rooms.get(room.code)
                        if current is None:
                            continue
                        yield await resync(current)
                        version = current.version
                        continue
                    version = message["v"]
                    yield encoded
            finally:
                await _shielded(rooms.follower_left(room.code, follower))
                await _shielded(_notify_lead(rooms, room.code, "followers"))

    return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store"})


@router.get("/{code}/lead/events")
async def lead_events(request: Request, code: str, rooms: RoomsDep, templates: Templates) -> EventSourceResponse:
    room = await _lecturer_room(request, rooms, code)

    async def update() -> ServerSentEvent | None:
        current = await rooms.get(room.code)
        if current is None:
            return None
        followers = await rooms.followers(room.code)
        html = partial("room-followers", _render(templates, "partials/room_followers.html", {"followers": followers}))
        if current.question is not None:
            box = await question_box(rooms, current, "lead")
            html += partial("room-tally", _render(templates, "partials/room_tally.html", {"box": box}))
        return ServerSentEvent(data=html)

    async def events() -> AsyncIterator[ServerSentEvent]:
        async with rooms.broker.listen(lead_channel(room.code)) as queue:
            beat = time.monotonic() + HEARTBEAT_S
            while True:
                if time.monotonic() >= beat:  # the lecturer's page is open: the room lives on
                    beat = time.monotonic() + HEARTBEAT_S
                    await rooms.touch(room.code)
                try:
                    what = await asyncio.wait_for(queue.get(), max(0.1, beat - time.monotonic()))
                except TimeoutError:
                    what = "heartbeat"
                if what == "ended":
                    yield ServerSentEvent(data="ended", event="ended")
                    return
                await asyncio.sleep(TALLY_COALESCE_S)
                while not queue.empty():
                    queue.get_nowait()
                event = await update()
                if event is None:
                    yield ServerSentEvent(data="ended", event="ended")
                    return
                yield event

    return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store"})


@router.api_route("/{rest:path}", methods=["GET", "POST"])
async def no_such_room(rest: str) -> Response:
    """Anything else under /rooms/: a mistyped link, answered as clearly as a mistyped code."""
    raise HTTPException(404, "no such room page: a room's link is /rooms/ and its code, such as /rooms/K7QXM")
