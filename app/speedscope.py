"""speedscope, served by trapscope itself: the trace page's "Open in speedscope" opens the profile it shows.

The files are the release build in the `speedscope` npm package (pinned in package-lock.json; `npm ci` installs
it), served as they are under /speedscope/. The page loads the profile from trapscope's own speedscope export
(`#profileURL=/trace/export?...&format=speedscope`), so nothing comes from another origin and nothing leaves the
machine. speedscope's URL fragment also names the view to open (`view=time-ordered|left-heavy|sandwich`); it has
no parameter for a selected or zoomed frame, so that part of the flame graph's state stays behind.

speedscope writes its styles at run time (inline <style> elements) and compiles a WebAssembly module for one
import format, so its pages get a policy of their own: styles may be inline and WebAssembly may compile;
scripts still come only from trapscope, and connections only to it.
"""

from __future__ import annotations

import functools
import mimetypes
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, HTTPException
from fastapi.responses import RedirectResponse, Response

from app.vendor import NODE_MODULES, VendorFileMissing

RELEASE = NODE_MODULES / "speedscope" / "dist" / "release"
PREFIX = "/speedscope/"
VIEWS = {"heavy": "left-heavy", "time": "time-ordered", "sandwich": "sandwich"}  # flame.js's view -> speedscope's

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'self'",
    ]
)
HEADERS = {"Content-Security-Policy": POLICY, "Cache-Control": "public, max-age=86400"}

router = APIRouter(include_in_schema=False)


def page_url(profile_url: str, title: str, view: str = "heavy") -> str:
    """speedscope's page opening `profile_url` (a same-origin path) in `view` (a flame.js view name)."""
    fragment = f"profileURL={quote(profile_url, safe='')}&title={quote(title, safe='')}"
    if view in VIEWS:
        fragment += f"&view={VIEWS[view]}"
    return f"{PREFIX}#{fragment}"


@functools.cache
def release_files() -> dict[str, Path]:
    """The release build's files by name (a fixed set: a request can name nothing else)."""
    if not (RELEASE / "index.html").is_file():
        raise VendorFileMissing(f"{RELEASE} is missing: run `make setup` (npm ci)")
    return {path.name: path for path in RELEASE.iterdir() if path.is_file()}


@router.get("/speedscope")
def speedscope_bare() -> Response:
    return RedirectResponse(PREFIX, status_code=308)


@router.get(PREFIX)
def speedscope_page() -> Response:
    return _file("index.html")


@router.get(PREFIX + "{name}")
def speedscope_file(name: str) -> Response:
    return _file(name)


def _file(name: str) -> Response:
    path = release_files().get(name)
    if path is None:
        raise HTTPException(404, f"speedscope has no file {name[:80]!r}")
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if name.endswith(".wasm"):
        media_type = "application/wasm"
    return Response(path.read_bytes(), media_type=media_type, headers=HEADERS)
