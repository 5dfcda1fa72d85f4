"""What a live room looks like: the room bar on each kind of page, the question box, the tally figure, and the
fragments a room broadcasts.

A broadcast is rendered once, where the lecturer's action lands, and the same bytes go to every follower: htmx's
SSE extension swaps each `<hx-partial>` of a message into the element its hx-target names (the step panel, the
whole stepper, the question box), so one message serves every follower whatever worker they are connected to.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request
from markupsafe import escape

from app.errors import BadParameter
from app.params import MalformedStep, StepperQuery, parse_query
from app.questions import KINDS
from app.rooms import STUDENT_ID, Question, Room, Rooms
from sim.scenarios.registry import SCENARIOS, Scenario, lookup

MAX_URL = 4096
LEAD_COOKIE = "trapscope_lead_"  # + the room code: a lecturer may hold several rooms
STUDENT_COOKIE = "trapscope_student"

# Okabe-Ito, as the stepping page's colours: a choice's bar, and the right answer's once revealed.
BAR, RIGHT_BAR = "#56B4E9", "#009E73"


def lead_cookie(code: str) -> str:
    return LEAD_COOKIE + code


def partial(target_id: str, html: str) -> str:
    """A piece of a broadcast: htmx swaps `html` in place of the element #target_id."""
    return f'<hx-partial hx-target="#{target_id}" hx-swap="outerHTML">{html}</hx-partial>'


def title_of(text: str) -> str:
    return f"<title>{escape(text)}</title>"


def parse_stepping_url(url: str) -> StepperQuery:
    """A stepping page's URL (path and query), checked as the page itself checks it."""
    if len(url) > MAX_URL:
        raise BadParameter("url", f"is longer than {MAX_URL} characters", "a stepping page's URL")
    parts = urlsplit(url)
    prefix = "/scenarios/"
    if parts.scheme or parts.netloc or not parts.path.startswith(prefix):
        raise BadParameter("url", "must be a stepping page's URL (/scenarios/...)", "/scenarios/SLUG?...")
    scenario = lookup(parts.path[len(prefix) :])
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    try:
        return parse_query(parts.path, scenario, dict(pairs), Counter(name for name, _ in pairs))
    except MalformedStep as error:  # the page names the run's range; a room's URL is checked before any run
        raise BadParameter("url", f"names step {error.raw!r}, which is not a whole number", "a whole number") from None


@dataclass(frozen=True)
class QuestionBox:
    """The question box as one reader sees it: `role` lead (the projector), follow or explore (a student)."""

    code: str
    role: str
    question: Question | None
    my_answer: str | None = None
    tally: dict[str, int] | None = None  # the lecturer's, or everyone's once revealed

    @property
    def revealed(self) -> bool:
        return self.question is not None and self.question.revealed

    @property
    def answers(self) -> int:
        return sum(self.tally.values()) if self.tally else 0

    @property
    def figure(self) -> dict[str, Any] | None:
        return tally_figure(self.question, self.tally) if self.question and self.tally is not None else None


def tally_figure(question: Question, tally: dict[str, int]) -> dict[str, Any]:
    """The class's answers as Plotly bars; once revealed, the right answer's bar is green and says so."""
    choices = list(question.choices)
    right = question.truth if question.revealed else None
    labels = [f"✓ {choice}" if choice == right else choice for choice in choices]
    return {
        "data": [
            {
                "type": "bar",
                "x": [tally.get(choice, 0) for choice in choices],
                "y": labels,
                "orientation": "h",
                "marker": {"color": [RIGHT_BAR if choice == right else BAR for choice in choices]},
                "text": [str(tally.get(choice, 0)) for choice in choices],
                "textposition": "outside",
                "cliponaxis": False,
                "hovertemplate": "%{y}: %{x}<extra></extra>",
            }
        ],
        "layout": {
            "height": 50 + 26 * len(choices),
            "margin": {"l": 10, "r": 40, "t": 10, "b": 30},
            "xaxis": {"rangemode": "tozero", "dtick": 1 if max(tally.values(), default=0) < 10 else None},
            "yaxis": {"autorange": "reversed", "automargin": True},
            "font": {"size": 14},
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "showlegend": False,
        },
        "config": {"displayModeBar": False, "responsive": True, "staticPlot": True},
    }


@dataclass(frozen=True)
class RoomBar:
    """The room bar above a stepper: `role` is lead (the key holder), follow, explore (branched off) or ended."""

    role: str
    code: str
    room: Room | None
    join_url: str
    box: QuestionBox | None = None
    followers: int = 0
    kinds: tuple = ()  # the questions the lecturer can pose (app/questions.py QuestionKind)
    lecturer_link: str = ""  # the lecturer's own page only: the capability link that hands the key to a device

    @property
    def scenarios(self) -> list[Scenario]:
        """Where the lecturer can take the room next."""
        return list(SCENARIOS.values())

    @property
    def title(self) -> str:
        return self.room.title if self.room else ""


def join_url(request: Request, code: str) -> str:
    return str(request.base_url).rstrip("/") + f"/rooms/{code}"


def student_of(request: Request) -> str | None:
    value = request.cookies.get(STUDENT_COOKIE, "")
    return value if STUDENT_ID.fullmatch(value) else None


async def question_box(rooms: Rooms, room: Room, role: str, student: str | None = None) -> QuestionBox:
    question = room.question
    if question is None:
        return QuestionBox(room.code, role, None)
    tally = await rooms.tally(room) if role == "lead" or question.revealed else None
    my_answer = await rooms.answer_of(room, student) if role != "lead" else None
    return QuestionBox(room.code, role, question, my_answer, tally)


async def room_bar(request: Request, query: StepperQuery) -> RoomBar:
    """The bar of a stepping page that names a room: the lecturer's, or a student's who branched off."""
    rooms: Rooms = request.app.state.rooms
    code = query.room
    room = await rooms.get(code)
    if room is None:
        return RoomBar("ended", code, None, join_url(request, code))
    key = request.cookies.get(lead_cookie(code))
    if room.is_lecturer(key):
        box = await question_box(rooms, room, "lead")
        followers = await rooms.followers(code)
        link = f"{join_url(request, code)}/lead?key={key}"
        return RoomBar("lead", code, room, join_url(request, code), box, followers, tuple(KINDS.values()), link)
    box = await question_box(rooms, room, "explore", student_of(request))
    return RoomBar("explore", code, room, join_url(request, code), box)
