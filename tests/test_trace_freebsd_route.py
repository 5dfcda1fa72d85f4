"""vminfo is Solaris's provider: the trace page labels it so when a program uses it, and offers FreeBSD's own
route to the same facts: fbt::vm_fault and the vm.stats.vm counters."""

from __future__ import annotations

import html
import re
from urllib.parse import urlencode

from app.routes_trace import trace_url
from app.trace_examples import EXAMPLES_BY_SLUG

DD = "dd if=/dev/zero of=/dev/null bs=1m count=1"
HTMX = {"HX-Request": "true", "HX-Target": "div#trace-results"}


def results(client, script: str) -> str:
    response = client.get(f"{trace_url(DD)}&{urlencode({'script': script})}", headers=HTMX)
    assert response.status_code == 200
    return response.text


def counter(page: str, name: str) -> int:
    found = re.search(rf'<code>vm\.stats\.vm\.{name}</code></td><td class="num">([0-9,]+)<', page)
    assert found, name
    return int(found.group(1).replace(",", ""))


def printed_counts(page: str) -> list[int]:
    """The counts dtrace printed (one count() aggregation a line, in the order the program declared them)."""
    stdout = html.unescape(re.search(r'<pre id="d-stdout" class="terminal"[^>]*>(.*?)</pre>', page, re.S).group(1))
    return [int(n) for n in re.findall(r"^\s+(\d+)\s*$", stdout, re.M)]


def test_a_program_using_vminfo_is_told_it_is_solaris_and_shown_freebsds_counters(client):
    page = results(client, 'vminfo:::zfod /execname == "dd"/ { @zfod = count(); }\n')
    assert 'id="vminfo-note"' in page and "Solaris" in page
    assert '<details id="vm-stats" class="vm-stats" open>' in page
    assert printed_counts(page) == [counter(page, "v_zfod")]  # the same fact, through the counter FreeBSD keeps


def test_freebsds_own_route_counts_the_faults_the_counters_count(client):
    page = results(client, EXAMPLES_BY_SLUG["freebsd-faults"].script)
    assert 'id="vminfo-note"' not in page
    assert '<details id="vm-stats" class="vm-stats">' in page
    faults, zero_filled = printed_counts(page)
    assert faults == counter(page, "v_vm_faults") > 0
    assert zero_filled >= counter(page, "v_zfod") > 0  # pmap_zero_page also zeroes page-table pages
