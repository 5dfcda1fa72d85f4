"""Live rooms: a lecturer's stepping page, followed by a class.

A room is tiny: its code, the lecturer's current stepping URL (which names the run's inputs, the step and the open
views), an open question and its answers. It lives in the broker (app/broker.py) with an expiry that the lecturer's
activity renews, so any worker serves any room and an idle room ends by itself (TRAPSCOPE_ROOM_TTL seconds, two
hours by default). A room the lecturer's page has never kept alive (opened, then left) lives only
TRAPSCOPE_ROOM_IDLE_TTL seconds (15 minutes by default), and one client opens at most TRAPSCOPE_ROOM_RATE_LIMIT rooms
("N/S": N per S seconds, 5 per 10 minutes by default, or "off"): opening rooms in a loop cannot fill the server's
TRAPSCOPE_MAX_ROOMS for hours.

Only the holder of the room's lecturer key drives it: the key is made when the room opens, kept by the lecturer's
browser in a cookie (or carried by a capability link), and stored only as a hash. Students are anonymous: a random
id in a cookie makes their answers one per student and question, and only an id that has opened the room's event
stream (a follower's page does, before it can answer) may answer: a script with fresh cookies cannot stuff the tally
with more answers than the room has seen followers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

from app.broker import Broker
from app.rate_limit import RateLimit, RateLimiter

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read off a projector from the back row
CODE_LENGTH = 5
CODE = re.compile(f"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")
STUDENT_ID = re.compile(r"[0-9a-f]{32}")
LECTURER_KEY = re.compile(r"[A-Za-z0-9_-]{32}")
MAX_TITLE = 80
MAX_CODE_INPUT = 40  # longer input is not a code, however it is spaced

DEFAULT_TTL_S = 2 * 60 * 60
DEFAULT_IDLE_TTL_S = 15 * 60  # a room no lecturer's page has kept alive yet
DEFAULT_OPEN_RATE = "5/600"  # rooms a client opens: a lecturer opens one or two per lecture
DEFAULT_MAX_ROOMS = 200
DEFAULT_MAX_FOLLOWERS = 1000
MAX_QUESTIONS = 100  # per room: a lecture asks a few dozen at most
MAX_ANSWERS = 5000  # per question: more students than any lecture hall holds
FOLLOWER_STALE_S = 90  # a follower whose stream has not said it is alive for this long is not counted

PREFIX = "trapscope:room"
INDEX = f"{PREFIX}s"  # a scored set: room code -> when it expires


class RoomError(Exception):
    """A room request that cannot be served; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Question:
    id: str
    kind: str  # app.questions.KINDS
    step: int  # where it was posed
    prompt: str
    choices: tuple[str, ...]
    truth: str  # never shown before `revealed`
    truth_step: int | None
    truth_detail: str
    revealed: bool = False


@dataclass(frozen=True)
class Room:
    code: str
    key_hash: str
    url: str  # the lecturer's stepping URL, room=CODE included: what followers see
    title: str = ""
    version: int = 1  # counts changes of what followers see, so a reconnecting follower knows what it missed
    questions_asked: int = 0
    question: Question | None = None
    created: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Room:
        data = json.loads(text)
        question = data.pop("question")
        if question is not None:
            question = Question(**{**question, "choices": tuple(question["choices"])})
        return cls(**data, question=question)

    def is_lecturer(self, key: str | None) -> bool:
        return bool(key) and hmac.compare_digest(self.key_hash, hash_key(key or ""))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def normalize_code(raw: str) -> str | None:
    """A room code as people type it (lower case, spaces, a dash) -> the code, or None if it cannot be one."""
    if len(raw) > MAX_CODE_INPUT:
        return None
    code = re.sub(r"[\s-]", "", raw).upper()
    return code if CODE.fullmatch(code) else None


def new_student_id() -> str:
    return secrets.token_hex(16)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if re.fullmatch(r"[0-9]{1,9}", raw) and int(raw) > 0 else default


@dataclass(frozen=True)
class RoomLimits:
    ttl_s: int = DEFAULT_TTL_S
    max_rooms: int = DEFAULT_MAX_ROOMS
    max_followers: int = DEFAULT_MAX_FOLLOWERS
    idle_ttl_s: int = DEFAULT_IDLE_TTL_S
    open_rate: RateLimit | None = None  # None: any number of rooms per client

    @classmethod
    def from_env(cls) -> RoomLimits:
        return cls(
            ttl_s=_env_int("TRAPSCOPE_ROOM_TTL", DEFAULT_TTL_S),
            max_rooms=_env_int("TRAPSCOPE_MAX_ROOMS", DEFAULT_MAX_ROOMS),
            max_followers=_env_int("TRAPSCOPE_MAX_FOLLOWERS", DEFAULT_MAX_FOLLOWERS),
            idle_ttl_s=_env_int("TRAPSCOPE_ROOM_IDLE_TTL", DEFAULT_IDLE_TTL_S),
            open_rate=RateLimit.parse(os.environ.get("TRAPSCOPE_ROOM_RATE_LIMIT", DEFAULT_OPEN_RATE)),
        )


def follow_channel(code: str) -> str:
    """What every follower of the room hears: the rendered fragments of the lecturer's steps and questions."""
    return f"{PREFIX}:{code}"


def lead_channel(code: str) -> str:
    """What only the lecturer's page hears: an answer came in, a follower came or went."""
    return f"{PREFIX}:{code}:lead"


class Rooms:
    """Rooms over a broker: open, load, save (renewing the expiry), answers and tallies, followers present."""

    def __init__(self, broker: Broker, limits: RoomLimits | None = None) -> None:
        self.broker = broker
        self.limits = limits or RoomLimits()
        self.open_limiter = RateLimiter(self.limits.open_rate) if self.limits.open_rate else None

    def _key(self, code: str) -> str:
        return f"{PREFIX}:{code}"

    async def count(self) -> int:
        await self.broker.zdrop_below(INDEX, time.time())
        return await self.broker.zcount_from(INDEX, time.time())

    async def open(self, url_for_code: Callable[[str], str], title: str = "") -> tuple[Room, str]:
        """A new room whose URL is `url_for_code(code)`; returns it and the lecturer's key (shown once).

        It lives `idle_ttl_s` until the lecturer's page first renews it (`touch`, `save`)."""
        if await self.count() >= self.limits.max_rooms:
            raise RoomError(503, f"this server has {self.limits.max_rooms} live rooms, its limit; try again later")
        key = secrets.token_urlsafe(24)
        ttl_s = min(self.limits.idle_ttl_s, self.limits.ttl_s)
        for _ in range(20):
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            room = Room(code=code, key_hash=hash_key(key), url=url_for_code(code), title=title[:MAX_TITLE])
            if await self.broker.set(self._key(code), room.to_json(), ttl_s, only_new=True):
                await self._index(code, ttl_s)
                return room, key
        raise RoomError(503, "no free room code was found; try again")

    async def _index(self, code: str, ttl_s: int | None = None) -> None:
        ttl_s = ttl_s or self.limits.ttl_s
        await self.broker.zadd(INDEX, code, time.time() + ttl_s, self.limits.ttl_s)

    async def get(self, code: str) -> Room | None:
        text = await self.broker.get(self._key(code))
        return Room.from_json(text) if text else None

    async def save(self, room: Room) -> None:
        """Store the room and renew its life: only the lecturer's actions save a room."""
        await self.broker.set(self._key(room.code), room.to_json(), self.limits.ttl_s)
        await self._index(room.code)

    async def touch(self, code: str) -> None:
        """Renew the room's life without writing it (a write could undo a lecturer's change made meanwhile)."""
        await self.broker.touch(self._key(code), self.limits.ttl_s)
        await self._index(code)

    async def end(self, room: Room) -> None:
        keys = [self._key(room.code), self._followers_key(room.code), self._students_key(room.code)]
        if room.question is not None:
            keys.append(self._answers_key(room.code, room.question.id))
        await self.broker.delete(*keys)
        await self.broker.zrem(INDEX, room.code)

    def _answers_key(self, code: str, question_id: str) -> str:
        return f"{PREFIX}:{code}:answers:{question_id}"

    def _followers_key(self, code: str) -> str:
        return f"{PREFIX}:{code}:followers"

    def _students_key(self, code: str) -> str:
        """The student ids that have opened the room's event stream: those who may answer."""
        return f"{PREFIX}:{code}:students"

    async def pose(self, room: Room, question: Question) -> Room:
        if room.questions_asked >= MAX_QUESTIONS:
            raise RoomError(409, f"this room has asked {MAX_QUESTIONS} questions, its limit; open a new room")
        if room.question is not None:
            await self.broker.delete(self._answers_key(room.code, room.question.id))
        posed = replace(room, question=question, questions_asked=room.questions_asked + 1, version=room.version + 1)
        await self.save(posed)
        return posed

    async def answer(self, room: Room, question_id: str, student: str, choice: str) -> None:
        question = room.question
        if question is None or question.id != question_id:
            raise RoomError(409, "that question is no longer open: the lecturer has moved on")
        if question.revealed:
            raise RoomError(409, "the answer has been revealed: answers to this question are closed")
        if choice not in question.choices:
            raise RoomError(422, "that is not one of the question's choices")
        if await self.broker.hget(self._students_key(room.code), student) is None:
            raise RoomError(
                403, f"follow the room first: open /rooms/{room.code} and answer once its page says it is live"
            )
        key = self._answers_key(room.code, question.id)
        if await self.broker.hlen(key) >= MAX_ANSWERS:
            raise RoomError(429, f"this question has {MAX_ANSWERS} answers, its limit")
        await self.broker.hset(key, student, choice, self.limits.ttl_s)

    async def answer_of(self, room: Room, student: str | None) -> str | None:
        if room.question is None or not student:
            return None
        return (await self.broker.hgetall(self._answers_key(room.code, room.question.id))).get(student)

    async def tally(self, room: Room) -> dict[str, int]:
        """Each choice of the open question (in order) -> how many students chose it."""
        if room.question is None:
            return {}
        counts = dict.fromkeys(room.question.choices, 0)
        for choice in (await self.broker.hgetall(self._answers_key(room.code, room.question.id))).values():
            if choice in counts:
                counts[choice] += 1
        return counts

    async def follower_joined(self, code: str, follower: str) -> None:
        await self.broker.zadd(self._followers_key(code), follower, time.time(), self.limits.ttl_s)

    async def student_seen(self, code: str, student: str) -> None:
        """A student's browser has the room's event stream open: it may answer. At most MAX_ANSWERS ids are kept
        (so no question counts more answers than that), each renewed while its stream lives."""
        key = self._students_key(code)
        if await self.broker.hlen(key) < MAX_ANSWERS or await self.broker.hget(key, student) is not None:
            await self.broker.hset(key, student, "1", self.limits.ttl_s)

    async def follower_left(self, code: str, follower: str) -> None:
        await self.broker.zrem(self._followers_key(code), follower)

    async def followers(self, code: str) -> int:
        since = time.time() - FOLLOWER_STALE_S
        await self.broker.zdrop_below(self._followers_key(code), since)
        return await self.broker.zcount_from(self._followers_key(code), since)
