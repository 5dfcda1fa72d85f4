"""What the browser loads besides pages: vendored htmx and plotly.js, our static files, the security headers."""

from __future__ import annotations

import json
import re

import pytest

from app.vendor import PACKAGE_LOCK, accepts, accepts_gzip, plotly_css, vendor_urls

IMMUTABLE = "public, max-age=31536000, immutable"


def test_htmx_is_served_at_the_version_package_lock_pins(client):
    pinned = json.loads(PACKAGE_LOCK.read_text())["packages"]["node_modules/htmx.org"]["version"]
    assert pinned.startswith("4.")
    url = vendor_urls()["htmx"]
    assert url == f"/vendor/htmx-{pinned}.min.js"
    response = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["cache-control"] == IMMUTABLE
    assert f'this.version="{pinned}"' in response.text  # httpx decompressed it: this is htmx itself


def test_plotly_js_is_served_compressed_once_and_cached_for_ever(client):
    url = vendor_urls()["plotly"]
    assert re.fullmatch(r"/vendor/plotly-\d+\.\d+\.\d+\.min\.js", url)
    compressed = client.get(url, headers={"Accept-Encoding": "gzip, deflate"})
    assert compressed.headers["content-encoding"] == "gzip"
    assert compressed.headers["cache-control"] == IMMUTABLE
    assert "Accept-Encoding" in compressed.headers["vary"]
    gzip_bytes = int(compressed.headers["content-length"])
    assert gzip_bytes < 1_500_000, "plotly.js over the wire must stay under 1.5 MB"
    brotli = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert brotli.headers["content-encoding"] == "br", "brotli when the browser takes it, as Chromium does"
    brotli_bytes = int(brotli.headers["content-length"])
    assert brotli_bytes < 0.85 * gzip_bytes, "brotli leaves room under 1.5 MB for the page and its figures"
    assert brotli.content == compressed.content, "the same file either way"
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert len(plain.content) > 3 * gzip_bytes


def test_brotli_is_chosen_only_when_accepted():
    assert accepts("gzip, deflate, br, zstd", "br")
    assert not accepts("gzip, deflate", "br")
    assert not accepts("br;q=0, gzip", "br")


def test_a_client_that_refuses_gzip_gets_the_plain_file():
    assert accepts_gzip("gzip, deflate")
    assert accepts_gzip("br;q=1.0, gzip;q=0.8, *;q=0.1")
    assert accepts_gzip("*")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("identity")
    assert not accepts_gzip("gzip;q=nonsense")
    assert not accepts_gzip("")


def test_plotly_css_holds_the_rules_plotly_would_inject(client):
    css = client.get(vendor_urls()["plotly_css"]).text
    assert ".js-plotly-plot .plotly .main-svg{position:absolute;" in css
    assert ".plotly-notifier{" in css


def test_plotly_css_extraction_refuses_a_plotly_it_does_not_understand():
    with pytest.raises(RuntimeError, match="plotcss"):
        plotly_css("function(){return 1}")


def test_an_unknown_vendor_file_is_404_listing_what_exists(client):
    response = client.get("/vendor/jquery-3.7.1.min.js")
    assert response.status_code == 404
    assert "htmx" in response.text


def test_static_files_are_versioned_by_content(client):
    page = client.get("/").text
    css_url = re.search(r'href="(/static/trapscope\.css\?v=[0-9a-f]+)"', page).group(1)
    response = client.get(css_url)
    assert response.status_code == 200
    assert response.headers["cache-control"] == IMMUTABLE
    assert client.get("/static/trapscope.css").headers["cache-control"] == "no-cache"


def test_every_response_has_a_strict_content_security_policy(client):
    for url in ("/", "/scenarios/getpid", "/api/scenarios", "/scenarios/nope", vendor_urls()["htmx"]):
        policy = client.get(url).headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["script-src"] == "'self'", "no inline scripts, no eval"
        assert "unsafe" not in directives["style-src"]
        assert "unsafe-eval" not in policy
        assert client.get(url).headers["x-content-type-options"] == "nosniff"


def test_pages_carry_no_executable_inline_script(client):
    page = client.get("/scenarios/getpid").text
    scripts = re.findall(r"<script([^>]*)>", page)
    assert scripts
    for attributes in scripts:
        assert 'src="' in attributes or 'type="application/json"' in attributes, attributes
    assert not re.search(r"\son[a-z]+=", page), "no inline event handlers"


def test_pages_link_no_other_origin(client):
    for url in ("/", "/scenarios/getpid"):
        page = client.get(url).text
        assert not re.search(r'(src|href)="(https?:)?//', page), "everything is served by the app itself"
