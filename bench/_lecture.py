"""The people of a lecture, each making the requests their browser makes (templates/, static/rooms.js, htmx):

- the lecturer opens a room on the lecture's dd run, steps once a second (the step panel's GET, then the POST that
  tells the room where the page is now: /rooms/CODE/drive), poses a question and, once the live tally shows the
  class's answers, reveals it; the lecturer's page also holds the room's lead stream (followers, the live tally);
- a follower opens the room's page (which gives the browser its student id) and its event stream, receives each
  step as one event, answers the question once, and reconnects with Last-Event-ID if the stream breaks;
- an explorer opens a scenario of their own, steps it once a second with the step panel's request, and some start
  a new dd run with parameters of their own (the parameters form: the whole stepper) and step that instead.
Every request's time, status and failure is kept in a `Record`.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

from bench._events import open_stream
from bench._http import Connection, HttpError, Response

BROWSER = {"Accept": "text/html", "Accept-Encoding": "gzip, deflate, br, zstd"}
PANEL = {**BROWSER, "HX-Request": "true", "HX-Target": "section#step-panel"}
STEPPER = {**BROWSER, "HX-Request": "true", "HX-Target": "div#stepper"}
FORM_POST = {**BROWSER, "Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin"}
EVENT_STREAM = {
    "Accept": "text/event-stream",
    "Accept-Encoding": "gzip, deflate, br, zstd",
    "Cache-Control": "no-cache",
}
RECONNECT_S = 1.0  # htmx's SSE extension waits about this long before its first reconnection

LAST_STEP = re.compile(r'data-last-step="([0-9]+)"')
SSE_CONNECT = re.compile(r'id="room-follow"[^>]*data-sse-connect="([^"]+)"')
STEP_OF = re.compile(rb'id="step-panel"[^>]*?data-step="([0-9]+)"')  # a data: prefix may fall in between
QUESTION_ID = re.compile(rb'name="question" value="([0-9a-f]+)"')
CHOICE = re.compile(rb'name="choice" value="([^"]+)"')
TALLY_COUNT = re.compile(r'class="tally-count">([0-9]+) answer')


def with_step(url: str, step: int) -> str:
    """A stepping URL moved to `step` (its other parameters as they were)."""
    parts = urlsplit(url)
    query = [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True) if name != "step"]
    return f"{parts.path}?{urlencode([*query, ('step', str(step))])}"


def is_refusal(response: Response) -> bool:
    """Admission control's answer to a recording it cannot start now (app/admission.py): 503 with Retry-After."""
    return response.status == 503 and "retry-after" in response.headers


class Record:
    """What every request got, by kind: its time (ms) when answered, its status, or how the connection broke."""

    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter[int]] = defaultdict(Counter)
        self.broken: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()  # 503 with Retry-After: admission control said "not now"
        self.samples: list[str] = []  # the first few failures, quoted for the report

    def _sample(self, text: str) -> None:
        if len(self.samples) < 12:
            self.samples.append(text)

    async def call(
        self, kind: str, conn: Connection, method: str, target: str, headers: dict[str, str], body: bytes = b""
    ) -> Response | None:
        start = time.perf_counter()
        try:
            response = await conn.request(method, target, headers, body)
        except HttpError as error:
            self.broken[kind] += 1
            self._sample(f"{kind} {method} {target[:80]}: {error}")
            return None
        self.ms[kind].append((time.perf_counter() - start) * 1000)
        self.statuses[kind][response.status] += 1
        if is_refusal(response):
            self.refused[kind] += 1
        elif response.status >= 400:
            self._sample(f"{kind} {method} {target[:80]}: {response.status} {response.text()[:160]!r}")
        return response

    def stream_broke(self, kind: str, why: str) -> None:
        self.broken[kind] += 1
        self._sample(f"{kind}: {why}")

    def failed(self, kind: str) -> int:
        """Errors: statuses >= 400 other than admission control's refusals, and broken connections or streams."""
        bad = sum(n for status, n in self.statuses[kind].items() if status >= 400)
        return self.broken[kind] + bad - self.refused[kind]

    def answered(self, kind: str, status: int) -> int:
        return self.statuses[kind][status]


class Ticks:
    """Tick 0, 1, 2... once a second from `start` (perf_counter) until `until`. A tick that comes late (the last
    request took more than a second) fires at once and the ticks missed meanwhile are skipped, as a person waits
    for the page before pressing the key again; `skipped` counts them."""

    def __init__(self, start: float, until: float) -> None:
        self.start, self.until = start, until
        self.skipped = 0

    async def __aiter__(self) -> AsyncIterator[int]:
        tick = 0
        while (due := self.start + tick) < self.until:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            yield tick
            now = int(time.perf_counter() - self.start + 0.999)
            late = min(now, math.ceil(self.until - self.start))  # only the ticks before `until` were asked for
            self.skipped += max(0, late - tick - 1)
            tick = max(tick + 1, now)


@dataclass
class Lecture:
    """The room as the benchmark knows it: what was driven when, and what the class answered."""

    host: str
    port: int
    record: Record
    code: str = ""
    url: str = ""  # the lecturer's stepping URL, room=CODE in it
    lead_cookie: str = ""
    driven: dict[int, float] = field(default_factory=dict)  # step -> when its drive POST was sent (answered 204)
    tallied: int | None = None  # answers counted in the reveal's tally
    live_answers: int = 0  # answers the lecturer's live tally shows (the lead stream)
    lead_events: int = 0

    def connection(self) -> Connection:
        return Connection(self.host, self.port)


class Lecturer:
    def __init__(self, lecture: Lecture) -> None:
        self.lecture = lecture
        self.conn = lecture.connection()
        self.record = lecture.record

    def _headers(self, base: dict[str, str]) -> dict[str, str]:
        return {**base, "Cookie": self.lecture.lead_cookie}

    async def open_room(self, stepping_url: str) -> None:
        body = urlencode({"url": stepping_url, "title": "load benchmark"}).encode()
        response = await self.record.call("open room", self.conn, "POST", "/rooms", FORM_POST, body)
        if response is None or response.status != 303:
            raise SystemExit(f"could not open a room: {self.record.samples[-1:]}")
        (name, value), *_ = response.cookies.items()
        self.lecture.lead_cookie = f"{name}={value}"
        self.lecture.url = response.headers["location"]
        self.lecture.code = dict(parse_qsl(urlsplit(self.lecture.url).query))["room"]
        page = await self.record.call("lecturer page", self.conn, "GET", self.lecture.url, self._headers(BROWSER))
        if page is None or page.status != 200:
            raise SystemExit(f"the lecturer's page failed: {self.record.samples[-1:]}")

    async def step(self, step: int) -> None:
        url = with_step(self.lecture.url, step)
        await self.record.call("lecturer step panel", self.conn, "GET", url, self._headers(PANEL))
        body = urlencode({"url": url}).encode()
        sent = time.perf_counter()
        target = f"/rooms/{self.lecture.code}/drive"
        response = await self.record.call("drive", self.conn, "POST", target, self._headers(FORM_POST), body)
        if response is not None and response.status == 204:
            self.lecture.driven[step] = sent

    async def pose(self, kind: str) -> None:
        body = urlencode({"kind": kind}).encode()
        headers = self._headers({**FORM_POST, "HX-Request": "true"})
        await self.record.call("question", self.conn, "POST", f"/rooms/{self.lecture.code}/question", headers, body)

    async def reveal(self) -> None:
        headers = self._headers({**FORM_POST, "HX-Request": "true"})
        response = await self.record.call("reveal", self.conn, "POST", f"/rooms/{self.lecture.code}/reveal", headers)
        if response is not None and response.status == 200:
            found = TALLY_COUNT.search(response.text())
            self.lecture.tallied = int(found.group(1)) if found else None

    async def hold_lead_stream(self) -> None:
        """The lecturer's page's own stream (followers present, the live tally), held until cancelled."""

        def heard(_: float, raw: bytes) -> None:
            if not raw.startswith(b":"):
                self.lecture.lead_events += 1
            if (count := TALLY_COUNT.search(raw.decode("utf-8", "replace"))) is not None:
                self.lecture.live_answers = int(count.group(1))

        target = f"/rooms/{self.lecture.code}/lead/events"
        try:
            stream = await open_stream(self.lecture.host, self.lecture.port, target, self._headers(EVENT_STREAM), heard)
        except HttpError as error:
            self.record.stream_broke("lead stream", str(error))
            return
        try:
            if (status := stream.head.result().status) != 200:
                self.record.stream_broke("lead stream", f"status {status}")
            elif (why := await stream.finished) is not None:
                self.record.stream_broke("lead stream", why)
        finally:
            stream.close()


class Follower:
    def __init__(self, lecture: Lecture, rng: random.Random) -> None:
        self.lecture = lecture
        self.record = lecture.record
        self.rng = rng
        self.cookie = ""
        self.stream_path = ""
        self.version = ""
        self.received: dict[int, float] = {}  # step -> when its event arrived (the first time)
        self.events = 0
        self.bytes = 0
        self.connected = asyncio.Event()
        self.room_ended = False
        self.answered: set[str] = set()
        self.tasks: set[asyncio.Task] = set()

    async def join(self) -> bool:
        conn = self.lecture.connection()
        try:
            page = await self.record.call("follower page", conn, "GET", f"/rooms/{self.lecture.code}", BROWSER)
        finally:
            await conn.close()
        if page is None or page.status != 200:
            return False
        name, value = next(iter(page.cookies.items()))
        self.cookie = f"{name}={value}"
        found = SSE_CONNECT.search(page.text())
        if found is None:
            self.record.stream_broke("follower stream", "the room's page names no event stream")
            return False
        self.stream_path = found.group(1).replace("&amp;", "&")
        return True

    async def follow(self) -> None:
        """Hold the room's event stream until cancelled or the room ends, reconnecting (as htmx does) when it breaks."""
        while not self.room_ended:
            headers = {**EVENT_STREAM, "Cookie": self.cookie}
            if self.version:
                headers["Last-Event-ID"] = self.version
            try:
                stream = await open_stream(self.lecture.host, self.lecture.port, self.stream_path, headers, self._heard)
            except HttpError as error:
                self.record.stream_broke("follower stream", str(error))
            else:
                try:
                    if (status := stream.head.result().status) != 200:
                        self.record.stream_broke("follower stream", f"status {status}")
                    else:
                        self.connected.set()
                        why = await stream.finished
                        if not self.room_ended:
                            self.record.stream_broke("follower stream", why or "the server ended the stream")
                finally:
                    stream.close()
            if not self.room_ended:
                await asyncio.sleep(RECONNECT_S)

    def _heard(self, received: float, raw: bytes) -> None:
        """Take in one event (called as its last byte is read: keep it short)."""
        if raw.startswith(b":"):
            return  # the server's ping
        if len(raw) < 200 and b"event: ended" in raw:
            self.room_ended = True
            return
        self.events += 1
        self.bytes += len(raw)
        # bytes.find first, a regex only on what it found: this loop takes in every follower's events (tens of KB
        # each), and time spent here would show as broadcast delay.
        if raw.startswith(b"id: "):
            self.version = raw[4 : raw.find(b"\n")].rstrip(b"\r").decode()
        if (panel := raw.find(b'id="step-panel"')) >= 0 and (step := STEP_OF.search(raw, panel, panel + 400)):
            self.received.setdefault(int(step.group(1)), received)
        at = raw.find(b'name="question"')
        question = QUESTION_ID.match(raw, at) if at >= 0 else None
        if question is not None and question.group(1).decode() not in self.answered:
            question_id, choices = question.group(1).decode(), CHOICE.findall(raw)
            self.answered.add(question_id)
            task = asyncio.create_task(self._answer(question_id, self.rng.choice(choices).decode()))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _answer(self, question: str, choice: str) -> None:
        await asyncio.sleep(self.rng.uniform(0.3, 2.5))  # reading the question, thinking, tapping
        conn = self.lecture.connection()  # a browser's second connection: the first one holds the stream
        headers = {**FORM_POST, "HX-Request": "true", "Cookie": self.cookie}
        body = urlencode({"question": question, "choice": choice}).encode()
        try:
            await self.record.call("answer", conn, "POST", f"/rooms/{self.lecture.code}/answer", headers, body)
        finally:
            await conn.close()


class Explorer:
    def __init__(self, lecture: Lecture, rng: random.Random, scenario: str, new_run: str | None) -> None:
        self.lecture = lecture
        self.record = lecture.record
        self.conn = lecture.connection()
        self.rng = rng
        self.scenario = scenario
        self.new_run = new_run  # the query of the dd run this explorer starts, or None
        self.steps_sent = 0
        self.steps_skipped = 0  # seconds this explorer would have stepped, had the last step been answered in time

    async def explore(self, start: float, until: float, new_run_tick: int) -> None:
        try:
            await self._explore(start, until, new_run_tick)
        finally:
            await self.conn.close()

    async def _explore(self, start: float, until: float, new_run_tick: int) -> None:
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        url = f"/scenarios/{self.scenario}"
        page = await self.record.call("explorer page", self.conn, "GET", url, BROWSER)
        last = _last_step(page)
        if last is None:
            return
        step = self.rng.randrange(max(1, last - 60))
        ticks = Ticks(start + 1, until)
        async for tick in ticks:
            if self.new_run is not None and tick >= new_run_tick:
                new_url = f"/scenarios/dd-system-time?{self.new_run}"
                self.new_run = None
                response = await self.record.call("new dd run", self.conn, "GET", new_url, STEPPER)
                if (new_last := _last_step(response)) is not None:
                    url, step, last = response.headers.get("hx-push-url", new_url), 0, new_last
                continue  # refused (a 503 says when to try again): the student steps on where they were
            step = step + 1 if step < last else 0
            self.steps_sent += 1
            await self.record.call("explorer step", self.conn, "GET", with_step(url, step), PANEL)
        self.steps_skipped = ticks.skipped


def _last_step(response: Response | None) -> int | None:
    if response is None or response.status != 200:
        return None
    found = LAST_STEP.search(response.text())
    return int(found.group(1)) if found else None
