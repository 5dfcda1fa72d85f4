"""Jinja2 templates and the app's own static files (CSS, the JS glue, the icon).

Static files are linked with a hash of their content in the query (`/static/trapscope.css?v=1a2b3c4d`), so a
browser may cache such a URL for ever and a changed file is fetched at once; unversioned URLs revalidate.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

from fastapi import Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import StrictUndefined
from markupsafe import Markup, escape
from starlette.responses import Response
from starlette.types import Scope

from app.vendor import IMMUTABLE, ROOT, unused_plotly_style_ids, vendor_urls
from sim.machine.profiles import PROFILES

TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"


@functools.cache
def _content_hash(path: Path, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def static_url(name: str) -> str:
    path = STATIC_DIR / name
    return f"/static/{name}?v={_content_hash(path, path.stat().st_mtime_ns)}"


_CODE_SPAN = re.compile(r"`([^`]+)`")


def code_spans(text: str) -> Markup:
    """Escape `text`, then show its `backquoted` parts (instructions, names) as <code>."""
    return Markup(_CODE_SPAN.sub(r"<code>\1</code>", str(escape(text))))


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    templates.env.undefined = StrictUndefined  # a misspelt name in a template is an error, not a blank
    # Templates are part of the release: never stat their files again (each render did, on the event loop: 3% of
    # a busy server's main thread under the lecture benchmark).
    templates.env.auto_reload = False
    templates.env.globals["static_url"] = static_url
    templates.env.globals["profile_names"] = tuple(PROFILES)  # the machine profiles a run may name
    templates.env.globals["vendor"] = vendor_urls()
    templates.env.globals["unused_plotly_style_ids"] = unused_plotly_style_ids()
    templates.env.filters["ns"] = lambda value: f"{value:,} ns"
    templates.env.filters["code_spans"] = code_spans
    return templates


def get_templates(request: Request) -> Jinja2Templates:
    """The app's templates (a FastAPI dependency)."""
    return request.app.state.templates


class VersionedStaticFiles(StaticFiles):
    """StaticFiles whose `?v=<hash>` URLs (from static_url) are cached for a year; others revalidate."""

    def file_response(self, full_path, stat_result, scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        versioned = scope.get("query_string", b"").startswith(b"v=")
        response.headers["Cache-Control"] = IMMUTABLE if versioned else "no-cache"
        return response
