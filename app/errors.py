"""Bad input becomes a 4xx that says what was wrong, which parameter, and what would have been right.

/api/... answers JSON: {"detail": message, "parameter": name or null, "valid": what is accepted or null}.
Pages answer an HTML error page; an htmx request gets just the message, as a fragment that takes the place of
the element it targeted, so the page around it keeps working.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

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


@dataclass(frozen=True)
class Problem:
    status: int
    message: str
    parameter: str | None = None
    valid: str | None = None

    def as_json(self) -> dict[str, object]:
        return {"detail": self.message, "parameter": self.parameter, "valid": self.valid}


_TARGET_ID = re.compile(r"#([A-Za-z][\w-]{0,63})$")  # an id of up to 64 characters, never a whole header


def _respond(request: Request, problem: Problem) -> Response:
    # A short prefix of a bad value (or of a bad parameter's name), never all of it.
    problem = replace(problem, message=shown(problem.message), parameter=problem.parameter and shown(problem.parameter))
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
        received = f" (got {item['input']!r})" if "input" in item and item["input"] is not None else ""
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
