"""Hostile input (issue #11, Tests): markup sent through any parameter, path segment, D script, room name or form
field is never reflected as markup: pages escape it, error messages quote at most an escaped prefix of it.

Each route is asked with every parameter it reads (and a parameter *named* by the payload), as a whole page and
as the htmx fragment, with payloads for element, attribute and script contexts.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.params import QUERY_PARAMETERS
from app.routes_console import CONSOLE_PARAMETERS, DISPLAY_PARAMETERS

PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    "</textarea><script>alert(1)</script>",
]
# What must never appear in markup: an element or an attribute the payload made. Escaped text (&lt;script&gt;)
# is harmless, and so is the payload inside JSON served as JSON (with nosniff).
INJECTED = re.compile(r"<script>alert|<img src=x|<svg onload", re.IGNORECASE)
MARKUP_TYPES = ("text/html", "image/svg+xml", "application/xhtml")

TRACE_PARAMETERS = ("command", "profile", "script", "flame", "baseline", "quiet", "focus", "search")
ROUTES = {
    "/": (),
    "/scenarios/getpid": QUERY_PARAMETERS,
    "/scenarios/dd-system-time": QUERY_PARAMETERS,
    "/scenarios/command": QUERY_PARAMETERS,
    "/scenarios/getpid/console": (*CONSOLE_PARAMETERS, *DISPLAY_PARAMETERS),
    "/trace": TRACE_PARAMETERS,
    "/trace/flame": TRACE_PARAMETERS,
    "/trace/diff": TRACE_PARAMETERS,
    "/trace/frame": (*TRACE_PARAMETERS, "stack"),
    "/trace/export": (*TRACE_PARAMETERS, "format"),
    "/rooms/join": ("code",),
    "/api/runs": ("command", "profile"),
}
CASES = [(route, name) for route, names in ROUTES.items() for name in (*names, "<payload>")]


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(), follow_redirects=False) as client:
        yield client


def assert_not_reflected(response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code}"
    content_type = response.headers.get("content-type", "")
    if content_type.startswith(MARKUP_TYPES) or not content_type:
        found = INJECTED.search(response.text)
        assert found is None, f"{what}: reflected as markup: ...{response.text[max(0, found.start() - 80) :][:200]}"
    else:
        assert response.headers.get("x-content-type-options") == "nosniff", what
    for name, value in response.headers.items():
        assert INJECTED.search(value) is None, f"{what}: reflected in the {name} header"


@pytest.mark.parametrize(("route", "parameter"), CASES, ids=[f"{route} {name}" for route, name in CASES])
def test_no_parameter_is_reflected_as_markup(client, route, parameter):
    for payload in PAYLOADS:
        query = f"{quote(payload)}=1" if parameter == "<payload>" else f"{parameter}={quote(payload)}"
        for headers in ({}, {"HX-Request": "true", "HX-Target": "#stepper"}):
            response = client.get(f"{route}?{query}", headers=headers)
            assert_not_reflected(response, f"GET {route}?{parameter}={payload!r} {headers}")


@pytest.mark.parametrize(
    "path",
    [
        "/scenarios/{}",
        "/scenarios/{}/console",
        "/rooms/{}",
        "/rooms/{}/events",
        "/rooms/{}/qr.svg",
        "/vendor/{}",
        "/{}",
    ],
)
def test_no_path_segment_is_reflected_as_markup(client, path):
    for payload in PAYLOADS:
        response = client.get(path.format(quote(payload, safe="")))
        assert_not_reflected(response, f"{path} with {payload!r}")


D_SCRIPTS = [
    'BEGIN { printf("%s\\n", "{payload}"); exit(0); }',
    'syscall::getpid:entry { trace("{payload}"); }',
    "syscall::{payload}:entry { }",
    "{payload}",
]


@pytest.mark.parametrize("script", D_SCRIPTS)
@pytest.mark.parametrize("route", ["/trace", "/scenarios/getpid/console"])
def test_a_d_script_its_output_and_its_errors_are_never_markup(client, route, script):
    for payload in PAYLOADS:
        text = script.replace("{payload}", payload.replace('"', '\\"') if '"' in script else payload)
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(f"{route}?command=getpid&script={quote(text)}", headers=headers)
            assert_not_reflected(response, f"{route} script {text!r}")


def test_a_room_name_and_its_forms_are_never_markup(client):
    for payload in PAYLOADS:
        opened = client.post("/rooms", data={"url": "/scenarios/getpid?step=1", "title": payload})
        assert opened.status_code == 303
        code = re.search(r"room=([A-Z0-9]+)", opened.headers["location"]).group(1)
        for path in (opened.headers["location"], f"/rooms/{code}", f"/rooms/{code}/bar"):
            assert_not_reflected(client.get(path), f"room {code} titled {payload!r}: {path}")
        for url in (payload, f"/scenarios/getpid?step={quote(payload)}", f"/scenarios/{quote(payload)}"):
            assert_not_reflected(client.post(f"/rooms/{code}/drive", data={"url": url}), f"drive to {url!r}")
            assert_not_reflected(client.post("/rooms", data={"url": url}), f"open at {url!r}")
        client.post(f"/rooms/{code}/end")
