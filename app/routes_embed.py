"""Embedding a stepping page in slides (issue 15.5): the oEmbed endpoint (https://oembed.com/) that hands a slide
tool or a CMS the iframe snippet for a stepping URL, the same snippet the page's "Embed code" dialog copies
(static/embed.js). The framed page itself is the stepping page with `embed=1`, whose Content-Security-Policy lets
slides frame it (app/security.py embed_policy)."""

from __future__ import annotations

from html import escape
from typing import Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from app.errors import BadParameter
from sim.scenarios.registry import lookup

router = APIRouter(include_in_schema=False)

DEFAULT_SIZE = (960, 540)  # 16:9, a slide's content area
MIN_SIZE = 200
MAX_URL = 2000


def embed_url(base: str, path: str, query: str) -> str:
    """The stepping URL `path?query` in embed mode, absolute on `base`."""
    pairs = [(name, value) for name, value in parse_qsl(query, keep_blank_values=True) if name != "embed"]
    return f"{base.rstrip('/')}{path}?{urlencode([*pairs, ('embed', '1')], safe=',:')}"


def iframe_html(src: str, title: str, width: int, height: int) -> str:
    return (
        f'<iframe src="{escape(src)}" title="{escape(title)}" width="{width}" height="{height}" '
        'style="border:0" allowfullscreen></iframe>'
    )


@router.get("/oembed")
async def oembed(
    request: Request,
    url: Annotated[str, Query(max_length=MAX_URL, description="a stepping page's URL, /scenarios/NAME?...")],
    format: Annotated[str, Query(description="json (the only format offered)")] = "json",
    maxwidth: Annotated[int | None, Query(ge=MIN_SIZE, le=10_000)] = None,
    maxheight: Annotated[int | None, Query(ge=MIN_SIZE, le=10_000)] = None,
) -> JSONResponse:
    if format != "json":
        return JSONResponse({"detail": f"format {format[:20]!r} is not offered: only json"}, status_code=501)
    try:
        parts = urlsplit(url)
    except ValueError:  # say, an unclosed IPv6 bracket
        raise BadParameter("url", "query parameter 'url' is not a URL") from None
    segments = parts.path.strip("/").split("/")
    if len(segments) != 2 or segments[0] != "scenarios":
        raise BadParameter("url", "query parameter 'url' must be a stepping page's URL, /scenarios/NAME?...")
    scenario = lookup(segments[1])  # a 404 naming the scenarios if there is no such one
    width, height = DEFAULT_SIZE
    if maxwidth is not None and maxwidth < width:
        width, height = maxwidth, maxwidth * height // width
    if maxheight is not None and maxheight < height:
        width, height = maxheight * width // height, maxheight
    title = f"trapscope: {scenario.title}"
    src = embed_url(str(request.base_url), parts.path, parts.query)
    return JSONResponse(
        {
            "version": "1.0",
            "type": "rich",
            "provider_name": "trapscope",
            "provider_url": str(request.base_url),
            "title": title,
            "width": width,
            "height": height,
            "html": iframe_html(src, title, width, height),
        }
    )
