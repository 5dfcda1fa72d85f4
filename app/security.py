"""Security headers on every response: a strict Content-Security-Policy and its usual companions.

Pages carry no inline scripts and nothing is loaded from another origin, so scripts are 'self' only and nothing
may call eval. Styles are 'self' plus 'unsafe-inline' for style *attributes* only, because Plotly positions the
parts of a figure with style attributes it writes at run time (tests/browser/test_pages_browser.py checks that
the page draws with no CSP violation under exactly this policy).
"""

from __future__ import annotations

import os

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_POLICY = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
]
# Who may put a page in a frame: only trapscope itself, except embed mode (?embed=1), which lecture slides frame
# from anywhere unless TRAPSCOPE_FRAME_ANCESTORS names the sources allowed (CSP source list syntax).
CONTENT_SECURITY_POLICY = "; ".join([*_POLICY, "frame-ancestors 'self'"])


# `*` matches only network schemes, so a slide deck opened from a file (file://) could not frame an embed; `file:`
# lets it. An embed page is read-only stepping (no room, no form that changes state), so being framed is safe.
DEFAULT_FRAME_ANCESTORS = "* file:"


def embed_policy() -> str:
    """The policy of an embed-mode page: the same, but it may be framed by the slides' origin."""
    ancestors = os.environ.get("TRAPSCOPE_FRAME_ANCESTORS", "").strip() or DEFAULT_FRAME_ANCESTORS
    return "; ".join([*_POLICY, f"frame-ancestors {ancestors}"])


SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class SecurityHeadersMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): adds the headers to each response start, costing a dict update."""

    def __init__(self, app: ASGIApp, headers: dict[str, str] | None = None) -> None:
        self.app = app
        self.headers = SECURITY_HEADERS if headers is None else headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
