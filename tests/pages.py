"""Reading what a page shows, for tests that check the HTML a route answers with."""

from __future__ import annotations

import html
import re


def text_of(page: str, element_id: str) -> str:
    """The text of the <pre> with this id, as a browser reads it (a newline right after the tag is not content)."""
    found = re.search(rf'<pre id="{element_id}"[^>]*>(.*?)</pre>', page, re.S)
    assert found, f"no <pre id={element_id}>"
    return html.unescape(found.group(1)).removeprefix("\n")
