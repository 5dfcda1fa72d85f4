"""A room's broadcast is decoded and encoded once per message, and every follower gets the event it would have got."""

from __future__ import annotations

import json

from sse_starlette import ServerSentEvent

from app.room_broadcasts import decode


def test_a_step_is_one_event_whose_id_is_the_rooms_version():
    html = '<section id="step-panel" data-step="7">\n  <p>two\r\nlines &amp; more</p>\n</section>'
    broadcast = decode(json.dumps({"v": 12, "prev": 11, "html": html}))
    assert broadcast.message == {"v": 12, "prev": 11, "html": html}
    assert broadcast.event == ServerSentEvent(data=html, id="12").encode()
    assert broadcast.event.startswith(b"id: 12\r\ndata: <section") and broadcast.event.count(b"data: ") == 4


def test_followers_share_one_decoding_of_a_message():
    raw = json.dumps({"v": 3, "prev": 2, "html": "<p>step</p>"})
    same_text = "".join(list(raw))  # another string with the same text, as another subscription would deliver it
    assert decode(raw) is decode(raw) is decode(same_text)


def test_the_rooms_end_carries_no_step_event():
    broadcast = decode(json.dumps({"ended": True, "html": "<section id='room-bar'></section>"}))
    assert broadcast.message["ended"] and broadcast.event == b""
