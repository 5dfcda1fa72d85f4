"""A room's broadcast, decoded and encoded once per message in a process, however many followers hear it.

The broker hands every follower in this process the same message string. Parsing its JSON and encoding the event
for each follower cost about a millisecond per follower for a step panel (its hundreds of lines go out as as many
`data:` lines): 300 followers waited up to ~0.3 s on a quiet core, most of a broadcast's delay
(bench/lecture_load.py). Recent messages are kept here, parsed and with their event encoded, so each further
follower pays a dictionary lookup (the string's hash is computed once and kept by the string).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sse_starlette import ServerSentEvent

RECENT = 8  # a room's messages are heard within moments; a few rooms broadcasting at once each keep theirs


@dataclass(frozen=True)
class Broadcast:
    message: dict[str, Any]  # shared by every follower: read, never changed
    event: bytes  # the message's html as one server-sent event, its version as the event's id (b"" for the end)


@lru_cache(maxsize=RECENT)
def decode(raw: str) -> Broadcast:
    message = json.loads(raw)
    if message.get("ended"):
        return Broadcast(message, b"")
    return Broadcast(message, ServerSentEvent(data=message["html"], id=str(message["v"])).encode())
