"""Bad input becomes a 4xx that says what was wrong, which parameter, and what would have been right.

/api/... answers JSON: {"detail": message, "parameter": name or null, "valid": what is accepted or null}.
Pages answer an HTML error page; an htmx request gets just the message, as a fragment that takes the place of
the element it targeted, so the page around it keeps working.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.quoting import shown
from sim.replay import StepOutOfRange
from sim.run import RunError
from sim.scenarios.registry import UnknownScenario
from sim.user.shell import CommandLineError


class BadParameter(ValueError):
    """A request parameter the app parses itself is malformed."""

    def __init__(self, parameter: str, message: str, valid: str | None = None) -> None:
        super().__init__(message)
        self.parameter, self.valid = parameter, valid

    def __reduce__(self) -> tuple:
        # Rebuilt from its own arguments when it crosses from the recording process (app/recorder_process.py)
        return type(self), (self.parameter, str(self), self.valid)


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Problem:
    """What went wrong, for people. Whatever built the message, a value it quotes is shown only in part."""

    status: int
    message: str
    parameter: str | None = None
    valid: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", shown(self.message))
        if self.parameter is not None:
            object.__setattr__(self, "parameter", shown(self.parameter))
        if self.valid is not None:
            object.__setattr__(self, "valid", shown(self.valid))

    def as_json(self) -> dict[str, object]:
        return {"detail": self.message, "parameter": self.parameter, "valid": self.valid}


_TARGET_ID = re.compile(r"#([A-Za-z][\w-]{0,63})$")  # an id of up to 64 characters, never a whole header


def _respond(request: Request, problem: Problem) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse(problem.as_json(), status_code=problem.status)
    templates = request.app.state.templates
    if request.headers.get("hx-request") == "true":
        # htmx 4 swaps 4xx responses too: answer with an element that can stand where the target stood.
        match = _TARGET_ID.search(request.headers.get("hx-target", ""))
        context = {"problem": problem, "target_id": match.group(1) if match else None}
        return templates.TemplateResponse(request, "partials/error_message.html", context, problem.status)
    return templates.TemplateResponse(request, "error.html", {"problem": problem}, problem.status)


def _validation_problem(error: RequestValidationError) -> Problem:
    messages, parameter = [], None
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ())]
        where, name = (location[0], ".".join(location[1:])) if len(location) > 1 else ("request", "".join(location))
        parameter = parameter or name
        received = f" (got {item['input']!r})" if item.get("input") is not None else ""  # cut short by Problem
        messages.append(f"{where} parameter {name!r}: {item.get('msg', 'is invalid')}{received}")
    return Problem(422, "; ".join(messages) or "the request is malformed", parameter)


def install_error_handlers(app: FastAPI) -> None:
    async def step_out_of_range(request: Request, error: StepOutOfRange) -> Response:
        return _respond(request, Problem(404, str(error), "step", f"a whole number from 0 to {error.last}"))

    async def unknown_scenario(request: Request, error: UnknownScenario) -> Response:
        return _respond(request, Problem(404, str(error), "scenario"))

    async def bad_command(request: Request, error: CommandLineError) -> Response:
        return _respond(request, Problem(400, str(error), "command"))

    async def run_failed(request: Request, error: RunError) -> Response:
        return _respond(request, Problem(400, str(error)))

    async def bad_parameter(request: Request, error: BadParameter) -> Response:
        return _respond(request, Problem(422, str(error), error.parameter, error.valid))

    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        return _respond(request, _validation_problem(error))

    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code < 400:
            return Response(status_code=error.status_code, headers=error.headers)
        message = error.detail if isinstance(error.detail, str) else "the request failed"
        response = _respond(request, Problem(error.status_code, message))
        response.headers.update(error.headers or {})
        return response

    app.add_exception_handler(StepOutOfRange, step_out_of_range)
    app.add_exception_handler(UnknownScenario, unknown_scenario)
    app.add_exception_handler(CommandLineError, bad_command)
    app.add_exception_handler(RunError, run_failed)
    app.add_exception_handler(BadParameter, bad_parameter)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)


log = logging.getLogger("trapscope.error")


class CatchAllMiddleware:
    """A failure nobody foresaw still answers a clear 500, a page or JSON like any other problem, and inside the
    security headers' middleware so it carries them (Starlette's own 500 is sent outside every middleware).
    The traceback goes to the log, never to the person."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception:
            log.exception("unhandled error answering %s %s", scope["method"], shorten(scope["path"], 200))
            if started:
                return  # part of the answer is sent: nothing clear can follow it, so the connection just ends
            problem = Problem(500, "trapscope failed to answer this request; the error is logged. Try again later")
            response = _respond(Request(scope, receive), problem)
            await response(scope, receive, send)
