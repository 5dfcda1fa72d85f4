"""A stepping URL's answer is rendered once and served again from the fragment cache, with an ETag and the
Cache-Control and Vary that let browsers and proxies keep it (app/fragments.py)."""

from __future__ import annotations

import gzip
import json

import pytest
from fastapi.testclient import TestClient

from app.fragments import FragmentCache, make_fragment
from app.main import create_app

PANEL = {"HX-Request": "true", "HX-Target": "section#step-panel"}
STEPPER = {"HX-Request": "true", "HX-Target": "#stepper"}
IDENTITY = {"Accept-Encoding": "identity"}
GZIP = {"Accept-Encoding": "gzip"}
URL = "/scenarios/getpid?step=4"


@pytest.fixture
def app():
    return create_app()


@pytest.fixture
def client(app):
    with TestClient(app) as client:
        yield client


def test_a_repeated_step_is_answered_from_the_cache_with_the_bytes_rendered_first(app, client):
    fragments = app.state.fragments
    first = client.get(URL, headers={**PANEL, **IDENTITY})
    assert (fragments.misses, fragments.hits, len(fragments)) == (1, 0, 1)
    again = client.get(URL, headers={**PANEL, **IDENTITY})
    assert (fragments.misses, fragments.hits) == (1, 1)
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    fragments.clear()  # rendered afresh: the cache changes no byte
    assert client.get(URL, headers={**PANEL, **IDENTITY}).content == first.content


def test_the_gzip_form_is_compressed_once_and_decompresses_to_the_same_page(app, client):
    plain = client.get(URL, headers={**PANEL, **IDENTITY})
    for _ in range(2):  # rendered, then from the cache
        raw = client.get(URL, headers={**PANEL, **GZIP}, extensions={"decode": False})
        compressed = client.stream("GET", URL, headers={**PANEL, **GZIP})
        with compressed as response:
            wire = b"".join(response.iter_raw())
        assert response.headers["content-encoding"] == "gzip"
        assert int(response.headers["content-length"]) == len(wire)
        assert gzip.decompress(wire) == plain.content == raw.content
        assert response.headers["etag"] != plain.headers["etag"], "a strong ETag names one encoding's bytes"


def test_the_page_the_stepper_and_the_panel_of_one_url_are_kept_apart(client):
    page = client.get(URL).text
    stepper = client.get(URL, headers=STEPPER).text
    panel = client.get(URL, headers=PANEL).text
    assert page.lstrip().startswith("<!doctype html>")
    assert "<html" not in stepper and 'id="timeline-figure"' in stepper
    assert panel.lstrip().startswith('<section id="step-panel"')
    assert client.get(URL).text == page and client.get(URL, headers=PANEL).text == panel


def test_a_step_says_caches_may_keep_it_and_what_it_varies_on(client):
    for headers in ({}, STEPPER, PANEL):
        response = client.get(URL, headers=headers)
        assert response.headers["cache-control"] == "public, max-age=600"
        varies = {name.strip() for name in response.headers["vary"].split(",")}
        assert varies == {"HX-Request", "HX-Target", "HX-History-Restore-Request", "Accept-Encoding"}
        assert response.headers["etag"].startswith('"')


def test_a_client_holding_the_same_bytes_gets_304_without_a_body(client):
    first = client.get(URL, headers=PANEL)
    etag = first.headers["etag"]
    again = client.get(URL, headers={**PANEL, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and again.headers["cache-control"] == "public, max-age=600"
    assert "HX-Request" in again.headers["vary"]
    assert client.get(URL, headers={**PANEL, "If-None-Match": f'"x", {etag}'}).status_code == 304
    assert client.get(URL, headers={**PANEL, "If-None-Match": '"other"'}).status_code == 200
    other_step = client.get("/scenarios/getpid?step=5", headers={**PANEL, "If-None-Match": etag})
    assert other_step.status_code == 200, "another step's ETag differs"


def test_a_first_request_that_revalidates_is_answered_304_too(app, client):
    etag = client.get(URL, headers=PANEL).headers["etag"]
    app.state.fragments.clear()  # as after a restart: rendered again, the same bytes, the same ETag
    assert client.get(URL, headers={**PANEL, "If-None-Match": etag}).status_code == 304


def test_what_is_not_a_pure_function_of_the_url_is_not_kept(app, client):
    fragments = app.state.fragments
    assert client.get("/scenarios/getpid?step=two", headers=PANEL).status_code == 422
    assert client.get("/scenarios/getpid?at=1", follow_redirects=False).status_code == 303  # to the canonical URL
    assert len(fragments) == 0
    code = client.post("/rooms", data={"url": URL}, follow_redirects=False).headers["location"].split("room=")[1]
    room_page = client.get(f"/scenarios/getpid?room={code[:5]}&step=4")
    assert room_page.status_code == 200 and "cache-control" not in room_page.headers
    assert "etag" not in room_page.headers and len(fragments) == 0, "the room bar depends on the room and the key"
    assert client.get("/").status_code == 200 and len(fragments) == 0, "only stepping URLs are kept"


def _fragment(size: int):
    return make_fragment([(b"content-type", b"text/html")], b"x" * size, gzip_encoded=False)


def test_the_cache_is_bounded_by_bytes_and_by_count():
    by_bytes = FragmentCache(max_bytes=3 * _fragment(1000).nbytes, max_entries=100)
    for key in range(5):
        by_bytes.put((key,), _fragment(1000))
    assert len(by_bytes) == 3 and by_bytes.bytes_held <= by_bytes.max_bytes
    assert by_bytes.get((0,)) is None and by_bytes.get((4,)) is not None, "the least recently used go first"
    by_count = FragmentCache(max_bytes=1 << 30, max_entries=2)
    for key in range(4):
        by_count.put((key,), _fragment(10))
    assert len(by_count) == 2
    too_big = FragmentCache(max_bytes=100)
    too_big.put(("big",), _fragment(1000))
    assert len(too_big) == 0 and too_big.bytes_held == 0


def test_a_broadcast_is_parsed_and_encoded_once_for_every_follower():
    from sse_starlette import ServerSentEvent

    from app.routes_rooms import _decoded

    raw = json.dumps({"v": 7, "prev": 6, "html": "<p>step\n7</p>"})
    message, event = _decoded(raw)
    assert message["v"] == 7 and event == ServerSentEvent(data="<p>step\n7</p>", id="7").encode()
    assert all(_decoded(raw)[1] is event for _follower in range(300)), "the same bytes for each follower"
    assert _decoded(json.dumps({"ended": True, "html": "<p>bye</p>"}))[1] == b""


def test_an_embedded_step_from_the_cache_keeps_its_own_frame_policy(client):
    url = "/scenarios/getpid?step=4&embed=1"
    first = client.get(url, headers=PANEL)
    again = client.get(url, headers=PANEL)
    assert again.content == first.content
    for response in (first, again):
        assert "frame-ancestors *" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'self'" in client.get(URL, headers=PANEL).headers["content-security-policy"]


def test_a_step_served_from_the_cache_is_counted_under_its_route(app, client):
    def counted(route: str) -> float:  # the metrics are the process's: other tests count too
        prefix = f'trapscope_http_requests_total{{method="GET",route="{route}",status="200"}} '
        lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(prefix)]
        return float(lines[0].removeprefix(prefix)) if lines else 0.0

    before, unmatched = counted("/scenarios/{slug}"), counted("unmatched")
    for _ in range(2):
        client.get(URL, headers=PANEL)
    assert app.state.fragments.hits == 1
    assert counted("/scenarios/{slug}") == before + 2 and counted("unmatched") == unmatched


def test_a_gzip_body_compressed_in_one_piece_is_kept_as_it_came(app, client):
    client.get(URL, headers={**PANEL, **GZIP})  # rendered, compressed by GZipMiddleware, kept
    (kept,) = app.state.fragments._entries.values()
    compressed_here = make_fragment(list(kept.headers), kept.body, gzip_encoded=False)
    assert kept.gzipped == compressed_here.gzipped, "the bytes this module would have made: level, header and all"
    came = gzip.compress(b"<p>step</p>" * 100, mtime=0)
    assert make_fragment([], came, gzip_encoded=True, compressed_whole=True).gzipped is came, "not compressed again"
