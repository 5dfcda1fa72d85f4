"""The browser libraries trapscope serves itself (never from a CDN: lecture-hall wifi fails).

htmx comes from the npm package pinned in package-lock.json, plotly.js from the plotly Python package. Each is
read and compressed once (brotli and gzip), then served under a URL that names its version, so browsers may
cache it forever.

plotly.js injects its stylesheet as an inline <style> when it loads, which a strict Content-Security-Policy
refuses. So the same rules are served here as a stylesheet, read out of the plotly.js that is installed, and the
page links it with the id plotly.js looks for (plotly.js-style-global, class no-inline-styles) so it injects none.
plotly.js also injects a bundled library's stylesheet (maplibre's, for map traces) unless an element with that
style's id exists; trapscope draws no maps, so the page carries an empty element with each such id instead of
83 KB of unused CSS (see plotly_bundled_style_ids).
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import brotli
import plotly
from fastapi import APIRouter, HTTPException, Request, Response

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
PACKAGE_LOCK = ROOT / "package-lock.json"
HTMX_JS = NODE_MODULES / "htmx.org" / "dist" / "htmx.min.js"
HTMX_SSE_JS = NODE_MODULES / "htmx.org" / "dist" / "ext" / "hx-sse.min.js"  # live rooms' server-sent events
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"

IMMUTABLE = "public, max-age=31536000, immutable"
JAVASCRIPT = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"


class VendorFileMissing(RuntimeError):
    """A vendored library is not installed; the message says how to install it."""


@dataclass(frozen=True)
class VendorFile:
    name: str  # what templates call it, e.g. "htmx", "plotly_css"
    url: str  # names the version, e.g. /vendor/htmx-4.0.1.min.js
    media_type: str
    body: bytes
    gzipped: bytes
    brotli: bytes  # smaller than gzip by a quarter for plotly.js: the stepping page's first load is mostly plotly

    @classmethod
    def of(cls, name: str, url: str, media_type: str, body: bytes) -> VendorFile:
        return cls(name, url, media_type, body, gzip.compress(body, compresslevel=9, mtime=0), _brotli(body))


# Brotli's best level takes plotly.js from 1.23 MB (level 9) to 1.11 MB, but needs ten seconds: it is done once and
# kept in a cache directory; until it is there (or if nothing can be written) level 9 serves, made in half a second.
BROTLI_BEST, BROTLI_FAST = 11, 9


def brotli_cache_dir() -> Path:
    configured = os.environ.get("TRAPSCOPE_CACHE_DIR")
    base = Path(configured) if configured else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "trapscope" if not configured else base


def _brotli(body: bytes) -> bytes:
    cached = brotli_cache_dir() / f"{hashlib.sha256(body).hexdigest()[:32]}.br"
    try:
        return cached.read_bytes()
    except OSError:
        pass
    if len(body) < 256 * 1024:
        return brotli.compress(body, quality=BROTLI_BEST, mode=brotli.MODE_TEXT)  # small files: at once
    threading.Thread(target=_store_best, args=(body, cached), daemon=True, name="brotli-best").start()
    return brotli.compress(body, quality=BROTLI_FAST, mode=brotli.MODE_TEXT)


def _store_best(body: bytes, cached: Path) -> None:
    best = brotli.compress(body, quality=BROTLI_BEST, mode=brotli.MODE_TEXT)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(best)
        partial.replace(cached)  # atomic: another worker never reads half a file
    except OSError:
        return  # a read-only home: level 9 it stays
    for url, file in list(_FILES.items()):
        if file.body == body:
            _FILES[url] = dataclasses.replace(file, brotli=best)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise VendorFileMissing(f"{path} is missing: run `make setup` (npm ci and pip install)") from None


# plotly.js's plotcss module: `={"X,X div":'direction:ltr;...', ..., Y:'...', ...};for(k in rules)` adds each
# rule with X standing for ".js-plotly-plot .plotly" and Y for ".plotly-notifier".
_PLOTCSS = re.compile(r'=\{("X,X div":.*?)\};for\(\w+ in \w+\)', re.S)
_PLOTCSS_RULE = re.compile(r"""(?:"([^"]*)"|([A-Za-z_$][\w$]*)):(?:'([^']*)'|"([^"]*)")(,|$)""")


# A bundled library's stylesheet, injected once: `if(!document.getElementById("ID")){var e=...("style");e.id="ID"`
_BUNDLED_STYLE = re.compile(r'getElementById\("([^"]+)"\)\)\{var (\w+)=document\.createElement\("style"\);\2\.id="\1"')


def plotly_bundled_style_ids(plotly_js: str) -> tuple[str, ...]:
    """Ids of the stylesheets plotly.js injects for libraries it bundles, unless an element has the id."""
    return tuple(match.group(1) for match in _BUNDLED_STYLE.finditer(plotly_js))


def plotly_css(plotly_js: str) -> str:
    """The stylesheet plotly.js would inject when it loads, as a file."""
    found = _PLOTCSS.search(plotly_js)
    rules = list(_PLOTCSS_RULE.finditer(found.group(1))) if found else []
    if not rules or "".join(rule.group(0) for rule in rules) != found.group(1):
        raise VendorFileMissing("cannot find plotly.js's stylesheet rules (plotcss) in the installed plotly.min.js")
    lines = []
    for rule in rules:
        selector = rule.group(1) if rule.group(1) is not None else rule.group(2)
        selector = (
            re.sub(r"^,", " ,", selector).replace("X", ".js-plotly-plot .plotly").replace("Y", ".plotly-notifier")
        )
        declarations = rule.group(3) if rule.group(3) is not None else rule.group(4)
        lines.append(f"{selector}{{{declarations}}}")
    return "\n".join(lines) + "\n"


def htmx_version(lock_file: Path = PACKAGE_LOCK) -> str:
    """The htmx.org version pinned in package-lock.json (the version npm ci installed)."""
    lock = json.loads(lock_file.read_text())
    return lock["packages"]["node_modules/htmx.org"]["version"]


def plotly_js_version() -> str:
    from plotly.offline import get_plotlyjs_version

    return get_plotlyjs_version()


@functools.cache
def unused_plotly_style_ids() -> tuple[str, ...]:
    """For templates: one empty element per id keeps plotly.js from injecting styles trapscope does not use."""
    return plotly_bundled_style_ids(_read(PLOTLY_JS).decode())


_FILES: dict[str, VendorFile] = {}


def vendor_files() -> dict[str, VendorFile]:
    """Every vendored file by URL; read and compressed on first use, then kept for the process's life."""
    if not _FILES:
        _FILES.update(_load_vendor_files())
    return _FILES


def _load_vendor_files() -> dict[str, VendorFile]:
    htmx, plotly_version = htmx_version(), plotly_js_version()
    plotly_js = _read(PLOTLY_JS)
    files = [
        VendorFile.of("htmx", f"/vendor/htmx-{htmx}.min.js", JAVASCRIPT, _read(HTMX_JS)),
        VendorFile.of("htmx_sse", f"/vendor/htmx-{htmx}-sse.min.js", JAVASCRIPT, _read(HTMX_SSE_JS)),
        VendorFile.of("plotly", f"/vendor/plotly-{plotly_version}.min.js", JAVASCRIPT, plotly_js),
        VendorFile.of(
            "plotly_css", f"/vendor/plotly-{plotly_version}.css", CSS, plotly_css(plotly_js.decode()).encode()
        ),
    ]
    return {file.url: file for file in files}


def vendor_urls() -> dict[str, str]:
    """Library name -> its versioned URL, for templates."""
    return {file.name: file.url for file in vendor_files().values()}


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (RFC 9110: a coding with q=0 is refused)."""
    return accepts(accept_encoding, "gzip")


def accepts(accept_encoding: str, wanted: str) -> bool:
    """Whether an Accept-Encoding header allows the coding `wanted` (or any, with `*`), with q > 0."""
    for coding in accept_encoding.split(","):
        name, *params = coding.split(";")
        if name.strip().lower() not in (wanted, "*"):
            continue
        quality = 1.0
        for param in params:
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        return quality > 0
    return False


router = APIRouter(include_in_schema=False)


@router.get("/vendor/{filename}")
def vendor_file(filename: str, request: Request) -> Response:
    file = vendor_files().get(f"/vendor/{filename}")
    if file is None:
        known = ", ".join(vendor_files())
        raise HTTPException(404, f"no vendored file {filename!r} (this server has: {known})")
    headers = {"Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding"}
    accept_encoding = request.headers.get("accept-encoding", "")
    if accepts(accept_encoding, "br"):
        return Response(file.brotli, media_type=file.media_type, headers={**headers, "Content-Encoding": "br"})
    if accepts(accept_encoding, "gzip"):
        return Response(file.gzipped, media_type=file.media_type, headers={**headers, "Content-Encoding": "gzip"})
    return Response(file.body, media_type=file.media_type, headers=headers)
